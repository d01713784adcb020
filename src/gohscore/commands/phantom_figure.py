"""``gohscore phantom-figure``: draw the phantom realism figure for a few patients (regenerated in memory)."""

from __future__ import annotations

import argparse
from pathlib import Path

from gohscore.phantom.cohort import generate_patient
from gohscore.phantom.figure import draw_figure
from gohscore.phantom.sizes import PhantomParams
from gohscore.progress import progress


def main(argv: list[str] | None = None) -> int:
    """Regenerate the named patients and draw the figure."""
    parser = argparse.ArgumentParser(prog="gohscore phantom-figure", description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="PNG to write, e.g. docs/phantom.png")
    parser.add_argument("--params-json", required=True, help="the config's 'phantom' section as JSON")
    parser.add_argument("--seed", type=int, required=True, help="the config's top-level seed")
    parser.add_argument(
        "--patients", nargs="+", default=["P0001", "P0002", "P0003"], help="patient ids to draw"
    )
    parser.add_argument("--dpi", type=int, default=70)
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    params = PhantomParams.from_json(args.params_json)
    patients = [
        generate_patient(p, params, args.seed) for p in progress(args.patients, "phantom figure patients")
    ]
    draw_figure(patients, args.out, dpi=args.dpi)
    return 0
