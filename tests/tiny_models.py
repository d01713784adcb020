"""A results folder with tiny untrained level and score models (seeded), as a workflow run leaves them."""

from __future__ import annotations

from pathlib import Path

import torch

from gohscore.cards import ModelCard
from gohscore.levels.data import OutputScale
from gohscore.networks import vgg11, vgg11_channels

ABLATION = "balanced_synthesis"
CROP_Z = 24
LEVEL_NETWORK = {
    "spatial_dims": 3,
    "in_channels": 1,
    "out_features": 5,
    "width": 2,
    "head_features": 16,
    "dropout": 0.0,
    "channels": vgg11_channels(2, last_block=16),
    "pool_size": [1, 2, 2],
}
SCORE_NETWORK = {
    "spatial_dims": 2,
    "in_channels": 1,
    "out_features": 3,
    "width": 2,
    "head_features": 16,
    "dropout": 0.0,
    "pool_size": [2, 2],
}
#: the patients the cards say they were trained and validated on (a bundle must not carry them)
TRAIN = ["P0001", "P0002", "P0003"]
VAL = ["P0004"]


def _card(task: str, fold: int) -> ModelCard:
    scale = OutputScale.for_crop(CROP_Z)
    if task == "levels":
        return ModelCard(
            "levels",
            LEVEL_NETWORK,
            {
                "units": "HU",
                "grid_shape": 32,
                "spacing_mm": 9.6,
                "hu_window": [-1500.0, 1500.0],
                "crop_z": CROP_Z,
            },
            {"levels": [f"L{k}" for k in range(1, 6)], "offset": scale.offset, "scale": scale.scale},
            {"fold": fold, "seed": 7, "train_patients": TRAIN, "val_patients": VAL},
        )
    return ModelCard(
        "scores",
        SCORE_NETWORK,
        {"units": "HU", "input_size": 32, "hu_window": [-1500.0, 1500.0], "slices_per_level": 3},
        {"scores": ["TOT", "GG", "RET"], "scale": 100.0},
        {
            "fold": fold,
            "ablation": ABLATION,
            "train_patients": TRAIN,
            "val_patients": VAL,
            "texture_tiles": {"RET": 2, "GG": 2, "patients": TRAIN[:2]},
        },
    )


def write_tiny_results(results: Path, n_folds: int = 2, seed: int = 0) -> Path:
    """Write ``levels/fold{k}/`` and ``scores/<ABLATION>/fold{k}/`` (model.pt + model.json) under ``results``."""
    torch.manual_seed(seed)
    for fold in range(n_folds):
        for task, network, folder in (
            ("levels", LEVEL_NETWORK, results / "levels" / f"fold{fold}"),
            ("scores", SCORE_NETWORK, results / "scores" / ABLATION / f"fold{fold}"),
        ):
            folder.mkdir(parents=True, exist_ok=True)
            torch.save(vgg11(**network).state_dict(), folder / "model.pt")
            _card(task, fold).write(folder / "model.json", weights=folder / "model.pt")
    return results
