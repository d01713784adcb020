"""Reading the ``--params-json`` option shared by the phantom commands."""

from __future__ import annotations

from gohscore.params import parse_params_json
from gohscore.phantom.sizes import PhantomParams, parse_params


def params_from_json(text: str) -> PhantomParams:
    """Parse and validate the JSON text of the config's ``phantom`` section."""
    return parse_params(parse_params_json(text, "phantom"))
