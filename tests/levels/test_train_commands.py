"""The train-levels and predict-levels commands on the toy cohort; the head's dropout."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from torch import nn

from gohscore.commands import predict_levels, train_levels
from gohscore.errors import GohscoreError
from gohscore.levels.predict import TABLE_COLUMNS
from gohscore.levels.train import network_args
from gohscore.networks import vgg11
from gohscore.settings import LevelParams
from tests.levels.toy import (
    TINY_PARAMS,
    cli_args,
    run_files,
    write_toy_cohort,
)


def test_train_and_predict_commands(tmp_path: Path) -> None:
    """train-levels never needs the reported fold's volumes; predict-levels writes the contract table."""
    import json

    paths = write_toy_cohort(tmp_path)
    folds = pd.read_parquet(paths["folds"])
    fold0 = folds.loc[(folds["set"] == "cv") & (folds["fold"] == 0), "patient"].tolist()
    hidden = tmp_path / "hidden"
    hidden.mkdir()
    for p in fold0:  # the reported fold's volumes are not even there during training
        (paths["volumes"] / f"{p}.npy").rename(hidden / f"{p}.npy")
    out0, out1 = tmp_path / "fold0", tmp_path / "fold1"
    common = ["--params-json", json.dumps(TINY_PARAMS), "--seed", "7"]
    assert train_levels.main(cli_args(paths, fold=0, **run_files(out0)) + common) == 0
    for p in fold0:
        (hidden / f"{p}.npy").rename(paths["volumes"] / f"{p}.npy")
    assert train_levels.main(cli_args(paths, fold=1, **run_files(out1)) + common) == 0
    for name in ("model.pt", "model.json", "history.parquet", "checkpoint.pt"):
        assert (out0 / name).is_file()
    card = json.loads((out0 / "model.json").read_text(encoding="utf-8"))
    assert not set(card["training"]["train_patients"] + card["training"]["val_patients"]) & set(fold0)
    assert card["task"] == "levels" and card["input"]["crop_z"] == 24
    assert card["training"]["fold"] == 0 and card["training"]["seed"] == 7
    assert card["training"]["params"]["width"] == 2 and "window_stride" not in card["training"]["params"]
    assert card["network"]["channels"] == [2, 4, 8, 8, 16, 16, 32, 32]
    hist = pd.read_parquet(out0 / "history.parquet")
    assert {"epoch", "train_loss", "val_loss", "val_mae_L1", "val_mae_L5", "seconds"} <= set(hist.columns)

    cv_out = tmp_path / "pred_cv.parquet"
    assert predict_levels.main(cli_args(paths, models=[out0 / "model.pt"], set="cv", fold=0, out=cv_out)) == 0
    t = pd.read_parquet(cv_out)
    assert list(t.columns) == TABLE_COLUMNS
    assert sorted(t["patient"].unique()) == sorted(fold0) and set(t["fold"]) == {0}
    assert t["ref_index"].notna().all() and t["pred_slice"].notna().all()

    test_out = tmp_path / "pred_test.parquet"
    no_labels = {k: v for k, v in paths.items() if k != "labels"}
    args = cli_args(no_labels, models=[out0 / "model.pt", out1 / "model.pt"], set="test", out=test_out)
    assert predict_levels.main(args) == 0
    t = pd.read_parquet(test_out)
    assert len(t) == 2 * 5 and set(t["set"]) == {"test"} and t["ref_z_mm"].isna().all()
    with pytest.raises(GohscoreError):
        train_levels.main(cli_args(paths, fold=3, **run_files(tmp_path / "x")) + common)


def test_level_network_dropout_comes_from_the_config() -> None:
    """No head dropout by default (it stopped the regression learning); a configured rate reaches the net."""

    def rates(params: dict) -> set[float]:
        net = vgg11(**network_args(LevelParams.from_section(params)))
        return {m.p for m in net.modules() if isinstance(m, nn.Dropout)}

    assert rates({"width": 1, "head_features": 4}) == {0.0}
    assert rates({"width": 1, "head_features": 4, "dropout": 0.25}) == {0.25}
