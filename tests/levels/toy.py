"""The toy level cohort shared by the level tests: 32^3 volumes, known level offsets, tiny settings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

CPU = torch.device("cpu")


SIDE, SPACING = 32, 2.0


LEVEL_OFFSETS = np.array([17.0, 14.0, 10.5, 6.5, 2.5])  # grid slices above the diaphragm base


def toy_volume(base: float, rng: np.random.Generator) -> np.ndarray:
    """Soft tissue below the 'diaphragm' at ``base``, lung above, a bright 'carina' marker, noise."""
    z = np.arange(SIDE)[:, None, None]
    vol = np.where(z < base, 40.0, -850.0) + np.zeros((SIDE, SIDE, SIDE))
    vol[int(round(base + LEVEL_OFFSETS[1]))] += 600.0
    vol += rng.normal(0.0, 20.0, vol.shape)
    return vol.astype(np.int16)


def write_toy_cohort(root: Path, n_cv: int = 6, n_test: int = 2, seed: int = 0) -> dict[str, Path]:
    """Write volumes, manifest, labels and folds (2 CV folds + test) under ``root``; return their paths."""
    rng = np.random.default_rng(seed)
    vols = root / "preprocess"
    vols.mkdir(parents=True, exist_ok=True)
    manifest, labels, folds = [], [], []
    for i in range(n_cv + n_test):
        patient = f"P{i:03d}"
        base = float(rng.uniform(3.0, 11.0))
        np.save(vols / f"{patient}.npy", toy_volume(base, rng))
        origin_z = -40.0 - 3.0 * i
        geom = {
            "patient": patient,
            "grid_origin_xyz_mm": [-31.0, -31.0, origin_z],
            "grid_spacing_mm": SPACING,
            "grid_shape": SIDE,
            "lps_origin_xyz_mm": [-100.0, -120.0, origin_z - 7.5],
            "spacing_xyz_mm": [0.7, 0.7, 1.25],
            "lps_size_xyz": [64, 64, 60],
        }
        manifest.append(geom)
        row = {"patient": patient}
        row.update({f"L{k + 1}_z_mm": origin_z + SPACING * (base + LEVEL_OFFSETS[k]) for k in range(5)})
        labels.append(row)
        folds.append(
            {"patient": patient, "set": "cv" if i < n_cv else "test", "fold": i % 2 if i < n_cv else -1}
        )
    paths = {
        "volumes": vols,
        "manifest": root / "manifest.parquet",
        "labels": root / "labels.parquet",
        "folds": root / "folds.parquet",
    }
    pd.DataFrame(manifest).to_parquet(paths["manifest"], index=False)
    pd.DataFrame(labels).to_parquet(paths["labels"], index=False)
    pd.DataFrame(folds).to_parquet(paths["folds"], index=False)
    return paths


TINY_PARAMS = {
    "width": 2,
    "head_features": 16,
    "crop_z": 24,
    "hu_window": [-1500, 1500],
    "batch_size": 2,
    "epochs": 2,
    "steps_per_epoch": 2,
    "lr": 1.0e-3,
    "weight_decay": 1.0e-4,
    "val_fraction": 0.25,
    "checkpoint_every": 1,
}


def run_files(folder: Path) -> dict[str, Path]:
    """--model/--card/--history of a training run in ``folder`` (the workflow's names)."""
    return {
        "model": folder / "model.pt",
        "card": folder / "model.json",
        "history": folder / "history.parquet",
    }


def cli_args(paths: dict[str, Path], **extra: object) -> list[str]:
    """Command-line options for the toy cohort."""
    out = []
    for key in ("volumes", "manifest", "labels", "folds"):
        if key in paths:
            out += [f"--{key}", str(paths[key])]
    for key, value in extra.items():
        out += [f"--{key.replace('_', '-')}"] + (
            [str(v) for v in value] if isinstance(value, list) else [str(value)]
        )
    return out


class ConstantNet(torch.nn.Module):
    """A stand-in network that always outputs ``value`` (in output units)."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.full((x.shape[0], 5), self.value)
