"""Follow-up against baseline: the change of each level score and of the global extent, with a verdict.

The verdict needs a minimum detectable change (MDC). Each scan's result holds the spread of its
fold models (the ensemble SD, ``*_sd``). Treating the two scans' ensemble errors as independent
and roughly normal, their difference has SD ``sqrt(sd_b**2 + sd_f**2)``, and a change is told
apart from ensemble disagreement at the 95 % level when it reaches

    MDC = max(floor, 1.96 * sqrt(sd_b**2 + sd_f**2))

(the usual MDC95 = 1.96 * sqrt(2) * SEM, with each scan's own SD in place of a shared SEM). The
floor is the smallest step the quantity can take: level scores are reported in 5 % steps, so no
change below 5 % can be stated, and the global extent (the mean of five such scores) moves in
1 % steps. ``|change| >= MDC`` reads ``increase`` or ``decrease``, anything less
``no detectable change``.

The ensemble SD measures how much the fold models disagree on one scan; it does not include what
differs between two acquisitions (positioning, inspiration, slice spacing). How well the verdicts
hold across re-scans is what ``benchmarks/followup_change.py`` measures on synthetic pairs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from gohscore.goh import N_LEVELS, PATTERNS, SCORE_STEP
from gohscore.result_folder import read_result, scan_of

Z_95 = 1.96
#: smallest change a level score can show (its reporting step)
LEVEL_FLOOR = SCORE_STEP
#: smallest change the global extent can show: one level moving one step
EXTENT_FLOOR = SCORE_STEP / N_LEVELS
INCREASE, DECREASE, NO_CHANGE = "increase", "decrease", "no detectable change"
MDC_FORMULA = "MDC = max(floor, 1.96 * sqrt(sd_baseline^2 + sd_followup^2)); floor 5 % per level, 1 % extent"
SD_COLUMNS = tuple(f"{p}_sd" for p in PATTERNS)
TABLE_COLUMNS = [
    "level",
    "pattern",
    "baseline",
    "followup",
    "change",
    "baseline_sd",
    "followup_sd",
    "mdc",
    "direction",
]


def minimum_detectable_change(sd_baseline, sd_followup, floor: float) -> np.ndarray:
    """``max(floor, 1.96 * sqrt(sd_b**2 + sd_f**2))`` elementwise.

    >>> minimum_detectable_change([0.0, 3.0], [0.0, 4.0], 5.0).tolist()
    [5.0, 9.8]
    """
    sd_b, sd_f = np.asarray(sd_baseline, float), np.asarray(sd_followup, float)
    return np.maximum(floor, Z_95 * np.sqrt(sd_b**2 + sd_f**2))


def direction(change, mdc) -> list[str]:
    """``increase`` / ``decrease`` where ``|change| >= mdc``, else ``no detectable change``.

    >>> direction([10, -5, 4.9], [5, 5, 5])
    ['increase', 'decrease', 'no detectable change']
    """
    change, mdc = np.asarray(change, float), np.asarray(mdc, float)
    # a tolerance far below the 1 % step keeps float noise (e.g. 0.1 + 0.2) from deciding
    detected = np.abs(change) >= mdc - 1e-9
    return [
        INCREASE if d and c > 0 else DECREASE if d else NO_CHANGE
        for c, d in zip(change, detected, strict=True)
    ]


def compare_results(baseline: Path, followup: Path) -> tuple[pd.DataFrame, dict]:
    """The per-level table (:data:`TABLE_COLUMNS`, 15 rows) and the global summary of two result folders."""
    needed = {"columns": SD_COLUMNS, "keys": ("global_extent_percent", "global_extent_sd", "goh_stage")}
    base, base_summary = read_result(baseline, **needed)
    follow, follow_summary = read_result(followup, **needed)
    rows = []
    for (_, b), (_, f) in zip(base.iterrows(), follow.iterrows(), strict=True):
        for p in PATTERNS:
            rows.append(
                {
                    "level": int(b["level"]),
                    "pattern": p,
                    "baseline": float(b[p]),
                    "followup": float(f[p]),
                    "change": float(f[p]) - float(b[p]),
                    "baseline_sd": float(b[f"{p}_sd"]),
                    "followup_sd": float(f[f"{p}_sd"]),
                }
            )
    table = pd.DataFrame(rows)
    table["mdc"] = minimum_detectable_change(table["baseline_sd"], table["followup_sd"], LEVEL_FLOOR)
    table["direction"] = direction(table["change"], table["mdc"])
    e_b, e_f = float(base_summary["global_extent_percent"]), float(follow_summary["global_extent_percent"])
    sd_b, sd_f = float(base_summary["global_extent_sd"]), float(follow_summary["global_extent_sd"])
    mdc = float(minimum_detectable_change(sd_b, sd_f, EXTENT_FLOOR))
    change = e_f - e_b
    stages = (str(base_summary["goh_stage"]), str(follow_summary["goh_stage"]))

    def side(folder: Path, summary: dict, extent: float, sd: float) -> dict:
        return {
            "result": str(folder),
            "patient": summary.get("patient"),
            "scan": scan_of(summary),
            "global_extent_percent": extent,
            "global_extent_sd": sd,
            "fvc_percent": summary.get("fvc_percent"),
            "goh_stage": summary["goh_stage"],
        }

    summary = {
        "baseline": side(Path(baseline), base_summary, e_b, sd_b),
        "followup": side(Path(followup), follow_summary, e_f, sd_f),
        "global_extent_change": round(change, 6),
        "global_extent_mdc": round(mdc, 6),
        "global_extent_direction": direction([change], [mdc])[0],
        "stage_baseline": stages[0],
        "stage_followup": stages[1],
        "stage_changed": stages[0] != stages[1],
        "mdc_formula": MDC_FORMULA,
        "mdc_note": (
            "the fold models' spread on each scan; it leaves out what differs between two acquisitions"
        ),
        "levels": table[TABLE_COLUMNS].to_dict("records"),
    }
    return table[TABLE_COLUMNS], summary
