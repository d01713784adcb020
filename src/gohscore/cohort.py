"""Cohort folder layout: find the scans and tables of a user's cohort (standard library only).

The Snakefile imports this module at parse time to list the patients, so it must not
import numpy, pandas or SimpleITK. See docs/cohort-layout.md for the layout.
"""

from __future__ import annotations

import logging
from pathlib import Path

from gohscore.errors import GohscoreError

log = logging.getLogger("gohscore")

#: image file endings accepted in ``scans/`` (longest first so ``.nii.gz`` wins over ``.gz``)
IMAGE_SUFFIXES: tuple[str, ...] = (".nii.gz", ".nii", ".mha", ".mhd", ".nrrd", ".nhdr")
#: data files that belong to a header file (``.mhd`` + ``.raw``, ``.nhdr`` + ``.raw``)
COMPANION_SUFFIXES: tuple[str, ...] = (".raw", ".zraw", ".raw.gz")
#: archive endings accepted in ``scans/``: read as the folder they unpack to
ARCHIVE_SUFFIXES: tuple[str, ...] = (".zip",)
#: optional folder of lesion masks at the levels, one ``<patient>.npz`` each (gohscore.lesion_masks)
MASK_DIR = "masks"
#: table file endings, in the order they are looked for
TABLE_SUFFIXES: tuple[str, ...] = (".csv", ".xlsx", ".parquet")


def image_suffix(path: str | Path) -> str | None:
    """Return the recognised image ending of ``path`` (lower case), or None."""
    name = Path(path).name.lower()
    for suffix in IMAGE_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return suffix
    return None


def archive_suffix(path: str | Path) -> str | None:
    """Return the recognised archive ending of ``path`` (lower case), or None."""
    name = Path(path).name.lower()
    for suffix in ARCHIVE_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return suffix
    return None


def _visible(path: Path) -> bool:
    """True for entries that are not hidden (``.DS_Store``, ``._x``, ``.git``)."""
    return not path.name.startswith(".")


def discover_scans(cohort_dir: str | Path) -> dict[str, Path]:
    """Map patient id -> scan entry (image file, folder or .zip) under ``<cohort>/scans/``, sorted by id."""
    cohort = Path(cohort_dir)
    scans_dir = cohort / "scans"
    if not cohort.is_dir():
        raise GohscoreError(
            f"cohort folder {cohort} does not exist; pass the folder that holds scans/ and labels.csv"
        )
    if not scans_dir.is_dir():
        raise GohscoreError(
            f"{scans_dir} is missing; put one scan per patient in {scans_dir}/ (see docs/cohort-layout.md)"
        )
    found: dict[str, Path] = {}
    for entry in sorted(scans_dir.iterdir()):
        if not _visible(entry):
            continue
        if entry.is_dir():
            patient = entry.name
        else:
            suffix = image_suffix(entry) or archive_suffix(entry)
            if suffix is None:
                if entry.name.lower().endswith(COMPANION_SUFFIXES):
                    continue
                log.warning(
                    "ignoring %s: not a scan (expected %s or a folder)",
                    entry,
                    ", ".join(IMAGE_SUFFIXES + ARCHIVE_SUFFIXES),
                )
                continue
            patient = entry.name[: -len(suffix)]
        if patient in found:
            raise GohscoreError(
                f"patient id {patient!r} has two scans in {scans_dir}: {found[patient].name} and {entry.name}; keep one"
            )
        found[patient] = entry
    if not found:
        raise GohscoreError(
            f"no scans found in {scans_dir}; expected <id>.nii.gz, <id>.mha, <id>.nrrd, <id>.zip or <id>/ folders"
        )
    return dict(sorted(found.items()))


def find_table(cohort_dir: str | Path, stem: str) -> Path | None:
    """Return ``<cohort>/<stem>.csv|.xlsx|.parquet`` if exactly one exists, None if none; error if several."""
    cohort = Path(cohort_dir)
    hits = [cohort / f"{stem}{suffix}" for suffix in TABLE_SUFFIXES if (cohort / f"{stem}{suffix}").is_file()]
    if len(hits) > 1:
        names = ", ".join(p.name for p in hits)
        raise GohscoreError(f"{cohort} holds several {stem} tables ({names}); keep exactly one")
    return hits[0] if hits else None


def scan_image_file(entry: str | Path) -> Path | None:
    """For a scan folder holding exactly one image file (at its top), return that file; None means DICOM.

    A file entry is returned as it is (an image file, a .zip or a DICOMDIR: the reader resolves it).
    """
    entry = Path(entry)
    if not entry.is_dir():
        return entry
    images = [p for p in sorted(entry.iterdir()) if _visible(p) and p.is_file() and image_suffix(p)]
    if len(images) > 1:
        names = ", ".join(p.name for p in images)
        raise GohscoreError(f"scan folder {entry} holds several image files ({names}); keep one per patient")
    return images[0] if images else None
