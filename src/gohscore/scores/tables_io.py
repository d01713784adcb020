"""Reading the score commands' inputs: parquet tables and the ``--params-json`` config section."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from gohscore.errors import GohscoreError


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
    """The config section passed as JSON text (or as a path to a JSON file), with ``required`` keys."""
    try:
        params = json.loads(text)
    except json.JSONDecodeError as err:
        path = Path(text)
        if not path.is_file():
            raise GohscoreError(
                f"--params-json: not valid JSON ({err}); pass the 'scores:' config section"
            ) from err
        params = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(params, dict):
        raise GohscoreError("--params-json: expected a JSON object (the 'scores:' config section)")
    missing = [k for k in required if k not in params]
    if missing:
        raise GohscoreError(f"--params-json: keys {missing} missing; pass the whole 'scores:' config section")
    return params
