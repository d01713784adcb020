"""``gohscore extract-slices``: cut ``slices_per_level`` axial slices around each level (reference or
predicted) from the original scans, resized to ``input_size``² in HU, plus an index table."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from gohscore.errors import GohscoreError
from gohscore.files import atomic_path, read_parquet
from gohscore.ingest import manifest_geometry
from gohscore.progress import progress
from gohscore.scores.data import INDEX, INDEX_COLUMNS
from gohscore.scores.slices import extract_levels
from gohscore.scores.tables_io import parse_params

log = logging.getLogger("gohscore")

N_LEVELS = 5


def level_positions(tables: list[pd.DataFrame], source: str, names: list[str]) -> dict[str, list[float]]:
    """World z (mm) of levels 1..5 per patient, from wide labels (reference) or long predictions (predicted)."""
    out: dict[str, list[float]] = {}
    for table, name in zip(tables, names, strict=True):
        if source == "reference":
            cols = [f"L{i}_z_mm" for i in range(1, N_LEVELS + 1)]
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
            if sorted(wide.columns) != list(range(1, N_LEVELS + 1)):
                raise GohscoreError(f"{name}: levels {sorted(wide.columns)} found; expected 1..5 per patient")
            rows = {str(p): [float(wide.at[p, i]) for i in range(1, N_LEVELS + 1)] for p in wide.index}
        for patient, z in rows.items():
            if patient in out:
                raise GohscoreError(
                    f"{name}: patient {patient!r} also appears in another level table; pass it once"
                )
            if not np.all(np.isfinite(z)):
                raise GohscoreError(f"{name}: patient {patient!r} has a missing level position; fill it in")
            out[patient] = z
    return out


def extract_patient(geom: dict, level_z_mm: list[float], params: dict) -> tuple[np.ndarray, pd.DataFrame]:
    """Read one scan and return its level slices and index rows."""
    import SimpleITK as sitk

    from gohscore.io import read_lps
    from gohscore.preprocess import original_slice_to_world_z, world_z_to_original_slice

    image = read_lps(Path(str(geom["path"])))
    volume = sitk.GetArrayFromImage(image)
    ks = [world_z_to_original_slice(z, geom) for z in level_z_mm]
    stack, rows, pixel_mm = extract_levels(
        volume, image.GetSpacing(), ks, int(params["slices_per_level"]), int(params["input_size"])
    )
    index = pd.DataFrame(rows)
    index.insert(0, "patient", str(geom["patient"]))
    index["z_mm"] = [float(original_slice_to_world_z(k, geom)) for k in index["slice_index"]]
    index["pixel_spacing_mm"] = pixel_mm
    return stack, index[INDEX_COLUMNS]


def build_parser() -> argparse.ArgumentParser:
    """The command's options."""
    p = argparse.ArgumentParser(prog="gohscore extract-slices", description=__doc__)
    p.add_argument("--manifest", type=Path, required=True, help="ingest/manifest.parquet")
    p.add_argument(
        "--levels",
        type=Path,
        nargs="+",
        required=True,
        help="labels.parquet (reference) or level prediction tables (predicted)",
    )
    p.add_argument("--source", choices=["reference", "predicted"], required=True)
    p.add_argument("--params-json", required=True, help="the 'scores:' config section as JSON")
    p.add_argument("--out-dir", type=Path, required=True, help="folder for {patient}.npy and index.parquet")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the command."""
    args = build_parser().parse_args(argv)
    params = parse_params(args.params_json, ["input_size", "slices_per_level"])
    manifest = read_parquet(args.manifest, "manifest", ["patient", "path"])
    tables = [read_parquet(p, "level table", ["patient"]) for p in args.levels]
    positions = level_positions(tables, args.source, [str(p) for p in args.levels])
    patients = [p for p in manifest["patient"] if p in positions]
    unknown = sorted(set(positions) - set(manifest["patient"]))
    if unknown:
        log.warning(
            "%d patients of the level tables are not in the manifest (skipped): %s", len(unknown), unknown[:5]
        )
    if not patients:
        raise GohscoreError(f"{args.manifest}: no patient of the manifest appears in the level tables")
    rows = manifest.set_index("patient")
    parts = []
    with atomic_path(args.out_dir, directory=True) as tmp:
        for patient in progress(patients, f"extract-slices ({args.source})"):
            geom = manifest_geometry(rows.loc[patient]) | {"patient": patient}
            stack, index = extract_patient(geom, positions[patient], params)
            np.save(tmp / f"{patient}.npy", stack)
            parts.append(index)
            log.debug("%s: %d slices", patient, len(stack))
        pd.concat(parts, ignore_index=True).to_parquet(tmp / INDEX, index=False)
    log.info("wrote %s: %d patients", args.out_dir, len(patients))
    return 0
