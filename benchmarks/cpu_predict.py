"""Benchmark: scoring a new scan on the CPU with paper-size models (what a clinician without a GPU runs).

Two parts, both on this machine's CPU with all its cores:

1. ``forward``: one forward pass of the paper's nets as prediction runs them — the 3D level net
   (width 8) on 192x256x256 windows, the 2D score net (width 64) on 512x512 slices — in the
   default (contiguous) layout and in channels-last, at several inputs per pass. Each case runs
   in a fresh process, so its peak RSS is its own. Figures: seconds per window / slice, peak RSS,
   and the ratio of each case to the contiguous layout at the package's old pass size (8 windows,
   32 slices).
2. ``predict``: ``gohscore predict`` on one paper-size synthetic scan with four level and four
   score models (random weights: timing does not depend on them), as a subprocess: wall time and
   peak RSS, with the inference settings the package picks for the CPU.

Run: ``python benchmarks/cpu_predict.py`` (about 10 minutes on 2 cores; writes
benchmarks/results/cpu_predict.json). ``--smoke`` runs tiny sizes to check the script.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from phantom_speed import gohscore_exe  # benchmarks/ is this script's folder

RESULTS = Path(__file__).parent / "results" / "cpu_predict.json"

PAPER = {
    "level": {"width": 8, "head_features": 1024, "input": (192, 256, 256), "grid": 256, "passes": (1, 2, 8)},
    "score": {"width": 64, "head_features": 1024, "input": (512, 512), "passes": (1, 4, 32)},
}
SMOKE = {
    "level": {"width": 2, "head_features": 16, "input": (24, 32, 32), "grid": 32, "passes": (1, 2)},
    "score": {"width": 2, "head_features": 16, "input": (64, 64), "passes": (1, 4)},
}


def network_kwargs(net: str, spec: dict) -> dict:
    """vgg11() arguments of the level net (as train-levels builds it) or the score net (as train-scores)."""
    from gohscore.levels.train import network_args
    from gohscore.networks import DEFAULT_POOL
    from gohscore.settings import LevelParams

    if net == "level":
        return network_args(
            LevelParams.from_section({"width": spec["width"], "head_features": spec["head_features"]})
        )
    return {
        "spatial_dims": 2,
        "in_channels": 1,
        "out_features": 3,
        "width": spec["width"],
        "head_features": spec["head_features"],
        "dropout": 0.5,
        "pool_size": list(DEFAULT_POOL[2]),
    }


def forward_case(net: str, layout: str, per_pass: int, sizes: dict, repeats: int) -> dict:
    """Seconds per input and peak RSS of ``repeats`` forward passes (after one warm-up pass)."""
    import torch

    from gohscore.networks import vgg11

    torch.manual_seed(0)
    spec = sizes[net]
    dims = len(spec["input"])
    model = vgg11(**network_kwargs(net, spec)).eval()
    if layout == "channels_last":
        model = model.to(memory_format=torch.channels_last_3d if dims == 3 else torch.channels_last)
    x = torch.randn(per_pass, 1, *spec["input"])
    times = []
    with torch.no_grad():
        for _ in range(repeats + 1):
            start = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - start)
    per_input = sorted(times[1:])[len(times[1:]) // 2] / per_pass
    return {
        "net": net,
        "layout": layout,
        "per_pass": per_pass,
        "s_per_input": round(per_input, 4),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def run_forward_grid(sizes: dict, repeats: int, smoke: bool) -> list[dict]:
    """Every (net, layout, pass size) case in its own process."""
    rows = []
    for net, spec in sizes.items():
        for layout in ("contiguous", "channels_last"):
            for per_pass in spec["passes"]:
                cmd = [
                    sys.executable,
                    __file__,
                    "--case",
                    f"{net}:{layout}:{per_pass}",
                    "--repeats",
                    str(repeats),
                ]
                if smoke:
                    cmd.append("--smoke")
                out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
                row = json.loads(out.strip().splitlines()[-1])
                print("forward", json.dumps(row), flush=True)
                rows.append(row)
    for net, spec in sizes.items():
        old = next(
            r
            for r in rows
            if r["net"] == net and r["layout"] == "contiguous" and r["per_pass"] == spec["passes"][-1]
        )
        for r in rows:
            if r["net"] == net:
                r["speed_vs_old"] = round(old["s_per_input"] / r["s_per_input"], 2)
    return rows


def write_models(root: Path, sizes: dict, n_models: int) -> tuple[list[Path], list[Path]]:
    """``n_models`` level and score models with random weights and the cards training would write."""
    import torch

    from gohscore.cards import ModelCard
    from gohscore.goh import PATTERNS
    from gohscore.levels.train import level_card
    from gohscore.networks import vgg11
    from gohscore.scores.train import TARGET_SCALE
    from gohscore.settings import LevelParams
    from gohscore.training import LoopConfig

    lv, sc = sizes["level"], sizes["score"]
    level_net, score_net = network_kwargs("level", lv), network_kwargs("score", sc)
    level_params = LevelParams.from_section({"crop_z": lv["input"][0]})
    levels, scores = [], []
    for fold in range(n_models):
        torch.manual_seed(fold)
        path = root / "levels" / f"fold{fold}" / "model.pt"
        path.parent.mkdir(parents=True)
        torch.save(vgg11(**level_net).state_dict(), path)
        cfg = LoopConfig(epochs=1, steps_per_epoch=1, lr=1e-4, seed=fold)
        card = level_card(level_net, level_params, lv["grid"], 1.2 * 256 / lv["grid"], fold, 0, cfg, [], [])
        card.write(path.with_name("model.json"))
        levels.append(path)
        path = root / "scores" / f"fold{fold}" / "model.pt"
        path.parent.mkdir(parents=True)
        torch.save(vgg11(**score_net).state_dict(), path)
        card = ModelCard(
            task="scores",
            network=score_net,
            input={"input_size": sc["input"][0], "hu_window": [-1500.0, 1500.0], "slices_per_level": 3},
            output={"scores": list(PATTERNS), "scale": TARGET_SCALE},
            training={"fold": fold, "seed": 0, "note": "random weights (benchmark)"},
        )
        card.write(path.with_name("model.json"))
        scores.append(path)
    return levels, scores


def run_predict(sizes: dict, smoke: bool) -> dict:
    """``gohscore predict`` of one synthetic scan with four level and four score models, as a subprocess."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        levels, scores = write_models(root / "models", sizes, 4)
        params = {"size": "tiny" if smoke else "paper", "dicom_every": 0, "patches_per_pattern": 1}
        phantom = [gohscore_exe(), "phantom", "--patient", "P0001", "--params-json", json.dumps(params)]
        phantom += ["--seed", "2022", "--scan-dir", str(root / "scan"), "--patch-dir", str(root / "patches")]
        phantom += ["--part", str(root / "part.json")]
        subprocess.run(phantom, check=True, capture_output=True)
        scan = next((root / "scan").iterdir())
        cmd = [gohscore_exe(), "predict", "--scan", str(scan), "--out-dir", str(root / "scored")]
        cmd += ["--device", "cpu", "--level-models", *map(str, levels), "--score-models", *map(str, scores)]
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        err = proc.stderr.read().decode() if proc.stderr else ""
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{err}")
        scan_log = [line for line in err.splitlines() if "extent" in line]
    row = {
        "models": "4 level + 4 score, random weights",
        "scan": scan.name,
        "wall_s": round(wall, 1),
        "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
        "log": scan_log[-1] if scan_log else "",
    }
    print("predict", json.dumps(row), flush=True)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks that the script runs")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes per case (median)")
    parser.add_argument("--parts", default="forward,predict", help="which parts to run (comma-separated)")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=None, help="JSON file (default benchmarks/results/...)")
    args = parser.parse_args()
    sizes = SMOKE if args.smoke else PAPER
    if args.case:
        net, layout, per_pass = args.case.split(":")
        print(json.dumps(forward_case(net, layout, int(per_pass), sizes, args.repeats)))
        return 0
    import torch

    result = {
        "what": "CPU inference of the paper-size nets (forward passes) and of gohscore predict on one scan",
        "smoke": args.smoke,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cpus, python {sys.version.split()[0]}",
    }
    parts = set(args.parts.split(","))
    if "forward" in parts:
        result["forward"] = run_forward_grid(sizes, args.repeats, args.smoke)
    if "predict" in parts:
        result["predict"] = run_predict(sizes, args.smoke)
    out = args.out or (RESULTS.with_name("cpu_predict_smoke.json") if args.smoke else RESULTS)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
