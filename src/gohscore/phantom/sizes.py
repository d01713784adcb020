"""Size presets (paper, demo, tiny) and the typed ``phantom:`` config section."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from gohscore.errors import GohscoreError
from gohscore.settings import Section


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


@dataclass(frozen=True)
class PatientParams(Section):
    """What one synthetic patient depends on (besides the seed and its index): keys of ``phantom:``.

    The workflow passes only these keys to each patient's job, so that growing the cohort or
    choosing more observer patients does not regenerate the patients already written.
    """

    SECTION: ClassVar[str] = "phantom"
    size: str
    dicom_every: int
    patches_per_pattern: int

    @property
    def preset(self) -> SizePreset:
        """The size preset named by ``size``."""
        return SIZES[self.size]


@dataclass(frozen=True)
class PhantomParams(PatientParams):
    """The whole ``phantom:`` config section: the patient keys plus the cohort's size."""

    n_patients: int
    n_observer_patients: int

    def check(self, source: str) -> None:
        """Observer patients are drawn from the cohort, so there cannot be more of them."""
        if self.n_observer_patients > self.n_patients:
            raise GohscoreError(
                f"{source}: config key 'phantom.n_observer_patients' ({self.n_observer_patients}) "
                f"exceeds 'phantom.n_patients' ({self.n_patients}); lower it"
            )


def patient_id(index: int) -> str:
    """Patient id of a 1-based index, e.g. 7 -> 'P0007'."""
    return f"P{index:04d}"


def patient_index(patient: str) -> int:
    """1-based index parsed from a patient id, e.g. 'P0007' -> 7."""
    if len(patient) != 5 or patient[0] != "P" or not patient[1:].isdigit() or int(patient[1:]) < 1:
        raise GohscoreError(f"phantom patient id {patient!r} is not of the form P0001..P9999")
    return int(patient[1:])
