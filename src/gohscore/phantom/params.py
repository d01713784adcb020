"""Reading the ``--params-json`` option shared by the phantom commands."""

from __future__ import annotations

import json

from gohscore.errors import GohscoreError
from gohscore.phantom.sizes import PhantomParams, parse_params


def params_from_json(text: str) -> PhantomParams:
    """Parse and validate the JSON text of the config's ``phantom`` section."""
    try:
        section = json.loads(text)
    except json.JSONDecodeError as err:
        raise GohscoreError(
            f"--params-json is not valid JSON ({err}); pass the 'phantom' config section as JSON"
        ) from err
    return parse_params(section)
