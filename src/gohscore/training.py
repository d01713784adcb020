"""The shared training loop: device choice, precision, determinism, checkpoints, resume, history.

The loop never touches data loading: the caller hands it ``sample_batch(generator)``, which draws a
batch already on the device (the level and score data sets live in GPU memory), and
``validate(model)``, which returns ``{"val_loss": ..., ...}`` on an inner validation split.
A checkpoint holds everything needed to continue bit-for-bit: weights, optimiser, epoch,
the batch generator's state and torch's global RNG state (dropout), the gradient scaler (fp16),
the best weights so far and the history, so a run killed and restarted by Snakemake ends where
an unbroken run ends. Each new checkpoint keeps the one before it as ``checkpoint.prev.pt``, so a
torn or corrupt ``checkpoint.pt`` costs the epochs since the previous checkpoint, not the run.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from gohscore.errors import GohscoreError
from gohscore.files import atomic_path

log = logging.getLogger("gohscore")

CHECKPOINT = "checkpoint.pt"  # beside the weights file
PREVIOUS_CHECKPOINT = "checkpoint.prev.pt"  # the checkpoint before it (the fallback for a torn one)
CHECKPOINT_KEYS = ("model", "optimizer", "epoch", "rng", "best_loss", "best_state", "history")
AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}  # precision -> autocast dtype
PRECISION_NAMES = {"bf16": "bf16 autocast", "fp16": "fp16 autocast with gradient scaling", "fp32": "fp32"}
CUBLAS_WORKSPACE = ":4096:8"  # CUBLAS_WORKSPACE_CONFIG that makes cuBLAS deterministic


@dataclass(frozen=True)
class RunFiles:
    """Where one training run writes: the selected weights, the model card and the history.

    The resumable checkpoint lies beside the weights (``checkpoint.pt`` in the same folder), and
    so does the one before it (``checkpoint.prev.pt``).
    """

    model: Path
    card: Path
    history: Path

    @property
    def checkpoint(self) -> Path:
        return Path(self.model).with_name(CHECKPOINT)

    @property
    def previous_checkpoint(self) -> Path:
        return Path(self.model).with_name(PREVIOUS_CHECKPOINT)

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
    checkpoint_choice: str = "best"


LR_SCHEDULES = ("constant", "cosine")
CHECKPOINT_CHOICES = ("best", "last")  # the weights written at the end: lowest val_loss, or the last epoch's


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


def configure_determinism(on: bool, device: torch.device) -> None:
    """Switch this process between deterministic and fast kernels (``machine.deterministic``).

    On: ``torch.use_deterministic_algorithms(True, warn_only=True)``, cuDNN's autotuning off
    (``cudnn.benchmark = False``, which :func:`prepare_model` then leaves off) and its deterministic
    algorithms on, and on CUDA ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` (a value already set is kept),
    which cuBLAS needs to be deterministic. ``warn_only``: the networks' adaptive average pooling
    has no deterministic backward kernel that torch vouches for on CUDA, and strict mode would
    stop every GPU training at its first step; torch then uses each deterministic kernel it has
    and warns once about the others. Off: torch's defaults (:func:`prepare_model` turns cuDNN
    autotuning on for CUDA).

    Nothing else needs pinning: gohscore has no DataLoader workers whose seeds could vary. Every
    batch is drawn on the device by ``sample_batch(generator)`` from a generator seeded by
    :func:`fit` and saved in its checkpoints, and the remaining randomness (dropout, synthesis
    coin flips) comes from torch's global generator, seeded and checkpointed the same way.
    """
    on = bool(on)
    if on and device.type == "cuda" and "CUBLAS_WORKSPACE_CONFIG" not in os.environ:
        os.environ["CUBLAS_WORKSPACE_CONFIG"] = CUBLAS_WORKSPACE  # before the first cuBLAS call
    torch.use_deterministic_algorithms(on, warn_only=True)
    torch.backends.cudnn.deterministic = on
    torch.backends.cudnn.benchmark = False
    if on:
        log.info("deterministic kernels on (%s)", device)


def choose_precision(device: torch.device, amp: bool = True) -> str:
    """The arithmetic the networks run in on ``device``: ``"bf16"``, ``"fp16"`` or ``"fp32"``.

    - the CPU, or ``amp`` off: fp32;
    - a GPU of compute capability 8 or more (Ampere and later): bf16 autocast, which keeps fp32's
      exponent range and so needs no loss scaling;
    - an older GPU (Volta, Turing: 7.x, and before): fp16 autocast, trained with a
      :class:`torch.amp.GradScaler` (:func:`make_scaler`). These GPUs have no native bf16 (torch
      emulates it, slowly, or refuses it), while fp16 runs on their tensor cores; fp16's narrow
      range is what the scaler guards in the backward pass, and the loss and the networks' heads
      are computed in fp32 anyway. Plain fp32 there would be safe but would give up the speed-up
      on the very GPUs that need it most (``amp: false`` still chooses it).
    """
    if not amp or device.type != "cuda":
        return "fp32"
    major, _ = torch.cuda.get_device_capability(device)
    return "bf16" if major >= 8 else "fp16"


def make_scaler(precision: str, device: torch.device) -> torch.amp.GradScaler | None:
    """The gradient scaler that fp16 training needs (``None`` for bf16 and fp32, which need none)."""
    return torch.amp.GradScaler(device.type) if precision == "fp16" else None


def machine_record(device: torch.device, amp: bool, deterministic: bool) -> dict:
    """What a model card records of the machine that trained it: device, precision, determinism."""
    return {
        "device": str(device),
        "precision": choose_precision(device, amp),
        "deterministic": bool(deterministic),
    }


def prepare_model(model: nn.Module, device: torch.device) -> nn.Module:
    """Move the model to ``device``; on CUDA also switch to channels-last and enable cuDNN autotuning
    (unless :func:`configure_determinism` turned deterministic kernels on)."""
    model = model.to(device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = not torch.are_deterministic_algorithms_enabled()
        dims = spatial_dims(model)
        if dims:
            model = model.to(memory_format=memory_format_for(dims + 2))
    return model


def prepare_input(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Channels-last copy of a batch on CUDA (a no-op on the CPU)."""
    if device.type == "cuda" and x.ndim in (4, 5):
        return x.contiguous(memory_format=memory_format_for(x.ndim))
    return x


def autocast(
    device: torch.device, amp: bool = True, precision: str | None = None
) -> contextlib.AbstractContextManager:
    """Autocast to ``precision`` (default: :func:`choose_precision` of ``device`` and ``amp``).

    bf16 or fp16 autocast on a GPU with ``amp``; fp32 (no autocast) on the CPU or without ``amp``.
    """
    precision = precision or choose_precision(device, amp)
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=AUTOCAST_DTYPES[precision])


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
    """torch.save through an atomic temporary file, flushed to disk before it takes ``path``'s name."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())


def _keep_previous(path: Path, previous: Path) -> None:
    """Make ``previous`` the file now at ``path`` (a hard link, else a copy), atomically.

    ``path`` itself stays in place, so a checkpoint is there at every moment; the new checkpoint
    then replaces ``path`` (a new file), leaving ``previous`` on the old one.
    """
    if not path.exists():
        return
    with atomic_path(previous) as tmp:
        tmp.unlink()
        try:
            os.link(path, tmp)
        except OSError:  # a file system without hard links
            shutil.copyfile(path, tmp)


def _history_frame(rows: list[dict]) -> pd.DataFrame:
    """History rows as a table with ``epoch`` and ``train_loss`` first and ``seconds`` last."""
    df = pd.DataFrame(rows)
    if df.empty:
        return pd.DataFrame(columns=["epoch", "train_loss", "val_loss", "seconds"])
    first = ["epoch", "train_loss"]
    rest = [c for c in df.columns if c not in first + ["seconds"]]
    return df[first + rest + ["seconds"]]


def batchnorm_layers(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """The model's BatchNorm layers (any dimension)."""
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, batches: Iterable[torch.Tensor]) -> int:
    """Replace every BatchNorm layer's running mean and variance by their plain average over ``batches``.

    During training the running statistics follow the training batches (augmented, balanced,
    partly synthetic); evaluation then normalises real slices with statistics of other inputs.
    This recomputes them from ``batches`` (inputs on the model's device), as
    ``torch.optim.swa_utils.update_bn`` does, but with only the BatchNorm layers in train mode
    (dropout stays off) and the model's modes and momenta restored after. Weights are untouched.
    Returns the number of batches used (0: the model has no BatchNorm, or ``batches`` is empty,
    and nothing changed).
    """
    layers = batchnorm_layers(model)
    if not layers:
        return 0
    saved = {m: (m.training, m.momentum, m.running_mean.clone(), m.running_var.clone()) for m in layers}
    for m in layers:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the batches
        m.train()
    n = 0
    for x in batches:
        model(x)
        n += 1
    for m, (training, momentum, mean, var) in saved.items():
        m.train(training)
        m.momentum = momentum
        if not n:  # nothing seen: keep the statistics there were
            m.running_mean.copy_(mean)
            m.running_var.copy_(var)
    return n


def _finish(files: RunFiles, state: dict, rows: list[dict]) -> pd.DataFrame:
    """Write the chosen weights and the history table; return the history."""
    _save(state, files.model)
    history = _history_frame(rows)
    with atomic_path(files.history) as tmp:
        history.to_parquet(tmp, index=False)
    return history


def run_fingerprint(cfg: LoopConfig, identity: dict | None) -> str:
    """A hash of everything that makes a checkpoint resumable by this run.

    The epoch budget, the machine's precision (``amp``) and the checkpoint choice are left out: a
    run may be continued with more epochs, on another machine, or to write the other weights (a
    checkpoint holds both the best and the last).
    """
    loop = {k: v for k, v in asdict(cfg).items() if k not in ("epochs", "amp", "checkpoint_choice")}
    text = json.dumps({"loop": loop, "identity": identity or {}}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _read_checkpoint(path: Path) -> tuple[dict | None, str | None]:
    """``(contents on the CPU, None)``; ``(None, why)`` for a file that is not a whole checkpoint
    (torn, corrupt, not ours); ``(None, None)`` when there is no file."""
    if not path.exists():
        return None, None
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch raises many types for a damaged file
        return None, f"{type(err).__name__}: {' '.join(str(err).split())[:120]}"
    if not isinstance(ckpt, dict):
        return None, f"it holds a {type(ckpt).__name__}, not a checkpoint"
    missing = [k for k in CHECKPOINT_KEYS if k not in ckpt]
    if missing:
        return None, f"it lacks {', '.join(missing)}"
    return ckpt, None


def _unusable(ckpt: dict, run_key: str, epochs: int) -> str | None:
    """Why a readable checkpoint cannot be resumed by this run (None when it can)."""
    if ckpt.get("run_key") != run_key:
        return "was written by another configuration"
    if int(ckpt["epoch"]) > epochs:
        return f"holds {int(ckpt['epoch'])} epochs, more than the budget of {epochs}"
    return None


def _set_aside(path: Path, suffix: str) -> Path | None:
    """Rename ``path`` to ``path + suffix`` (replacing an older one); the new path, or None if absent."""
    if not path.exists():
        return None
    target = path.with_name(path.name + suffix)
    os.replace(path, target)
    return target


def _resumable(files: RunFiles, run_key: str, epochs: int) -> tuple[dict | None, Path]:
    """The checkpoint this run resumes from (None: train from scratch) and its file; a bad file
    is set aside, never an error.

    ``checkpoint.pt`` decides:

    - none: train from scratch (a leftover ``checkpoint.prev.pt`` is set aside as ``.stale``);
    - this run's: resume from it;
    - another run's, or beyond the epoch budget: both files are set aside as ``.stale``, from scratch;
    - torn or corrupt: it is moved to ``checkpoint.pt.corrupt``, and the run resumes from
      ``checkpoint.prev.pt`` when that is readable and this run's, else trains from scratch.

    Every case but the first two logs a warning.
    """
    path, previous = files.checkpoint, files.previous_checkpoint
    ckpt, broken = _read_checkpoint(path)  # read once: the score net's checkpoint is hundreds of MB
    if ckpt is None and broken is None:
        old = _set_aside(previous, ".stale")
        if old:
            log.warning(
                "%s has no %s beside it; moved to %s, training from scratch", previous, CHECKPOINT, old
            )
        return None, path
    if ckpt is not None:
        why = _unusable(ckpt, run_key, epochs)
        if why is None:
            return ckpt, path
        stale = _set_aside(path, ".stale")
        _set_aside(previous, ".stale")
        log.warning("%s %s; moved to %s, training from scratch", path, why, stale)
        return None, path
    corrupt = _set_aside(path, ".corrupt")
    prev, prev_broken = _read_checkpoint(previous)
    prev_why = prev_broken if prev is None else _unusable(prev, run_key, epochs)
    if prev is not None and prev_why is None:
        log.warning(
            "%s cannot be read (%s); moved to %s, resuming from %s at epoch %d",
            path,
            broken,
            corrupt,
            previous,
            int(prev["epoch"]),
        )
        return prev, previous
    if prev_broken:
        moved = _set_aside(previous, ".corrupt")
        prev_why = f"cannot be read either ({prev_broken}); moved to {moved}"
    elif prev is not None:
        moved = _set_aside(previous, ".stale")
        prev_why = f"{prev_why}; moved to {moved}"
    else:
        prev_why = "does not exist"
    log.warning(
        "%s cannot be read (%s); moved to %s; %s %s; training from scratch",
        path,
        broken,
        corrupt,
        previous,
        prev_why,
    )
    return None, path


def fit(
    model: nn.Module,
    sample_batch: Callable[[torch.Generator], tuple[torch.Tensor, torch.Tensor]],
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    validate: Callable[[nn.Module], dict[str, float]],
    cfg: LoopConfig,
    files: RunFiles | Path,
    device: torch.device,
    identity: dict | None = None,
    calibrate: Callable[[nn.Module], None] | None = None,
) -> pd.DataFrame:
    """Train ``model`` for ``cfg.epochs`` epochs (resuming from ``files.checkpoint``); return the history.

    ``files`` is a :class:`RunFiles` (or a folder for :meth:`RunFiles.in_folder`).

    ``identity`` describes what is being trained (patients, network, data settings); a checkpoint
    left by a run with another identity or loop config (the epoch budget aside) is set aside and
    training starts afresh, so a changed config never resumes from stale weights; so does a
    checkpoint further on than a lowered epoch budget. Raising ``epochs`` resumes; under the
    cosine schedule the remaining epochs then follow the longer budget's curve (the rate rises
    again), which is not what an unbroken longer run would do. A checkpoint that cannot be read
    falls back to the previous one (see :func:`_resumable`).

    The precision is :func:`choose_precision` of ``device`` and ``cfg.amp`` (fp16 trains with a
    gradient scaler); determinism is the process's (:func:`configure_determinism`).

    Each epoch draws ``cfg.steps_per_epoch`` batches with ``sample_batch(generator)`` (the generator lives
    on ``device``), then ``calibrate(model)`` if given (e.g. :func:`recalibrate_batchnorm`; it may
    change buffers, never the weights, and must draw no random numbers, so the weights follow the
    same path with or without it), then ``validate(model)`` in eval mode, both under ``no_grad``
    (and autocast on GPU). At the end ``files.model`` gets the weights of the epoch with the lowest
    ``val_loss`` (``cfg.checkpoint_choice`` ``best``) or of the last epoch (``last``), the curves
    go to ``files.history``. The caller writes the card.
    """
    if cfg.epochs < 1 or cfg.steps_per_epoch < 1 or cfg.checkpoint_every < 1:
        raise GohscoreError(
            f"epochs ({cfg.epochs}), steps_per_epoch ({cfg.steps_per_epoch}) and checkpoint_every "
            f"({cfg.checkpoint_every}) must be at least 1; fix the config section"
        )
    lr_at(cfg, 1)  # an unknown schedule fails before anything is written
    if cfg.checkpoint_choice not in CHECKPOINT_CHOICES:
        raise GohscoreError(
            f"checkpoint_choice {cfg.checkpoint_choice!r} is unknown; use one of {', '.join(CHECKPOINT_CHOICES)}"
        )
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

    precision = choose_precision(device, cfg.amp)
    scaler = make_scaler(precision, device)

    run_key = run_fingerprint(cfg, identity)
    ckpt, source = _resumable(files, run_key, cfg.epochs)
    if ckpt is not None:
        try:
            model.load_state_dict(ckpt["model"])
            opt.load_state_dict(ckpt["optimizer"])
        except Exception as err:  # noqa: BLE001 - a checkpoint of another net
            raise GohscoreError(
                f"{source}: cannot resume ({type(err).__name__}: {str(err)[:120]}); "
                f"delete {CHECKPOINT} and {PREVIOUS_CHECKPOINT} to train from scratch"
            ) from err
        if scaler is not None and ckpt.get("scaler"):
            scaler.load_state_dict(ckpt["scaler"])
        _set_rng_states(ckpt["rng"], device, gen)
        start, best_loss, best_state = int(ckpt["epoch"]), float(ckpt["best_loss"]), ckpt["best_state"]
        rows = [dict(r) for r in ckpt["history"]]
        log.info("resuming %s at epoch %d of %d", source, start, cfg.epochs)
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
            return _finish(files, best_state if cfg.checkpoint_choice == "best" else _cpu_state(model), rows)

    log.info(
        "training on %s (%s%s), %d epochs x %d steps, lr %g (%s), weight decay %g",
        device,
        PRECISION_NAMES[precision],
        ", deterministic kernels" if torch.are_deterministic_algorithms_enabled() else "",
        cfg.epochs,
        cfg.steps_per_epoch,
        cfg.lr,
        cfg.lr_schedule,
        cfg.weight_decay,
    )

    def checkpoint(epoch: int) -> None:
        state = {
            "model": _cpu_state(model),
            "optimizer": opt.state_dict(),
            "epoch": epoch,
            "rng": _rng_states(device, gen),
            "best_loss": best_loss,
            "best_state": best_state,
            "history": rows,
            "config": asdict(cfg),
            "run_key": run_key,
        }
        if scaler is not None:
            state["scaler"] = scaler.state_dict()
        _keep_previous(ckpt_path, files.previous_checkpoint)
        _save(state, ckpt_path)

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
            with autocast(device, precision=precision):
                pred = model(x)
            loss = loss_fn(pred.float(), y.float())
            opt.zero_grad(set_to_none=True)
            if scaler is None:
                loss.backward()
                opt.step()
            else:  # fp16: scale the loss so that small gradients do not underflow
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
            total += loss.detach()
        train_loss = float(total) / cfg.steps_per_epoch  # one host sync per epoch
        if not math.isfinite(train_loss):
            raise GohscoreError(
                f"{files.model}: training loss became {train_loss} at epoch {epoch}; lower 'lr'"
            )
        model.eval()
        with torch.no_grad(), autocast(device, precision=precision):
            if calibrate is not None:
                calibrate(model)
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
    return _finish(files, best_state if cfg.checkpoint_choice == "best" else _cpu_state(model), rows)


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Temporarily put ``model`` in eval mode, restoring its previous mode afterwards."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)
