"""Reading back what ``gohscore predict`` wrote for one scan: ``levels.csv`` and ``summary.json``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from gohscore.errors import GohscoreError
from gohscore.files import json_object
from gohscore.goh import LEVELS, PATTERNS

if TYPE_CHECKING:
    import pandas as pd

LEVELS_NAME = "levels.csv"
SUMMARY_NAME = "summary.json"
FIX = "score the scan again with this gohscore version (gohscore predict)"


def is_result(path: Path) -> bool:
    """True for a folder holding a scan's ``levels.csv`` and ``summary.json``."""
    path = Path(path)
    return path.is_dir() and (path / LEVELS_NAME).is_file() and (path / SUMMARY_NAME).is_file()


def read_result(
    folder: Path, columns: Sequence[str] = (), keys: Sequence[str] = ()
) -> tuple[pd.DataFrame, dict]:
    """The levels table (one row per level, sorted) and the summary, with ``columns`` and ``keys`` present.

    ``level`` and the three score columns are always required; anything missing is a user error
    naming the file.
    """
    import pandas as pd

    folder = Path(folder)
    levels, summary = folder / LEVELS_NAME, folder / SUMMARY_NAME
    for file in (levels, summary):
        if not file.is_file():
            raise GohscoreError(f"{file} not found; give a folder written by gohscore predict")
    table = pd.read_csv(levels)
    missing = [c for c in dict.fromkeys(("level", *PATTERNS, *columns)) if c not in table.columns]
    if missing:
        raise GohscoreError(f"{levels} lacks columns {missing}; {FIX}")
    if sorted(table["level"].tolist()) != list(LEVELS):
        raise GohscoreError(f"{levels}: needs one row per level 1-5; {FIX}")
    body = json_object(summary.read_text(encoding="utf-8"), str(summary), FIX)
    absent = [k for k in keys if k not in body]
    if absent:
        raise GohscoreError(f"{summary} lacks {absent}; {FIX}")
    return table.sort_values("level").reset_index(drop=True), body


def scan_of(summary: dict) -> str | None:
    """The scored scan as a summary names it (``source.path``, else ``scan``)."""
    return (summary.get("source") or {}).get("path") or summary.get("scan")
