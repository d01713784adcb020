"""Level network: resident crops, sliding-window decoding, world/slice mapping, train and predict commands."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from gohscore import preprocess
from gohscore.commands import predict_levels, train_levels
from gohscore.errors import GohscoreError
from gohscore.levels.data import CropSampler, OutputScale, ResidentVolumes, crop_start_bounds, normalise
from gohscore.levels.decode import decode_windows, ensemble, spread_starts, window_starts
from gohscore.levels.predict import TABLE_COLUMNS, level_table, predict_levels_volume
from gohscore.levels.train import DEFAULTS, inner_split, network_args, training_patients
from gohscore.networks import vgg11

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
    "window_stride": 4,
    "device": "cpu",
    "amp": False,
}


def _args(paths: dict[str, Path], **extra: object) -> list[str]:
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


def test_window_starts_cover_the_volume() -> None:
    """Stride 4 over 256 with a 192 crop gives the paper's 17 windows, the last one flush with the top."""
    starts = window_starts(256, 192, 4)
    assert len(starts) == 17 and starts[0] == 0 and starts[-1] == 64
    assert window_starts(32, 24, 5).tolist() == [0, 5, 8]
    assert window_starts(24, 24, 4).tolist() == [0]
    assert spread_starts(256, 192, 5).tolist() == [0, 16, 32, 48, 64]
    with pytest.raises(ValueError):
        window_starts(20, 24, 4)


def test_decode_windows_median_with_offsets() -> None:
    """Each window's in-crop index is shifted by its start, then the median per level is taken."""
    starts = np.array([0, 4, 8, 12])
    # A perfect net: level at grid 30 and 10 -> in-crop 30 - s, 10 - s; one window is an outlier.
    per_window = np.array([[30.0, 10.0], [26.0, 6.0], [22.0, 2.0], [90.0, -50.0]])
    assert decode_windows(per_window, starts).tolist() == [30.0, 10.0]
    assert decode_windows(np.array([[1.0], [2.0], [10.0]]), np.array([0, 4, 8])).tolist() == [6.0]
    assert ensemble(np.array([[1.0, 5.0], [3.0, 7.0], [2.0, 100.0]])).tolist() == [2.0, 7.0]


def test_output_scale_round_trip() -> None:
    """Outputs map back to in-crop indices exactly; 0 is the crop centre."""
    s = OutputScale.for_crop(192)
    idx = torch.tensor([0.0, 95.5, 191.0])
    assert torch.allclose(s.to_index(s.to_output(idx)), idx)
    assert s.to_index(torch.zeros(1)).item() == pytest.approx(95.5)


def test_crops_hold_all_levels_and_match_the_volume(tmp_path: Path) -> None:
    """Every sampled crop contains the five levels; x is the normalised volume cut at the crop start."""
    rng = np.random.default_rng(3)
    bases = [3.0, 8.0, 11.0]
    vols = [toy_volume(b, rng) for b in bases]
    targets = np.array([[b + o for o in LEVEL_OFFSETS] for b in bases])
    data = ResidentVolumes.from_arrays(vols, ["a", "b", "c"], (-1500, 1500), CPU, targets)
    lo, hi = crop_start_bounds(targets, SIDE, 24)
    assert (lo <= hi).all()
    assert (lo + 24 > np.ceil(targets.max(1))).all() and (hi <= np.floor(targets.min(1))).all()
    sampler = CropSampler(data, 24, batch_size=16, hu_scale_jitter=0.0, hu_shift_jitter=0.0)
    gen = torch.Generator().manual_seed(0)
    x, y = sampler(gen)
    assert x.shape == (16, 1, 24, SIDE, SIDE) and y.shape == (16, 5)
    idx_in_crop = sampler.scale.to_index(y)
    assert (idx_in_crop >= 0).all() and (idx_in_crop <= 23).all()
    for b in range(16):
        # find the patient and start that reproduce this crop
        starts = {i: float(targets[i, 0] - idx_in_crop[b, 0]) for i in range(3)}
        hits = [
            i
            for i, s in starts.items()
            if abs(s - round(s)) < 1e-4
            and 0 <= round(s) <= SIDE - 24
            and torch.allclose(x[b, 0], data.normalised(i)[round(s) : round(s) + 24])
        ]
        assert hits, f"crop {b} does not match any volume"
    # same generator state -> same batch (seeded); the HU jitter is checked in the next test
    assert torch.equal(sampler(torch.Generator().manual_seed(0))[0], x)


def test_crop_hu_jitter_stays_within_gain_and_shift_bounds() -> None:
    """Each crop's HU become gain * HU + shift, gain in 1 +- 5 %, shift in +-25 HU, drawn per crop.

    The volume holds two known values (-800 HU in the front half, 200 HU in the back half of every
    slice), so the un-normalised crop gives both gain and shift: gain = (h200 - h800) / 1000 and
    shift = h800 + 800 * gain, where h800 and h200 are the jittered HU of the two halves.
    """
    base = 5.0
    vol = np.full((SIDE, SIDE, SIDE), 200, dtype=np.int16)
    vol[:, : SIDE // 2, :] = -800
    targets = np.array([[base + o for o in LEVEL_OFFSETS]])
    data = ResidentVolumes.from_arrays([vol], ["flat"], (-1500, 1500), CPU, targets)
    assert data.mean.item() == pytest.approx(-300.0) and data.std.item() > 400  # not the clamp at 1
    sampler = CropSampler(data, 24, batch_size=200)  # the defaults: gain +-0.05, shift +-25 HU
    x, _ = sampler(torch.Generator().manual_seed(5))
    hu = x.double() * data.std.double() + data.mean.double()  # undo the z-score
    low, high = hu[:, 0, :, : SIDE // 2, :], hu[:, 0, :, SIDE // 2 :, :]
    # one gain and one shift per crop: each half of a crop is a single value
    assert torch.allclose(low, low[:, :1, :1, :1].expand_as(low), atol=1e-3)
    assert torch.allclose(high, high[:, :1, :1, :1].expand_as(high), atol=1e-3)
    h800, h200 = low[:, 0, 0, 0], high[:, 0, 0, 0]
    gain = (h200 - h800) / 1000.0
    shift = h800 + 800.0 * gain
    assert (gain - 1).abs().max().item() <= 0.05 + 1e-6
    assert shift.abs().max().item() <= 25.0 + 1e-3
    # the draws fill the stated ranges (200 uniform draws all inside 80 % of a range: p = 0.8^200)
    assert (gain - 1).min().item() < -0.04 and (gain - 1).max().item() > 0.04
    assert shift.min().item() < -20.0 and shift.max().item() > 20.0
    # gain and shift are separate draws, and the batch is not one repeated crop
    assert not torch.allclose((gain - 1) / 0.05, shift / 25.0, atol=0.01)
    assert gain.unique().numel() > 100
    # the same seed without jitter gives the clean volume: gain 1, shift 0
    plain = CropSampler(data, 24, batch_size=200, hu_scale_jitter=0.0, hu_shift_jitter=0.0)
    x0, _ = plain(torch.Generator().manual_seed(5))
    clean = x0.double() * data.std.double() + data.mean.double()
    assert torch.allclose(clean[:, 0, :, : SIDE // 2, :], torch.full_like(low, -800.0), atol=1e-3)
    assert torch.allclose(clean[:, 0, :, SIDE // 2 :, :], torch.full_like(high, 200.0), atol=1e-3)


def test_normalise_clips_and_zscores() -> None:
    """HU outside the window are clipped before the z-score."""
    hu = torch.tensor([-3000.0, 0.0, 3000.0])
    out = normalise(hu, torch.tensor(0.0), torch.tensor(1500.0), (-1500, 1500))
    assert out.tolist() == [-1.0, 0.0, 1.0]


def test_inner_split_is_seeded_and_never_uses_the_fold() -> None:
    """The inner split depends on seed and fold only; the reported fold is excluded."""
    folds = pd.DataFrame(
        {
            "patient": [f"p{i}" for i in range(9)],
            "set": ["cv"] * 8 + ["test"],
            "fold": [0, 1, 0, 1, 0, 1, 0, 1, -1],
        }
    )
    train = training_patients(folds, 1, "folds")
    assert train == ["p0", "p2", "p4", "p6"]
    a, b = inner_split(train, 0.25, 7, 1), inner_split(train, 0.25, 7, 1)
    assert a == b and len(a[1]) == 1 and sorted(a[0] + a[1]) == train
    assert inner_split(["p0"], 0.25, 7, 1) == (["p0"], ["p0"])
    with pytest.raises(GohscoreError):
        training_patients(folds, 5, "folds")


def test_world_slice_round_trip() -> None:
    """Grid index -> world z -> original slice -> world z -> grid index is the identity."""
    geom = {
        "grid_origin_xyz_mm": [0.0, 0.0, -153.0],
        "grid_spacing_mm": 1.2,
        "grid_shape": 256,
        "lps_origin_xyz_mm": [-170.0, -190.0, -160.25],
        "spacing_xyz_mm": [0.68, 0.68, 1.25],
    }
    idx = np.array([0.0, 17.25, 128.0, 255.0])
    z = preprocess.grid_index_to_world_z(idx, geom)
    k = preprocess.world_z_to_original_slice(z, geom)
    assert np.allclose(k, (z + 160.25) / 1.25)
    back = preprocess.world_z_to_grid_index(preprocess.original_slice_to_world_z(k, geom), geom)
    assert np.allclose(back, idx)


def test_level_table_columns_and_mapping() -> None:
    """The table has the contract's columns; pred/ref z and slices follow the geometry."""
    geoms = {
        "A": {
            "grid_origin_xyz_mm": [0, 0, -100.0],
            "grid_spacing_mm": 2.0,
            "grid_shape": 32,
            "lps_origin_xyz_mm": [0, 0, -110.0],
            "spacing_xyz_mm": [1, 1, 2.5],
        }
    }
    folds = pd.DataFrame({"patient": ["A"], "set": ["test"], "fold": [-1]})
    pred = np.array([[20.0, 16.0, 12.0, 8.0, 4.0]])
    ref = np.array([[-60.0, -68.0, -76.0, -84.0, np.nan]])
    t = level_table(["A"], pred, ref, geoms, folds)
    assert list(t.columns) == TABLE_COLUMNS and len(t) == 5
    assert t["pred_z_mm"].tolist() == [-60.0, -68.0, -76.0, -84.0, -92.0]
    assert t["pred_slice"].tolist() == [20.0, 16.8, 13.6, 10.4, 7.2]
    assert np.allclose(t["ref_index"].iloc[:4], pred[0, :4]) and np.isnan(t["ref_index"].iloc[4])
    assert t["fold"].tolist() == [-1] * 5 and t["level"].tolist() == [1, 2, 3, 4, 5]


class _Constant(torch.nn.Module):
    """A stand-in network that always outputs ``value`` (in output units)."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.full((x.shape[0], 5), self.value)


def test_predict_levels_volume_decodes_and_ensembles() -> None:
    """A constant net predicts the crop centre in every window: median of starts + centre; models -> median."""
    card = {
        "input": {"hu_window": [-1500, 1500], "crop_z": 24, "grid_shape": 32},
        "inference": {"window_stride": 4, "amp": False},
    }
    vol = toy_volume(5.0, np.random.default_rng(0))
    starts = window_starts(32, 24, 4)  # 0, 4, 8
    centre = (24 - 1) / 2
    got = predict_levels_volume([_Constant(0.0)], vol, card, CPU)
    assert np.allclose(got, np.median(starts) + centre)
    got = predict_levels_volume([_Constant(0.0), _Constant(1.0), _Constant(-0.5)], vol, card, CPU)
    assert np.allclose(got, np.median(starts) + centre)
    got = predict_levels_volume([_Constant(1.0), _Constant(1.0 / 12)], vol, card, CPU)
    assert np.allclose(got, np.median(starts) + centre + (12 + 1) / 2)


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
    assert train_levels.main(_args(paths, fold=0, out_dir=out0) + common) == 0
    for p in fold0:
        (hidden / f"{p}.npy").rename(paths["volumes"] / f"{p}.npy")
    assert train_levels.main(_args(paths, fold=1, out_dir=out1) + common) == 0
    for name in ("model.pt", "model.json", "history.parquet", "checkpoint.pt"):
        assert (out0 / name).is_file()
    card = json.loads((out0 / "model.json").read_text(encoding="utf-8"))
    assert not set(card["training"]["train_patients"] + card["training"]["val_patients"]) & set(fold0)
    assert card["input"]["crop_z"] == 24 and card["fold"] == 0 and card["seed"] == 7
    assert card["network"]["channels"] == [2, 4, 8, 8, 16, 16, 32, 32]
    hist = pd.read_parquet(out0 / "history.parquet")
    assert {"epoch", "train_loss", "val_loss", "val_mae_L1", "val_mae_L5", "seconds"} <= set(hist.columns)

    cv_out = tmp_path / "pred_cv.parquet"
    assert predict_levels.main(_args(paths, models=[out0 / "model.pt"], set="cv", fold=0, out=cv_out)) == 0
    t = pd.read_parquet(cv_out)
    assert list(t.columns) == TABLE_COLUMNS
    assert sorted(t["patient"].unique()) == sorted(fold0) and set(t["fold"]) == {0}
    assert t["ref_index"].notna().all() and t["pred_slice"].notna().all()

    test_out = tmp_path / "pred_test.parquet"
    no_labels = {k: v for k, v in paths.items() if k != "labels"}
    args = _args(no_labels, models=[out0 / "model.pt", out1 / "model.pt"], set="test", out=test_out)
    assert predict_levels.main(args) == 0
    t = pd.read_parquet(test_out)
    assert len(t) == 2 * 5 and set(t["set"]) == {"test"} and t["ref_z_mm"].isna().all()
    with pytest.raises(GohscoreError):
        train_levels.main(_args(paths, fold=3, out_dir=tmp_path / "x") + common)


def test_level_network_dropout_comes_from_the_config() -> None:
    """No head dropout by default (it stopped the regression learning); a configured rate reaches the net."""

    def rates(params: dict) -> set[float]:
        net = vgg11(**network_args({**DEFAULTS, **params}))
        return {m.p for m in net.modules() if isinstance(m, nn.Dropout)}

    assert rates({"width": 1, "head_features": 4}) == {0.0}
    assert rates({"width": 1, "head_features": 4, "dropout": 0.25}) == {0.25}
