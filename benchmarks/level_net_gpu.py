"""Benchmark of the level network on one GPU: real training loop vs. an isolated step, inference, fold time.

Run on a GPU machine from the repository root (about 3-5 minutes on an H200):

    python benchmarks/level_net_gpu.py                 # writes $OUT/level_net_gpu.json (or benchmarks/results/)
    python benchmarks/level_net_gpu.py --smoke         # tiny sizes, any device (CPU included): checks it runs

Measured in the same process, on the same network (the paper's 3D VGG11, width 8, last block 16,
1024-1024 head) and batch:

* ``isolated``: one optimiser step on synthetic tensors already on the device (bf16 autocast,
  channels-last, cuDNN autotune), timed with CUDA events (median of repetitions) - the ceiling;
* ``real_loop``: ``gohscore.training.fit`` with the real ``CropSampler`` on a resident synthetic
  cohort (int16 volumes on the device, crops + HU jitter + normalisation on the device), timed per
  epoch after a warm-up epoch; ``ratio = real samples/s / isolated samples/s`` (target >= 0.90);
* ``validation``: the real inner-validation pass per patient, hence the epoch wall time and the
  time to train one fold at the paper's cohort size (135 training patients per fold: 115 train +
  20 inner validation) for the configured and the paper's epoch budgets;
* ``inference``: ``predict_levels_volume`` per patient from a host int16 volume (transfer included),
  one model and the four-fold ensemble (target <= 100 ms with one model);
* ``anchor``: the anchor protocol (shared/tools/gpu_anchor.py: CUDA events, warm-up 3, median of
  10) on the paper's net in fp32 and bf16 channels-last at batch 5 and 16, with conv TFLOP/s and
  peak memory, and the bf16 matmul ceiling of the chip.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from gohscore.levels.data import CropSampler, OutputScale, ResidentVolumes
from gohscore.levels.decode import window_starts
from gohscore.levels.predict import predict_levels_volume
from gohscore.levels.train import level_card, make_validate, mm_loss, network_args
from gohscore.networks import vgg11
from gohscore.settings import LevelParams
from gohscore.training import LoopConfig, autocast, fit, prepare_model, select_device

PAPER_TRAIN, PAPER_VAL = 115, 20  # 180 CV patients, 4 folds -> 135 per fold, 15 % inner validation


def timed_ms(fn: Callable[[], object], device: torch.device, warm: int = 3, reps: int = 10) -> list[float]:
    """Per-call times in ms after ``warm`` calls (CUDA events on GPU, perf_counter on CPU)."""
    for _ in range(warm):
        fn()
    times = []
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        for _ in range(reps):
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            fn()
            b.record()
            torch.cuda.synchronize(device)
            times.append(a.elapsed_time(b))
    else:
        for _ in range(reps):
            t0 = time.perf_counter()
            fn()
            times.append(1000 * (time.perf_counter() - t0))
    return times


def device_name(device: torch.device) -> str:
    """The GPU's name, or the CPU's."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({platform.processor() or 'unknown'})"


def sync(device: torch.device) -> None:
    """Wait for the device."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def release(device: torch.device) -> None:
    """Return cached GPU memory between measurements."""
    if device.type == "cuda":
        torch.cuda.empty_cache()


def conv_flops(spatial: tuple[int, ...], channels: list[int], in_ch: int = 1) -> float:
    """Forward FLOPs (2 x MAC) of the VGG11 convolutions for one sample."""
    plan = [
        channels[0],
        "M",
        channels[1],
        "M",
        channels[2],
        channels[3],
        "M",
        channels[4],
        channels[5],
        "M",
        channels[6],
        channels[7],
        "M",
    ]
    size, c, total = list(spatial), in_ch, 0.0
    for item in plan:
        if item == "M":
            size = [math.ceil(s / 2) for s in size]
            continue
        total += 2.0 * c * int(item) * 3 ** len(size) * math.prod(size)
        c = int(item)
    return total


def synthetic_cohort(n: int, side: int, crop_z: int, device: torch.device, seed: int = 0) -> ResidentVolumes:
    """Resident int16 volumes with a 'diaphragm' and five level targets that fit in a crop."""
    gen = torch.Generator().manual_seed(seed)
    span = 0.6 * crop_z
    bases = torch.rand(n, generator=gen) * (side - span - 2) + 1
    targets = bases[:, None] + torch.linspace(span, 0, 5)[None]
    vols = []
    z = torch.arange(side, dtype=torch.float32)[:, None, None]
    for i in range(n):
        vol = torch.where(z < bases[i], 40.0, -850.0).expand(side, side, side).clone()
        vol += 20 * torch.randn(side, side, side, generator=gen)
        vols.append(vol.to(torch.int16))
    return ResidentVolumes.from_arrays(
        vols, [f"S{i}" for i in range(n)], (-1500, 1500), device, targets.numpy()
    )


def isolated_step(
    net_args: dict,
    batch: int,
    side: int,
    crop_z: int,
    device: torch.device,
    amp: bool,
    channels_last: bool,
    reps: int,
) -> dict:
    """Step time of the net on synthetic on-device tensors (the anchor protocol)."""
    torch.manual_seed(0)
    model = vgg11(**net_args).to(device)
    if channels_last and device.type == "cuda":
        model = model.to(memory_format=torch.channels_last_3d)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, weight_decay=1e-4)
    x = torch.randn(batch, 1, crop_z, side, side, device=device)
    if channels_last and device.type == "cuda":
        x = x.contiguous(memory_format=torch.channels_last_3d)
    y = torch.randn(batch, 5, device=device)
    loss_fn = mm_loss(1.2, OutputScale.for_crop(crop_z))

    def step() -> None:
        with autocast(device, amp):
            pred = model(x)
        loss = loss_fn(pred.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = timed_ms(step, device, warm=3, reps=reps)
    ms = statistics.median(times)
    flops = 3 * conv_flops((crop_z, side, side), net_args["channels"]) * batch
    out = {
        "batch": batch,
        "crop": [crop_z, side, side],
        "mode": ("bf16" if amp else "fp32") + ("cl" if channels_last and device.type == "cuda" else ""),
        "ms_per_step": round(ms, 2),
        "samples_per_s": round(1000 * batch / ms, 2),
        "conv_tflops": round(flops / ms / 1e9, 2),
    }
    if device.type == "cuda":
        out["peak_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
    return out


def real_loop(
    net_args: dict,
    data: ResidentVolumes,
    batch: int,
    crop_z: int,
    steps: int,
    epochs: int,
    device: torch.device,
    amp: bool,
) -> dict:
    """Samples/s of gohscore.training.fit with the real sampler (epochs after the first)."""
    torch.manual_seed(0)
    sampler = CropSampler(data, crop_z, batch)
    cfg = LoopConfig(
        epochs=epochs, steps_per_epoch=steps, checkpoint_every=10**6, amp=amp, seed=0, lr_schedule="cosine"
    )
    with tempfile.TemporaryDirectory() as tmp:
        hist = fit(
            vgg11(**net_args),
            sampler,
            mm_loss(1.2, sampler.scale),
            lambda m: {"val_loss": 0.0},
            cfg,
            Path(tmp),
            device,
        )
    seconds = hist["seconds"].iloc[1:] if len(hist) > 1 else hist["seconds"]
    per_epoch = float(seconds.median())
    return {
        "batch": batch,
        "steps_per_epoch": steps,
        "epochs_timed": len(seconds),
        "epoch_s": round(per_epoch, 3),
        "ms_per_step": round(1000 * per_epoch / steps, 2),
        "samples_per_s": round(batch * steps / per_epoch, 2),
        "first_epoch_s": round(float(hist["seconds"].iloc[0]), 3),
    }


def validation_time(
    net_args: dict, data: ResidentVolumes, crop_z: int, device: torch.device, amp: bool
) -> float:
    """Seconds per patient of the real inner-validation pass."""
    model = prepare_model(vgg11(**net_args), device).eval()
    validate = make_validate(data, crop_z, 1.2, device, amp)
    with torch.no_grad(), autocast(device, amp):
        validate(model)  # warm-up (cuDNN autotune for the window batch)
        sync(device)
        t0 = time.perf_counter()
        validate(model)
        sync(device)
    return (time.perf_counter() - t0) / len(data.patients)


def inference(
    params: LevelParams, side: int, stride: int, device: torch.device, amp: bool, reps: int
) -> dict:
    """ms per patient of predict_levels_volume from a host int16 volume, 1 model and a 4-model ensemble."""
    net_args, crop_z = network_args(params), params.crop_z
    loop = LoopConfig(epochs=1, steps_per_epoch=1, seed=0)
    card = level_card(net_args, params, side, 1.2, 0, 0, loop, [], [])  # the card train-levels writes
    models = []
    for k in range(4):
        torch.manual_seed(k)
        models.append(prepare_model(vgg11(**net_args), device).eval())
    vol = np.random.default_rng(0).integers(-1000, 1000, (side, side, side), dtype=np.int16)
    out = {"windows": len(window_starts(side, crop_z, stride))}
    for n in (1, 4):
        times = timed_ms(
            lambda n=n: predict_levels_volume(models[:n], vol, card, device, stride, amp),
            device,
            warm=2,
            reps=reps,
        )
        out[f"ms_per_patient_{n}_model{'s' if n > 1 else ''}"] = round(statistics.median(times), 2)
    return out


def matmul_ceiling(device: torch.device, n: int) -> float:
    """bf16 (GPU) or fp32 (CPU) dense matmul TFLOP/s of the chip."""
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    ms = statistics.median(timed_ms(lambda: a @ b, device))
    return round(2 * n**3 / ms / 1e9, 1)


def main(argv: list[str] | None = None) -> int:
    """Run every measurement and write the JSON report."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--smoke", action="store_true", help="tiny sizes (32^3, width 2), runs on CPU in seconds")
    p.add_argument("--device", default="auto")
    p.add_argument("--out", type=Path, default=None, help="JSON report (default $OUT or benchmarks/results/)")
    p.add_argument("--epochs-config", type=int, default=300, help="epoch budget of config/config.yaml")
    args = p.parse_args(argv)
    device = select_device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    amp = device.type == "cuda"
    if args.smoke:
        side, crop_z, width, head, batch, n_res, steps, epochs, reps, stride = 32, 24, 2, 16, 2, 6, 3, 3, 3, 4
    else:
        side, crop_z, width, head, batch, n_res, steps, epochs, reps, stride = (
            256,
            192,
            8,
            1024,
            5,
            24,
            24,
            4,
            10,
            4,
        )
    params = LevelParams.from_section({"width": width, "head_features": head, "crop_z": crop_z})
    net_args = network_args(params)
    res: dict = {
        "label": "SMOKE (tiny sizes, not a performance figure)" if args.smoke else "full",
        "device": device_name(device),
        "torch": torch.__version__,
        "amp_bf16": amp,
        "network": net_args,
        "sizes": {"side": side, "crop_z": crop_z, "batch": batch, "resident_patients": n_res},
    }
    t_start = time.perf_counter()
    res["isolated"] = isolated_step(net_args, batch, side, crop_z, device, amp, True, reps)
    print("isolated", json.dumps(res["isolated"]), flush=True)
    release(device)
    data = synthetic_cohort(n_res, side, crop_z, device)
    res["real_loop"] = real_loop(net_args, data, batch, crop_z, steps, epochs, device, amp)
    res["real_loop"]["ratio_to_isolated"] = round(
        res["real_loop"]["samples_per_s"] / res["isolated"]["samples_per_s"], 3
    )
    print("real_loop", json.dumps(res["real_loop"]), flush=True)
    val_s = validation_time(net_args, data.subset(range(min(n_res, 4))), crop_z, device, amp)
    step_s = res["real_loop"]["ms_per_step"] / 1000
    epoch_s = math.ceil(PAPER_TRAIN / batch) * step_s + PAPER_VAL * val_s
    res["paper_cohort"] = {
        "train_patients": PAPER_TRAIN,
        "val_patients": PAPER_VAL,
        "steps_per_epoch": math.ceil(PAPER_TRAIN / batch),
        "validation_s_per_patient": round(val_s, 4),
        "epoch_s": round(epoch_s, 2),
        f"fold_h_at_{args.epochs_config}_epochs": round(epoch_s * args.epochs_config / 3600, 2),
        "fold_h_at_1000_epochs": round(epoch_s * 1000 / 3600, 2),
    }
    print("paper_cohort", json.dumps(res["paper_cohort"]), flush=True)
    del data
    release(device)
    res["inference"] = inference(params, side, stride, device, amp, reps)
    print("inference", json.dumps(res["inference"]), flush=True)
    anchor = []
    plan = [(batch, False, False), (batch, amp, True)] + ([] if args.smoke else [(16, True, True)])
    for b, bf16, cl in plan:
        try:
            row = isolated_step(net_args, b, side, crop_z, device, bf16, cl, reps)
        except torch.OutOfMemoryError as err:
            row = {"batch": b, "error": repr(err)[:160]}
        anchor.append(row)
        release(device)
        print("anchor", json.dumps(row), flush=True)
    res["anchor"] = {
        "paper_net": anchor,
        "matmul_tflops": matmul_ceiling(device, 1024 if args.smoke else 8192),
    }
    res["wall_s"] = round(time.perf_counter() - t_start, 1)
    out = args.out
    if out is None:
        base = Path(os.environ["OUT"]) if os.environ.get("OUT") else Path(__file__).parent / "results"
        out = base / ("level_net_cpu_smoke.json" if args.smoke else "level_net_gpu.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1) + "\n", encoding="utf-8")
    print("wrote", out, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
