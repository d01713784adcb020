"""DICOM series: find the series of a folder tree, choose the axial CT one, check its slices, read it."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
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
#: largest difference of direction cosines between slices of one series (about 0.006 degrees)
ORIENTATION_TOLERANCE = 1e-4
#: largest relative difference of pixel spacing between slices of one series
PIXEL_SPACING_TOLERANCE = 1e-4
#: slices tilted further than this from the axial plane are named as a tilt (not as "no axial series")
MAX_TILT_DEG = 45.0

TAG_SERIES_UID = "0020|000e"
TAG_MODALITY = "0008|0060"
TAG_DESCRIPTION = "0008|103e"
TAG_ORIENTATION = "0020|0037"
TAG_POSITION = "0020|0032"
TAG_TILT = "0018|1120"
TAG_FRAMES = "0028|0008"
TAG_INTERCEPT = "0028|1052"
TAG_SLOPE = "0028|1053"
TAG_INSTANCE = "0020|0013"
TAG_PATIENT = "0010|0020"
TAG_STUDY_DATE = "0008|0020"
TAG_STUDY_UID = "0020|000d"
#: file names never read as images (the DICOMDIR index of a DICOM CD/DVD)
INDEX_NAMES = {"DICOMDIR"}

Shown = Callable[[str], str]


def _same(text: str) -> str:
    """Show a path as it is."""
    return text


@dataclass
class Slice:
    """Header facts of one DICOM file."""

    file: str
    uid: str
    modality: str = ""
    description: str = ""
    orientation: tuple[float, ...] = ()
    position: tuple[float, float, float] | None = None
    tilt_deg: float = 0.0
    size: tuple[int, int] = (0, 0)
    pixel_spacing: tuple[float, float] = (0.0, 0.0)
    frames: int = 1
    rescale: tuple[str, str] = ("", "")
    instance: int = 0
    patient: str = ""
    study_date: str = ""
    study_uid: str = ""


@dataclass
class Series:
    """One DICOM series found in a folder tree (header facts only; files sorted along the slice normal)."""

    uid: str
    files: list[str]
    modality: str = ""
    description: str = ""
    orientation: tuple[float, ...] = ()
    positions: list[tuple[float, float, float]] = field(default_factory=list)
    tilt_deg: float = 0.0
    slices: list[Slice] = field(default_factory=list)

    @property
    def normal(self) -> np.ndarray:
        """Unit slice normal (row x column direction cosines)."""
        return _normal(self.orientation)

    @property
    def is_axial(self) -> bool:
        """True when the slice normal is within AXIAL_TOLERANCE_DEG of world z."""
        return _is_axial(self.orientation)

    @property
    def tilt_from_axial_deg(self) -> float:
        """Angle (degrees) between the slice normal and world z (90 when the orientation is missing)."""
        if len(self.orientation) != 6:
            return 90.0
        return float(np.degrees(np.arccos(min(1.0, abs(float(self.normal[2]))))))

    @property
    def frames(self) -> int:
        """Most frames in one file of the series (more than 1: a multi-frame, enhanced, file)."""
        return max((s.frames for s in self.slices), default=1)

    @property
    def rescale_varies(self) -> bool:
        """True when the slices carry different RescaleSlope/RescaleIntercept."""
        return len({s.rescale for s in self.slices}) > 1

    def describe(self) -> str:
        """Short human description: uid, modality, slices, description (and study date when known)."""
        date = self.slices[0].study_date if self.slices else ""
        study = f", study {date}" if date else ""
        return (
            f"{self.uid} ({self.modality or '?'}, {len(self.files)} slices, "
            f"{self.description or 'no description'!r}{study})"
        )


def _normal(orientation: tuple[float, ...]) -> np.ndarray:
    """Unit normal of a DICOM ImageOrientationPatient (row x column); z when missing."""
    if len(orientation) != 6:
        return np.array([0.0, 0.0, 1.0])
    n = np.cross(np.asarray(orientation[:3], float), np.asarray(orientation[3:6], float))
    return n / max(np.linalg.norm(n), 1e-12)


def _is_axial(orientation: tuple[float, ...]) -> bool:
    """True when the slices of ``orientation`` are within AXIAL_TOLERANCE_DEG of axial."""
    return len(orientation) == 6 and abs(_normal(orientation)[2]) >= np.cos(np.deg2rad(AXIAL_TOLERANCE_DEG))


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


def dicom_files(folder: str | Path) -> list[str]:
    """The DICOM image files anywhere under ``folder`` (hidden files and folders skipped), sorted.

    GDCM decides per folder which files are DICOM images (it skips reports, presentation
    states, the DICOMDIR index and non-DICOM files, as the series reader always did); the
    files are grouped into series afterwards by their SeriesInstanceUID, across folders.
    """
    found: set[str] = set()
    warnings = sitk.ProcessObject.GetGlobalWarningDisplay()
    sitk.ProcessObject.SetGlobalWarningDisplay(False)  # GDCM warns for every folder without a series
    try:
        for here, dirs, names in os.walk(folder):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            if not any(not n.startswith(".") and n.upper() not in INDEX_NAMES for n in names):
                continue
            try:
                uids = sitk.ImageSeriesReader.GetGDCMSeriesIDs(here, True)
            except RuntimeError:
                uids = ()
            for uid in uids:
                for file in sitk.ImageSeriesReader.GetGDCMSeriesFileNames(here, uid, True):
                    name = os.path.basename(file)
                    if not name.startswith(".") and name.upper() not in INDEX_NAMES:
                        found.add(file)
    finally:
        sitk.ProcessObject.SetGlobalWarningDisplay(warnings)
    return sorted(found)


def read_slice(file: str, shown: Shown = _same) -> Slice:
    """Header facts of one DICOM file."""
    try:
        reader = _read_header(file)
    except RuntimeError as err:
        raise GohscoreError(
            f"cannot read DICOM file {shown(file)}: {str(err).strip().splitlines()[-1]}; remove or re-export it"
        ) from None
    item = Slice(file=file, uid=_tag(reader, TAG_SERIES_UID))
    item.modality = _tag(reader, TAG_MODALITY).upper()
    item.description = _tag(reader, TAG_DESCRIPTION)
    orientation = _tag(reader, TAG_ORIENTATION)
    item.orientation = _floats(orientation) if orientation else ()
    tilt = _tag(reader, TAG_TILT)
    item.tilt_deg = float(tilt) if tilt else 0.0
    position = _tag(reader, TAG_POSITION)
    if position:
        p = _floats(position)
        item.position = (p[0], p[1], p[2])
    size = reader.GetSize()
    item.size = (int(size[0]), int(size[1]))
    item.pixel_spacing = (float(reader.GetSpacing()[0]), float(reader.GetSpacing()[1]))
    frames = _tag(reader, TAG_FRAMES)
    item.frames = max(int(float(frames)) if frames else 1, int(size[2]) if len(size) > 2 else 1)
    item.rescale = (_tag(reader, TAG_SLOPE), _tag(reader, TAG_INTERCEPT))
    instance = _tag(reader, TAG_INSTANCE)
    item.instance = int(float(instance)) if instance else 0
    item.patient = _tag(reader, TAG_PATIENT)
    item.study_date = _tag(reader, TAG_STUDY_DATE)
    item.study_uid = _tag(reader, TAG_STUDY_UID)
    return item


def list_series(folder: str | Path, shown: Shown = _same) -> list[Series]:
    """List the DICOM series anywhere under ``folder`` with their headers (every file's header is read)."""
    groups: dict[str, list[Slice]] = {}
    for file in dicom_files(folder):
        item = read_slice(file, shown)
        groups.setdefault(item.uid, []).append(item)
    series = []
    for uid, slices in groups.items():
        first = slices[0]
        normal = _normal(first.orientation)
        if all(s.position is not None for s in slices):
            slices = sorted(slices, key=lambda s: (float(np.dot(s.position, normal)), s.instance, s.file))
        else:
            slices = sorted(slices, key=lambda s: (s.instance, s.file))
        first = slices[0]
        series.append(
            Series(
                uid=uid,
                files=[s.file for s in slices],
                modality=first.modality,
                description=first.description,
                orientation=first.orientation,
                positions=[s.position for s in slices if s.position is not None],
                tilt_deg=first.tilt_deg,
                slices=slices,
            )
        )
    return series


def _candidate(series: Series) -> bool:
    """An axial (some slice axial), single-frame CT series with more than one slice."""
    return (
        series.modality in {"CT", ""}
        and len(series.files) > 1
        and series.frames == 1
        and any(_is_axial(s.orientation) for s in series.slices)
    )


def choose_series(folder: str | Path, shown: Shown = _same) -> Series:
    """Pick the axial CT series with the most slices under ``folder``; log the choice when there are several."""
    series = list_series(folder, shown)
    where = shown(str(folder))
    if not series:
        raise GohscoreError(
            f"no DICOM series found in {where}; give a folder (or zip) holding the CT series' DICOM files"
        )
    patients = sorted({x.patient for s in series for x in s.slices} - {""})
    if len(patients) > 1:
        shown_ids = ", ".join(repr(p) for p in patients[:4]) + (", ..." if len(patients) > 4 else "")
        raise GohscoreError(
            f"DICOM files in {where} belong to {len(patients)} patients (PatientID {shown_ids}); "
            "give one patient's export per scan entry"
        )
    candidates = [s for s in series if _candidate(s)]
    if not candidates:
        ct = [s for s in series if s.modality in {"CT", ""}]
        multi = [s for s in ct if s.frames > 1]
        if multi:
            s = max(multi, key=lambda s: s.frames)
            file = next(x.file for x in s.slices if x.frames > 1)
            raise GohscoreError(
                f"DICOM file {shown(file)} is a multi-frame (enhanced) CT with {s.frames} frames, which gohscore "
                "does not read (its per-frame positions cannot be checked); export the CT as a classic series "
                "(one file per slice)"
            )
        tilted = [s for s in ct if len(s.files) > 1 and s.tilt_from_axial_deg <= MAX_TILT_DEG]
        if tilted:
            s = max(tilted, key=lambda s: (len(s.files), s.uid))
            raise GohscoreError(tilt_message(s, where))
        found = "; ".join(s.describe() for s in series)
        raise GohscoreError(
            f"no axial CT series with more than one slice in {where} (found: {found}); add the axial CT series"
        )
    best = max(candidates, key=lambda s: (len(s.files), s.uid))
    if len(series) > 1:
        others = "; ".join(s.describe() for s in series if s is not best)
        log.warning("%s holds %d series: using %s; ignoring %s", where, len(series), best.describe(), others)
    return best


def tilt_message(series: Series, where: str) -> str:
    """The refusal of a gantry-tilted series, naming the tilt angle in degrees."""
    angle = series.tilt_from_axial_deg
    tag = f"GantryDetectorTilt (0018,1120) {series.tilt_deg:g} degrees"
    if angle < 0.005:  # axial slices, the tilt only in the tag
        what = f"has a gantry tilt of {series.tilt_deg:g} degrees ({tag})"
    else:
        what = f"is tilted by {angle:.2f} degrees from axial (gantry tilt{', ' + tag if series.tilt_deg else ''})"
    return f"DICOM series {series.uid} in {where} {what}; export a tilt-corrected (resampled axial) series"


def check_series_slices(series: Series, folder: str | Path, shown: Shown = _same) -> None:
    """Reject a series whose files differ in modality, orientation, pixel spacing or rows/columns."""
    first = series.slices[0]
    where = shown(str(folder))
    for s in series.slices[1:]:
        problem = ""
        if s.modality != first.modality:
            problem = f"modality {s.modality or 'none'} (first file: {first.modality or 'none'})"
        elif len(s.orientation) != len(first.orientation) or (
            s.orientation
            and np.max(np.abs(np.subtract(s.orientation, first.orientation))) > ORIENTATION_TOLERANCE
        ):
            problem = (
                f"ImageOrientationPatient {_cosines(s.orientation)} (first file: {_cosines(first.orientation)}): "
                "the series mixes orientations"
            )
        elif s.size != first.size:
            problem = (
                f"{s.size[1]} rows x {s.size[0]} columns (first file: {first.size[1]} x {first.size[0]})"
            )
        elif not np.allclose(s.pixel_spacing, first.pixel_spacing, rtol=PIXEL_SPACING_TOLERANCE, atol=0):
            problem = f"pixel spacing {_mm(s.pixel_spacing)} mm (first file: {_mm(first.pixel_spacing)} mm)"
        if problem:
            raise GohscoreError(
                f"DICOM series {series.uid} in {where}: file {shown(s.file)} has {problem}; "
                "export each reconstruction as its own series (or remove the odd files)"
            )


def _cosines(values: tuple[float, ...]) -> str:
    """Direction cosines, short."""
    return "[" + ", ".join(f"{v:.3g}" for v in values) + "]" if values else "none"


def _mm(values: tuple[float, ...]) -> str:
    """Millimetres, short."""
    return "x".join(f"{v:g}" for v in values)


def check_series_geometry(series: Series, folder: str | Path, shown: Shown = _same) -> None:
    """Reject inconsistent slices, gantry tilt, duplicate slices and irregular spacing (one-line message)."""
    from gohscore.io import AXIAL_TOLERANCE

    check_series_slices(series, folder, shown)
    where = shown(str(folder))
    if abs(series.tilt_deg) > TILT_TOLERANCE_DEG or np.max(np.abs(series.normal[:2])) > AXIAL_TOLERANCE:
        raise GohscoreError(tilt_message(series, where))
    if len(series.positions) != len(series.files):
        raise GohscoreError(
            f"{len(series.files) - len(series.positions)} files of the DICOM series in {where} lack "
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
            f"DICOM series in {where} has two slices at the same position ({along[k]:.2f} mm along the normal); "
            "remove duplicated files or export each reconstruction as its own series"
        )
    median = float(np.median(steps))
    bad = np.flatnonzero(np.abs(steps - median) > SPACING_TOLERANCE * median)
    if bad.size:
        k = int(bad[0])
        raise GohscoreError(
            f"DICOM series in {where} has irregular slice spacing: {steps[k]:.3f} mm between slices {k} and {k + 1} "
            f"(usual {median:.3f} mm); a slice is missing or reconstructions are mixed, re-export a complete series"
        )
    drift = pos[-1] - pos[0]
    length = float(along[-1] - along[0])
    shear = float(np.linalg.norm(drift - length * normal))
    if shear > 0.05 and np.degrees(np.arctan2(shear, length)) > TILT_TOLERANCE_DEG:
        angle = np.degrees(np.arctan2(shear, length))
        raise GohscoreError(
            f"DICOM series in {where} is sheared by {angle:.2f} degrees (gantry tilt): slice positions do not "
            "follow the slice normal; export a tilt-corrected series"
        )


def read_series(folder: str | Path, shown: Shown = _same) -> tuple[sitk.Image, Series]:
    """Read the chosen series under ``folder`` (rescale slope/intercept applied per slice, sorted by position).

    ITK applies each file's own RescaleSlope/Intercept but gives the whole volume the pixel
    type of the first file, so a later slice with a fractional slope would be truncated;
    such a series is read as float32 (checked against pydicom in the tests).
    """
    series = choose_series(folder, shown)
    check_series_geometry(series, folder, shown)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(series.files)
    if series.rescale_varies:
        reader.SetOutputPixelType(sitk.sitkFloat32)
    try:
        image = reader.Execute()
    except RuntimeError as err:
        raise GohscoreError(
            f"cannot read the DICOM series in {shown(str(folder))}: {str(err).strip().splitlines()[-1]}; "
            "re-export the series"
        ) from None
    return image, series
