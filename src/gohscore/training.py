"""The shared training loop: device choice, bf16 autocast on GPU, checkpoints, resume, history.

The loop never touches data loading: the caller hands it ``sample_batch(generator)``, which draws a
batch already on the device (the level and score data sets live in GPU memory), and
``validate(model)``, which returns ``{"val_loss": ..., ...}`` on an inner validation split.
A checkpoint holds everything needed to continue bit-for-bit: weights, optimiser, epoch,
the batch generator's state and torch's global RNG state (dropout), the best weights so far
and the history, so a run killed and restarted by Snakemake ends where an unbroken run ends.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from gohscore.errors import GohscoreError
from gohscore.files import atomic_path

log = logging.getLogger("gohscore")

CHECKPOINT = "checkpoint.pt"  # beside the weights file


@dataclass(frozen=True)
class RunFiles:
    """Where one training run writes: the selected weights, the model card and the history.

    The resumable checkpoint lies beside the weights (``checkpoint.pt`` in the same folder).
    """

    model: Path
    card: Path
    history: Path

    @property
    def checkpoint(self) -> Path:
        return Path(self.model).with_name(CHECKPOINT)

    @classmethod
    def in_folder(cls, folder: Path) -> RunFiles:
        """The workflow's names in ``folder``: model.pt, model.json, history.parquet."""
        folder = Path(folder)
        return cls(folder / "model.pt", folder / "model.json", folder / "history.parquet")

    @classmethod
    def of(cls, files: RunFiles | Path) -> RunFiles:
        """``files`` itself, or :meth:`in_folder` of a folder."""
        return files if isinstance(files, RunFiles) else cls.in_folder(files)


def select_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when torch sees a GPU, else the CPU; ``cpu``/``cuda``/``cuda:N`` are taken as given."""
    name = (name or "auto").strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise GohscoreError(f"device {name!r} is not a torch device; use auto, cpu or cuda") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise GohscoreError(f"device {name!r} was asked for but torch sees no GPU; set device: auto or cpu")
    if device.type not in ("cpu", "cuda"):
        raise GohscoreError(f"device {name!r} is not supported; use auto, cpu or cuda")
    return device


@dataclass
class LoopConfig:
    """What the loop needs to know: budget, optimiser, checkpoint cadence, precision, seed."""

    epochs: int
    steps_per_epoch: int
    lr: float = 1e-4
    weight_decay: float = 1e-4
    checkpoint_every: int = 10
    amp: bool = True
    seed: int = 0
    lr_schedule: str = "constant"


LR_SCHEDULES = ("constant", "cosine")


def lr_at(cfg: LoopConfig, epoch: int) -> float:
    """The learning rate of epoch ``epoch`` (1-based): ``cfg.lr`` throughout, or a cosine decay.

    ``cosine`` starts at ``cfg.lr`` and falls along half a cosine to ``cfg.lr / 100`` in the last
    epoch. The rate is a function of the epoch alone, so a resumed run follows the same schedule.
    """
    if cfg.lr_schedule == "constant":
        return cfg.lr
    if cfg.lr_schedule == "cosine":
        floor = cfg.lr / 100
        done = (epoch - 1) / max(1, cfg.epochs - 1)
        return floor + (cfg.lr - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, done)))
    raise GohscoreError(f"lr_schedule {cfg.lr_schedule!r} is unknown; use one of {', '.join(LR_SCHEDULES)}")


def memory_format_for(ndim: int) -> torch.memory_format:
    """Channels-last layout for a 4D (2D images) or 5D (3D volumes) tensor."""
    return torch.channels_last_3d if ndim == 5 else torch.channels_last


def first_conv(model: nn.Module) -> nn.Conv2d | nn.Conv3d | None:
    """The model's first 2D or 3D convolution (``None`` if it has none)."""
    return next((m for m in model.modules() if isinstance(m, nn.Conv2d | nn.Conv3d)), None)


def spatial_dims(model: nn.Module) -> int:
    """The number of spatial dimensions of the model's first convolution (2 or 3; 0 if none)."""
    conv = first_conv(model)
    return 0 if conv is None else 3 if isinstance(conv, nn.Conv3d) else 2


def prepare_model(model: nn.Module, device: torch.device) -> nn.Module:
    """Move the model to ``device``; on CUDA also switch to channels-last and enable cuDNN autotuning."""
    model = model.to(device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        dims = spatial_dims(model)
        if dims:
            model = model.to(memory_format=memory_format_for(dims + 2))
    return model


def prepare_input(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Channels-last copy of a batch on CUDA (a no-op on the CPU)."""
    if device.type == "cuda" and x.ndim in (4, 5):
        return x.contiguous(memory_format=memory_format_for(x.ndim))
    return x


def autocast(device: torch.device, amp: bool = True) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA when ``amp``; plain fp32 everywhere else."""
    if device.type == "cuda" and amp:
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _rng_states(device: torch.device, gen: torch.Generator) -> dict:
    """Snapshot of every random state the loop consumes."""
    states = {"generator": gen.get_state(), "torch_cpu": torch.get_rng_state()}
    if device.type == "cuda":
        states["torch_cuda"] = torch.cuda.get_rng_state(device)
    return states


def _set_rng_states(states: dict, device: torch.device, gen: torch.Generator) -> None:
    """Restore the states saved by :func:`_rng_states`."""
    gen.set_state(states["generator"])
    torch.set_rng_state(states["torch_cpu"])
    if device.type == "cuda" and "torch_cuda" in states:
        torch.cuda.set_rng_state(states["torch_cuda"], device)


def _cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """A detached CPU copy of the model's weights."""
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def _save(obj: dict, path: Path) -> None:
    """torch.save through an atomic temporary file."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def _history_frame(rows: list[dict]) -> pd.DataFrame:
    """History rows as a table with ``epoch`` and ``train_loss`` first and ``seconds`` last."""
    df = pd.DataFrame(rows)
    if df.empty:
        return pd.DataFrame(columns=["epoch", "train_loss", "val_loss", "seconds"])
    first = ["epoch", "train_loss"]
    rest = [c for c in df.columns if c not in first + ["seconds"]]
    return df[first + rest + ["seconds"]]


def _finish(files: RunFiles, best_state: dict, rows: list[dict]) -> pd.DataFrame:
    """Write the selected weights and the history table; return the history."""
    _save(best_state, files.model)
    history = _history_frame(rows)
    with atomic_path(files.history) as tmp:
        history.to_parquet(tmp, index=False)
    return history


def run_fingerprint(cfg: LoopConfig, identity: dict | None) -> str:
    """A hash of everything that makes a checkpoint resumable by this run.

    The epoch budget and the machine's precision (``amp``) are left out: a run may be continued
    with more epochs, or on another machine.
    """
    loop = {k: v for k, v in asdict(cfg).items() if k not in ("epochs", "amp")}
    text = json.dumps({"loop": loop, "identity": identity or {}}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _read_checkpoint(path: Path) -> dict | None:
    """A checkpoint's contents on the CPU (None when it is absent or cannot be read)."""
    if not path.exists():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - a torn file counts as foreign
        return None


def fit(
    model: nn.Module,
    sample_batch: Callable[[torch.Generator], tuple[torch.Tensor, torch.Tensor]],
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    validate: Callable[[nn.Module], dict[str, float]],
    cfg: LoopConfig,
    files: RunFiles | Path,
    device: torch.device,
    identity: dict | None = None,
) -> pd.DataFrame:
    """Train ``model`` for ``cfg.epochs`` epochs (resuming from ``files.checkpoint``); return the history.

    ``files`` is a :class:`RunFiles` (or a folder for :meth:`RunFiles.in_folder`).

    ``identity`` describes what is being trained (patients, network, data settings); a checkpoint
    left by a run with another identity or loop config (the epoch budget aside) is set aside and
    training starts afresh, so a changed config never resumes from stale weights; so does a
    checkpoint further on than a lowered epoch budget. Raising ``epochs`` resumes; under the
    cosine schedule the remaining epochs then follow the longer budget's curve (the rate rises
    again), which is not what an unbroken longer run would do.

    Each epoch draws ``cfg.steps_per_epoch`` batches with ``sample_batch(generator)`` (the generator lives
    on ``device``), then calls ``validate(model)`` in eval mode under ``no_grad`` (and autocast on GPU);
    the weights with the lowest ``val_loss`` are written to ``files.model`` at the end, the curves
    to ``files.history``. The caller writes the card.
    """
    if cfg.epochs < 1 or cfg.steps_per_epoch < 1 or cfg.checkpoint_every < 1:
        raise GohscoreError(
            f"epochs ({cfg.epochs}), steps_per_epoch ({cfg.steps_per_epoch}) and checkpoint_every "
            f"({cfg.checkpoint_every}) must be at least 1; fix the config section"
        )
    lr_at(cfg, 1)  # an unknown schedule fails before anything is written
    files = RunFiles.of(files)
    for path in (files.model, files.history):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    ckpt_path = files.checkpoint
    model = prepare_model(model, device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    torch.manual_seed(cfg.seed)
    gen = torch.Generator(device=device)
    gen.manual_seed(cfg.seed)
    start, best_loss, best_state, rows = 0, math.inf, _cpu_state(model), []

    run_key = run_fingerprint(cfg, identity)
    ckpt = _read_checkpoint(ckpt_path)  # read once: the score net's checkpoint is hundreds of MB
    if ckpt_path.exists():
        why = None
        if ckpt is None or ckpt.get("run_key") != run_key:
            why = "was written by another configuration (or cannot be read)"
        elif int(ckpt["epoch"]) > cfg.epochs:
            why = f"holds {int(ckpt['epoch'])} epochs, more than the budget of {cfg.epochs}"
        if why:
            stale = ckpt_path.with_name(CHECKPOINT + ".stale")
            os.replace(ckpt_path, stale)
            log.warning("%s %s; moved to %s, training from scratch", ckpt_path, why, stale)
            ckpt = None
    if ckpt is not None:
        try:
            model.load_state_dict(ckpt["model"])
            opt.load_state_dict(ckpt["optimizer"])
        except Exception as err:  # noqa: BLE001 - a checkpoint of another net
            raise GohscoreError(
                f"{ckpt_path}: cannot resume ({type(err).__name__}: {str(err)[:120]}); "
                "delete it to train from scratch"
            ) from err
        _set_rng_states(ckpt["rng"], device, gen)
        start, best_loss, best_state = int(ckpt["epoch"]), float(ckpt["best_loss"]), ckpt["best_state"]
        rows = [dict(r) for r in ckpt["history"]]
        log.info("resuming %s at epoch %d of %d", ckpt_path, start, cfg.epochs)
        before = int(ckpt.get("config", {}).get("epochs", cfg.epochs))
        if cfg.lr_schedule != "constant" and before != cfg.epochs and start < cfg.epochs:
            log.warning(
                "%s: the epoch budget changed from %d to %d; the %s schedule continues on the new "
                "budget's curve (lr %.3g at epoch %d), unlike an unbroken run of %d epochs",
                ckpt_path,
                before,
                cfg.epochs,
                cfg.lr_schedule,
                lr_at(cfg, start + 1),
                start + 1,
                cfg.epochs,
            )
        if start >= cfg.epochs:
            log.info("%s: nothing left to train", ckpt_path)
            return _finish(files, best_state, rows)

    amp = cfg.amp and device.type == "cuda"
    log.info(
        "training on %s (%s), %d epochs x %d steps, lr %g (%s), weight decay %g",
        device,
        "bf16 autocast" if amp else "fp32",
        cfg.epochs,
        cfg.steps_per_epoch,
        cfg.lr,
        cfg.lr_schedule,
        cfg.weight_decay,
    )

    def checkpoint(epoch: int) -> None:
        _save(
            {
                "model": _cpu_state(model),
                "optimizer": opt.state_dict(),
                "epoch": epoch,
                "rng": _rng_states(device, gen),
                "best_loss": best_loss,
                "best_state": best_state,
                "history": rows,
                "config": asdict(cfg),
                "run_key": run_key,
            },
            ckpt_path,
        )

    for epoch in range(start + 1, cfg.epochs + 1):
        t0 = time.perf_counter()
        lr = lr_at(cfg, epoch)
        for group in opt.param_groups:
            group["lr"] = lr
        model.train()
        total = torch.zeros((), device=device)
        for _ in range(cfg.steps_per_epoch):
            x, y = sample_batch(gen)
            x = prepare_input(x, device)
            with autocast(device, amp):
                pred = model(x)
            loss = loss_fn(pred.float(), y.float())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.detach()
        train_loss = float(total) / cfg.steps_per_epoch  # one host sync per epoch
        if not math.isfinite(train_loss):
            raise GohscoreError(
                f"{files.model}: training loss became {train_loss} at epoch {epoch}; lower 'lr'"
            )
        model.eval()
        with torch.no_grad(), autocast(device, amp):
            metrics = {k: float(v) for k, v in validate(model).items()}
        if "val_loss" not in metrics:
            raise ValueError("validate() must return a 'val_loss' entry")
        if metrics["val_loss"] < best_loss:
            best_loss, best_state = metrics["val_loss"], _cpu_state(model)
        seconds = time.perf_counter() - t0
        rows.append({"epoch": epoch, "train_loss": train_loss, "lr": lr, **metrics, "seconds": seconds})
        shown = " ".join(f"{k} {v:.4g}" for k, v in metrics.items())
        log.info("epoch %d/%d: train_loss %.4g %s (%.1f s)", epoch, cfg.epochs, train_loss, shown, seconds)
        if epoch % cfg.checkpoint_every == 0 or epoch == cfg.epochs:
            checkpoint(epoch)
    return _finish(files, best_state, rows)


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Temporarily put ``model`` in eval mode, restoring its previous mode afterwards."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)
