"""Bring-your-own cohort: resample one scan to the network grid, and validate the cohort's tables."""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from gohscore import io, preprocess
from gohscore.cohort import find_table
from gohscore.errors import GohscoreError
from gohscore.labels import (
    check_levels_in_scans,
    empty_observers,
    empty_patches,
    read_table,
    row_name,
    validate_labels,
    validate_observers,
    validate_patches,
)

log = logging.getLogger("gohscore")


def resample_scan(
    path: str | Path, patient: str, spacing_mm: float = 1.2, shape: int = 256
) -> tuple[np.ndarray, dict]:
    """Read and check one scan, resample it to the ``shape``^3 grid; return the int16 volume and its geometry."""
    volume, geometry, _ = resample_read_scan(io.read_scan(path), patient, spacing_mm, shape)
    return volume, geometry


def resample_read_scan(
    scan: io.Scan, patient: str, spacing_mm: float = 1.2, shape: int = 256
) -> tuple[np.ndarray, dict, np.ndarray]:
    """:func:`resample_scan` on a scan already read; also returns the LPS-oriented original array (zyx)."""
    path = scan.path
    image = scan.image
    lps = io.lps_geometry(image)
    array = io.lps_array(image)
    p01, p50, p99 = io.hu_percentiles(array)
    io.check_hu(p01, p99, path)
    centre, found = preprocess.find_grid_centre(array, lps["lps_spacing_xyz_mm"], lps["lps_origin_xyz_mm"])
    if not found:
        log.warning("%s: no lungs found in %s; centring the grid on the scan's middle in z", patient, path)
    origin = preprocess.grid_origin(centre, spacing_mm, shape)
    volume = preprocess.resample_to_grid(
        array, lps["lps_spacing_xyz_mm"], lps["lps_origin_xyz_mm"], origin, spacing_mm, shape
    )
    geometry = {
        "patient": str(patient),
        "path": str(path),
        "format": scan.format,
        "series_uid": scan.series_uid,
        "size_xyz": [int(v) for v in image.GetSize()],
        "spacing_xyz_mm": [float(v) for v in image.GetSpacing()],
        "origin_xyz_mm": [float(v) for v in image.GetOrigin()],
        "direction": [float(v) for v in image.GetDirection()],
        **lps,
        "grid_origin_xyz_mm": [float(v) for v in origin],
        "grid_spacing_mm": float(spacing_mm),
        "grid_shape": int(shape),
        "lungs_found": bool(found),
        "hu_p01": p01,
        "hu_p50": p50,
        "hu_p99": p99,
        "sha256": io.sha256_files(scan.files),
    }
    return volume, geometry, array


def read_geometries(paths: list[str | Path]) -> dict[str, dict]:
    """Load geometry JSONs keyed by patient; error on duplicates."""
    out: dict[str, dict] = {}
    for path in paths:
        try:
            geom = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            raise GohscoreError(
                f"cannot read geometry {path} ({err}); rerun 'gohscore resample' for it"
            ) from None
        patient = str(geom["patient"])
        if patient in out:
            raise GohscoreError(
                f"patient {patient!r} has two geometry files ({out[patient]['path']}, {geom['path']})"
            )
        out[patient] = geom
    return out


def manifest_table(geometries: dict[str, dict]) -> pd.DataFrame:
    """One row per patient: the geometry JSON flattened (list values become columns ``key_0``, ``key_1`` ...)."""
    rows = []
    for patient in sorted(geometries):
        row: dict = {}
        for key, value in geometries[patient].items():
            if isinstance(value, list):
                for i, v in enumerate(value):
                    row[f"{key}_{i}"] = v
            else:
                row[key] = value
        rows.append(row)
    return pd.DataFrame(rows)


def manifest_geometry(row: Mapping) -> dict:
    """Inverse of :func:`manifest_table` for one row: ``key_0, key_1, ...`` columns become the list ``key``.

    Values come back as plain Python numbers and strings, so the dict is a geometry JSON again.
    """
    geom: dict = {}
    parts: dict[str, dict[int, object]] = {}
    for key, value in dict(row).items():
        if isinstance(value, np.ndarray):  # a list column (older manifests, hand-made tables)
            value = value.tolist()
        value = value.item() if isinstance(value, np.generic) else value
        match = re.fullmatch(r"(.+)_(\d+)", str(key))
        if match:
            parts.setdefault(match.group(1), {})[int(match.group(2))] = value
        else:
            geom[str(key)] = value
    for key, items in parts.items():
        if sorted(items) != list(range(len(items))):  # not a flattened list after all
            geom.update({f"{key}_{i}": v for i, v in items.items()})
            continue
        values = [items[i] for i in range(len(items))]
        geom[key] = [v for v in values if not (isinstance(v, float) and math.isnan(v))]
    return geom


def manifest_geometries(manifest: pd.DataFrame) -> dict[str, dict]:
    """Geometry dicts keyed by patient from a manifest table written by :func:`manifest_table`."""
    return {str(row["patient"]): manifest_geometry(row) for row in manifest.to_dict("records")}


def cohort_tables(cohort_dir: str | Path, geometries: dict[str, dict]) -> dict[str, pd.DataFrame]:
    """Validate labels, observers and patches of a cohort against its scans' geometries."""
    cohort = Path(cohort_dir)
    labels_path = find_table(cohort, "labels")
    if labels_path is None:
        raise GohscoreError(
            f"{cohort} has no labels table; add labels.csv (or .xlsx/.parquet), see docs/cohort-layout.md"
        )
    labels = validate_labels(read_table(labels_path), str(labels_path))
    scans = set(geometries)
    for i, patient in enumerate(labels["patient"]):
        if patient not in scans:
            raise GohscoreError(
                f"{labels_path} {row_name(i)}: patient {patient!r} has no scan; add scans/{patient}.nii.gz "
                "(or another format) or delete the row"
            )
    unlabeled = sorted(scans - set(labels["patient"]))
    if unlabeled:
        geom = geometries[unlabeled[0]]
        more = f" (and {len(unlabeled) - 1} more)" if len(unlabeled) > 1 else ""
        raise GohscoreError(
            f"scan {geom['path']} (patient {unlabeled[0]!r}){more} has no row in {labels_path}; add its labels or remove the scan"
        )
    z_ranges = {p: preprocess.original_z_range(g) for p, g in geometries.items()}
    half = {
        p: 0.5 * float(g.get("lps_spacing_xyz_mm", g["spacing_xyz_mm"])[2]) for p, g in geometries.items()
    }
    z_ranges = {p: (lo - half[p], hi + half[p]) for p, (lo, hi) in z_ranges.items()}
    check_levels_in_scans(labels, z_ranges, str(labels_path))

    observers_path = find_table(cohort, "observers")
    observers = (
        validate_observers(read_table(observers_path), labels["patient"], str(observers_path))
        if observers_path
        else empty_observers()
    )
    patches_csv = cohort / "patches" / "patches.csv"
    patches = (
        validate_patches(read_table(patches_csv), patches_csv.parent, str(patches_csv))
        if patches_csv.is_file()
        else empty_patches()
    )
    outside = sorted(set(patches["patient"]) - set(labels["patient"]))
    if outside:
        log.info(
            "%d patch source patient(s) are not in the cohort (e.g. %s); their patches are always usable",
            len(outside),
            outside[0],
        )
    return {
        "labels": labels,
        "observers": observers,
        "patches": patches,
        "manifest": manifest_table(geometries),
    }
