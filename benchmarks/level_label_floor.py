"""Benchmark: the level error that the embedded cohort's labels leave even to a perfect reader.

The phantom places each reference level on a slice of the scan (the nearest one; L4 the slice
halfway between L3 and L5), and L5 at a random 6-12 mm above the right dome. A reader who found
the anatomy exactly (great-vessel origin, carina, venous confluence, right dome) still cannot
see where the slices fall, nor that random offset. This draws anatomies with the phantom's own
:func:`gohscore.phantom.anatomy.draw_anatomy` and measures, per level, the mean absolute error
(mm) of that ideal reader: L1-L3 at the anatomical height, L5 at the dome, L4 halfway between
L3 and the dome, each then corrected by its median error over the draws. That correction is the
constant a trained net would learn, the middle of L5's unseen offset included, so the offset's
range is not repeated here.

Run: ``python benchmarks/level_label_floor.py [--n 5000] [--size demo]`` (seconds); writes
``benchmarks/results/level_label_floor_<size>.json`` and prints the figures.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from gohscore.phantom.anatomy import draw_anatomy
from gohscore.phantom.sizes import SIZES

RESULTS = Path(__file__).parent / "results"


def ideal_errors(n: int, size: str, seed: int) -> np.ndarray:
    """Signed errors ``(n, 5)`` in mm of the ideal reader against the labelled slice, before the median correction."""
    rng = np.random.default_rng(seed)
    preset = SIZES[size]
    rows = []
    for _ in range(n):
        anat = draw_anatomy(rng, preset)
        ref = np.asarray(anat.slice_w(np.asarray(anat.level_k)), dtype=float)
        l1, l2, l3, _, _ = anat.level_w
        dome = anat.dome_r
        guess = np.array([l1, l2, l3, (l3 + dome) / 2, dome])
        rows.append(guess - ref)
    return np.asarray(rows)


def main() -> None:
    """Print and record the floor per level."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000, help="anatomies drawn")
    parser.add_argument("--size", default="demo", choices=sorted(SIZES), help="phantom size preset")
    parser.add_argument("--seed", type=int, default=2022)
    args = parser.parse_args()
    err = ideal_errors(args.n, args.size, args.seed)
    err = err - np.median(err, axis=0)
    floor = np.abs(err).mean(axis=0)
    record = {
        "what": "mean absolute level error (mm) of a reader who finds the anatomy exactly, against the "
        "phantom's labelled slices (benchmarks/level_label_floor.py)",
        "size": args.size,
        "anatomies": args.n,
        "seed": args.seed,
        "floor_mm_per_level": [round(float(v), 2) for v in floor],
        "floor_mm_all": round(float(floor.mean()), 2),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"level_label_floor_{args.size}.json"
    out.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    for k, v in enumerate(floor, start=1):
        print(f"L{k}: {v:.2f} mm")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
