"""``gohscore extract-slices``: cut ``slices_per_level`` axial slices around each level (reference or
predicted) from the original scans, resized to ``input_size``² in HU, plus an index table."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from gohscore.files import read_parquet
from gohscore.settings import ScoreParams

log = logging.getLogger("gohscore")


def build_parser() -> argparse.ArgumentParser:
    """The command's options."""
    p = argparse.ArgumentParser(prog="gohscore extract-slices", description=__doc__)
    p.add_argument("--manifest", type=Path, required=True, help="ingest/manifest.parquet")
    p.add_argument(
        "--levels",
        type=Path,
        nargs="+",
        required=True,
        help="labels.parquet (reference) or level prediction tables (predicted)",
    )
    p.add_argument("--source", choices=["reference", "predicted"], required=True)
    p.add_argument("--params-json", required=True, help="the 'scores:' config section as JSON")
    p.add_argument("--out-dir", type=Path, required=True, help="folder for {patient}.npy and index.parquet")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the command."""
    args = build_parser().parse_args(argv)
    params = ScoreParams.from_json(args.params_json)
    from gohscore.scores.extraction import level_positions, write_slices

    manifest = read_parquet(args.manifest, "manifest", ["patient", "path"])
    tables = [read_parquet(p, "level table", ["patient"]) for p in args.levels]
    positions = level_positions(tables, args.source, [str(p) for p in args.levels])
    patients = write_slices(
        manifest, positions, params, args.out_dir, str(args.manifest), f"extract-slices ({args.source})"
    )
    log.info("wrote %s: %d patients", args.out_dir, len(patients))
    return 0
