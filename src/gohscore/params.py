"""The ``--params-json`` option: a config section handed to a command as JSON text or a JSON file."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path

from gohscore.errors import GohscoreError


def parse_params_json(
    text: str,
    section: str,
    *,
    required: Iterable[str] = (),
    allowed: Iterable[str] | None = None,
    defaults: Mapping | None = None,
) -> dict:
    """The ``section`` of the config as a dict, from JSON text or a path to a JSON file.

    Unknown keys (when ``allowed`` is given) and missing ``required`` keys are user errors that
    name the key and the config section; ``defaults`` fill keys that are absent.

    >>> parse_params_json('{"shape": 64}', "preprocess", defaults={"spacing_mm": 1.2})
    {'spacing_mm': 1.2, 'shape': 64}
    """
    source = "--params-json"
    if not text.lstrip().startswith("{") and Path(text).is_file():
        source, text = f"--params-json {text}", Path(text).read_text(encoding="utf-8")
    try:
        params = json.loads(text)
    except json.JSONDecodeError as err:
        raise GohscoreError(
            f"{source}: not valid JSON ({err.msg}); pass the '{section}:' config section as JSON"
        ) from None
    if not isinstance(params, dict):
        raise GohscoreError(f"{source}: expected a JSON object, the '{section}:' config section")
    if allowed is not None:
        unknown = sorted(set(params) - set(allowed))
        if unknown:
            raise GohscoreError(
                f"{source}: unknown key(s) {unknown} in the '{section}:' section; allowed: {', '.join(allowed)}"
            )
    missing = [k for k in required if k not in params]
    if missing:
        raise GohscoreError(f"{source}: key(s) {missing} missing; pass the whole '{section}:' config section")
    return {**(defaults or {}), **params}
