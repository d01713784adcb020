"""DICOM series: list the series of a folder, choose the axial CT one, check slice geometry, read it."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from gohscore.errors import GohscoreError

log = logging.getLogger("gohscore")

#: largest angle (degrees) between the slice normal and world z for a series to count as axial
AXIAL_TOLERANCE_DEG = 1.0
#: largest allowed gantry tilt / shear between slice positions and the slice normal (degrees)
TILT_TOLERANCE_DEG = 0.1
#: relative tolerance on slice-to-slice distances before the spacing counts as irregular
SPACING_TOLERANCE = 0.05

TAG_SERIES_UID = "0020|000e"
TAG_MODALITY = "0008|0060"
TAG_DESCRIPTION = "0008|103e"
TAG_ORIENTATION = "0020|0037"
TAG_POSITION = "0020|0032"
TAG_TILT = "0018|1120"


@dataclass
class Series:
    """One DICOM series found in a folder (header facts only)."""

    uid: str
    files: list[str]
    modality: str = ""
    description: str = ""
    orientation: tuple[float, ...] = ()
    positions: list[tuple[float, float, float]] = field(default_factory=list)
    tilt_deg: float = 0.0

    @property
    def normal(self) -> np.ndarray:
        """Unit slice normal (row x column direction cosines)."""
        row = np.asarray(self.orientation[:3], float)
        col = np.asarray(self.orientation[3:6], float)
        n = np.cross(row, col)
        return n / max(np.linalg.norm(n), 1e-12)

    @property
    def is_axial(self) -> bool:
        """True when the slice normal is within AXIAL_TOLERANCE_DEG of world z."""
        if len(self.orientation) != 6:
            return False
        return abs(self.normal[2]) >= np.cos(np.deg2rad(AXIAL_TOLERANCE_DEG))

    def describe(self) -> str:
        """Short human description: uid, modality, slices, description."""
        return f"{self.uid} ({self.modality or '?'}, {len(self.files)} slices, {self.description or 'no description'!r})"


def _floats(text: str) -> tuple[float, ...]:
    """Parse a DICOM multi-value decimal string ``a\\b\\c``."""
    return tuple(float(v) for v in text.replace(" ", "").split("\\") if v != "")


def _read_header(file: str) -> sitk.ImageFileReader:
    """Read the header (no pixels) of one DICOM file."""
    reader = sitk.ImageFileReader()
    reader.SetFileName(file)
    reader.LoadPrivateTagsOff()
    reader.ReadImageInformation()
    return reader


def _tag(reader: sitk.ImageFileReader, key: str) -> str:
    """A tag's value, or '' when absent."""
    return reader.GetMetaData(key).strip() if reader.HasMetaDataKey(key) else ""


def list_series(folder: str | Path) -> list[Series]:
    """List the DICOM series of ``folder`` with their headers (modality, orientation, positions)."""
    folder = str(folder)
    try:
        uids = sitk.ImageSeriesReader.GetGDCMSeriesIDs(folder, True)
    except RuntimeError:
        uids = ()
    series: list[Series] = []
    for uid in uids:
        files = list(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(folder, uid, True))
        if not files:
            continue
        item = Series(uid=uid, files=files)
        for i, file in enumerate(files):
            try:
                reader = _read_header(file)
            except RuntimeError as err:
                raise GohscoreError(
                    f"cannot read DICOM file {file}: {str(err).strip().splitlines()[-1]}; remove or re-export it"
                ) from None
            if i == 0:
                item.modality = _tag(reader, TAG_MODALITY).upper()
                item.description = _tag(reader, TAG_DESCRIPTION)
                orientation = _tag(reader, TAG_ORIENTATION)
                item.orientation = _floats(orientation) if orientation else ()
                tilt = _tag(reader, TAG_TILT)
                item.tilt_deg = float(tilt) if tilt else 0.0
            position = _tag(reader, TAG_POSITION)
            if position:
                p = _floats(position)
                item.positions.append((p[0], p[1], p[2]))
        series.append(item)
    return series


def choose_series(folder: str | Path) -> Series:
    """Pick the axial CT series with the most slices in ``folder``; log the choice when there are several."""
    series = list_series(folder)
    if not series:
        raise GohscoreError(
            f"no DICOM series found in {folder}; put the CT series' .dcm files directly in that folder"
        )
    candidates = [s for s in series if s.is_axial and s.modality in {"CT", ""} and len(s.files) > 1]
    if not candidates:
        found = "; ".join(s.describe() for s in series)
        raise GohscoreError(
            f"no axial CT series with more than one slice in {folder} (found: {found}); add the axial CT series"
        )
    best = max(candidates, key=lambda s: (len(s.files), s.uid))
    if len(series) > 1:
        others = "; ".join(s.describe() for s in series if s is not best)
        log.warning("%s holds %d series: using %s; ignoring %s", folder, len(series), best.describe(), others)
    return best


def check_series_geometry(series: Series, folder: str | Path) -> None:
    """Reject gantry tilt, duplicate slices and irregular slice spacing, with a one-line message."""
    if abs(series.tilt_deg) > TILT_TOLERANCE_DEG:
        raise GohscoreError(
            f"DICOM series in {folder} has a gantry tilt of {series.tilt_deg:g} degrees; "
            "export a tilt-corrected (resampled axial) series"
        )
    if len(series.positions) != len(series.files):
        raise GohscoreError(
            f"{len(series.files) - len(series.positions)} files of the DICOM series in {folder} lack "
            "ImagePositionPatient (0020,0032); re-export the series"
        )
    pos = np.asarray(series.positions, float)
    normal = series.normal
    along = pos @ normal
    order = np.argsort(along)
    pos, along = pos[order], along[order]
    steps = np.diff(along)
    if np.any(steps < 1e-3):
        k = int(np.argmin(steps))
        raise GohscoreError(
            f"DICOM series in {folder} has two slices at the same position ({along[k]:.2f} mm along the normal); "
            "remove duplicated files or split the reconstructions into separate folders"
        )
    median = float(np.median(steps))
    bad = np.flatnonzero(np.abs(steps - median) > SPACING_TOLERANCE * median)
    if bad.size:
        k = int(bad[0])
        raise GohscoreError(
            f"DICOM series in {folder} has irregular slice spacing: {steps[k]:.3f} mm between slices {k} and {k + 1} "
            f"(usual {median:.3f} mm); a slice is missing or reconstructions are mixed, re-export a complete series"
        )
    drift = pos[-1] - pos[0]
    length = float(along[-1] - along[0])
    shear = float(np.linalg.norm(drift - length * normal))
    if shear > 0.05 and np.degrees(np.arctan2(shear, length)) > TILT_TOLERANCE_DEG:
        angle = np.degrees(np.arctan2(shear, length))
        raise GohscoreError(
            f"DICOM series in {folder} is sheared by {angle:.2f} degrees (gantry tilt): slice positions do not "
            "follow the slice normal; export a tilt-corrected series"
        )


def read_series(folder: str | Path) -> tuple[sitk.Image, Series]:
    """Read the chosen series of ``folder`` (rescale slope/intercept applied, slices sorted by position)."""
    series = choose_series(folder)
    check_series_geometry(series, folder)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(series.files)
    try:
        image = reader.Execute()
    except RuntimeError as err:
        raise GohscoreError(
            f"cannot read the DICOM series in {folder}: {str(err).strip().splitlines()[-1]}; re-export the series"
        ) from None
    return image, series
