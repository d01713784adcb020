"""The embedded default cohort: synthetic chest CT with known Goh levels, scores, observers and patches.

``generate_patient`` builds one patient in memory; ``write_patient`` writes its scan and
patches and returns its part (label row, observer rows, patch rows); ``write_tables``
collects parts into a cohort folder's tables. Everything is a pure function of the seed,
the patient index and the size preset.
"""

import importlib

# public name -> module; imported on first use (PEP 562), so that importing one submodule, as the
# workflow does with gohscore.phantom.sizes while it parses, does not load the renderer
_EXPORTS = {
    "SIZES": "sizes",
    "PhantomParams": "sizes",
    "patient_id": "sizes",
    "generate_patient": "cohort",
    "write_patient": "cohort",
    "write_tables": "cohort",
    "observer_patients": "observers",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
