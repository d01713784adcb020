"""Read scans of any supported format (checked, in HU) and the cached network-grid volumes."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import logging
import os
import re
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from gohscore.archive import ArchiveMember, Unpacked, is_archive, unpack_zip
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
    files: list[Path | ArchiveMember] = field(default_factory=list)
    series_uid: str | None = None
    study_uid: str | None = None


@dataclass
class Source:
    """Where a scan entry's pixels are: one image file or a DICOM folder tree (perhaps unpacked from a zip)."""

    entry: Path
    kind: str  # "image" or "dicom"
    location: Path
    unpacked: Unpacked | None = None

    def shown(self, text: str) -> str:
        """``text`` with a temporary unpack folder replaced by the zip's name."""
        return self.unpacked.shown(text) if self.unpacked else text

    def file(self, file: str | Path) -> Path | ArchiveMember:
        """The file as the user has it: itself, or the zip member it was unpacked from."""
        return self.unpacked.member(file) if self.unpacked else Path(file)


def _archive_root(root: Path) -> Path:
    """The folder an archive really holds: step into a lone top folder (ignoring macOS ``__MACOSX``)."""
    while True:
        entries = [p for p in root.iterdir() if not p.name.startswith(".") and p.name != "__MACOSX"]
        if len(entries) != 1 or not entries[0].is_dir():
            return root
        root = entries[0]


def _folder_source(entry: Path, folder: Path, unpacked: Unpacked | None) -> Source:
    """A folder holding exactly one image file is that image; any other folder is a DICOM tree."""
    image_file = scan_image_file(folder)
    if image_file is None:
        return Source(entry, "dicom", folder, unpacked)
    return Source(entry, "image", image_file, unpacked)


@contextlib.contextmanager
def open_entry(path: str | Path) -> Iterator[Source]:
    """Resolve a scan entry (image file, folder tree, DICOMDIR, .zip); a zip is unpacked for the block only.

    A DICOMDIR (the file, or a folder holding it) is read as the folder tree it indexes:
    the files it lists lie under its folder, and the series checks refuse a tree that does
    not hold one consistent series. (SimpleITK does not expose GDCM's DICOMDIR reader and
    pydicom is not a dependency.)
    """
    path = Path(path)
    if not path.exists():
        raise GohscoreError(f"scan {path} does not exist; check the path")
    if path.is_file() and path.name.upper() == "DICOMDIR":
        yield Source(path, "dicom", path.parent)
    elif is_archive(path):
        with unpack_zip(path) as unpacked:
            try:
                yield _folder_source(path, _archive_root(unpacked.root), unpacked)
            except GohscoreError as err:
                raise GohscoreError(unpacked.shown(str(err))) from None
    elif path.is_dir():
        yield _folder_source(path, path, None)
    else:
        yield Source(path, "image", path)


def _reason(err: Exception) -> str:
    """The most telling line of an ITK error message (shortened)."""
    lines = [ln.strip() for ln in str(err).strip().splitlines() if ln.strip()]
    telling = [ln for ln in lines if re.search(r"not read completely|fread|expected|truncat|ERROR", ln, re.I)]
    text = (telling or lines or [type(err).__name__])[-1 if not telling else 0]
    text = re.sub(r"^.*?(sitk::ERROR|ERROR):\s*", "", text)
    return re.sub(r"\s+", " ", text)[:160]


@dataclass
class NiftiLayout:
    """Where a NIfTI-1/2 file keeps its voxels (from its header)."""

    byte_order: str
    datatype: int
    bitpix: int
    count: int
    offset: int


#: NIfTI datatype codes of floating-point voxels (the only ones that can hold NaN/Inf) -> numpy type
NIFTI_FLOAT_TYPES = {16: "f4", 64: "f8"}


def nifti_layout(header: bytes) -> NiftiLayout | None:
    """Byte order, datatype, voxel count and data offset of a NIfTI-1/2 header; None if not NIfTI."""
    for order in "<>":
        size = struct.unpack(order + "i", header[:4])[0] if len(header) >= 4 else 0
        if size == 348 and len(header) >= 348:
            dim = struct.unpack(order + "8h", header[40:56])
            datatype, bitpix = struct.unpack(order + "2h", header[70:74])
            offset = int(struct.unpack(order + "f", header[108:112])[0])
            break
        if size == 540 and len(header) >= 540:
            datatype, bitpix = struct.unpack(order + "2h", header[12:16])
            dim = struct.unpack(order + "8q", header[16:80])
            offset = struct.unpack(order + "q", header[168:176])[0]
            break
    else:
        return None
    n = max(1, min(int(dim[0]), 7))
    count = int(np.prod([max(1, int(d)) for d in dim[1 : n + 1]], dtype=np.int64))
    return NiftiLayout(order, int(datatype), int(bitpix), count, max(offset, 352 if size == 348 else 544))


def nifti_data_size(header: bytes) -> int | None:
    """Bytes a NIfTI-1/2 file must hold (vox_offset + voxel data), from its header; None if not NIfTI."""
    layout = nifti_layout(header)
    if layout is None:
        return None
    return layout.offset + layout.count * max(layout.bitpix, 8) // 8


def nifti_nonfinite_count(path: Path, chunk: int = 1 << 22) -> int:
    """How many voxels of a float NIfTI file are NaN or infinite, counted in the file's own data block.

    ITK's NIfTI reader hands NaN voxels back as 0 (SimpleITK 2.5), so the image it returns
    cannot show them; numpy reads the raw block from the header's datatype and vox_offset
    instead, in chunks (a compressed file is decompressed on the fly, not held in memory).
    """
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rb") as handle:
        layout = nifti_layout(handle.read(544))
        if layout is None or layout.datatype not in NIFTI_FLOAT_TYPES:
            return 0
        dtype = np.dtype(layout.byte_order + NIFTI_FLOAT_TYPES[layout.datatype])
        handle.seek(layout.offset)
        remaining, bad, rest = layout.count * dtype.itemsize, 0, b""
        while remaining > 0 and (block := handle.read(min(chunk, remaining))):
            remaining -= len(block)
            block = rest + block
            usable = len(block) - len(block) % dtype.itemsize
            values = np.frombuffer(block[:usable], dtype)
            bad += values.size - int(np.count_nonzero(np.isfinite(values)))
            rest = block[usable:]
    return bad


def nonfinite_count(image: sitk.Image) -> int:
    """How many voxels of a float image are NaN or infinite (0 for integer images)."""
    if image.GetPixelID() not in (sitk.sitkFloat32, sitk.sitkFloat64):
        return 0
    array = sitk.GetArrayViewFromImage(image)
    array = array.reshape(array.shape[0], -1) if array.ndim > 1 else array.reshape(1, -1)
    step = max(1, (1 << 24) // max(1, array.shape[1]))  # about 16 M voxels at a time
    return sum(
        int(array[k : k + step].size - np.count_nonzero(np.isfinite(array[k : k + step])))
        for k in range(0, array.shape[0], step)
    )


def check_finite(count: int, image: sitk.Image, path: str | Path) -> None:
    """Reject a scan with ``count`` NaN/Inf voxels, naming the file and the count."""
    if count:
        total = int(np.prod(image.GetSize(), dtype=np.int64))
        raise GohscoreError(
            f"scan {path} has {count} non-finite voxels (NaN or infinite) of {total}; "
            "re-export it with a number (HU) in every voxel"
        )


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
    """Read one scan entry (image file, folder, folder tree, DICOMDIR or .zip) and check it."""
    path = Path(path)
    with open_entry(path) as source:
        if source.kind == "dicom":
            from gohscore.dicom import read_series

            image, series = read_series(source.location, source.shown)
            files = [source.file(f) for f in series.files]
            study = series.slices[0].study_uid if series.slices else ""
            scan = Scan(path, "dicom", image, files, series.uid, study or None)
            check_image(scan.image, path)
            check_finite(nonfinite_count(image), image, path)
            return scan
        image_file = source.location
        suffix = image_suffix(image_file)
        if suffix is None:
            raise GohscoreError(
                f"scan {image_file} has an unknown file type; use .nii.gz, .nii, .mha, .mhd, .nrrd, "
                "a DICOM folder or a .zip of one"
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
        scan = Scan(path, FORMAT_BY_SUFFIX[suffix], image, [source.file(f) for f in files])
        check_image(scan.image, path)
        count = nonfinite_count(image)
        if not count and scan.format == "nifti":
            count = nifti_nonfinite_count(image_file)
        check_finite(count, image, image_file)
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


def sha256_files(files: list[Path | ArchiveMember]) -> str:
    """SHA-256 over the bytes of ``files`` (paths or zip members: the files a scan was read from), in order."""
    digest = hashlib.sha256()
    for file in files:
        opened = file.open() if isinstance(file, ArchiveMember) else open(file, "rb")
        with opened as handle:
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
    """Header facts of a scan entry without reading pixels: format, size, spacing, origin, direction, z range.

    Entries resolve as in :func:`read_scan` (the same series is chosen and checked, the same files listed).
    """
    path = Path(path)
    with open_entry(path) as source:
        series = None
        reader = sitk.ImageFileReader()
        if source.kind == "dicom":
            from gohscore.dicom import check_series_geometry, choose_series

            series = choose_series(source.location, source.shown)
            check_series_geometry(series, source.location, source.shown)
            reader.SetFileName(series.files[0])
            fmt, files = "dicom", [source.file(f) for f in series.files]
        else:
            suffix = image_suffix(source.location)
            reader.SetFileName(str(source.location))
            fmt = FORMAT_BY_SUFFIX.get(suffix or "", "unknown")
            data = _mhd_data_files(source.location) if suffix in {".mhd", ".nhdr"} else []
            files = [source.file(f) for f in [source.location, *data]]
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
    if series is not None:
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
