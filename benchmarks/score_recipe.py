"""Score-network recipes side by side: cross-validated accuracy of variants of the ``scores:`` section.

Runs on a finished (or partly finished) workflow run that has ``slices/reference``, the ingest
tables and ``folds.parquet``: for each named variant (overrides of the config's ``scores:``
section, given as JSON) and each chosen fold it runs ``gohscore train-scores`` and
``gohscore predict-scores --set cv`` (as the workflow's rules do, one thread per job, ``--jobs``
at a time), then scores the CV predictions: MAE, SD, linearly weighted kappa and ICC per pattern,
the share of healthy levels (reference TOT 0) predicted at 0 %, and the training wall time.

    python benchmarks/score_recipe.py --config config/validate.yaml --folds 0 \\
        --variant 'none={"ablation": "none"}' \\
        --variant 'bal={"ablation": "balanced", "balance_power": 1.0}'

Each variant's key ``ablation`` picks the ablation and ``slices`` (optional) another slices folder,
e.g. one extracted at another ``input_size``; the rest overrides training keys of ``scores:``.
The networks run where the config's ``machine:`` section says (``--device`` / ``--amp`` override it).
Writes ``<name>.json`` and ``<name>.md`` to ``benchmarks/results`` (``--name``, default
score_recipe) and keeps every model under ``--work``. A fold whose folder under ``--work`` already
holds a finished ``checkpoint.pt`` but no predictions resumes from it: a copy of another variant's
checkpoint into a variant that differs only in ``checkpoint_choice`` writes the other weights
without training again (the choice is not part of the checkpoint's fingerprint).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from gohscore import metrics  # noqa: E402
from gohscore.goh import PATTERNS  # noqa: E402
from gohscore.markdown import markdown_document  # noqa: E402
from gohscore.settings import MachineParams, ScoreParams  # noqa: E402

THREADS = {k: "1" for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
ENV = {**os.environ, **THREADS, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


def run(args: list[str], log: Path) -> None:
    """One ``gohscore`` command with its output in ``log``; stop with its tail on failure."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w", encoding="utf-8") as fh:
        done = subprocess.run(
            [sys.executable, "-m", "gohscore", *args], stdout=fh, stderr=subprocess.STDOUT, env=ENV
        )
    if done.returncode:
        tail = "\n".join(log.read_text(encoding="utf-8").splitlines()[-15:])
        raise SystemExit(f"gohscore {args[0]} failed (exit {done.returncode}); {log}:\n{tail}")


def machine_options(machine: MachineParams, amp: bool = True) -> list[str]:
    """``--device`` (and ``--amp`` unless ``amp`` is false) of the ``machine:`` section."""
    options = ["--device", machine.device]
    return options + ["--amp", "on" if machine.amp else "off"] if amp else options


def train_and_predict(
    results: Path,
    slices: Path,
    work: Path,
    scores: dict,
    ablation: str,
    fold: int,
    seed: int,
    machine: MachineParams,
) -> dict:
    """Train one fold of one variant (skipped when its predictions exist); return its predictions and time."""
    out = work / f"fold{fold}"
    pred = out / "predictions.parquet"
    t0 = time.perf_counter()
    if not pred.exists():
        common = ["--slices", str(slices), "--folds", str(results / "folds.parquet")]
        run(
            ["train-scores", "--fold", str(fold), "--ablation", ablation, *common,
             "--labels", str(results / "ingest/labels.parquet"), "--patches", str(results / "ingest/patches.parquet"),
             "--params-json", json.dumps(scores, sort_keys=True), "--seed", str(seed),
             "--model", str(out / "model.pt"), "--card", str(out / "model.json"),
             "--history", str(out / "history.parquet"), "--draws", str(out / "draws.parquet"),
             *machine_options(machine)],
            out / "train.log",
        )  # fmt: skip
        run(
            ["predict-scores", "--models", str(out / "model.pt"), *common, "--set", "cv", "--fold", str(fold),
             "--ablation", ablation, "--source", "reference", "--labels", str(results / "ingest/labels.parquet"),
             *machine_options(machine, amp=False), "--out", str(pred)],
            out / "predict.log",
        )  # fmt: skip
    history = pd.read_parquet(out / "history.parquet")
    card = json.loads((out / "model.json").read_text(encoding="utf-8"))["training"]
    chosen = card.get("chosen_epoch", card.get("best_epoch"))
    return {
        "pred": pd.read_parquet(pred),
        "seconds": time.perf_counter() - t0,
        "history": history,
        "chosen_epoch": chosen,
    }


def summarise(pred: pd.DataFrame) -> dict:
    """Accuracy figures of CV predictions (one row per patient and level)."""
    row: dict = {"n_levels": len(pred)}
    for p in PATTERNS:
        ref, hat = pred[f"ref_{p}"].to_numpy(float), pred[f"pred_{p}"].to_numpy(float)
        mae, sd = metrics.mae_sd(ref, hat)
        row.update({f"{p}_mae": mae, f"{p}_sd": sd, f"{p}_kappa": metrics.weighted_kappa(ref, hat)})
        row[f"{p}_icc"] = metrics.icc_a1(ref, hat)
    healthy = pred["ref_TOT"] == 0
    row["healthy_at_0"] = (
        float((pred.loc[healthy, "pred_TOT"] == 0).mean()) if healthy.any() else float("nan")
    )
    row["n_healthy"] = int(healthy.sum())
    for p in PATTERNS:
        row[f"{p}_bias"] = float((pred[f"pred_{p}"] - pred[f"ref_{p}"]).mean())
    row["pred_TOT_mean"] = float(pred["pred_TOT"].mean())
    row["ref_TOT_mean"] = float(pred["ref_TOT"].mean())
    return row


def per_fold(preds: list[pd.DataFrame], patterns: tuple[str, ...] = ("TOT", "GG")) -> dict:
    """MAE and mean signed error (bias) of each fold's predictions, as JSON lists, per pattern."""
    row = {}
    for p in patterns:
        errors = [pred[f"pred_{p}"] - pred[f"ref_{p}"] for pred in preds]
        row[f"{p}_mae_per_fold"] = json.dumps([round(float(e.abs().mean()), 2) for e in errors])
        row[f"{p}_bias_per_fold"] = json.dumps([round(float(e.mean()), 2) for e in errors])
    return row


def main() -> None:
    """Parse options, train every variant and fold, write the comparison."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=ROOT / "config/validate.yaml")
    ap.add_argument("--folds", type=int, nargs="+", default=[0])
    ap.add_argument("--variant", action="append", required=True, help="NAME=JSON overrides")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--work", type=Path, default=None, help="default: <results>/recipes")
    ap.add_argument("--name", default="score_recipe")
    ap.add_argument("--slices", type=Path, default=None, help="default: <results>/slices/reference")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results")
    ap.add_argument("--device", choices=["auto", "cpu", "cuda"], default=None, help="machine.device override")
    ap.add_argument("--amp", choices=["on", "off"], default=None, help="machine.amp override")
    args = ap.parse_args()
    config = yaml.safe_load(args.config.read_text(encoding="utf-8"))
    given = dict(config.get("machine") or {})
    if args.device is not None:
        given["device"] = args.device
    if args.amp is not None:
        given["amp"] = args.amp == "on"
    machine = MachineParams.from_section(given, f"{args.config} machine:")
    results = ROOT / config["results"]
    work = args.work or results / "recipes"
    slices = args.slices or results / "slices/reference"
    variants = {}
    for item in args.variant:
        name, _, text = item.partition("=")
        over = json.loads(text or "{}")
        ablation = over.pop("ablation", "none")
        where = Path(over.pop("slices", slices))
        # only the training keys, as the workflow passes them (no ablations, final_ablation)
        scores = {k: v for k, v in config["scores"].items() if k in ScoreParams.keys()}
        merged = {**scores, **over}
        ScoreParams.from_section(merged, f"--variant {name}")  # a bad override fails before any training
        variants[name] = (ablation, merged, over, where)
    jobs = [(n, f) for n in variants for f in args.folds]
    t0 = time.perf_counter()
    with ThreadPoolExecutor(args.jobs) as pool:
        done = dict(
            zip(
                jobs,
                pool.map(
                    lambda job: train_and_predict(
                        results,
                        variants[job[0]][3],
                        work / job[0],
                        variants[job[0]][1],
                        variants[job[0]][0],
                        job[1],
                        config["seed"],
                        machine,
                    ),
                    jobs,
                ),
                strict=True,
            )
        )
    rows = []
    for name, (ablation, _, over, _where) in variants.items():
        runs = [done[(name, f)] for f in args.folds]
        recipe = ScoreParams.from_section(variants[name][1], f"--variant {name}")
        row = {
            "variant": name,
            "ablation": ablation,
            "overrides": json.dumps(over, sort_keys=True),
            "input_size": int(recipe.input_size),
            "loss": recipe.loss,
            "balance": "none"
            if ablation == "none"
            else "keep healthy"
            if recipe.balance_keeps_healthy_share
            else "full",
            "synthesis": f"{recipe.synthesis_on}, {recipe.synthesis_extent}"
            if ablation == "balanced_synthesis"
            else "none",
            "augmentation": bool(recipe.augmentation),
        }
        row.update(summarise(pd.concat([r["pred"] for r in runs], ignore_index=True)))
        row["seconds"] = float(np.sum([r["seconds"] for r in runs]))  # this call's, 0 for folds done before
        row["train_seconds"] = float(np.sum([r["history"]["seconds"].sum() for r in runs]))  # the epochs
        last = [r["history"].iloc[-5:] for r in runs]
        row["train_loss_last5"] = float(np.mean([h["train_loss"].mean() for h in last]))
        row["val_loss_last5"] = float(np.mean([h["val_loss"].mean() for h in last]))
        best = [r["history"]["val_loss"].idxmin() + 1 for r in runs]
        row["best_epoch"] = json.dumps(best)
        row["chosen_epoch"] = json.dumps([r["chosen_epoch"] for r in runs])
        row.update(per_fold([r["pred"] for r in runs]))
        rows.append(row)
    table = pd.DataFrame(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    record = {
        "what": "score-network recipe variants, CV at the reference levels (per level)",
        "config": str(args.config.relative_to(ROOT))
        if args.config.is_relative_to(ROOT)
        else str(args.config),
        "folds": args.folds,
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": f"{os.cpu_count()} CPU cores, {args.jobs} jobs of 1 thread; {machine.to_dict()}",
        "wall_seconds": round(time.perf_counter() - t0, 1),
        "rows": json.loads(table.to_json(orient="records")),
    }
    (args.out / f"{args.name}.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    settings = ["input_size", "loss", "balance", "synthesis", "augmentation"]
    shown = table[["variant", "ablation", *settings] + [f"{p}_{m}" for p in PATTERNS for m in ("mae", "kappa", "bias")]
                  + ["healthy_at_0", "pred_TOT_mean", "ref_TOT_mean", "train_loss_last5", "val_loss_last5",
                     "best_epoch", "chosen_epoch", "train_seconds"]].round(3)  # fmt: skip
    notes = [f"Overrides: {r['variant']}: {r['overrides']}" for r in rows]
    text = markdown_document(f"Score recipes, {record['config']}, folds {args.folds}", shown, notes)
    (args.out / f"{args.name}.md").write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
