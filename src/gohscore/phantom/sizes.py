"""Size presets (paper, demo, tiny) and validation of the ``phantom`` config section."""

from __future__ import annotations

from dataclasses import dataclass

from gohscore.errors import GohscoreError


@dataclass(frozen=True)
class SizePreset:
    """Matrix and spacing ranges of one size: the same anatomy, sampled more or less finely."""

    name: str
    matrix: int
    pixel_scale: float  # multiplies the paper's 0.6-0.85 mm pixel spacing
    slice_spacings_mm: tuple[float, ...]
    slice_weights: tuple[float, ...]


SIZES: dict[str, SizePreset] = {
    "paper": SizePreset(
        "paper", 512, 1.0, (0.5, 0.625, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5), (1, 2, 1, 4, 3, 2, 2, 1)
    ),
    "demo": SizePreset("demo", 128, 4.0, (2.5, 3.0, 4.0, 5.0), (1, 1, 1, 1)),
    "tiny": SizePreset("tiny", 48, 512 / 48, (8.0, 9.0, 10.0), (1, 1, 1)),
}


PATIENT_KEYS = ("size", "dicom_every", "patches_per_pattern")
COHORT_KEYS = ("n_patients", "n_observer_patients")


@dataclass(frozen=True)
class PatientParams:
    """What one synthetic patient depends on (besides the seed and its index)."""

    size: str
    dicom_every: int
    patches_per_pattern: int

    @property
    def preset(self) -> SizePreset:
        """The size preset named by ``size``."""
        return SIZES[self.size]


@dataclass(frozen=True)
class PhantomParams(PatientParams):
    """The validated ``phantom:`` config section: the patient keys plus the cohort's size."""

    n_patients: int
    n_observer_patients: int


def _check_section(section: dict, required: tuple[str, ...]) -> None:
    """Validate the ``required`` keys of a ``phantom`` section (and any cohort key present)."""
    if not isinstance(section, dict):
        raise GohscoreError("config key 'phantom' must be a mapping; see config/config.yaml for an example")
    missing = [key for key in required if key not in section]
    if missing:
        raise GohscoreError(
            f"config section 'phantom' lacks {', '.join(missing)}; add them as in config/config.yaml"
        )
    unknown = sorted(set(section) - set(PATIENT_KEYS + COHORT_KEYS))
    if unknown:
        raise GohscoreError(f"config section 'phantom' has unknown key(s) {', '.join(unknown)}; remove them")
    if section["size"] not in SIZES:
        raise GohscoreError(
            f"config key 'phantom.size' is {section['size']!r}; use one of {', '.join(SIZES)}"
        )
    for key, low in (
        ("n_patients", 1),
        ("dicom_every", 0),
        ("n_observer_patients", 0),
        ("patches_per_pattern", 0),
    ):
        if key not in section:
            continue
        value = section[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise GohscoreError(f"config key 'phantom.{key}' is {value!r}; it must be an integer >= {low}")
    if set(COHORT_KEYS) <= set(section) and section["n_observer_patients"] > section["n_patients"]:
        raise GohscoreError("config key 'phantom.n_observer_patients' exceeds 'phantom.n_patients'; lower it")
    if section.get("n_patients", 0) > 9999:
        raise GohscoreError("config key 'phantom.n_patients' must be <= 9999 (ids are P0001..P9999)")


def parse_params(section: dict) -> PhantomParams:
    """Validate the config's whole ``phantom`` section (as a dict) and return it typed."""
    required = PATIENT_KEYS + COHORT_KEYS
    _check_section(section, required)
    return PhantomParams(**{key: section[key] for key in required})


def parse_patient_params(section: dict) -> PatientParams:
    """Validate the keys one patient depends on; the cohort keys may be present and are checked, not kept.

    The workflow passes only these keys to each patient's job, so that growing the cohort or
    choosing more observer patients does not regenerate the patients already written.
    """
    _check_section(section, PATIENT_KEYS)
    return PatientParams(**{key: section[key] for key in PATIENT_KEYS})


def patient_id(index: int) -> str:
    """Patient id of a 1-based index, e.g. 7 -> 'P0007'."""
    return f"P{index:04d}"


def patient_index(patient: str) -> int:
    """1-based index parsed from a patient id, e.g. 'P0007' -> 7."""
    if len(patient) != 5 or patient[0] != "P" or not patient[1:].isdigit() or int(patient[1:]) < 1:
        raise GohscoreError(f"phantom patient id {patient!r} is not of the form P0001..P9999")
    return int(patient[1:])
