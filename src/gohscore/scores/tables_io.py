"""The score commands' ``--params-json`` config section; tables are read with ``gohscore.files.read_parquet``."""

from __future__ import annotations

from collections.abc import Sequence

from gohscore.params import parse_params_json


def parse_params(text: str, required: Sequence[str] = ()) -> dict:
    """The 'scores:' config section passed as JSON text (or a path to a JSON file), with ``required`` keys."""
    return parse_params_json(text, "scores", required=required)
