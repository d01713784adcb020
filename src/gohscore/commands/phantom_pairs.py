"""``gohscore phantom-pairs``: write synthetic follow-up pairs (same anatomy re-scanned, known change of disease)."""

from __future__ import annotations

import argparse
from pathlib import Path

from gohscore.settings import read_json_option


def main(argv: list[str] | None = None) -> int:
    """Write the pairs' scans and their truth table."""
    parser = argparse.ArgumentParser(prog="gohscore phantom-pairs", description=__doc__)
    parser.add_argument(
        "--params-json", default="{}", help="the config's 'followup' section as JSON (n_pairs, size)"
    )
    parser.add_argument("--seed", type=int, required=True, help="the config's top-level seed")
    parser.add_argument("--out", type=Path, required=True, help="folder for scans/ and pairs.csv")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)

    from gohscore.phantom.followup import FollowupParams, write_pairs

    params = FollowupParams.from_section(read_json_option(args.params_json, "followup"), "--params-json")
    write_pairs(params, args.seed, args.out)
    return 0
