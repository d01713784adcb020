"""Simulated observer re-reads (2 observers x 2 reads) of the held-out patients, for Table 3."""

from __future__ import annotations

import numpy as np

from gohscore.goh import LEVELS, PATTERNS, round_to_5, score_column
from gohscore.phantom.labels import make_consistent
from gohscore.phantom.sizes import patient_id

# (observer, read) -> (bias in % for diseased levels, noise SD in %): Obs2 is closer to the
# consensus than Obs1 and the second read closer than the first (paper Table 3: MAE ~5-7 % on TOT)
READERS = {
    ("Obs1", 1): (4.0, 13.5),
    ("Obs1", 2): (3.0, 12.5),
    ("Obs2", 1): (-2.0, 12.5),
    ("Obs2", 2): (-1.0, 11.5),
}


def observer_patients(seed: int, n_patients: int, k: int) -> list[str]:
    """The ``k`` patients (sorted ids) that the observers re-read; deterministic in the seed."""
    if k <= 0:
        return []
    rng = np.random.default_rng([seed, 7001, n_patients])
    chosen = rng.choice(np.arange(1, n_patients + 1), size=min(k, n_patients), replace=False)
    return [patient_id(int(i)) for i in sorted(chosen)]


def observer_rows(label: dict, seed: int, index: int) -> list[dict]:
    """Four re-read rows of one patient's consensus ``label`` row, each rounded half up to 5 and consistent."""
    rows = []
    for r_i, ((observer, read), (bias, sd)) in enumerate(READERS.items()):
        rng = np.random.default_rng([seed, index, 5, r_i])
        row: dict = {"patient": label["patient"], "observer": observer, "read": read}
        for level in LEVELS:
            scores = []
            for pattern, scale in (("TOT", 1.0), ("GG", 0.8), ("RET", 0.7)):
                ref = label[score_column(level, pattern)]
                # readers rarely call disease where there is none: less noise around 0 %
                weight = 1.0 if ref > 0 else 0.6
                value = ref + weight * (bias * scale + rng.normal(0, sd * scale))
                scores.append(int(round_to_5(max(value, 0.0))))
            row.update(
                {score_column(level, p): v for p, v in zip(PATTERNS, make_consistent(*scores), strict=True)}
            )
        rows.append(row)
    return rows
