"""Bring-your-own cohort: geometry manifests and validation of the cohort's tables."""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from gohscore import preprocess
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


def slack_z_range(bottom_mm: float, top_mm: float, slice_mm: float) -> tuple[float, float]:
    """The z range a level may lie in: the scan's bottom..top slice centres, half a slice beyond each."""
    half = 0.5 * abs(float(slice_mm))
    return float(bottom_mm) - half, float(top_mm) + half


def geometry_z_range(geom: Mapping) -> tuple[float, float]:
    """:func:`slack_z_range` of a resampled scan's geometry (``gohscore resample``)."""
    bottom, top = preprocess.original_z_range(geom)
    return slack_z_range(bottom, top, geom.get("lps_spacing_xyz_mm", geom["spacing_xyz_mm"])[2])


def cohort_problems(
    cohort_dir: str | Path, scans: Mapping[str, str], z_ranges: Mapping[str, tuple[float, float]]
) -> tuple[list[str], dict[str, pd.DataFrame]]:
    """Check a cohort's tables against its scans; return every problem found and the tables that passed.

    ``scans`` maps patient -> scan location, ``z_ranges`` patient -> (low, high) world z in mm
    (:func:`slack_z_range`). ``gohscore validate`` lists the problems; ``gohscore ingest`` stops at
    them. The tables are ``labels``, ``observers`` and ``patches`` (empty when absent).
    """
    cohort = Path(cohort_dir)
    problems: list[str] = []
    tables = {"observers": empty_observers(), "patches": empty_patches()}

    def attempt(check):
        try:
            return check()
        except GohscoreError as err:
            problems.append(str(err))
            return None

    labels_path = attempt(lambda: find_table(cohort, "labels"))
    labels = None
    if labels_path is None and not problems:
        problems.append(
            f"{cohort} has no labels table; add labels.csv (or .xlsx/.parquet), see docs/cohort-layout.md"
        )
    elif labels_path is not None:
        labels = attempt(lambda: validate_labels(read_table(labels_path), str(labels_path)))
    if labels is not None:
        tables["labels"] = labels
        for i, patient in enumerate(labels["patient"]):
            if patient not in scans:
                problems.append(
                    f"{labels_path} {row_name(i)}: patient {patient!r} has no scan; add scans/{patient}.nii.gz "
                    "(or another format) or delete the row"
                )
        for patient in sorted(set(scans) - set(labels["patient"])):
            problems.append(
                f"scan {scans[patient]} (patient {patient!r}) has no row in {labels_path}; "
                "add its labels or remove the scan"
            )
        attempt(lambda: check_levels_in_scans(labels, dict(z_ranges), str(labels_path)))
        observers_path = attempt(lambda: find_table(cohort, "observers"))
        if observers_path is not None:
            observers = attempt(
                lambda: validate_observers(read_table(observers_path), labels["patient"], str(observers_path))
            )
            if observers is not None:
                tables["observers"] = observers
    patches_csv = cohort / "patches" / "patches.csv"
    if patches_csv.is_file():
        patches = attempt(
            lambda: validate_patches(read_table(patches_csv), patches_csv.parent, str(patches_csv))
        )
        if patches is not None:
            tables["patches"] = patches
    return problems, tables


def cohort_tables(cohort_dir: str | Path, geometries: dict[str, dict]) -> dict[str, pd.DataFrame]:
    """Validate labels, observers and patches of a cohort against its resampled scans; stop at a problem.

    The checks are :func:`cohort_problems`, those of ``gohscore validate``.
    """
    scans = {p: str(g["path"]) for p, g in geometries.items()}
    z_ranges = {p: geometry_z_range(g) for p, g in geometries.items()}
    problems, tables = cohort_problems(cohort_dir, scans, z_ranges)
    if problems:
        more = (
            f" ({len(problems) - 1} more problem(s): run 'gohscore validate --cohort {cohort_dir}' to list them)"
            if len(problems) > 1
            else ""
        )
        raise GohscoreError(problems[0] + more)
    patches, labels = tables["patches"], tables["labels"]
    outside = sorted(set(patches["patient"]) - set(labels["patient"]))
    if outside:
        log.info(
            "%d patch source patient(s) are not in the cohort (e.g. %s); their patches are always usable",
            len(outside),
            outside[0],
        )
    return {**tables, "manifest": manifest_table(geometries)}
