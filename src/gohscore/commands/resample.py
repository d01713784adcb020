"""``gohscore resample``: one scan -> int16 network-grid volume (.npy) + geometry JSON."""

from __future__ import annotations

import argparse
import json
import logging

from gohscore.errors import GohscoreError
from gohscore.files import atomic_path
from gohscore.params import parse_params_json

log = logging.getLogger("gohscore")


def parse_params(text: str) -> dict:
    """Parse and check ``--params-json`` (keys ``spacing_mm`` > 0 and ``shape`` >= 8)."""
    params = parse_params_json(text, "preprocess", allowed=("spacing_mm", "shape"))
    spacing = float(params.get("spacing_mm", 1.2))
    shape = params.get("shape", 256)
    if not spacing > 0 or not isinstance(shape, int) or shape < 8:
        raise GohscoreError("--params-json needs spacing_mm > 0 and an integer shape >= 8 (e.g. 1.2 and 256)")
    return {"spacing_mm": spacing, "shape": shape}


def main(argv: list[str] | None = None) -> int:
    """Read, check, reorient and resample one scan; write the volume and its geometry."""
    parser = argparse.ArgumentParser(prog="gohscore resample", description=__doc__)
    parser.add_argument(
        "--scan", required=True, help="scan file or folder (NIfTI, MetaImage, NRRD, DICOM series)"
    )
    parser.add_argument("--patient", required=True, help="patient id")
    parser.add_argument(
        "--params-json", default='{"spacing_mm": 1.2, "shape": 256}', help="preprocess config"
    )
    parser.add_argument("--volume", required=True, help="output .npy (int16 HU, zyx, index 0 = bottom)")
    parser.add_argument("--geometry", required=True, help="output geometry JSON")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    params = parse_params(args.params_json)

    from gohscore.ingest import resample_scan
    from gohscore.io import write_volume

    volume, geometry = resample_scan(args.scan, args.patient, params["spacing_mm"], params["shape"])
    write_volume(volume, args.volume)
    with atomic_path(args.geometry) as tmp:
        tmp.write_text(json.dumps(geometry, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    log.info("%s: %s -> %s", args.patient, args.scan, args.volume)
    return 0
