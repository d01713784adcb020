"""Level training on the toy cohort: the loss goes down, the best epoch is kept, a resumed run ends the same."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from gohscore.levels.data import ResidentVolumes, grid_of, level_index_targets, manifest_geometries
from gohscore.levels.train import make_validate, network_args, train_levels
from gohscore.networks import vgg11
from gohscore.settings import LevelParams
from tests.levels.toy import CPU, TINY_PARAMS, write_toy_cohort


def _train(paths: dict[str, Path], out: Path, **params: object) -> pd.DataFrame:
    """Train fold 0 of the toy cohort with TINY_PARAMS overridden by ``params``."""
    return train_levels(
        0,
        paths["volumes"],
        pd.read_parquet(paths["manifest"]),
        pd.read_parquet(paths["labels"]),
        pd.read_parquet(paths["folds"]),
        LevelParams.from_section({**TINY_PARAMS, **params}),
        11,
        out,
    )


def _validation_loss(paths: dict[str, Path], patients: list[str], weights: dict) -> float:
    """Inner-validation loss (mean level error, mm) of the tiny level net holding ``weights``."""
    geoms = manifest_geometries(pd.read_parquet(paths["manifest"]), patients, "manifest")
    side, spacing = grid_of(geoms, "manifest")
    targets = level_index_targets(pd.read_parquet(paths["labels"]), geoms, "labels")
    data = ResidentVolumes.load(paths["volumes"], patients, side, TINY_PARAMS["hu_window"], CPU, targets)
    model = vgg11(**network_args(LevelParams.from_section(TINY_PARAMS)))
    model.load_state_dict(weights)
    model.eval()
    validate = make_validate(data, int(TINY_PARAMS["crop_z"]), spacing, CPU, amp=False)
    with torch.no_grad():
        return validate(model)["val_loss"]


def test_tiny_level_training_lowers_the_loss(tmp_path: Path) -> None:
    """A few CPU epochs on 32^3 toy volumes bring the mm loss down; model.pt holds the best epoch's weights."""
    paths = write_toy_cohort(tmp_path, n_cv=8)
    run = tmp_path / "run"
    hist = _train(paths, run, epochs=12, steps_per_epoch=4, lr=3e-3, checkpoint_every=6)
    assert hist["train_loss"].iloc[-3:].mean() < 0.7 * hist["train_loss"].iloc[:2].mean()
    # the inner-validation error falls clearly below the untrained start (8.1 -> 3.7 mm here)
    assert hist["val_loss"].min() < 0.75 * hist["val_loss"].iloc[0]

    best = hist.loc[hist["val_loss"].idxmin()]
    card = json.loads((run / "model.json").read_text(encoding="utf-8"))["training"]
    assert card["best_epoch"] == int(best["epoch"])
    assert card["best_val_loss_mm"] == pytest.approx(float(best["val_loss"]))
    # the saved weights score the history's lowest validation loss, the last epoch's weights its last one
    val = card["val_patients"]
    selected = torch.load(run / "model.pt", weights_only=True)
    last = torch.load(run / "checkpoint.pt", weights_only=True)["model"]
    assert _validation_loss(paths, val, selected) == pytest.approx(float(best["val_loss"]), rel=1e-4)
    assert _validation_loss(paths, val, last) == pytest.approx(float(hist["val_loss"].iloc[-1]), rel=1e-4)


def test_level_training_resumes_to_identical_weights(tmp_path: Path) -> None:
    """3 epochs, then extended to 5 epochs, equal 5 epochs in one go (weights, best weights, history).

    With a constant rate only: under the cosine schedule the rate depends on the budget, so an
    extended run differs by design (the kill-and-restart case is tested in test_training.py).
    """
    paths = write_toy_cohort(tmp_path)
    _train(paths, tmp_path / "a", epochs=5, lr_schedule="constant")
    _train(paths, tmp_path / "b", epochs=3, lr_schedule="constant")
    hist = _train(paths, tmp_path / "b", epochs=5, lr_schedule="constant")
    a = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    ma = torch.load(tmp_path / "a" / "model.pt", weights_only=True)
    mb = torch.load(tmp_path / "b" / "model.pt", weights_only=True)
    assert all(torch.equal(ma[k], mb[k]) for k in ma)
    full = pd.read_parquet(tmp_path / "a" / "history.parquet")
    pd.testing.assert_frame_equal(full.drop(columns="seconds"), hist.drop(columns="seconds"))
    card_a = json.loads((tmp_path / "a" / "model.json").read_text(encoding="utf-8"))
    card_b = json.loads((tmp_path / "b" / "model.json").read_text(encoding="utf-8"))
    assert card_a == card_b
