"""The embedded default cohort: synthetic chest CT with known Goh levels, scores, observers and patches.

``generate_patient`` builds one patient in memory; ``write_patient`` writes its scan and
patches and returns its part (label row, observer rows, patch rows); ``write_tables``
collects parts into a cohort folder's tables. Everything is a pure function of the seed,
the patient index and the size preset.
"""

from gohscore.phantom.cohort import generate_patient, write_patient, write_tables
from gohscore.phantom.labels import round_to_5
from gohscore.phantom.observers import observer_patients
from gohscore.phantom.sizes import SIZES, parse_params, patient_id

__all__ = [
    "SIZES",
    "generate_patient",
    "observer_patients",
    "parse_params",
    "patient_id",
    "round_to_5",
    "write_patient",
    "write_tables",
]
