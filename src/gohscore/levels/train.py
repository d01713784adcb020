"""Train the 3D level network for one cross-validation fold (checkpoint chosen on an inner split, never on the fold)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from gohscore.cards import ModelCard
from gohscore.errors import GohscoreError
from gohscore.folds import inner_validation_split
from gohscore.goh import LEVELS, N_LEVELS
from gohscore.levels.data import (
    CropSampler,
    OutputScale,
    ResidentVolumes,
    grid_of,
    level_index_targets,
    manifest_geometries,
    steps_per_epoch,
)
from gohscore.levels.decode import decode_windows, spread_starts
from gohscore.levels.predict import window_indices
from gohscore.networks import DEFAULT_POOL, vgg11, vgg11_channels
from gohscore.settings import LevelParams, MachineParams
from gohscore.splits import check_split_fold, made_for
from gohscore.training import LoopConfig, RunFiles, configure_determinism, fit, machine_record, select_device

log = logging.getLogger("gohscore")

VALIDATION_WINDOWS = 5  # windows per validation patient (inference uses window_stride)


def network_args(params: LevelParams) -> dict:
    """vgg11() arguments of the level net: the paper's 3D layout with a doubled last block."""
    width = params.width
    return {
        "spatial_dims": 3,
        "in_channels": 1,
        "out_features": N_LEVELS,
        "width": width,
        "head_features": params.head_features,
        "dropout": params.dropout,
        "channels": vgg11_channels(width, last_block=16),
        "pool_size": list(DEFAULT_POOL[3]),
    }


def training_patients(folds: pd.DataFrame, fold: int, source: str) -> list[str]:
    """Cross-validation patients outside ``fold`` (sorted); the fold itself is never returned."""
    if not {"patient", "set", "fold"} <= set(folds.columns):
        raise GohscoreError(f"{source}: folds table needs columns patient, set, fold; rerun 'gohscore folds'")
    cv = folds[folds["set"] == "cv"]
    check_split_fold(folds, fold, source)  # a split table holds the training patients of one fold only
    if made_for(folds) is None and fold not in set(cv["fold"].astype(int)):
        raise GohscoreError(
            f"{source}: fold {fold} does not exist (folds {sorted(set(cv['fold']))}); fix --fold"
        )
    train = sorted(cv.loc[cv["fold"].astype(int) != fold, "patient"].astype(str))
    if not train:
        raise GohscoreError(f"{source}: no training patients outside fold {fold}; use more folds or patients")
    return train


def make_validate(
    data: ResidentVolumes, crop_z: int, spacing_mm: float, device: torch.device, amp: bool
) -> Callable[[nn.Module], dict[str, float]]:
    """Validation on whole volumes: a few sliding windows, median per level, MAE per level."""
    starts = spread_starts(data.side, crop_z, VALIDATION_WINDOWS)
    targets = data.targets.cpu().numpy()

    def validate(model: nn.Module) -> dict[str, float]:
        pred = np.stack(
            [
                decode_windows(window_indices(model, data.normalised(i), starts, crop_z, device, amp), starts)
                for i in range(len(data.patients))
            ]
        )
        err = np.abs(pred - targets)
        metrics = {"val_loss": float(err.mean() * spacing_mm), "val_mae": float(err.mean())}
        metrics.update({f"val_mae_L{k + 1}": float(err[:, k].mean()) for k in range(N_LEVELS)})
        return metrics

    return validate


def mm_loss(spacing_mm: float, scale: OutputScale) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """MSE in mm^2 between predicted and target level positions (outputs scaled back to slices)."""
    factor = scale.scale * spacing_mm

    def loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return torch.mean(((pred - target) * factor) ** 2)

    return loss


def fold_seed(seed: int, fold: int) -> int:
    """The fold's own seed, derived from the master seed."""
    return int(np.random.default_rng([seed, fold]).integers(2**31 - 1))


def train_levels(
    fold: int,
    volumes_dir: Path,
    manifest: pd.DataFrame,
    labels: pd.DataFrame,
    folds: pd.DataFrame,
    params: LevelParams,
    seed: int,
    files: RunFiles | Path,
    machine: MachineParams | None = None,
    sources: dict[str, str] | None = None,
) -> pd.DataFrame:
    """Train fold ``fold``'s level model; write its weights, card and history (``files``); return the history."""
    src = {"manifest": "manifest", "labels": "labels", "folds": "folds", **(sources or {})}
    p = params
    files = RunFiles.of(files)
    machine = machine or MachineParams.from_section({})
    device = select_device(machine.device)
    configure_determinism(machine.deterministic, device)
    amp = machine.amp and device.type == "cuda"
    crop_z, batch = p.crop_z, p.batch_size
    train_ids, val_ids = inner_validation_split(
        training_patients(folds, fold, src["folds"]), p.val_fraction, seed, fold, reuse_single=True
    )
    geoms = manifest_geometries(manifest, sorted(set(train_ids) | set(val_ids)), src["manifest"])
    side, spacing = grid_of(geoms, src["manifest"])
    if crop_z > side:
        raise GohscoreError(f"levels.crop_z ({crop_z}) exceeds the grid side ({side}); lower crop_z")
    log.info(
        "fold %d: %d training, %d inner-validation patients; grid %d^3 at %.3g mm; %s",
        fold,
        len(train_ids),
        len(val_ids),
        side,
        spacing,
        device,
    )

    def resident(ids: list[str]) -> ResidentVolumes:
        targets = level_index_targets(labels, {i: geoms[i] for i in ids}, src["labels"])
        return ResidentVolumes.load(volumes_dir, ids, side, list(p.hu_window), device, targets)

    train_data = resident(train_ids)
    val_data = train_data if val_ids == train_ids else resident(val_ids)
    sampler = CropSampler(
        train_data,
        crop_z,
        batch,
        sampling=p.crop_sampling,
        flip_probability=p.flip_probability,
        shift_voxels=p.shift_voxels,
    )
    cfg = LoopConfig(
        epochs=p.epochs,
        steps_per_epoch=steps_per_epoch(p.steps_per_epoch, len(train_ids), batch),
        lr=p.lr,
        lr_schedule=p.lr_schedule,
        weight_decay=p.weight_decay,
        checkpoint_every=p.checkpoint_every,
        amp=amp,
        seed=fold_seed(seed, fold),
    )
    torch.manual_seed(cfg.seed)
    net_args = network_args(p)
    model = vgg11(**net_args)
    history = fit(
        model,
        sampler,
        mm_loss(spacing, sampler.scale),
        make_validate(val_data, crop_z, spacing, device, amp),
        cfg,
        files,
        device,
        identity={
            "network": net_args,
            "params": {k: v for k, v in p.to_dict().items() if k != "epochs"},
            "train": list(train_ids),
            "val": list(val_ids),
        },
    )
    best = history.loc[history["val_loss"].idxmin()]
    card = level_card(net_args, p, side, spacing, fold, seed, cfg, train_ids, val_ids)
    card.training.update(
        {
            "epochs_run": int(history["epoch"].max()),
            "best_epoch": int(best["epoch"]),
            "best_val_loss_mm": float(best["val_loss"]),
            "machine": machine_record(device, amp, machine.deterministic),
        }
    )
    card.write(files.card, weights=files.model)
    log.info(
        "fold %d: best epoch %d, inner-validation MAE %.2f mm",
        fold,
        int(best["epoch"]),
        float(best["val_loss"]),
    )
    return history


def level_card(
    net_args: dict,
    p: LevelParams,
    side: int,
    spacing: float,
    fold: int,
    seed: int,
    cfg: LoopConfig,
    train_ids: list[str],
    val_ids: list[str],
) -> ModelCard:
    """The model card of a level network (what it reads, what it outputs, how it was trained)."""
    scale = OutputScale.for_crop(p.crop_z)
    return ModelCard(
        task="levels",
        network=net_args,
        input={
            "units": "HU",
            "grid_shape": side,
            "spacing_mm": spacing,
            "axes": "zyx, LPS, z index 0 = bottom",
            "hu_window": [float(v) for v in p.hu_window],
            "crop_z": p.crop_z,
            "normalisation": "clip to hu_window, then z-score with the volume's own mean and SD",
            "windows": "sliding windows of crop_z slices; median per level over windows and models",
        },
        output={
            "levels": [f"L{k}" for k in LEVELS],
            "meaning": "z index of each level inside the crop = offset + scale * output",
            "offset": scale.offset,
            "scale": scale.scale,
        },
        training={
            "fold": fold,
            "seed": seed,
            "loop_seed": cfg.seed,
            "epochs": cfg.epochs,
            "steps_per_epoch": cfg.steps_per_epoch,
            "batch_size": p.batch_size,
            "params": p.to_dict(),
            "lr": cfg.lr,
            "lr_schedule": cfg.lr_schedule,
            "weight_decay": cfg.weight_decay,
            "loss": "MSE in mm^2 (index error x spacing)",
            "augmentation": (
                "random z-crop "
                + (
                    "at any inference-window start"
                    if p.crop_sampling == "windows"
                    else "holding all five levels"
                )
                + "; HU gain +-5 %, shift +-25 HU"
                + f"; left-right mirror p {p.flip_probability:g}, in-plane shift up to {p.shift_voxels} voxels"
            ),
            "crop_sampling": p.crop_sampling,
            "selection": "lowest mean absolute level error (mm) on the inner validation patients",
            "train_patients": train_ids,
            "val_patients": val_ids,
        },
    )
