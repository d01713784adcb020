"""The embedded default cohort: synthetic chest CT with known Goh levels, scores, observers and patches.

``generate_patient`` builds one patient in memory; ``write_patient`` writes its scan and
patches and returns its part (label row, observer rows, patch rows); ``write_tables``
collects parts into a cohort folder's tables. Everything is a pure function of the seed,
the patient index and the size preset.
"""

from gohscore.phantom.cohort import generate_patient, write_patient, write_tables
from gohscore.phantom.observers import observer_patients
from gohscore.phantom.sizes import SIZES, PhantomParams, patient_id

__all__ = [
    "SIZES",
    "PhantomParams",
    "generate_patient",
    "observer_patients",
    "patient_id",
    "write_patient",
    "write_tables",
]
