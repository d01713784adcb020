"""Goh staging of SSc interstitial lung disease from the five level scores (Goh et al. 2008).

Global extent is the mean TOT (%) of the five levels. The staging system:

- extent ``< 10``: **limited**; extent ``> 30``: **extensive**;
- ``10 <= extent <= 30`` (both ends included): indeterminate, resolved by FVC % predicted:
  ``fvc >= 70`` limited, ``fvc < 70`` extensive; without FVC the stage stays ``indeterminate``.

The simple variant uses one cut-off: extent ``> 20`` extensive, ``<= 20`` limited (20 itself is
limited, matching the strict ``>`` of the full system's 30 % bound).

Extents are means of multiples of 5, so the boundaries 10, 20 and 30 occur often; the mean is
rounded to 6 decimals so that float noise cannot move a patient across a boundary.

>>> goh_stage(global_extent([10, 10, 10, 10, 10]), fvc_percent=70)
'limited'
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from gohscore.goh import LEVELS, N_LEVELS, score_column

LIMITED = "limited"
EXTENSIVE = "extensive"
INDETERMINATE = "indeterminate"
UNKNOWN = "unknown"

LOW_CUTOFF = 10.0
HIGH_CUTOFF = 30.0
FVC_CUTOFF = 70.0
SIMPLE_CUTOFF = 20.0


def _missing(x: float | None) -> bool:
    """True for None and NaN."""
    return x is None or (isinstance(x, float) and math.isnan(x)) or bool(pd.isna(x))


def global_extent(tot_by_level: Sequence[float]) -> float:
    """Mean TOT (%) of the five levels; ``nan`` unless exactly five finite values are given."""
    values = [float(v) for v in tot_by_level]
    if len(values) != N_LEVELS or any(math.isnan(v) for v in values):
        return float("nan")
    return round(sum(values) / N_LEVELS, 6)


def goh_stage(extent: float, fvc_percent: float | None = None) -> str:
    """Stage of the full Goh system: limited, extensive, or indeterminate (10–30 % without FVC)."""
    if _missing(extent):
        return UNKNOWN
    if extent < LOW_CUTOFF:
        return LIMITED
    if extent > HIGH_CUTOFF:
        return EXTENSIVE
    if _missing(fvc_percent):
        return INDETERMINATE
    return LIMITED if float(fvc_percent) >= FVC_CUTOFF else EXTENSIVE


def simple_stage(extent: float, cutoff: float = SIMPLE_CUTOFF) -> str:
    """Stage of the one-threshold variant: extensive if extent > cutoff (20 %), else limited."""
    if _missing(extent):
        return UNKNOWN
    return EXTENSIVE if extent > cutoff else LIMITED


def stage_frame(tot: pd.DataFrame, fvc_percent: pd.Series | None = None) -> pd.DataFrame:
    """Extent and both stages per row of a wide frame with columns ``L1_TOT`` … ``L5_TOT``.

    ``fvc_percent`` is aligned on the index (NaN where unknown). Returns columns
    ``extent, stage, stage_simple`` with the same index.
    """
    columns = [score_column(k, "TOT") for k in LEVELS]
    missing = [c for c in columns if c not in tot.columns]
    if missing:
        raise KeyError(f"stage_frame needs columns {missing}")
    extent = pd.Series(
        [global_extent(row) for row in tot[columns].to_numpy(float)], index=tot.index, dtype=float
    )
    fvc = fvc_percent.reindex(tot.index) if fvc_percent is not None else pd.Series(float("nan"), tot.index)
    return pd.DataFrame(
        {
            "extent": extent,
            "stage": [goh_stage(e, f) for e, f in zip(extent, fvc, strict=True)],
            "stage_simple": [simple_stage(e) for e in extent],
        },
        index=tot.index,
    )
