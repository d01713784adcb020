"""Benchmark of the 2D score network on one GPU: the real training loop (sampling + synthesis) vs. an isolated step.

Run on a GPU machine from the repository root (about 2 minutes on an H200):

    python benchmarks/score_net_gpu.py             # writes $OUT/score_net_gpu.json (or benchmarks/results/)
    python benchmarks/score_net_gpu.py --smoke     # tiny sizes, any device (CPU included): checks it runs

Measured in the same process on the same network (2D VGG11, width 64, 1024-1024 head, 512x512 slices,
batch 10, bf16 autocast + channels-last on GPU):

* ``isolated``: one optimiser step on synthetic tensors already on the device (CUDA events, warm-up 3,
  median of 10) - the ceiling for this net and batch;
* ``real_loop[ablation]``: ``gohscore.training.fit`` with the real sampler of each ablation over
  device-resident slices: ``none`` (uniform draws), ``balanced`` (1/count weights, healthy share
  kept) and ``balanced_synthesis`` (half of the healthy draws replaced by synthetic GG/RET slices
  with extents aimed at the under-filled bins), each without and with the default augmentation;
  median epoch time after a warm-up epoch (over ``--rounds`` interleaved rounds), ``ratio_to_isolated`` = real samples/s / isolated
  samples/s and ``ratio_to_plain`` = samples/s / those of ``none`` without augmentation (the cost
  of augmentation and synthesis; target: at least 0.90);
* a last ``real_loop`` row for the default recipe: balanced + synthesis, augmented, with the
  BatchNorm statistics recomputed over all the slices after every epoch
  (``scores.batchnorm_statistics: recomputed``), so its epoch time includes that pass;
* ``interleaved``: the six samplers of the first ``real_loop`` rows feeding one network, taking
  turns step by step (draw + one training step, median), so that a drift of the machine's speed
  reaches them all alike: the figure for the 10 % target on a shared CPU.

    python benchmarks/score_net_gpu.py --cpu       # the CPU validation recipe (128 px, width 8, batch 16)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).parent))
from level_net_gpu import device_name, release, timed_ms  # noqa: E402

from gohscore.networks import vgg11  # noqa: E402
from gohscore.scores.augment import AugmentConfig  # noqa: E402
from gohscore.scores.sampling import sampling_weights  # noqa: E402
from gohscore.scores.synthesis import extent_targets  # noqa: E402
from gohscore.scores.train import build_bank, make_calibrator, make_sampler  # noqa: E402
from gohscore.training import LoopConfig, autocast, fit, prepare_input, prepare_model, select_device  # noqa: E402

HU_WINDOW = [-1500.0, 1500.0]


def synthetic_slices(n: int, size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` chest-like HU slices (body, two lungs, noise) and TOT/GG/RET targets, half of them healthy."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    images = np.empty((n, size, size), np.int16)
    for i in range(n):
        body = ((xx - 0.5) / 0.42) ** 2 + ((yy - 0.5) / 0.3) ** 2 < 1
        lungs = (((xx - 0.33) / 0.13) ** 2 + ((yy - 0.48) / 0.2) ** 2 < 1) | (
            ((xx - 0.67) / 0.13) ** 2 + ((yy - 0.48) / 0.2) ** 2 < 1
        )
        hu = np.where(body, 40.0, -1000.0)
        hu = np.where(lungs, -860.0, hu) + rng.normal(0, 15, (size, size))
        images[i] = hu.astype(np.int16)
    tot = np.where(np.arange(n) % 2 == 0, 0, rng.integers(1, 21, n) * 5)
    gg = np.minimum(tot, rng.integers(0, 21, n) * 5)
    ret = np.minimum(tot, np.maximum(tot - gg, rng.integers(0, 21, n) * 5))
    return images, np.stack([tot, gg, ret], 1).astype(np.float32)


def isolated_step(net: dict, batch: int, size: int, device: torch.device, amp: bool) -> dict:
    """Step time of the net on synthetic on-device tensors (the anchor protocol)."""
    torch.manual_seed(0)
    model = prepare_model(vgg11(**net), device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, weight_decay=1e-4)
    x = prepare_input(torch.randn(batch, 1, size, size, device=device), device)
    y = torch.rand(batch, 3, device=device)

    def step() -> None:
        with autocast(device, amp):
            pred = model(x)
        loss = torch.nn.functional.mse_loss(pred.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    ms = statistics.median(timed_ms(step, device, warm=3, reps=10))
    return {
        "batch": batch,
        "size": size,
        "ms_per_step": round(ms, 2),
        "samples_per_s": round(1000 * batch / ms, 1),
    }


def run_sampler(
    images: np.ndarray, targets: np.ndarray, ablation: str, batch: int, device: torch.device, augment: bool
):
    """The training loop's real batch sampler of ``ablation`` over device-resident ``images``."""
    patients = [f"S{i}" for i in range(len(images))]
    draw_w = sampling_weights(targets[:, 0], ablation != "none", 1.0, True)
    bank = None
    if ablation == "balanced_synthesis":
        empty = pd.DataFrame({"file": [], "pattern": [], "patient": []})
        bank = build_bank(images, targets, patients, empty, 0.5, 0, device, on="healthy")
        bank.extent_pmf = extent_targets(targets[:, 0], draw_w, 0.5, "healthy")
    weights = torch.as_tensor(draw_w, dtype=torch.float32, device=device)
    return make_sampler(
        torch.as_tensor(images, device=device),
        torch.as_tensor(targets, device=device),
        torch.full((len(images),), 0.7, device=device),
        weights,
        batch,
        HU_WINDOW,
        bank,
        AugmentConfig.defaults() if augment else None,
    )


def interleaved(
    net: dict,
    images: np.ndarray,
    targets: np.ndarray,
    runs: list[tuple[str, bool, bool]],
    batch: int,
    device: torch.device,
    amp: bool,
    reps: int,
) -> list[dict]:
    """Per-step time (ms) of draw + training step for each run's sampler, the runs taking turns step by step.

    All samplers feed one network and optimiser, and every round steps each run once, so a drift
    of the machine's speed (other work on a shared CPU, clock changes) reaches every run alike and
    the ratios between runs keep only what the samplers cost. Median over ``reps`` rounds after 3.
    """
    torch.manual_seed(0)
    model = prepare_model(vgg11(**net), device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, weight_decay=1e-4)
    samplers = [run_sampler(images, targets, a, batch, device, g) for a, g, _ in runs]
    gen = torch.Generator(device=device).manual_seed(0)

    def step(sampler) -> None:
        x, y = sampler(gen)
        with autocast(device, amp):
            pred = model(prepare_input(x, device))
        loss = torch.nn.functional.mse_loss(pred.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    times: list[list[float]] = [[] for _ in runs]
    for r in range(reps + 3):
        for k in range(len(runs)):
            ms = timed_ms(lambda k=k: step(samplers[k]), device, warm=0, reps=1)[0]
            if r >= 3:
                times[k].append(ms)
    plain = statistics.median(times[0])
    return [
        {
            "ablation": a,
            "augment": g,
            "steps": len(t),
            "ms_per_step": round(statistics.median(t), 2),
            "ratio_to_plain": round(plain / statistics.median(t), 3),
        }
        for (a, g, _), t in zip(runs, times, strict=True)
    ]


def real_loop(
    net: dict,
    images: np.ndarray,
    targets: np.ndarray,
    ablation: str,
    batch: int,
    steps: int,
    epochs: int,
    device: torch.device,
    amp: bool,
    augment: bool = False,
    recalibrate: bool = False,
) -> list[float]:
    """Epoch times (s) of gohscore.training.fit with the real sampler of ``ablation`` (epochs after the first).

    ``recalibrate``: BatchNorm statistics recomputed over all ``images`` after every epoch
    (``scores.batchnorm_statistics: recomputed``); the epoch time then includes that pass.
    """
    sampler = run_sampler(images, targets, ablation, batch, device, augment)
    calibrate = None
    if recalibrate:
        calibrate = make_calibrator(
            torch.as_tensor(images, device=device), batch, HU_WINDOW, np.random.default_rng(0)
        )
    torch.manual_seed(0)
    cfg = LoopConfig(
        epochs=epochs, steps_per_epoch=steps, checkpoint_every=10**6, amp=amp, seed=0, lr_schedule="cosine"
    )
    with tempfile.TemporaryDirectory() as tmp:
        hist = fit(
            vgg11(**net),
            sampler,
            torch.nn.functional.mse_loss,
            lambda m: {"val_loss": 0.0},
            cfg,
            Path(tmp),
            device,
            calibrate=calibrate,
        )
    return [float(x) for x in hist["seconds"].iloc[1:]]


def loop_row(
    run: tuple[str, bool, bool], seconds: list[float], n_images: int, batch: int, steps: int
) -> dict:
    """The report row of one loop configuration from all its timed epochs (median)."""
    ablation, augment, recalibrate = run
    per_epoch = statistics.median(seconds)
    return {
        "ablation": ablation,
        "augment": augment,
        "recalibrate": recalibrate,
        "calibration_slices": n_images if recalibrate else 0,
        "steps_per_epoch": steps,
        "timed_epochs": len(seconds),
        "epoch_s": round(per_epoch, 3),
        "ms_per_step": round(1000 * per_epoch / steps, 2),
        "samples_per_s": round(batch * steps / per_epoch, 1),
    }


def main(argv: list[str] | None = None) -> int:
    """Measure, print and write the JSON report."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true", help="tiny sizes on any device: checks that it runs")
    p.add_argument(
        "--cpu", action="store_true", help="the CPU validation recipe's sizes (config/validate.yaml)"
    )
    p.add_argument("--out", type=Path, default=None, help="JSON report (default $OUT or benchmarks/results/)")
    p.add_argument(
        "--rounds",
        type=int,
        default=None,
        help="times the whole set of loops runs, interleaved, before the medians (default: 1, 3 with --cpu)",
    )
    args = p.parse_args(argv)
    device = select_device("auto")
    amp = device.type == "cuda"
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    size, width, head, batch, n, steps, epochs = (512, 64, 1024, 10, 120, 30, 4)
    label = "GPU benchmark"
    if args.smoke:
        size, width, head, batch, n, steps, epochs = (64, 4, 1024, 4, 16, 3, 3)
        label = "SMOKE (tiny sizes, not a performance figure)"
    elif args.cpu:
        # 160 slices for 240 draws per epoch: the protocol's ratio (about 540 real training slices
        # per fold for 50 steps of 16), which sets the share of the BatchNorm recalibration pass
        size, width, head, batch, n, steps, epochs = (128, 8, 128, 16, 160, 15, 4)
        label = "CPU, the validation recipe's sizes, one thread (ratios only)"
        torch.set_num_threads(1)  # as profiles/cpu runs each network job
    net = {"spatial_dims": 2, "in_channels": 1, "out_features": 3, "width": width, "head_features": head}
    res: dict = {
        "label": label,
        "device": device_name(device),
        "torch": torch.__version__,
        "network": net,
        "isolated": isolated_step(net, batch, size, device, amp),
    }
    print("isolated", json.dumps(res["isolated"]), flush=True)
    images, targets = synthetic_slices(n, size)
    res["real_loop"] = []
    runs = [(a, g, False) for g in (False, True) for a in ("none", "balanced", "balanced_synthesis")]
    runs.append(("balanced_synthesis", True, True))  # the default recipe: + recomputed BatchNorm statistics
    # on a shared CPU the speed drifts over minutes: running every loop once per round, and taking
    # the median over all rounds, keeps the drift out of the ratios
    rounds = args.rounds or (3 if args.cpu else 1)
    res["rounds"] = rounds
    seconds: dict[tuple[str, bool, bool], list[float]] = {run: [] for run in runs}
    for r in range(rounds):
        for run in runs:
            release(device)
            seconds[run] += real_loop(
                net, images, targets, run[0], batch, steps, epochs, device, amp, *run[1:]
            )
            print(
                f"round {r + 1}/{rounds}",
                run,
                [round(x, 3) for x in seconds[run][-(epochs - 1) :]],
                flush=True,
            )
    res["interleaved"] = interleaved(
        net, images, targets, runs[:-1], batch, device, amp, steps * epochs * rounds
    )
    for row in res["interleaved"]:
        print("interleaved", json.dumps(row), flush=True)
    for run in runs:
        row = loop_row(run, seconds[run], n, batch, steps)
        row["ratio_to_isolated"] = round(row["samples_per_s"] / res["isolated"]["samples_per_s"], 3)
        row["ratio_to_plain"] = (
            round(row["samples_per_s"] / res["real_loop"][0]["samples_per_s"], 3) if res["real_loop"] else 1.0
        )
        res["real_loop"].append(row)
        print("real_loop", json.dumps(row), flush=True)
    out = args.out
    if out is None:
        base = Path(os.environ["OUT"]) if os.environ.get("OUT") else Path(__file__).parent / "results"
        name = (
            "score_net_cpu_smoke" if args.smoke else "score_net_cpu_recipe" if args.cpu else "score_net_gpu"
        )
        out = base / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
