"""Shared fixtures: small synthetic chest-like CT volumes (air outside, a body, two lungs) and cohorts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from gohscore.goh import LEVELS


def chest_array(
    size_xyz: tuple[int, int, int] = (48, 40, 36), lung_centre: float = 0.55, seed: int = 0
) -> np.ndarray:
    """A zyx int16 HU chest: air -1000, elliptic body 40 HU, two ellipsoid lungs -850 HU (z index 0 = bottom)."""
    nx, ny, nz = size_xyz
    z, y, x = np.mgrid[0:nz, 0:ny, 0:nx].astype(float)
    out = np.full((nz, ny, nx), -1000, np.int16)
    cx, cy = (nx - 1) / 2, (ny - 1) / 2
    out[((x - cx) / (0.42 * nx)) ** 2 + ((y - cy) / (0.38 * ny)) ** 2 < 1] = 40
    for side in (-1, 1):
        lung = ((x - cx - side * 0.18 * nx) / (0.13 * nx)) ** 2 + ((y - cy) / (0.25 * ny)) ** 2
        lung = lung + ((z - lung_centre * nz) / (0.3 * nz)) ** 2
        out[lung < 1] = -850
    noise = np.random.default_rng(seed).integers(-5, 6, size=out.shape)
    return (out + noise).astype(np.int16)


def chest_image(
    size_xyz: tuple[int, int, int] = (48, 40, 36),
    spacing_xyz: tuple[float, float, float] = (6.0, 6.0, 7.5),
    origin_xyz: tuple[float, float, float] = (-141.0, -117.0, -300.0),
    seed: int = 0,
) -> sitk.Image:
    """A chest-like SimpleITK image in LPS with identity direction."""
    image = sitk.GetImageFromArray(chest_array(size_xyz, seed=seed))
    image.SetSpacing(spacing_xyz)
    image.SetOrigin(origin_xyz)
    return image


def write_dicom_series(
    image: sitk.Image,
    folder: Path,
    series_uid: str = "1.2.826.0.1.3680043.2.1125.1",
    *,
    description: str = "axial",
    modality: str = "CT",
    z_override: list[float] | None = None,
    tilt_deg: float | None = None,
) -> list[Path]:
    """Write ``image`` (HU) as a DICOM series stored with RescaleIntercept -1024 (stored value = HU + 1024)."""
    folder.mkdir(parents=True, exist_ok=True)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    direction = image.GetDirection()
    orientation = [direction[0], direction[3], direction[6], direction[1], direction[4], direction[7]]
    image = sitk.Cast(image, sitk.sitkInt16)
    files = []
    for k in range(image.GetSize()[2]):
        piece = image[:, :, k]
        position = list(image.TransformIndexToPhysicalPoint((0, 0, k)))
        if z_override is not None:
            position[2] = z_override[k]
        tags = {
            "0008|0060": modality,
            "0008|103e": description,
            "0020|000d": series_uid.rsplit(".", 1)[0],
            "0020|000e": series_uid,
            "0008|0018": f"{series_uid}.{k + 1}",
            "0020|0013": str(k + 1),
            "0020|0037": "\\".join(f"{v:.6f}" for v in orientation),
            "0020|0032": "\\".join(f"{v:.4f}" for v in position),
            "0028|1052": "-1024",
            "0028|1053": "1",
        }
        if tilt_deg is not None:
            tags["0018|1120"] = str(tilt_deg)
        for tag, value in tags.items():
            piece.SetMetaData(tag, value)
        path = folder / f"IM{k:04d}.dcm"
        writer.SetFileName(str(path))
        writer.Execute(piece)
        files.append(path)
    return files


def tilted(image: sitk.Image, degrees: float) -> sitk.Image:
    """A copy of ``image`` whose slices are tilted by ``degrees`` about world x (as a gantry tilt does)."""
    c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
    out = sitk.Image(image)
    out.SetDirection((1, 0, 0, 0, c, -s, 0, s, c))
    return out


def set_rescale(files: list[Path], pairs: list[tuple[float, float]]) -> np.ndarray:
    """Re-store slice k of a written series with RescaleSlope/Intercept ``pairs[k % len(pairs)]``.

    Returns the true HU (zyx, file order): stored value * slope + intercept, exactly.
    """
    import pydicom

    truth = []
    for k, file in enumerate(files):
        ds = pydicom.dcmread(file)
        hu = ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        slope, intercept = pairs[k % len(pairs)]
        stored = np.round((hu - intercept) / slope) + (
            k % 2
        )  # odd stored values: fractional HU for slope 0.5
        signed = bool(stored.min() < 0)
        ds.PixelRepresentation = int(signed)
        ds.PixelData = stored.astype(np.int16 if signed else np.uint16).tobytes()
        ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
        ds.save_as(file)
        truth.append(stored * slope + intercept)
    return np.stack(truth)


def zip_tree(folder: Path, archive: Path, prefix: str = "") -> Path:
    """Zip every file under ``folder`` into ``archive`` (member names ``prefix`` + path relative to ``folder``)."""
    import zipfile

    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for file in sorted(p for p in folder.rglob("*") if p.is_file()):
            zf.write(file, prefix + file.relative_to(folder).as_posix())
    return archive


def write_dicomdir(files: list[Path], out_dir: Path) -> Path:
    """Copy a written series into a DICOM file-set (PT*/ST*/SE*/IM* and a DICOMDIR) with pydicom; return the DICOMDIR."""
    import pydicom
    from pydicom.fileset import FileSet

    fileset = FileSet()
    for file in files:
        ds = pydicom.dcmread(file)
        ds.PatientID, ds.StudyDate, ds.StudyTime, ds.StudyID = "P1", "20240101", "120000", "1"
        ds.SeriesNumber = 2
        fileset.add(ds)
    fileset.write(out_dir)
    return out_dir / "DICOMDIR"


def write_enhanced_ct(array: np.ndarray, path: Path, spacing_mm: float = 6.0, step_mm: float = 7.5) -> Path:
    """Write a zyx int16 HU array as one multi-frame Enhanced CT file (pydicom; frames bottom first)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2.1"  # Enhanced CT Image Storage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.SeriesInstanceUID, ds.StudyInstanceUID = (
        "CT",
        "1.2.826.0.1.3680043.2.1125.77",
        "1.2.826.0.1",
    )
    ds.NumberOfFrames, (ds.Rows, ds.Columns) = array.shape[0], array.shape[1:]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    measures, plane, value = Dataset(), Dataset(), Dataset()
    measures.PixelSpacing, measures.SliceThickness = [spacing_mm, spacing_mm], step_mm
    plane.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    value.RescaleIntercept, value.RescaleSlope, value.RescaleType = 0, 1, "HU"
    shared = Dataset()
    shared.PixelMeasuresSequence = Sequence([measures])
    shared.PlaneOrientationSequence = Sequence([plane])
    shared.PixelValueTransformationSequence = Sequence([value])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    frames = []
    for k in range(array.shape[0]):
        position, frame = Dataset(), Dataset()
        position.ImagePositionPatient = [0.0, 0.0, k * step_mm]
        frame.PlanePositionSequence = Sequence([position])
        frames.append(frame)
    ds.PerFrameFunctionalGroupsSequence = Sequence(frames)
    ds.PixelData = np.ascontiguousarray(array, dtype="<i2").tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def labels_row(patient: str, image: sitk.Image, seed: int = 0) -> dict:
    """A valid labels row with levels inside ``image``'s z range."""
    rng = np.random.default_rng([seed, sum(map(ord, patient))])
    z0 = image.GetOrigin()[2]
    height = (image.GetSize()[2] - 1) * image.GetSpacing()[2]
    row: dict = {"patient": patient}
    for i, n in enumerate(LEVELS):
        row[f"L{n}_z_mm"] = z0 + height * (0.85 - 0.15 * i)
    for n in LEVELS:
        gg, ret = (int(v) for v in rng.choice([0, 0, 5, 10, 20], size=2))
        row[f"L{n}_TOT"] = min(100, max(gg, ret) + min(gg, ret) // 2)
        row[f"L{n}_GG"], row[f"L{n}_RET"] = gg, ret
    return row


def write_cohort(root: Path, patients: dict[str, sitk.Image], fmt: str = "nii.gz") -> Path:
    """Write a cohort (scans/<id>.<fmt> and labels.csv) and return its folder."""
    (root / "scans").mkdir(parents=True, exist_ok=True)
    rows = []
    for patient, image in patients.items():
        sitk.WriteImage(image, str(root / "scans" / f"{patient}.{fmt}"))
        rows.append(labels_row(patient, image))
    pd.DataFrame(rows).to_csv(root / "labels.csv", index=False)
    return root


@pytest.fixture(autouse=True)
def _quiet_cli_logging(monkeypatch) -> None:
    """Keep gohscore's log records going to pytest (the CLI would attach a stderr handler)."""
    monkeypatch.setattr("gohscore.progress.setup_logging", lambda verbose=False: None)


@pytest.fixture
def chest() -> sitk.Image:
    """A small chest-like image (48x40x36 voxels, 6x6x7.5 mm)."""
    return chest_image()


@pytest.fixture
def cohort(tmp_path: Path) -> Path:
    """A three-patient NIfTI cohort with valid labels."""
    return write_cohort(tmp_path / "cohort", {f"P{i}": chest_image(seed=i) for i in range(3)})


__all__ = [
    "chest_array",
    "chest_image",
    "labels_row",
    "set_rescale",
    "tilted",
    "write_cohort",
    "write_dicom_series",
    "write_dicomdir",
    "write_enhanced_ct",
    "zip_tree",
]


GRID_PARAMS = '{"spacing_mm": 6.0, "shape": 48}'  # a small grid that keeps the tests fast


def resample_cohort(cohort: Path, pre_dir: Path) -> list[str]:
    """Run 'gohscore resample' on every scan of ``cohort`` (each must succeed); return the geometry paths."""
    from gohscore.cli import main as cli_main
    from gohscore.cohort import discover_scans

    geometries = []
    for patient, entry in discover_scans(cohort).items():
        geo = pre_dir / f"{patient}.json"
        argv = ["resample", "--scan", str(entry), "--patient", patient, "--params-json", GRID_PARAMS]
        assert cli_main([*argv, "--volume", str(geo.with_suffix(".npy")), "--geometry", str(geo)]) == 0
        geometries.append(str(geo))
    return geometries
