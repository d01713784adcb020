"""``gohscore phantom-tables``: collect per-patient parts into labels.csv, observers.csv, patches/patches.csv."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from gohscore.errors import GohscoreError
from gohscore.phantom.cohort import write_tables
from gohscore.phantom.observers import observer_patients
from gohscore.phantom.sizes import PhantomParams


def read_part(path: Path) -> dict:
    """Load one part JSON written by ``gohscore phantom``."""
    try:
        part = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise GohscoreError(
            f"cannot read phantom part {path} ({err}); rerun 'gohscore phantom' for it"
        ) from err
    for key in ("patient", "label", "observers", "patches"):
        if key not in part:
            raise GohscoreError(f"phantom part {path} lacks {key!r}; rerun 'gohscore phantom' for it")
    return part


def main(argv: list[str] | None = None) -> int:
    """Write the cohort's tables from the parts."""
    parser = argparse.ArgumentParser(prog="gohscore phantom-tables", description=__doc__)
    parser.add_argument("--parts", type=Path, nargs="+", required=True, help="part JSON files")
    parser.add_argument(
        "--cohort", type=Path, required=True, help="cohort folder (holds scans/ and patches/)"
    )
    parser.add_argument("--params-json", required=True, help="the config's 'phantom' section as JSON")
    parser.add_argument("--seed", type=int, required=True, help="the config's top-level seed")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    params = PhantomParams.from_json(args.params_json)
    parts = [read_part(path) for path in args.parts]
    ids = [p["patient"] for p in parts]
    if len(set(ids)) != len(ids):
        raise GohscoreError("phantom-tables got the same patient twice in --parts; pass each part once")
    chosen = observer_patients(args.seed, params.n_patients, params.n_observer_patients)
    write_tables(parts, args.cohort, chosen)
    return 0
