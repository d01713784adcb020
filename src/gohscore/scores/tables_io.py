"""Reading the score commands' inputs: parquet tables and the ``--params-json`` config section."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from gohscore.errors import GohscoreError
from gohscore.params import parse_params_json


def read_parquet(path: Path, what: str, columns: Sequence[str] = ()) -> pd.DataFrame:
    """A parquet table with ``columns`` present and ``patient`` as string; GohscoreError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise GohscoreError(f"{path}: {what} not found; check the path or run the step that writes it")
    try:
        frame = pd.read_parquet(path)
    except Exception as err:  # pyarrow raises several types for a damaged file
        raise GohscoreError(f"{path}: cannot read {what} as parquet ({err}); regenerate it") from err
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise GohscoreError(f"{path}: {what} lacks columns {missing}; regenerate it")
    if "patient" in frame.columns:
        frame["patient"] = frame["patient"].astype(str)
    return frame


def parse_params(text: str, required: Sequence[str] = ()) -> dict:
    """The 'scores:' config section passed as JSON text (or a path to a JSON file), with ``required`` keys."""
    return parse_params_json(text, "scores", required=required)
