"""Write a volume as a CT DICOM series (one file per slice) that GDCM-based readers load back as HU."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk


def make_uid(*parts: object) -> str:
    """Deterministic DICOM UID (``2.25.<int>``) from any identifying parts."""
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return "2.25." + str(int.from_bytes(digest[:15], "big"))


class DicomSeriesWriter:
    """Write a CT DICOM series slice by slice (``IM0001.dcm``... from the bottom), for streaming."""

    def __init__(
        self,
        spacing_xyz_mm: tuple[float, float, float],
        origin_xyz_mm: tuple[float, float, float],
        patient: str,
        folder: Path,
        seed: int,
    ):
        folder.mkdir(parents=True, exist_ok=True)
        self.folder, self.patient, self.seed = folder, patient, seed
        sx, sy, sz = spacing_xyz_mm
        self.spacing = (sx, sy, sz)
        self.origin = origin_xyz_mm
        date = time.strftime("%Y%m%d", time.gmtime(0))
        self.writer = sitk.ImageFileWriter()
        self.writer.KeepOriginalImageUIDOn()
        self.common = {
            "0008|0060": "CT",
            "0008|0016": "1.2.840.10008.5.1.4.1.1.2",
            "0008|0020": date,
            "0008|0030": "000000",
            "0008|0070": "gohscore phantom",
            "0008|103e": "synthetic chest CT (gohscore phantom)",
            "0010|0010": f"PHANTOM^{patient}",
            "0010|0020": patient,
            "0018|0050": f"{sz:.4f}",
            "0018|0088": f"{sz:.4f}",
            "0020|000d": make_uid("study", seed, patient),
            "0020|000e": make_uid("series", seed, patient),
            "0020|0052": make_uid("frame", seed, patient),
            "0020|0011": "1",
            "0020|0037": "1\\0\\0\\0\\1\\0",
            "0028|0030": f"{sy:.6f}\\{sx:.6f}",
            "0028|1050": "-600",
            "0028|1051": "1500",
            "0028|1052": "-1024",
            "0028|1053": "1",
            "0028|1054": "HU",
        }
        self.paths: list[Path] = []

    def write(self, k: int, slice_hu: np.ndarray) -> Path:
        """Write slice ``k`` (counted from the bottom; int16 HU, rows = y) as ``IM{k+1:04d}.dcm``."""
        sx, sy, sz = self.spacing
        x0, y0, z0 = self.origin
        img = sitk.GetImageFromArray(np.ascontiguousarray(slice_hu, dtype=np.int16))
        img.SetSpacing((sx, sy))
        for key, value in self.common.items():
            img.SetMetaData(key, value)
        z = z0 + k * sz
        img.SetMetaData("0008|0018", make_uid("image", self.seed, self.patient, k))
        img.SetMetaData("0020|0013", str(k + 1))
        img.SetMetaData("0020|0032", f"{x0:.4f}\\{y0:.4f}\\{z:.4f}")
        img.SetMetaData("0020|1041", f"{z:.4f}")
        path = self.folder / f"IM{k + 1:04d}.dcm"
        self.writer.SetFileName(str(path))
        self.writer.Execute(img)
        self.paths.append(path)
        return path


def write_dicom_series(
    volume_hu: np.ndarray,
    spacing_xyz_mm: tuple[float, float, float],
    origin_xyz_mm: tuple[float, float, float],
    patient: str,
    folder: Path,
    seed: int,
) -> list[Path]:
    """Write ``volume_hu`` (zyx, int16 HU, slice 0 at the bottom) as ``IM0001.dcm``... in ``folder``.

    Pixels are stored as ``HU + 1024`` with RescaleIntercept -1024 and slope 1, as most
    scanners do, so only readers that honour the rescale get HU back. GDCM (behind
    SimpleITK's writer) takes real-world values and applies the inverse rescale itself
    when the intercept/slope tags are set, so the HU volume is handed over unchanged.
    """
    writer = DicomSeriesWriter(spacing_xyz_mm, origin_xyz_mm, patient, folder, seed)
    for k in range(volume_hu.shape[0]):
        writer.write(k, volume_hu[k])
    return writer.paths
