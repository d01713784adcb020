"""Benchmark: what the heat maps of ``gohscore predict --explain`` add to the time of scoring a scan.

Two parts:

1. ``trained``: with a finished run's models (``--results``, e.g. results/demo), each test scan is
   scored with :func:`gohscore.cascade.score_scan` without and with ``explain``, alternating, on
   the chosen device. Figure: the added time as a multiple of the scoring time (target: at most 1
   on the CPU with the demo's models).
2. ``paper``: four paper-size score networks (VGG11 width 64, random weights: timing does not
   depend on them) explain the five 512 x 512 level slices of one scan. Figure: seconds per scan
   (target: at most 1 s on a GPU).

Run: ``python benchmarks/explain_cost.py --results results/demo`` (add ``--device cuda`` on a
GPU; ``--smoke`` runs tiny sizes to check the script). Writes
``benchmarks/results/explain_cost_<device>.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def time_trained(results: Path, device_name: str, repeats: int, max_scans: int) -> dict:
    """Seconds per scan without and with heat maps, for the test scans of a finished run."""
    import pandas as pd

    from gohscore.cascade import find_models, load_models, score_scan
    from gohscore.settings import section_defaults
    from gohscore.training import select_device

    device = select_device(device_name)
    levels, scores = find_models(results, section_defaults("scores")["final_ablation"])
    models = load_models(levels, scores, device)
    folds = pd.read_parquet(results / "folds.parquet")
    manifest = pd.read_parquet(results / "ingest" / "manifest.parquet").set_index("patient")
    test = sorted(folds.loc[folds["set"] == "test", "patient"].astype(str))[:max_scans]
    plain, explained = [], []
    for patient in test:
        scan = Path(manifest.at[patient, "path"])
        score_scan(scan, patient, models, device)  # warm-up: caches, allocator
        for _ in range(repeats):
            for explain, bucket in ((False, plain), (True, explained)):
                start = time.perf_counter()
                score_scan(scan, patient, models, device, explain=explain)
                bucket.append(time.perf_counter() - start)
    plain_s, explained_s = statistics.median(plain), statistics.median(explained)
    return {
        "results": str(results),
        "scans": len(test),
        "repeats": repeats,
        "level_models": len(levels),
        "score_models": len(scores),
        "score_input": int(models.score_card.input["input_size"]),
        "seconds_plain_median": round(plain_s, 3),
        "seconds_explain_median": round(explained_s, 3),
        "added_over_scoring": round((explained_s - plain_s) / plain_s, 3),
        "target_added_over_scoring": 1.0,
    }


def time_paper(device_name: str, smoke: bool, repeats: int) -> dict:
    """Seconds to explain one scan's five level slices with four paper-size score networks."""
    import numpy as np
    import torch

    from gohscore.cards import ModelCard
    from gohscore.networks import vgg11
    from gohscore.scores.explain import explain_slices
    from gohscore.training import select_device

    device = select_device(device_name)
    width, size = (2, 64) if smoke else (64, 512)
    torch.manual_seed(0)
    nets = [vgg11(2, 1, 3, width=width, head_features=1024 if not smoke else 16).eval() for _ in range(4)]
    card = ModelCard("scores", {}, {"input_size": size, "hu_window": [-1500, 1500]}, {"scale": 100.0}, {})
    slices = np.random.default_rng(0).normal(-700, 250, (5, size, size)).astype(np.float32)
    explain_slices(nets, slices, card, device)  # warm-up (cuDNN autotuning, allocator)
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        explain_slices(nets, slices, card, device)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return {
        "score_width": width,
        "input": size,
        "models": len(nets),
        "slices": len(slices),
        "seconds_per_scan_median": round(statistics.median(times), 3),
        "repeats": repeats,
        "target_seconds_per_scan_gpu": 1.0,
    }


def main() -> None:
    """Run the parts asked for and record them."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--results", type=Path, help="a finished run's results folder (part 1)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-scans", type=int, default=4)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, to check the script")
    parser.add_argument("--skip-paper", action="store_true", help="only part 1")
    parser.add_argument("--out-dir", type=Path, default=RESULTS, help="where the JSON goes")
    args = parser.parse_args()
    import torch

    from gohscore.training import select_device

    device = select_device(args.device)
    record = {
        "device": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or "cpu",
        "torch_threads": torch.get_num_threads(),
        "smoke": args.smoke,
    }
    if args.results is not None:
        record["trained"] = time_trained(args.results, args.device, args.repeats, args.max_scans)
        print(json.dumps(record["trained"], indent=1))
    if not args.skip_paper:
        record["paper"] = time_paper(args.device, args.smoke, args.repeats)
        print(json.dumps(record["paper"], indent=1))
    if not args.smoke:
        out = args.out_dir / f"explain_cost_{device.type}.json"
        out.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
