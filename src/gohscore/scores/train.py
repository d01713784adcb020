"""Train the 2D score network for one fold and ablation (none | balanced | balanced_synthesis).

The training slices, their labels and (for synthesis) the healthy slices' lung masks live on the
device; each batch is drawn there (uniform or balanced over TOT, see ``scores.sampling``), then,
with the synthesis ablation, a drawn sample is replaced with probability ``synthesis_probability``
by a synthetic GG/RET slice made from a random healthy (TOT = 0) training slice: only healthy
draws (``synthesis_on: healthy``, as the original code did) or any draw (``any``). Synthetic
extents either follow the ellipse geometry (``synthesis_extent: free``) or are aimed at the TOT
bins that the real draws under-fill (``fill``). Last, every slice is augmented (``augmentation``).
Targets are fractions (% / 100).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from gohscore.cards import ModelCard
from gohscore.errors import GohscoreError
from gohscore.files import atomic_path
from gohscore.folds import inner_validation_split
from gohscore.goh import PATTERNS, round_to_5_torch
from gohscore.progress import progress
from gohscore.scores.ablations import ABLATIONS, unread_keys
from gohscore.scores.augment import AugmentConfig, augment_batch
from gohscore.scores.data import fold_patients, load_slices, normalize_hu, slice_score_targets
from gohscore.scores.draws import draw_table, sample_synthetic_tot
from gohscore.scores.lungmask import lung_mask
from gohscore.scores.sampling import draw_indices, sampling_weights
from gohscore.scores.synthesis import (
    SynthesisConfig,
    apply_synthesis,
    draw_extents,
    draw_params,
    extent_targets,
    fit_extent,
    lung_summary,
)
from gohscore.scores.textures import TexturePool, check_pool_patients, load_pool, procedural_pool
from gohscore.settings import MachineParams, ScoreParams
from gohscore.training import RunFiles

log = logging.getLogger("gohscore")

TARGET_SCALE = 100.0  # network outputs are fractions of the lung area
DRAWS = "draws.parquet"  # beside the model: the label histograms of what it was taught (scores.draws)
MIN_LUNG_FRACTION = 0.02  # healthy slices with less lung than this (of the image) are not synthesised on


@dataclass
class SynthesisBank:
    """What synthesis needs on the device: healthy slices' rows, lung masks and samples, texture pools."""

    rows: torch.Tensor  # (M,) rows into the training images
    lungs: torch.Tensor  # (M, H, W) bool
    coords: np.ndarray  # (M, K, 2) lung pixel samples
    extent: np.ndarray  # (M,) lung extent, pixels
    ret_pool: TexturePool
    gg_pool: TexturePool | None
    probability: float
    cfg: SynthesisConfig
    on: str  # which draws may be replaced (scores.synthesis_on): healthy (TOT 0) ones or any
    extent_pmf: np.ndarray | None = None  # target TOT bins (5, 10, ...) of the syntheses; None: free


def build_bank(
    images: np.ndarray,
    targets: np.ndarray,
    patients: list[str],
    patches: pd.DataFrame,
    probability: float,
    seed: int,
    device: torch.device,
    cfg: SynthesisConfig | None = None,
    *,
    on: str,
) -> SynthesisBank | None:
    """Lung masks of the healthy training slices and texture pools of the training ``patients`` only."""
    cfg = cfg or SynthesisConfig()
    healthy = np.flatnonzero((targets == 0).all(axis=1))
    rng = np.random.default_rng([seed, 77])
    rows, lungs, coords, extents = [], [], [], []
    min_area = MIN_LUNG_FRACTION * images.shape[1] * images.shape[2]
    for r in progress(healthy, "lung masks of healthy training slices"):
        lung = lung_mask(images[r])
        if lung.sum() < min_area:
            continue
        c, e = lung_summary(lung, rng, cfg.lung_samples)
        rows.append(r)
        lungs.append(lung)
        coords.append(c)
        extents.append(e)
    if not rows:
        log.warning("no healthy training slice with a usable lung mask; training without synthesis")
        return None
    ret_pool = load_pool(patches, "RET", patients)
    gg_pool = load_pool(patches, "GG", patients)
    if ret_pool is None:
        log.warning("no RET texture patch of a training patient; using procedural reticulation textures")
        ret_pool = procedural_pool(seed)
    for pool in (ret_pool, gg_pool):
        if pool is not None:
            check_pool_patients(pool, patients)
    log.info(
        "synthesis on %d healthy slices; %d RET and %d GG texture tiles",
        len(rows),
        len(ret_pool),
        0 if gg_pool is None else len(gg_pool),
    )
    return SynthesisBank(
        rows=torch.as_tensor(np.asarray(rows), device=device),
        lungs=torch.as_tensor(np.stack(lungs), device=device),
        coords=np.stack(coords),
        extent=np.asarray(extents),
        ret_pool=ret_pool.to(device),
        gg_pool=None if gg_pool is None else gg_pool.to(device),
        probability=probability,
        cfg=cfg,
        on=on,
    )


def replace_probability(bank: SynthesisBank, healthy: np.ndarray) -> np.ndarray:
    """The chance that a draw is replaced by a synthesis, per draw (``healthy``: its TOT is 0)."""
    allowed = np.asarray(healthy, dtype=bool) if bank.on == "healthy" else np.ones(len(healthy), bool)
    return np.where(allowed, bank.probability, 0.0)


def synthesis_flags(bank: SynthesisBank, healthy: torch.Tensor) -> torch.Tensor:
    """Which of the drawn samples to replace (CPU bool ``(B,)``); ``healthy`` says which draws have TOT 0.

    The coin flips come from torch's global CPU generator, which the training loop checkpoints.
    """
    chance = torch.as_tensor(replace_probability(bank, healthy.cpu().numpy()), dtype=torch.float32)
    return torch.rand(len(healthy)) < chance


def synthesise_into(
    x: torch.Tensor,
    y: torch.Tensor,
    flags: torch.Tensor,
    images: torch.Tensor,
    spacing_mm: torch.Tensor,
    bank: SynthesisBank,
    rng: np.random.Generator | None = None,
) -> None:
    """Replace the flagged rows of the HU batch ``x`` and its scores ``y`` by syntheses (in place).

    Without ``rng`` the synthesis seed comes from torch's global CPU generator (checkpointed by the loop).
    """
    n = int(flags.sum())
    if not n:
        return
    rng = rng or np.random.default_rng(int(torch.randint(0, 2**62, (1,))))
    pick = rng.integers(0, len(bank.rows), size=n)
    n_gg = 0 if bank.gg_pool is None else len(bank.gg_pool)
    params = draw_params(rng, bank.coords[pick], bank.extent[pick], (n_gg, len(bank.ret_pool)), bank.cfg)
    on_device = torch.as_tensor(pick, device=images.device)
    lungs = bank.lungs[on_device]
    if bank.extent_pmf is not None:
        params = fit_extent(params, lungs, draw_extents(rng, bank.extent_pmf, n))
    src = bank.rows[on_device]
    res = apply_synthesis(
        images[src].float(), lungs, params, bank.ret_pool, bank.gg_pool, spacing_mm[src], bank.cfg
    )
    rows = torch.nonzero(flags).squeeze(1).to(images.device, non_blocking=True)
    x.index_copy_(0, rows, res.images.to(x.dtype))
    y.index_copy_(0, rows, res.scores.to(y.dtype))


def make_sampler(
    images: torch.Tensor,
    targets: torch.Tensor,
    spacing_mm: torch.Tensor,
    weights: torch.Tensor,
    batch_size: int,
    hu_window: list[float],
    bank: SynthesisBank | None,
    augment: AugmentConfig | None = None,
) -> Callable[[torch.Generator], tuple[torch.Tensor, torch.Tensor]]:
    """``sample_batch(generator)`` over device-resident slices: draw, maybe synthesise, augment, scale."""

    def sample_batch(gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        idx = draw_indices(weights, batch_size, gen)
        x = images[idx].float()
        y = targets[idx].clone()
        if bank is not None:
            flags = synthesis_flags(bank, (y == 0).all(dim=1))
            synthesise_into(x, y, flags, images, spacing_mm, bank)
        x = augment_batch(x, augment, gen)
        return normalize_hu(x, hu_window)[:, None], y / TARGET_SCALE

    return sample_batch


LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "mse": nn.functional.mse_loss,  # the paper's: the conditional mean
    "l1": nn.functional.l1_loss,  # the conditional median: 0 where most look-alike slices are healthy
}


def label_draws(
    tot: np.ndarray,
    weights: np.ndarray,
    bank: SynthesisBank | None,
    images: torch.Tensor,
    spacing_mm: torch.Tensor,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """The TOT histogram of the real slices, the draws and a sample of syntheses (``draws.parquet``)."""
    if bank is None:
        return draw_table(tot, weights, np.zeros(len(tot)), np.zeros(0))
    replaced = replace_probability(bank, np.asarray(tot) == 0)
    h, w = images.shape[1:]

    def make(k: int) -> torch.Tensor:
        x = torch.empty((k, h, w), device=images.device)
        y = torch.empty((k, 3), device=images.device)
        synthesise_into(x, y, torch.ones(k, dtype=torch.bool), images, spacing_mm, bank, rng)
        return y

    return draw_table(tot, weights, replaced, sample_synthetic_tot(make))


def make_validator(
    images: torch.Tensor,
    targets: torch.Tensor,
    groups: torch.Tensor,
    batch_size: int,
    hu_window: list[float],
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = nn.functional.mse_loss,
) -> Callable[[nn.Module], dict[str, float]]:
    """``validate(model)``: the training loss on every validation slice, and MAE (%) of rounded per-level means."""
    n_groups = int(groups.max()) + 1
    counts = torch.bincount(groups, minlength=n_groups).float()[:, None]
    level_ref = torch.zeros(n_groups, 3, device=targets.device).index_add_(0, groups, targets) / counts

    def validate(model: nn.Module) -> dict[str, float]:
        preds = []
        for start in range(0, images.shape[0], batch_size):
            x = normalize_hu(images[start : start + batch_size], hu_window)[:, None]
            preds.append(model(x).float())
        pred = torch.cat(preds)
        loss = loss_fn(pred, targets / TARGET_SCALE)
        level_pred = torch.zeros(n_groups, 3, device=pred.device).index_add_(0, groups, pred) / counts
        mae = (round_to_5_torch(level_pred * TARGET_SCALE) - level_ref).abs().mean(0)
        return {
            "val_loss": float(loss),
            **{f"val_mae_{s}": float(m) for s, m in zip(PATTERNS, mae, strict=True)},
        }

    return validate


def make_calibrator(
    images: torch.Tensor, batch_size: int, hu_window: list[float], rng: np.random.Generator
) -> Callable[[nn.Module], None]:
    """``calibrate(model)``: BatchNorm statistics recomputed over the real training slices ``images`` (HU).

    The slices go in one fixed shuffled order (``rng``, drawn once), in whole batches of
    ``batch_size``: in file order a batch would hold a few levels of one patient, whose statistics
    are narrower than those of the mixed batches the network was trained on.
    """
    from gohscore.training import recalibrate_batchnorm

    order = torch.as_tensor(rng.permutation(len(images)), device=images.device)
    starts = range(0, len(images) - batch_size + 1, batch_size) if len(images) >= batch_size else [0]

    def calibrate(model: nn.Module) -> None:
        batches = (
            normalize_hu(images[order[i : i + batch_size]].float(), hu_window)[:, None] for i in starts
        )
        recalibrate_batchnorm(model, batches)

    return calibrate


def train_scores(
    slices_dir: Path,
    labels: pd.DataFrame,
    folds: pd.DataFrame,
    patches: pd.DataFrame,
    params: ScoreParams,
    fold: int,
    ablation: str,
    seed: int,
    files: RunFiles | Path,
    draws_path: Path | None = None,
    machine: MachineParams | None = None,
) -> pd.DataFrame:
    """Train one score network (fold ``fold`` is never read); write its weights, card, history and draws.

    ``files`` is a :class:`~gohscore.training.RunFiles` (or a folder for its workflow names);
    ``draws_path`` defaults to ``draws.parquet`` beside the weights.
    """
    from gohscore.networks import DEFAULT_POOL, vgg11
    from gohscore.training import LoopConfig, configure_determinism, fit, machine_record, select_device

    files = RunFiles.of(files)
    draws_path = Path(draws_path) if draws_path else Path(files.model).with_name(DRAWS)
    machine = machine or MachineParams.from_section({})

    if ablation not in ABLATIONS:
        raise GohscoreError(f"--ablation {ablation!r} is unknown; use one of {', '.join(ABLATIONS)}")
    balanced, synthesis = ABLATIONS[ablation]
    hu_window = [float(v) for v in params.hu_window]
    size, batch_size = params.input_size, params.batch_size
    pool = fold_patients(folds, fold, "cv", exclude=True)
    if not pool:
        raise GohscoreError(f"folds table: no cross-validation patient outside fold {fold}; check --fold")
    train_p, val_p = inner_validation_split(pool, params.val_fraction, seed, fold)
    log.info(
        "fold %d, ablation %s: %d training and %d inner-validation patients",
        fold,
        ablation,
        len(train_p),
        len(val_p),
    )

    device = select_device(machine.device)
    configure_determinism(machine.deterministic, device)
    tr_img, tr_idx = load_slices(slices_dir, train_p)
    va_img, va_idx = load_slices(slices_dir, val_p)
    if tr_img.shape[1:] != (size, size):
        raise GohscoreError(
            f"{slices_dir}: slices are {tr_img.shape[1:]}, the config says input_size {size}; "
            "re-run 'gohscore extract-slices' with the same config"
        )
    tr_y, va_y = slice_score_targets(tr_idx, labels), slice_score_targets(va_idx, labels)

    draw_w = sampling_weights(tr_y[:, 0], balanced, params.balance_power, params.balance_keeps_healthy_share)
    bank = None
    if synthesis:
        bank = build_bank(
            tr_img,
            tr_y,
            train_p,
            patches,
            params.synthesis_probability,
            seed,
            device,
            on=params.synthesis_on,
        )
        if bank is not None and params.synthesis_extent == "fill":
            bank.extent_pmf = extent_targets(
                tr_y[:, 0], draw_w, params.synthesis_probability, params.synthesis_on
            )
            log.info("synthetic TOT targets (5, 10, ... %%): %s", np.round(bank.extent_pmf, 3).tolist())
    weights = torch.as_tensor(draw_w, dtype=torch.float32, device=device)
    augment = AugmentConfig.from_section(params.augmentation)
    tr_img_dev = torch.as_tensor(tr_img, device=device)
    spacing_dev = torch.as_tensor(tr_idx["pixel_spacing_mm"].to_numpy(np.float32), device=device)
    draws = label_draws(
        tr_y[:, 0], draw_w, bank, tr_img_dev, spacing_dev, np.random.default_rng([seed, fold, 99])
    )
    sampler = make_sampler(
        tr_img_dev,
        torch.as_tensor(tr_y, device=device),
        spacing_dev,
        weights,
        batch_size,
        hu_window,
        bank,
        augment,
    )
    groups = torch.as_tensor(
        va_idx.groupby(["patient", "level"], sort=False).ngroup().to_numpy().copy(), device=device
    )
    validate = make_validator(
        torch.as_tensor(va_img, device=device),
        torch.as_tensor(va_y, device=device),
        groups,
        4 * batch_size,
        hu_window,
        LOSSES[params.loss],
    )

    network = {
        "spatial_dims": 2,
        "in_channels": 1,
        "out_features": 3,
        "width": params.width,
        "head_features": params.head_features,
        "dropout": params.dropout,
        "pool_size": list(DEFAULT_POOL[2]),
    }
    loop_seed = int(np.random.default_rng([seed, fold]).integers(2**31))
    torch.manual_seed(loop_seed)  # the same initial weights for every ablation of a fold
    pretrained = params.pretrained
    model = vgg11(**network, pretrained=Path(pretrained) if pretrained else None)
    steps = params.steps_per_epoch or math.ceil(len(tr_img) / batch_size)
    cfg = LoopConfig(
        epochs=params.epochs,
        steps_per_epoch=int(steps),
        lr=params.lr,
        lr_schedule=params.lr_schedule,
        weight_decay=params.weight_decay,
        checkpoint_every=params.checkpoint_every,
        amp=machine.amp,
        seed=loop_seed,
        checkpoint_choice=params.checkpoint_choice,
    )
    calibrate = None
    if params.batchnorm_statistics == "recomputed":
        calibrate = make_calibrator(tr_img_dev, batch_size, hu_window, np.random.default_rng([seed, fold, 7]))
    read = {k: v for k, v in params.to_dict().items() if k not in unread_keys(ablation)}
    identity = {
        "network": network,
        "params": {k: v for k, v in read.items() if k not in ("epochs", "checkpoint_choice")},
        "ablation": ablation,
        "fold": fold,
        "train": sorted(map(str, set(train_p))),
    }
    history = fit(
        model,
        sampler,
        LOSSES[params.loss],
        validate,
        cfg,
        files,
        device,
        identity=identity,
        calibrate=calibrate,
    )
    with atomic_path(draws_path) as tmp:
        draws.to_parquet(tmp, index=False)
    best = history.loc[history["val_loss"].idxmin()] if len(history) else None
    chosen = best if params.checkpoint_choice == "best" or best is None else history.iloc[-1]
    card = ModelCard(
        task="scores",
        network=network,
        input={
            "units": "HU",
            "input_size": size,
            "hu_window": hu_window,
            "scaling": "HU clipped to hu_window, mapped linearly onto [-1, 1]",
            "slices_per_level": params.slices_per_level,
            "slices": "axial slices resized to input_size x input_size; a level's score is the mean over its slices",
        },
        output={
            "scores": list(PATTERNS),
            "scale": TARGET_SCALE,
            "unit": "fraction of the lung area on the slice (x scale = %)",
            "rounding": "mean over slices and models, rounded half up to a multiple of 5, clipped to [0, 100]",
        },
        training={
            "fold": fold,
            "seed": seed,
            "ablation": ablation,
            "params": read,
            "balanced_sampling": balanced,
            "synthesis": synthesis,
            "synthesis_config": asdict(SynthesisConfig()) if synthesis else None,
            "texture_tiles": None
            if bank is None
            else {
                "RET": len(bank.ret_pool),
                "GG": 0 if bank.gg_pool is None else len(bank.gg_pool),
                "patients": sorted(
                    set(bank.ret_pool.patients) | set(bank.gg_pool.patients if bank.gg_pool else [])
                ),
            },
            "loop": asdict(cfg),
            "train_patients": train_p,
            "val_patients": val_p,
            "selection": f"lowest inner-validation {params.loss} loss"
            if params.checkpoint_choice == "best"
            else "the last epoch",
            "batchnorm_statistics": params.batchnorm_statistics,
            "best_epoch": None if best is None else int(best["epoch"]),
            "best_val_loss": None if best is None else float(best["val_loss"]),
            "chosen_epoch": None if chosen is None else int(chosen["epoch"]),
            "machine": machine_record(device, machine.amp, machine.deterministic),
        },
    )
    card.write(files.card, weights=files.model)
    return history
