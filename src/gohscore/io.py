"""Read scans of any supported format (checked, in HU) and the cached network-grid volumes."""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import re
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from gohscore.cohort import image_suffix, scan_image_file
from gohscore.errors import GohscoreError
from gohscore.files import atomic_path

log = logging.getLogger("gohscore")

FORMAT_BY_SUFFIX = {
    ".nii.gz": "nifti",
    ".nii": "nifti",
    ".mha": "mha",
    ".mhd": "mha",
    ".nrrd": "nrrd",
    ".nhdr": "nrrd",
}
#: largest deviation of the LPS-reoriented direction matrix from identity (about 0.06 degrees)
AXIAL_TOLERANCE = 1e-3
#: a CT in HU has air (-1000) in it: a 1st percentile above this means the values are not HU
MAX_HU_P01 = -500.0
#: fewest slices a scan must have to count as a 3D volume
MIN_SLICES = 2


@dataclass
class Scan:
    """A scan as read: the image, its format, the files it came from and (DICOM) its series uid."""

    path: Path
    format: str
    image: sitk.Image
    files: list[Path] = field(default_factory=list)
    series_uid: str | None = None


def _reason(err: Exception) -> str:
    """The most telling line of an ITK error message (shortened)."""
    lines = [ln.strip() for ln in str(err).strip().splitlines() if ln.strip()]
    telling = [ln for ln in lines if re.search(r"not read completely|fread|expected|truncat|ERROR", ln, re.I)]
    text = (telling or lines or [type(err).__name__])[-1 if not telling else 0]
    text = re.sub(r"^.*?(sitk::ERROR|ERROR):\s*", "", text)
    return re.sub(r"\s+", " ", text)[:160]


def nifti_data_size(header: bytes) -> int | None:
    """Bytes a NIfTI-1/2 file must hold (vox_offset + voxel data), from its header; None if not NIfTI."""
    for order in "<>":
        size = struct.unpack(order + "i", header[:4])[0] if len(header) >= 4 else 0
        if size == 348 and len(header) >= 348:
            dim = struct.unpack(order + "8h", header[40:56])
            bitpix = struct.unpack(order + "h", header[72:74])[0]
            offset = int(struct.unpack(order + "f", header[108:112])[0])
            break
        if size == 540 and len(header) >= 540:
            bitpix = struct.unpack(order + "h", header[14:16])[0]
            dim = struct.unpack(order + "8q", header[16:80])
            offset = struct.unpack(order + "q", header[168:176])[0]
            break
    else:
        return None
    n = max(1, min(int(dim[0]), 7))
    count = int(np.prod([max(1, int(d)) for d in dim[1 : n + 1]], dtype=np.int64))
    return max(offset, 352 if size == 348 else 544) + count * max(bitpix, 8) // 8


def gzip_length(path: Path, chunk: int = 1 << 22) -> int:
    """Decompressed length of a (possibly multi-member) gzip file; -1 when its stream ends early."""
    total = 0
    try:
        with gzip.open(path, "rb") as handle:
            while block := handle.read(chunk):
                total += len(block)
    except (EOFError, OSError, zlib.error):
        return -1
    return total


def check_nifti_complete(path: Path) -> None:
    """Reject a truncated NIfTI (ITK would read it and fill the missing voxels with zeros)."""
    gz = path.name.lower().endswith(".gz")
    try:
        if gz:
            with gzip.open(path, "rb") as handle:
                header = handle.read(544)
            with open(path, "rb") as handle:
                handle.seek(-4, os.SEEK_END)
                stored = struct.unpack("<I", handle.read(4))[0]  # gzip ISIZE: uncompressed size mod 2**32
        else:
            with open(path, "rb") as handle:
                header = handle.read(544)
            stored = path.stat().st_size
    except (OSError, EOFError, struct.error) as err:
        raise GohscoreError(
            f"cannot read scan {path} (unreadable or truncated: {err}); re-export the file"
        ) from None
    need = nifti_data_size(header)
    if need is None:
        raise GohscoreError(f"cannot read scan {path} (unreadable: no NIfTI header); re-export the file")
    if gz and stored != need % 2**32:
        # The trailer counts only the last gzip member; pigz/bgzip-style files hold many members.
        stored = gzip_length(path)
    elif gz:
        return
    if stored < 0:
        raise GohscoreError(
            f"cannot read scan {path} (truncated: the compressed stream ends early); "
            "copy or re-export the complete file"
        )
    if stored < need:
        raise GohscoreError(
            f"cannot read scan {path} (truncated: holds {stored} of {need} bytes); copy or re-export the complete file"
        )


def _mhd_data_files(header: Path) -> list[Path]:
    """The data file(s) named by a MetaImage/NRRD detached header, when they exist."""
    out: list[Path] = []
    try:
        text = header.read_text(errors="replace")
    except OSError:
        return out
    for pattern in (r"^\s*ElementDataFile\s*=\s*(.+?)\s*$", r"^\s*data file\s*:\s*(.+?)\s*$"):
        m = re.search(pattern, text, flags=re.MULTILINE | re.IGNORECASE)
        if m and m.group(1).upper() not in {"LOCAL", "LIST"}:
            candidate = header.parent / m.group(1)
            if candidate.is_file():
                out.append(candidate)
    return out


def read_scan(path: str | Path) -> Scan:
    """Read one scan entry (image file, folder with one image file, or DICOM folder) and check it."""
    path = Path(path)
    if not path.exists():
        raise GohscoreError(f"scan {path} does not exist; check the path")
    image_file = scan_image_file(path)
    if image_file is None:
        from gohscore.dicom import read_series

        image, series = read_series(path)
        scan = Scan(path, "dicom", image, [Path(f) for f in series.files], series.uid)
    else:
        suffix = image_suffix(image_file)
        if suffix is None:
            raise GohscoreError(
                f"scan {image_file} has an unknown file type; use .nii.gz, .nii, .mha, .mhd, .nrrd or a DICOM folder"
            )
        if FORMAT_BY_SUFFIX[suffix] == "nifti":
            check_nifti_complete(image_file)
        try:
            image = sitk.ReadImage(str(image_file))
        except RuntimeError as err:
            raise GohscoreError(
                f"cannot read scan {image_file} (unreadable or truncated: {_reason(err)}); re-export the file"
            ) from None
        files = [image_file]
        if suffix in {".mhd", ".nhdr"}:
            files += _mhd_data_files(image_file)
        scan = Scan(path, FORMAT_BY_SUFFIX[suffix], image, files)
    check_image(scan.image, path)
    return scan


def check_image(image: sitk.Image, path: str | Path) -> None:
    """Reject 2D/4D images, vector images and non-axial slice directions."""
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise GohscoreError(
            f"scan {path} has {image.GetNumberOfComponentsPerPixel()} values per voxel (colour/vector); "
            "give a grey-level CT in HU"
        )
    size = image.GetSize()
    if image.GetDimension() != 3 or size[2] < MIN_SLICES:
        shape = "x".join(map(str, size))
        raise GohscoreError(
            f"scan {path} is not a 3D volume (size {shape}); give the whole CT volume, not a single slice"
        )
    lps_direction(image.GetDirection(), path)


def lps_axes(direction: tuple[float, ...] | list[float]) -> tuple[list[int], list[bool]]:
    """For a 3x3 direction (row-major), the image axis giving world x, y, z and whether it is flipped."""
    d = np.asarray(direction, float).reshape(3, 3)
    axes, flips = [], []
    for world in range(3):
        image_axis = int(np.argmax(np.abs(d[world])))
        axes.append(image_axis)
        flips.append(bool(d[world, image_axis] < 0))
    return axes, flips


def lps_direction(direction: tuple[float, ...] | list[float], path: str | Path) -> np.ndarray:
    """Check that ``direction`` is axial (a signed permutation of identity); return it reoriented to LPS."""
    d = np.asarray(direction, float).reshape(3, 3)
    axes, flips = lps_axes(direction)
    if sorted(axes) == [0, 1, 2] and axes[2] == 2:  # the slice axis must stay the z axis
        reoriented = d[:, axes] * np.where(flips, -1.0, 1.0)
        if np.max(np.abs(reoriented - np.eye(3))) <= AXIAL_TOLERANCE:
            return reoriented
    slice_axis = np.round(d[:, 2], 3).tolist()
    raise GohscoreError(
        f"scan {path} is not axial (slice direction {slice_axis}, direction cosines must be a flip/permutation of "
        "identity); reformat it to axial slices (x/y/z flips are fine)"
    )


def lps_geometry(image: sitk.Image) -> dict:
    """Origin, size, spacing of ``image`` after reorientation to LPS (same as ``DICOMOrient(image, 'LPS')``)."""
    axes, flips = lps_axes(image.GetDirection())
    d = np.asarray(image.GetDirection(), float).reshape(3, 3)
    size = np.asarray(image.GetSize())
    spacing = np.asarray(image.GetSpacing(), float)
    corner = np.zeros(3)
    for world in range(3):
        if flips[world]:
            corner[axes[world]] = size[axes[world]] - 1
    origin = np.asarray(image.GetOrigin(), float) + d @ (corner * spacing)
    return {
        "lps_origin_xyz_mm": [float(v) for v in origin],
        "lps_size_xyz": [int(size[a]) for a in axes],
        "lps_spacing_xyz_mm": [float(spacing[a]) for a in axes],
    }


def lps_array(image: sitk.Image) -> np.ndarray:
    """A zyx numpy view of ``image`` reoriented to LPS (no copy: transposes and flips only)."""
    axes, flips = lps_axes(image.GetDirection())
    arr = sitk.GetArrayViewFromImage(image)  # zyx: array axis 2 - image axis
    # output array axis k (z, y, x) takes world axis 2 - k, i.e. image axis axes[2 - k]
    arr = arr.transpose([2 - axes[2 - k] for k in range(3)])
    flip = tuple(slice(None, None, -1) if flips[2 - k] else slice(None) for k in range(3))
    return arr[flip]


def hu_percentiles(array: np.ndarray, max_samples: int = 2_000_000) -> tuple[float, float, float]:
    """1st, 50th and 99th percentiles of ``array``, estimated on a regular subsample for speed."""
    step = max(1, int(np.ceil((array.size / max_samples) ** (1 / 3))))
    sample = np.asarray(array[::step, ::step, ::step], dtype=np.float32).ravel()
    p01, p50, p99 = np.percentile(sample, [1, 50, 99])
    return float(p01), float(p50), float(p99)


def check_hu(p01: float, p99: float, path: str | Path) -> None:
    """Reject intensities that are not HU (no air at about -1000 HU)."""
    if p01 > MAX_HU_P01:
        raise GohscoreError(
            f"scan {path} does not look like HU (1st percentile {p01:.0f}, 99th {p99:.0f}; air should be near -1000): "
            "apply RescaleSlope/RescaleIntercept (often -1024) when exporting"
        )


def read_lps(path: str | Path) -> sitk.Image:
    """Read any supported scan, check it (3D, axial, HU) and reorient it to LPS (index z=0 at the bottom)."""
    scan = read_scan(path)
    p01, _, p99 = hu_percentiles(sitk.GetArrayViewFromImage(scan.image))
    check_hu(p01, p99, path)
    return sitk.DICOMOrient(scan.image, "LPS")


def sha256_files(files: list[Path]) -> str:
    """SHA-256 over the bytes of ``files`` in the given order."""
    digest = hashlib.sha256()
    for file in files:
        with open(file, "rb") as handle:
            while chunk := handle.read(1 << 22):
                digest.update(chunk)
    return digest.hexdigest()


def read_volume(npy_path: str | Path) -> np.ndarray:
    """Load a cached network-grid volume (int16 HU, zyx, LPS, index 0 = bottom)."""
    try:
        return np.load(npy_path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise GohscoreError(
            f"cannot load volume {npy_path} ({err}); rerun 'gohscore resample' for it"
        ) from None


def write_volume(volume: np.ndarray, npy_path: str | Path) -> None:
    """Save a network-grid volume atomically as ``.npy``."""
    with atomic_path(npy_path) as tmp:
        with open(tmp, "wb") as handle:
            np.save(handle, volume, allow_pickle=False)


def scan_header(path: str | Path) -> dict:
    """Header facts of a scan entry without reading pixels: format, size, spacing, origin, direction, z range."""
    path = Path(path)
    image_file = scan_image_file(path)
    if image_file is None:
        from gohscore.dicom import check_series_geometry, choose_series

        series = choose_series(path)
        check_series_geometry(series, path)
        reader = sitk.ImageFileReader()
        reader.SetFileName(series.files[0])
        fmt, files = "dicom", series.files
    else:
        suffix = image_suffix(image_file)
        reader = sitk.ImageFileReader()
        reader.SetFileName(str(image_file))
        fmt, files = FORMAT_BY_SUFFIX.get(suffix or "", "unknown"), [str(image_file)]
    try:
        reader.ReadImageInformation()
    except RuntimeError as err:
        raise GohscoreError(
            f"cannot read the header of scan {path} ({_reason(err)}); re-export the file"
        ) from None
    size = list(reader.GetSize())
    spacing = list(reader.GetSpacing())
    origin = list(reader.GetOrigin())
    direction = list(reader.GetDirection())
    if fmt == "dicom":
        from gohscore.dicom import choose_series

        series = choose_series(path)
        size = [size[0], size[1], len(series.files)]
        along = np.asarray(series.positions, float) @ series.normal
        if len(along) > 1:
            spacing = [spacing[0], spacing[1], float(np.median(np.diff(np.sort(along))))]
            origin = list(series.positions[int(np.argmin(along))])
            row, col = series.orientation[:3], series.orientation[3:6]
            n = series.normal
            direction = [row[0], col[0], n[0], row[1], col[1], n[1], row[2], col[2], n[2]]
    if len(size) != 3 or size[2] < MIN_SLICES:
        raise GohscoreError(
            f"scan {path} is not a 3D volume (size {'x'.join(map(str, size))}); give the whole CT volume"
        )
    lps_direction(direction, path)
    d = np.asarray(direction, float).reshape(3, 3)
    corners = np.array(
        [[i, j, k] for i in (0, size[0] - 1) for j in (0, size[1] - 1) for k in (0, size[2] - 1)]
    )
    world_z = (np.asarray(origin) + (corners * np.asarray(spacing)) @ d.T)[:, 2]
    return {
        "path": str(path),
        "format": fmt,
        "files": [str(f) for f in files],
        "size_xyz": size,
        "spacing_xyz_mm": spacing,
        "origin_xyz_mm": origin,
        "direction": direction,
        "z_min_mm": float(world_z.min()),
        "z_max_mm": float(world_z.max()),
    }
