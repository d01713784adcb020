"""``gohscore export``: pack a run's fold models of both networks into a portable bundle (folder or .zip)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from gohscore.settings import section_defaults

log = logging.getLogger("gohscore")


def main(argv: list[str] | None = None) -> int:
    """Write the bundle and say what it holds."""
    parser = argparse.ArgumentParser(prog="gohscore export", description=__doc__)
    parser.add_argument(
        "--results", required=True, type=Path, help="results folder of a finished workflow run"
    )
    parser.add_argument(
        "--out", required=True, type=Path, help="bundle to write: a folder, or a file ending .zip"
    )
    parser.add_argument(
        "--ablation",
        default=section_defaults("scores")["final_ablation"],
        help="score-model variant to pack (default: the schema's scores.final_ablation)",
    )
    parser.add_argument("--name", default="gohscore-goh-cascade", help="bundle name in metadata.json")
    parser.add_argument("--version", default="1.0.0", help="bundle version in metadata.json")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)

    from gohscore.bundle import export_bundle

    meta = export_bundle(args.results, args.out, args.ablation, args.name, args.version)
    log.info(
        "%s: %d level and %d score models (%s), %d files hashed",
        args.out,
        meta["training"]["n_level_models"],
        meta["training"]["n_score_models"],
        args.ablation,
        len(meta["files"]),
    )
    return 0
