"""One synthetic patient end to end (anatomy -> volume -> labels -> observers -> patches) and its files."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gohscore import labels
from gohscore.errors import GohscoreError
from gohscore.files import atomic_path
from gohscore.goh import LEVELS, PATTERNS, score_column, z_column
from gohscore.lesion_masks import LevelMasks, write_masks
from gohscore.phantom.anatomy import Anatomy, draw_anatomy
from gohscore.phantom.labels import area_percentages, consistent_scores
from gohscore.phantom.nifti import NiftiGzWriter, write_nifti_gz
from gohscore.phantom.observers import observer_rows
from gohscore.phantom.patches import crop_patches
from gohscore.phantom.render import Renderer, SliceResult
from gohscore.phantom.sizes import PatientParams, patient_index

log = logging.getLogger("gohscore")

LABEL_COLUMNS = [*labels.LABEL_COLUMNS, *labels.LABEL_OPTIONAL]  # the phantom knows every FVC


@dataclass
class Patient:
    """A generated patient in memory: the HU volume, its geometry, masks at the levels and its label row."""

    patient: str
    anatomy: Anatomy
    renderer: Renderer
    volume: np.ndarray  # int16 HU, zyx, slice 0 at the bottom
    levels: list[SliceResult]  # the rendered level slices L1..L5 (HU and masks)
    raw_percent: dict[str, float]
    label: dict
    pure_area: np.ndarray  # (n_slices, 2) GG-only / RET-only lung pixels per slice

    @property
    def spacing_xyz_mm(self) -> tuple[float, float, float]:
        """Voxel spacing (x, y, z) in mm."""
        a = self.anatomy
        return (a.pixel_mm, a.pixel_mm, a.slice_mm)

    @property
    def origin_xyz_mm(self) -> tuple[float, float, float]:
        """World (LPS) position of voxel (0, 0, 0), the bottom slice's first pixel."""
        return self.anatomy.origin_xyz_mm


def tune_allocator() -> None:
    """Make glibc keep freed memory for reuse in this process (a no-op elsewhere).

    Rendering allocates and frees several slice-sized arrays per slice. Above glibc's default
    mmap threshold each of them is a fresh mapping whose pages fault in again; on the shared
    2-core test machine that cost up to a second of kernel time per paper-size patient.
    Raising the mmap and trim thresholds keeps such arrays on the heap (peak RSS grows by some
    tens of MiB). Meant for the per-patient worker processes (``gohscore phantom``, the
    ``phantom-cohort`` pool), not for library callers.
    """
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 64 << 20)  # M_MMAP_THRESHOLD: only buffers of 64 MiB and more are mapped
        libc.mallopt(-1, 256 << 20)  # M_TRIM_THRESHOLD: give the heap's top back only past 256 MiB free
        libc.mallopt(-2, 64 << 20)  # M_TOP_PAD: grow the heap 64 MiB at a time
    except (OSError, AttributeError):
        pass


SLAB_SLICES = 16  # slices rendered between two hand-overs to a streaming writer


@dataclass
class _Rendered:
    """What rendering every slice leaves behind besides the voxels."""

    anatomy: Anatomy
    renderer: Renderer
    levels: list[SliceResult]
    raw_percent: dict[str, float]
    label: dict
    pure_area: np.ndarray


def _anatomy(patient: str, params: PatientParams, seed: int) -> Anatomy:
    """The patient's anatomy: the first draw of its random streams."""
    return draw_anatomy(np.random.default_rng([seed, patient_index(patient), 0]), params.preset)


def _render_patient(
    patient: str,
    anat: Anatomy,
    seed: int,
    volume: np.ndarray | None = None,
    sink: Callable[[int, np.ndarray], None] | None = None,
) -> _Rendered:
    """Render every slice, bottom up, into ``volume`` (allocated by the caller, or a reused slab
    buffer when None) and hand each slab of ``SLAB_SLICES`` slices to ``sink(first_k, slab)``."""
    index = patient_index(patient)
    renderer = Renderer(anat, (seed, index))
    n, n_slices = anat.matrix, anat.n_slices
    buffer = np.empty((min(SLAB_SLICES, n_slices), n, n), np.int16) if volume is None else None
    pure_area = np.zeros((n_slices, 2), np.int64)
    level_slices: dict[int, SliceResult] = {}
    wanted = set(anat.level_k)
    for k0 in range(0, n_slices, SLAB_SLICES):
        k1 = min(k0 + SLAB_SLICES, n_slices)
        slab = volume[k0:k1] if volume is not None else buffer[: k1 - k0]
        for k in range(k0, k1):
            res = renderer.render(k, out=slab[k - k0])
            if renderer.disease is not None:
                pure_area[k] = (np.count_nonzero(res.gg & ~res.ret), np.count_nonzero(res.ret & ~res.gg))
            if k in wanted:
                level_slices[k] = (
                    res if volume is not None else SliceResult(res.hu.copy(), res.lung, res.gg, res.ret)
                )
        if sink is not None:
            sink(k0, slab)
    levels = [level_slices[k] for k in anat.level_k]
    label: dict = {"patient": patient}
    raw: dict[str, float] = {}
    for level, k in zip(LEVELS, anat.level_k, strict=True):
        label[z_column(level)] = round(float(anat.slice_z(k)), 4)
    for level, res in zip(LEVELS, levels, strict=True):
        percent = area_percentages(res.lung, res.gg, res.ret)
        raw.update({score_column(level, p): v for p, v in zip(PATTERNS, percent, strict=True)})
        scores = consistent_scores(*percent)
        label.update({score_column(level, p): v for p, v in zip(PATTERNS, scores, strict=True)})
    mean_tot = float(np.mean([label[score_column(level, "TOT")] for level in LEVELS]))
    fvc_rng = np.random.default_rng([seed, index, 4])
    label["fvc_percent"] = round(float(np.clip(100 - 0.9 * mean_tot + fvc_rng.normal(0, 10), 35, 130)), 1)
    return _Rendered(anat, renderer, levels, raw, label, pure_area)


def generate_patient(patient: str, params: PatientParams, seed: int) -> Patient:
    """Generate one patient in memory; deterministic in (seed, patient index, size)."""
    anat = _anatomy(patient, params, seed)
    volume = np.empty((anat.n_slices, anat.matrix, anat.matrix), np.int16)
    r = _render_patient(patient, anat, seed, volume=volume)
    return Patient(patient, r.anatomy, r.renderer, volume, r.levels, r.raw_percent, r.label, r.pure_area)


def volume_image(volume: np.ndarray, spacing_xyz_mm, origin_xyz_mm):
    """SimpleITK image of an HU volume (zyx) with axis-aligned LPS geometry."""
    import SimpleITK as sitk

    img = sitk.GetImageFromArray(volume)
    img.SetSpacing(tuple(float(s) for s in spacing_xyz_mm))
    img.SetOrigin(tuple(float(o) for o in origin_xyz_mm))
    img.SetDirection((1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0))
    return img


def is_dicom(patient: str, params: PatientParams) -> bool:
    """Whether this patient is written as a DICOM series (every ``dicom_every``-th index)."""
    return params.dicom_every > 0 and patient_index(patient) % params.dicom_every == 0


def write_patient(
    patient: str,
    params: PatientParams,
    seed: int,
    scan_dir: Path,
    patch_dir: Path,
    masks: Path | None = None,
) -> dict:
    """Generate one patient and write its scan folder, patch folder and (``masks``) its lesion masks
    at the levels (:mod:`gohscore.lesion_masks`); return its part (rows for the tables)."""
    start = time.perf_counter()
    index = patient_index(patient)
    anat = _anatomy(patient, params, seed)
    spacing = (anat.pixel_mm, anat.pixel_mm, anat.slice_mm)
    shape = (anat.n_slices, anat.matrix, anat.matrix)
    dicom = is_dicom(patient, params)
    # the scan is written while it is rendered, a slab at a time: the whole volume is never held
    with atomic_path(scan_dir, directory=True) as tmp:
        if dicom:
            from gohscore.phantom.dicom import DicomSeriesWriter  # SimpleITK only where needed

            series = DicomSeriesWriter(spacing, anat.origin_xyz_mm, patient, tmp, seed)

            def sink(k0: int, slab: np.ndarray) -> None:
                for j, slice_hu in enumerate(slab):
                    series.write(k0 + j, slice_hu)

            pat = _render_patient(patient, anat, seed, sink=sink)
        else:
            with NiftiGzWriter(tmp / f"{patient}.nii.gz", shape, spacing, anat.origin_xyz_mm) as nifti:
                pat = _render_patient(patient, anat, seed, sink=lambda _k0, slab: nifti.write(slab))
    if masks is not None:
        write_masks(
            LevelMasks(
                np.stack([r.lung for r in pat.levels]),
                np.stack([r.gg for r in pat.levels]),
                np.stack([r.ret for r in pat.levels]),
                np.asarray(anat.level_k),
                (anat.pixel_mm, anat.pixel_mm),
            ),
            masks,
        )
    patch_rows = []
    patches = crop_patches(
        pat.renderer.render,
        pat.pure_area,
        anat.pixel_mm,
        params.patches_per_pattern,
        np.random.default_rng([seed, index, 6]),
    )
    with atomic_path(patch_dir, directory=True) as tmp:
        counts = {"GG": 0, "RET": 0}
        x0, y0, _ = anat.origin_xyz_mm
        for pattern, _k, i, j, crop in patches:
            name = f"{pattern.lower()}_{counts[pattern]}.nii.gz"
            counts[pattern] += 1
            origin = (x0 + j * anat.pixel_mm, y0 + i * anat.pixel_mm)
            write_nifti_gz(tmp / name, crop, (anat.pixel_mm, anat.pixel_mm), origin)
            patch_rows.append({"file": f"{patient}/{name}", "pattern": pattern, "patient": patient})
    part = {
        "patient": patient,
        "label": pat.label,
        # the re-reads this patient would get; the tables keep them for the observer patients only
        "observers": observer_rows(pat.label, seed, index),
        "patches": patch_rows,
        "info": {
            "index": index,
            "size": params.size,
            "format": "dicom" if dicom else "nifti",
            "severity": round(anat.severity, 4),
            "gg_share": round(anat.gg_share, 4),
            "shape_xyz": [anat.matrix, anat.matrix, anat.n_slices],
            "spacing_xyz_mm": list(spacing),
            "origin_xyz_mm": list(anat.origin_xyz_mm),
            "level_slices": list(anat.level_k),
            "raw_percent": {key: round(value, 3) for key, value in pat.raw_percent.items()},
            "seconds": round(time.perf_counter() - start, 3),
        },
    }
    log.debug("phantom %s: %d slices in %.1f s", patient, anat.n_slices, part["info"]["seconds"])
    return part


def write_part(part: dict, path: Path) -> None:
    """Write one patient's part JSON atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(part, indent=1) + "\n", encoding="utf-8")


def write_tables(parts: list[dict], cohort: Path, observer_ids: Collection[str]) -> None:
    """Write ``labels.csv``, ``observers.csv`` and ``patches/patches.csv`` of a cohort folder from parts.

    ``observers.csv`` holds the re-reads of the patients in ``observer_ids`` only
    (:func:`gohscore.phantom.observers.observer_patients` chooses them for the cohort).
    """
    import pandas as pd

    parts = sorted(parts, key=lambda p: p["patient"])
    chosen = set(observer_ids)
    missing = sorted(chosen - {p["patient"] for p in parts})
    if missing:
        raise GohscoreError(
            f"observer patients {', '.join(missing)} have no part; generate them or lower n_observer_patients"
        )
    observers = [row for p in parts if p["patient"] in chosen for row in p["observers"]]
    tables = (
        (cohort / "labels.csv", [p["label"] for p in parts], LABEL_COLUMNS),
        (cohort / "observers.csv", observers, labels.OBSERVER_COLUMNS),
        (
            cohort / "patches" / "patches.csv",
            [row for p in parts for row in p["patches"]],
            labels.PATCH_COLUMNS,
        ),
    )
    for path, rows, columns in tables:
        frame = pd.DataFrame(rows, columns=columns)
        with atomic_path(path) as tmp:
            frame.to_csv(tmp, index=False)
