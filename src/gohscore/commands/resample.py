"""``gohscore resample``: one scan -> int16 network-grid volume (.npy) + geometry JSON."""

from __future__ import annotations

import argparse
import json
import logging

from gohscore.files import atomic_path
from gohscore.settings import PreprocessParams

log = logging.getLogger("gohscore")


def main(argv: list[str] | None = None) -> int:
    """Read, check, reorient and resample one scan; write the volume and its geometry."""
    parser = argparse.ArgumentParser(prog="gohscore resample", description=__doc__)
    parser.add_argument(
        "--scan",
        required=True,
        help="scan file, folder, DICOMDIR or .zip (NIfTI, MetaImage, NRRD, a DICOM export)",
    )
    parser.add_argument("--patient", required=True, help="patient id")
    parser.add_argument(
        "--params-json", default="{}", help="the 'preprocess:' config section as JSON (default: the schema's)"
    )
    parser.add_argument("--volume", required=True, help="output .npy (int16 HU, zyx, index 0 = bottom)")
    parser.add_argument("--geometry", required=True, help="output geometry JSON")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    params = PreprocessParams.from_json(args.params_json)

    from gohscore.io import write_volume
    from gohscore.resample import resample_scan

    volume, geometry = resample_scan(args.scan, args.patient, params.spacing_mm, params.shape)
    write_volume(volume, args.volume)
    with atomic_path(args.geometry) as tmp:
        tmp.write_text(json.dumps(geometry, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    log.info("%s: %s -> %s", args.patient, args.scan, args.volume)
    return 0
