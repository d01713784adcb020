"""A tiny train-scores run per ablation on CPU, then predict-scores (CV fold and test ensemble)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
import torch

from gohscore.cards import load_model
from gohscore.commands import predict_scores, train_scores
from gohscore.scores.predict import predict_scores_slices
from tests.scores.test_lungmask import synthetic_slice

SIZE = 32
PARAMS = {
    "width": 2,
    "head_features": 8,
    "input_size": SIZE,
    "slices_per_level": 3,
    "hu_window": [-1500, 1500],
    "batch_size": 4,
    "epochs": 2,
    "steps_per_epoch": 2,
    "lr": 1e-3,
    "weight_decay": 1e-4,
    "val_fraction": 0.25,
    "checkpoint_every": 1,
    "synthesis_probability": 0.5,
    "pretrained": None,
}


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    """Slices folder, labels, folds and patches of 8 synthetic patients (6 CV in 2 folds, 2 test)."""
    root = tmp_path_factory.mktemp("cohort")
    rng = np.random.default_rng(0)
    slices = root / "slices"
    slices.mkdir()
    patients = [f"P{i}" for i in range(8)]
    index, labels = [], []
    for p_i, patient in enumerate(patients):
        stack = np.stack([synthetic_slice(SIZE, seed=p_i * 20 + k)[0] for k in range(15)]).astype(np.int16)
        np.save(slices / f"{patient}.npy", stack)
        row = {"patient": patient}
        for level in range(1, 6):
            gg, ret = (int(v) for v in rng.choice([0, 0, 5, 10, 30], size=2))
            row |= {
                f"L{level}_z_mm": -10.0 * level,
                f"L{level}_TOT": float(max(gg, ret)),
                f"L{level}_GG": float(gg),
                f"L{level}_RET": float(ret),
            }
            for o, off in enumerate((-1, 0, 1)):
                r = (level - 1) * 3 + o
                index.append(
                    {
                        "patient": patient,
                        "level": level,
                        "offset": off,
                        "row": r,
                        "slice_index": 40 - r,
                        "z_mm": -10.0 * level + off,
                        "pixel_spacing_mm": 10.0,
                    }
                )
        labels.append(row)
    pd.DataFrame(index).to_parquet(slices / "index.parquet")
    pd.DataFrame(labels).to_parquet(root / "labels.parquet")
    folds = pd.DataFrame(
        {"patient": patients, "set": ["cv"] * 6 + ["test"] * 2, "fold": [0, 1, 0, 1, 0, 1, -1, -1]}
    )
    folds.to_parquet(root / "folds.parquet")
    rows = []
    for patient in patients:
        path = root / f"{patient}_RET.nii.gz"
        sitk.WriteImage(sitk.GetImageFromArray(np.full((6, 6), -200.0, np.float32)), str(path))
        rows.append({"file": str(path), "pattern": "RET", "patient": patient})
    pd.DataFrame(rows).to_parquet(root / "patches.parquet")
    pd.DataFrame(columns=["file", "pattern", "patient"]).to_parquet(root / "no_patches.parquet")
    return root


def _train(
    root,
    ablation: str,
    fold: int,
    patches: str = "patches.parquet",
    params: dict | None = None,
    name: str = "",
) -> None:
    out = root / (name or ablation) / f"fold{fold}"
    assert (
        train_scores.main(
            [
                "--fold",
                str(fold),
                "--ablation",
                ablation,
                "--slices",
                str(root / "slices"),
                "--labels",
                str(root / "labels.parquet"),
                "--folds",
                str(root / "folds.parquet"),
                "--patches",
                str(root / patches),
                "--params-json",
                json.dumps({**PARAMS, **(params or {})}),
                "--seed",
                "3",
                "--model",
                str(out / "model.pt"),
                "--card",
                str(out / "model.json"),
                "--history",
                str(out / "history.parquet"),
                "--draws",
                str(out / "draws.parquet"),
                "--device",
                "cpu",
            ]
        )
        == 0
    )


@pytest.mark.parametrize("ablation", ["none", "balanced", "balanced_synthesis"])
def test_train_scores_writes_model_card_history(cohort, ablation):
    _train(cohort, ablation, 0)
    out = cohort / ablation / "fold0"
    assert (out / "model.pt").is_file() and (out / "history.parquet").is_file()
    card = json.loads((out / "model.json").read_text(encoding="utf-8"))
    assert card["task"] == "scores" and card["output"]["scores"] == ["TOT", "GG", "RET"]
    assert card["input"]["input_size"] == SIZE and "torch" in card["software"]
    card = card["training"]
    assert card["ablation"] == ablation and card["fold"] == 0 and card["seed"] == 3
    assert card["params"]["width"] == 2 and "ablations" not in card["params"]
    fold0 = {"P0", "P2", "P4"}
    assert not fold0 & set(card["train_patients"]) and not fold0 & set(card["val_patients"])
    history = pd.read_parquet(out / "history.parquet")
    assert len(history) == 2 and {"val_loss", "val_mae_TOT"} <= set(history.columns)
    if ablation == "balanced_synthesis":
        # Leak check: textures only from the patients actually trained on (not inner-val, fold 0, test).
        assert set(card["texture_tiles"]["patients"]) == set(card["train_patients"])
    model, _ = load_model(out / "model.pt")
    assert model(torch.zeros(1, 1, SIZE, SIZE)).shape == (1, 3)


def test_train_scores_without_patches_uses_procedural_textures(cohort):
    _train(cohort, "balanced_synthesis", 1, patches="no_patches.parquet")
    card = json.loads((cohort / "balanced_synthesis" / "fold1" / "model.json").read_text(encoding="utf-8"))
    assert card["training"]["texture_tiles"]["patients"] == ["<procedural>"]


def test_predict_scores_tables(cohort):
    if not (cohort / "none" / "fold1" / "model.pt").exists():
        _train(cohort, "none", 1)
    if not (cohort / "none" / "fold0" / "model.pt").exists():
        _train(cohort, "none", 0)
    out = cohort / "pred_cv.parquet"
    assert (
        predict_scores.main(
            [
                "--models",
                str(cohort / "none" / "fold0" / "model.pt"),
                "--slices",
                str(cohort / "slices"),
                "--folds",
                str(cohort / "folds.parquet"),
                "--set",
                "cv",
                "--fold",
                "0",
                "--ablation",
                "none",
                "--source",
                "reference",
                "--labels",
                str(cohort / "labels.parquet"),
                "--device",
                "cpu",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    table = pd.read_parquet(out)
    assert list(table.columns) == [
        "patient",
        "set",
        "fold",
        "ablation",
        "level",
        "source",
        "pred_TOT",
        "pred_GG",
        "pred_RET",
        "ref_TOT",
        "ref_GG",
        "ref_RET",
    ]
    assert sorted(set(table["patient"])) == ["P0", "P2", "P4"] and len(table) == 15
    assert (table["fold"] == 0).all() and table["ref_TOT"].notna().all()
    preds = table[["pred_TOT", "pred_GG", "pred_RET"]].to_numpy()
    assert np.all(preds % 5 == 0) and preds.min() >= 0 and preds.max() <= 100

    test_out = cohort / "pred_test.parquet"
    assert (
        predict_scores.main(
            [
                "--models",
                str(cohort / "none" / "fold0" / "model.pt"),
                str(cohort / "none" / "fold1" / "model.pt"),
                "--slices",
                str(cohort / "slices"),
                "--folds",
                str(cohort / "folds.parquet"),
                "--set",
                "test",
                "--ablation",
                "none",
                "--source",
                "predicted",
                "--device",
                "cpu",
                "--out",
                str(test_out),
            ]
        )
        == 0
    )
    test = pd.read_parquet(test_out)
    assert sorted(set(test["patient"])) == ["P6", "P7"] and (test["fold"] == -1).all()
    assert test["ref_TOT"].isna().all() and (test["source"] == "predicted").all()

    models, cards = zip(*(load_model(cohort / "none" / f"fold{k}" / "model.pt") for k in (0, 1)), strict=True)
    one = predict_scores_slices(
        list(models), np.load(cohort / "slices" / "P6.npy"), cards[0], torch.device("cpu")
    )
    assert one.shape == (5, 3)
    assert np.array_equal(one, test[test["patient"] == "P6"][["pred_TOT", "pred_GG", "pred_RET"]].to_numpy())


def test_last_weights_with_recomputed_batchnorm(cohort):
    """checkpoint_choice last + batchnorm_statistics recomputed: model.pt holds the last epoch's
    weights, the same as without recomputing but for the BatchNorm statistics; the card says so."""
    params = {"checkpoint_choice": "last", "batchnorm_statistics": "recomputed", "epochs": 3}
    _train(cohort, "none", 0, params=params, name="last_recomputed")
    out = cohort / "last_recomputed" / "fold0"
    card = json.loads((out / "model.json").read_text(encoding="utf-8"))["training"]
    assert card["chosen_epoch"] == 3 and card["selection"] == "the last epoch"
    assert card["batchnorm_statistics"] == "recomputed"
    written = torch.load(out / "model.pt", weights_only=True)
    last = torch.load(out / "checkpoint.pt", weights_only=True)["model"]
    assert all(torch.equal(written[k], last[k]) for k in last)
    _train(cohort, "none", 0, params={**params, "batchnorm_statistics": "running"}, name="last_running")
    trained = torch.load(cohort / "last_running" / "fold0" / "model.pt", weights_only=True)
    running = [k for k in written if k.endswith("running_var")]
    assert running and not any(torch.equal(written[k], trained[k]) for k in running)
    weights = [k for k in written if "running" not in k and "num_batches" not in k]
    assert all(torch.equal(written[k], trained[k]) for k in weights)  # the same training path


class _Recorder(torch.nn.Module):
    """Keeps every input it is given, then a BatchNorm (so that recalibration runs it)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[torch.Tensor] = []
        self.bn = torch.nn.BatchNorm2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.clone())
        return self.bn(x)


def test_calibrator_feeds_whole_shuffled_batches_of_distinct_slices():
    """10 slices of one value each, batches of 4: 2 batches, 8 distinct slices, not in file order,
    scaled like the network's input, the same order at every call."""
    from gohscore.scores.train import make_calibrator

    hu = torch.arange(10, dtype=torch.float32)[:, None, None].expand(10, 2, 2) * 100 - 1000
    calibrate = make_calibrator(hu, 4, [-1500, 1500], np.random.default_rng(0))
    model = _Recorder().eval()
    calibrate(model)
    assert [x.shape for x in model.seen] == [(4, 1, 2, 2)] * 2
    values = torch.cat(model.seen)[:, 0, 0, 0]
    slices = torch.round((values + 1) * 1500 - 1500 + 1000) / 100  # back to the slice number
    assert len(set(slices.tolist())) == 8 and slices.tolist() != sorted(slices.tolist())
    first = torch.cat(model.seen)
    model.seen.clear()
    calibrate(model)
    assert torch.equal(torch.cat(model.seen), first) and not model.training
