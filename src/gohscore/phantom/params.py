"""Reading the ``--params-json`` option shared by the phantom commands."""

from __future__ import annotations

from gohscore.params import parse_params_json
from gohscore.phantom.sizes import PatientParams, PhantomParams, parse_params, parse_patient_params


def params_from_json(text: str) -> PhantomParams:
    """Parse and validate the JSON text of the config's ``phantom`` section."""
    return parse_params(parse_params_json(text, "phantom"))


def patient_params_from_json(text: str) -> PatientParams:
    """Parse and validate the keys of the ``phantom`` section that one patient depends on."""
    return parse_patient_params(parse_params_json(text, "phantom"))
