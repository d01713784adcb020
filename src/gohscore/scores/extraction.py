"""Cut the level slices of a cohort: where the levels are (reference or predicted), and one folder of slices.

The folder holds ``{patient}.npy`` (``slices_per_level`` slices per level, HU, resized to
``input_size``) and ``index.parquet`` (one row per slice); it is written whole or not at all.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from gohscore.errors import GohscoreError
from gohscore.files import atomic_path
from gohscore.goh import LEVELS, Z_COLUMNS
from gohscore.ingest import manifest_geometry
from gohscore.progress import progress
from gohscore.scores.data import INDEX, INDEX_COLUMNS
from gohscore.scores.slices import extract_levels
from gohscore.settings import ScoreParams

log = logging.getLogger("gohscore")


def level_positions(tables: list[pd.DataFrame], source: str, names: list[str]) -> dict[str, list[float]]:
    """World z (mm) of levels 1..5 per patient, from wide labels (reference) or long predictions (predicted)."""
    out: dict[str, list[float]] = {}
    for table, name in zip(tables, names, strict=True):
        if source == "reference":
            cols = list(Z_COLUMNS)
            missing = [c for c in cols if c not in table.columns]
            if missing:
                raise GohscoreError(f"{name}: columns {missing} missing; pass ingest/labels.parquet")
            rows = {
                str(p): [float(v) for v in z]
                for p, z in zip(table["patient"], table[cols].to_numpy(), strict=True)
            }
        else:
            missing = [c for c in ("patient", "level", "pred_z_mm") if c not in table.columns]
            if missing:
                raise GohscoreError(f"{name}: columns {missing} missing; pass level predictions tables")
            wide = table.pivot_table(index="patient", columns="level", values="pred_z_mm", aggfunc="count")
            if (wide > 1).any().any():
                raise GohscoreError(
                    f"{name}: a patient has several predictions for one level; pass each table once"
                )
            wide = table.pivot(index="patient", columns="level", values="pred_z_mm")
            if sorted(wide.columns) != list(LEVELS):
                raise GohscoreError(f"{name}: levels {sorted(wide.columns)} found; expected 1..5 per patient")
            rows = {str(p): [float(wide.at[p, i]) for i in LEVELS] for p in wide.index}
        for patient, z in rows.items():
            if patient in out:
                raise GohscoreError(
                    f"{name}: patient {patient!r} also appears in another level table; pass it once"
                )
            if not np.all(np.isfinite(z)):
                raise GohscoreError(f"{name}: patient {patient!r} has a missing level position; fill it in")
            out[patient] = z
    return out


def extract_patient(
    geom: dict, level_z_mm: list[float], params: ScoreParams
) -> tuple[np.ndarray, pd.DataFrame]:
    """Read one scan and return its level slices and index rows."""
    import SimpleITK as sitk

    from gohscore.io import read_lps
    from gohscore.preprocess import original_slice_to_world_z, world_z_to_original_slice

    image = read_lps(Path(str(geom["path"])))
    volume = sitk.GetArrayFromImage(image)
    ks = [world_z_to_original_slice(z, geom) for z in level_z_mm]
    stack, rows, pixel_mm = extract_levels(
        volume, image.GetSpacing(), ks, params.slices_per_level, params.input_size
    )
    index = pd.DataFrame(rows)
    index.insert(0, "patient", str(geom["patient"]))
    index["z_mm"] = [float(original_slice_to_world_z(k, geom)) for k in index["slice_index"]]
    index["pixel_spacing_mm"] = pixel_mm
    return stack, index[INDEX_COLUMNS]


def write_slices(
    manifest: pd.DataFrame,
    positions: dict[str, list[float]],
    params: ScoreParams,
    out_dir: Path,
    manifest_name: str = "manifest",
    label: str = "extract-slices",
) -> list[str]:
    """Extract every manifest patient that has level positions into ``out_dir``; return the patients."""
    patients = [p for p in manifest["patient"] if p in positions]
    unknown = sorted(set(positions) - set(manifest["patient"]))
    if unknown:
        log.warning(
            "%d patients of the level tables are not in the manifest (skipped): %s", len(unknown), unknown[:5]
        )
    if not patients:
        raise GohscoreError(f"{manifest_name}: no patient of the manifest appears in the level tables")
    rows = manifest.set_index("patient")
    parts = []
    with atomic_path(out_dir, directory=True) as tmp:
        for patient in progress(patients, label):
            geom = manifest_geometry(rows.loc[patient]) | {"patient": patient}
            stack, index = extract_patient(geom, positions[patient], params)
            np.save(tmp / f"{patient}.npy", stack)
            parts.append(index)
            log.debug("%s: %d slices", patient, len(stack))
        pd.concat(parts, ignore_index=True).to_parquet(tmp / INDEX, index=False)
    return patients
