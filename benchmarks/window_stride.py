"""Benchmark: level accuracy and time against the number of sliding windows (``levels.window_stride``).

Reads a finished workflow run: each fold's level model predicts its own cross-validation patients
again with several window strides (fewer windows = faster inference), and the MAE against the
reference level positions is reported per stride, in grid slices, with the mean time per patient.

Run: ``python benchmarks/window_stride.py --results results/demo`` after ``make demo`` (about a
minute on 2 cores; writes benchmarks/results/window_stride_demo.json).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from gohscore.cards import load_model
from gohscore.levels.data import load_volume
from gohscore.levels.decode import window_starts
from gohscore.levels.predict import card_settings, predict_levels_volume
from gohscore.training import select_device

RESULTS = Path(__file__).parent / "results"


def stride_rows(results: Path, strides: list[int], device: torch.device, amp: bool = True) -> pd.DataFrame:
    """One row per fold, patient and stride: MAE over the five levels (grid slices) and seconds."""
    rows = []
    folds = sorted(results.glob("levels/fold*/model.pt"))
    if not folds:
        raise SystemExit(f"{results}: no levels/fold*/model.pt; run the workflow first")
    for model_path in folds:
        model, card = load_model(model_path)
        side, (_, crop) = int(card.input["grid_shape"]), card_settings(card)
        pred = pd.read_parquet(model_path.with_name("predictions.parquet"))
        for patient, group in pred.groupby("patient"):
            volume = load_volume(results / "preprocess" / f"{patient}.npy", side)
            ref = group.sort_values("level")["ref_index"].to_numpy(dtype=float)
            for stride in strides:
                start = time.perf_counter()
                est = predict_levels_volume([model], volume, card, device, stride, amp)
                rows.append(
                    {
                        "fold": model_path.parent.name,
                        "patient": patient,
                        "stride": stride,
                        "windows": len(window_starts(side, crop, stride)),
                        "mae": float(np.abs(est - ref).mean()),
                        "seconds": time.perf_counter() - start,
                    }
                )
    return pd.DataFrame(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, required=True, help="results folder of a finished run")
    parser.add_argument("--strides", default="1,2,4,8,16", help="comma-separated window strides")
    parser.add_argument("--device", default="cpu", help="machine.device: auto, cpu, cuda (or cuda:N)")
    parser.add_argument(
        "--amp", default="on", choices=["on", "off"], help="machine.amp: bf16 autocast on GPU (CPU: fp32)"
    )
    parser.add_argument("--out", type=Path, default=None, help="JSON file (default benchmarks/results/...)")
    args = parser.parse_args()
    strides = [int(s) for s in args.strides.split(",")]
    device = select_device(args.device)
    df = stride_rows(args.results, strides, device, args.amp == "on")
    summary = df.groupby(["stride", "windows"], as_index=False).agg(
        mae=("mae", "mean"), ms_per_patient=("seconds", "mean")
    )
    summary["ms_per_patient"] = (1000 * summary["ms_per_patient"]).round(1)
    summary["mae"] = summary["mae"].round(3)
    per_fold = df.pivot_table(index="fold", columns="stride", values="mae").round(3)
    print(summary.to_string(index=False))
    print(per_fold.to_string())
    result = {
        "what": "level CV MAE (grid slices) and inference time per patient against the window stride",
        "results": args.results.name,
        "device": str(device),
        "amp": args.amp == "on" and device.type == "cuda",
        "patients": int(df["patient"].nunique()),
        "summary": summary.to_dict(orient="records"),
        "mae_per_fold": {str(k): v for k, v in per_fold.to_dict(orient="index").items()},
    }
    out = args.out or RESULTS / f"window_stride_{args.results.name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
