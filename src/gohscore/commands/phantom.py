"""``gohscore phantom``: generate one synthetic patient (scan, patches, lesion masks, part JSON)."""

from __future__ import annotations

import argparse
from pathlib import Path

from gohscore.errors import GohscoreError
from gohscore.phantom.cohort import tune_allocator, write_part, write_patient
from gohscore.phantom.sizes import PatientParams, patient_index
from gohscore.settings import read_json_option


def main(argv: list[str] | None = None) -> int:
    """Write one patient's scan folder, patch folder and part JSON."""
    parser = argparse.ArgumentParser(prog="gohscore phantom", description=__doc__)
    parser.add_argument("--patient", required=True, help="patient id, P0001..P9999")
    parser.add_argument(
        "--params-json",
        required=True,
        help="the config's 'phantom' section as JSON (size, dicom_every and patches_per_pattern suffice)",
    )
    parser.add_argument("--seed", type=int, required=True, help="the config's top-level seed")
    parser.add_argument(
        "--scan-dir", type=Path, required=True, help="folder for the NIfTI file or DICOM series"
    )
    parser.add_argument("--patch-dir", type=Path, required=True, help="folder for the GG/RET patches")
    parser.add_argument(
        "--part", type=Path, required=True, help="output JSON: label, observer and patch rows"
    )
    parser.add_argument(
        "--masks", type=Path, default=None, help="output .npz: lung, GG and RET masks at the five levels"
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    section = read_json_option(args.params_json, "phantom")
    params = PatientParams.from_section(section, "--params-json")
    index = patient_index(args.patient)
    n_patients = section.get("n_patients")
    if n_patients is not None and index > n_patients:
        raise GohscoreError(f"--patient {args.patient} is beyond phantom.n_patients = {n_patients}")
    tune_allocator()
    part = write_patient(args.patient, params, args.seed, args.scan_dir, args.patch_dir, args.masks)
    write_part(part, args.part)
    return 0
