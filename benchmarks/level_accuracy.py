"""Table 1 (level accuracy) of a config's protocol, run outside Snakemake, for a machine without it.

A GPU machine may have torch but no Snakemake, so this script runs the *same package commands*
that the workflow's rules run, in the same order, in a work folder: ``phantom`` per patient and
``phantom-tables`` (embedded cohort), ``resample`` per patient, ``ingest``, ``folds``, then
``train-levels`` and ``predict-levels --set cv`` per fold. It writes Table 1 (per-level MAE and SD
in grid slices, ICC, and the mean-position baseline) with ``gohscore.tables``, and the wall time
of every stage. A stage whose outputs exist is skipped, so a second call on a warm machine
resumes where the first stopped (training itself resumes from its checkpoint).

    python benchmarks/level_accuracy.py                         # the paper protocol, 4 folds
    python benchmarks/level_accuracy.py --folds 0 --epochs 100  # one fold at a smaller budget
    python benchmarks/level_accuracy.py --smoke                 # config/tiny.yaml on any machine

Writes ``level_accuracy.json``, ``level_accuracy.md`` and the predictions, histories and model
cards of the trained folds to ``--out`` ($OUT when set, else benchmarks/results); ``--smoke``
writes only ``level_accuracy_smoke.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from gohscore import tables as T  # noqa: E402
from gohscore.markdown import markdown_document  # noqa: E402
from gohscore.settings import LevelParams, MachineParams, level_window_stride  # noqa: E402

ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}


def section(config: dict, name: str, only: tuple[str, ...] | None = None) -> str:
    """One config section as sorted JSON (what the workflow passes as --params-json).

    ``only`` narrows it to the keys the command reads, as the workflow's ``section(..., only=...)``.
    """
    keys = [k for k in config[name] if only is None or k in only]
    return json.dumps({k: config[name][k] for k in keys}, sort_keys=True)


def machine_options(config: dict) -> list[str]:
    """``--device`` and ``--amp`` of the config's ``machine:`` section (what the workflow's resources pass)."""
    machine = MachineParams.from_section(config.get("machine"), "machine")
    return ["--device", machine.device, "--amp", "on" if machine.amp else "off"]


def gohscore(args: list[str], log: Path) -> None:
    """Run one package command (as the rules do) with its output in ``log``; stop with its tail on failure."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w", encoding="utf-8") as fh:
        done = subprocess.run(
            [sys.executable, "-m", "gohscore", *args], stdout=fh, stderr=subprocess.STDOUT, env=ENV
        )
    if done.returncode != 0:
        tail = log.read_text(encoding="utf-8").splitlines()[-15:]
        raise SystemExit(f"gohscore {args[0]} failed (exit {done.returncode}); {log}:\n" + "\n".join(tail))


def parallel(jobs: list[tuple[list[str], Path]], workers: int, what: str) -> None:
    """Run independent commands on ``workers`` processes, printing progress every ~10 %."""
    step = max(1, len(jobs) // 10)
    with ThreadPoolExecutor(workers) as pool:
        for i, _ in enumerate(pool.map(lambda job: gohscore(*job), jobs), 1):
            if i % step == 0 or i == len(jobs):
                print(f"  {what}: {i}/{len(jobs)}", flush=True)


class Stages:
    """Wall time of each stage, skipped when its outputs exist."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def run(self, name: str, outputs: list[Path], body: Callable[[], None]) -> None:
        """Run ``body`` unless every path of ``outputs`` exists; record its wall time."""
        if outputs and all(p.exists() for p in outputs):
            print(f"{name}: outputs exist, skipped", flush=True)
            return
        t0 = time.perf_counter()
        body()
        self.seconds[name] = round(time.perf_counter() - t0, 2)
        print(f"{name}: {self.seconds[name]:.1f} s", flush=True)


def main(argv: list[str] | None = None) -> int:
    """Run the stages, then write the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "config" / "config.yaml")
    parser.add_argument("--smoke", action="store_true", help="config/tiny.yaml: checks that the script runs")
    parser.add_argument("--work", type=Path, default=ROOT / ".acc", help="work folder (kept for reruns)")
    parser.add_argument(
        "--out", type=Path, default=Path(os.environ.get("OUT") or ROOT / "benchmarks" / "results")
    )
    parser.add_argument("--folds", default=None, help="comma-separated folds to train (default: all)")
    parser.add_argument("--epochs", type=int, default=None, help="override levels.epochs")
    parser.add_argument(
        "--patients", type=int, default=None, help="override phantom.n_patients (a smaller cohort)"
    )
    parser.add_argument(
        "--jobs", type=int, default=os.cpu_count() or 1, help="parallel phantom/resample jobs"
    )
    args = parser.parse_args(argv)

    config_path = ROOT / "config" / "tiny.yaml" if args.smoke else args.config
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    if args.epochs:
        config["levels"]["epochs"] = args.epochs
    if args.patients:
        config["phantom"]["n_patients"] = args.patients
    level_training = section(config, "levels", only=LevelParams.keys())  # no window_stride
    window_stride = level_window_stride(config["levels"], str(config_path))
    machine = machine_options(config)
    n_folds = int(config["folds"]["n_folds"])
    folds = [int(f) for f in args.folds.split(",")] if args.folds else list(range(n_folds))
    if config["cohort"]["source"] != "phantom":
        raise SystemExit(
            f"{config_path}: this script generates the embedded cohort; set cohort.source: phantom"
        )
    work = args.work / f"{config_path.stem}_{config['phantom']['n_patients']}"
    cohort, pre, ingest = work / "phantom", work / "preprocess", work / "ingest"
    logs = work / "logs"
    patients = [f"P{i:04d}" for i in range(1, int(config["phantom"]["n_patients"]) + 1)]
    seed = str(config["seed"])
    stages = Stages()
    print(
        f"{config_path.name}: {len(patients)} patients, folds {folds}, {config['levels']['epochs']} epochs",
        flush=True,
    )

    stages.run(
        "phantom",
        [cohort / "parts" / f"{p}.json" for p in patients],
        lambda: parallel(
            [
                (
                    [
                        "phantom",
                        "--patient",
                        p,
                        "--params-json",
                        section(config, "phantom"),
                        "--seed",
                        seed,
                        "--scan-dir",
                        str(cohort / "scans" / p),
                        "--patch-dir",
                        str(cohort / "patches" / p),
                        "--part",
                        str(cohort / "parts" / f"{p}.json"),
                    ],
                    logs / "phantom" / f"{p}.log",
                )
                for p in patients
            ],
            args.jobs,
            "phantom",
        ),
    )
    stages.run(
        "phantom_tables",
        [cohort / "labels.csv"],
        lambda: gohscore(
            [
                "phantom-tables",
                "--parts",
                *[str(cohort / "parts" / f"{p}.json") for p in patients],
                "--cohort",
                str(cohort),
                "--params-json",
                section(config, "phantom"),
                "--seed",
                seed,
            ],
            logs / "phantom_tables.log",
        ),
    )
    stages.run(
        "resample",
        [pre / f"{p}.json" for p in patients],
        lambda: parallel(
            [
                (
                    [
                        "resample",
                        "--scan",
                        str(cohort / "scans" / p),
                        "--patient",
                        p,
                        "--params-json",
                        section(config, "preprocess"),
                        "--volume",
                        str(pre / f"{p}.npy"),
                        "--geometry",
                        str(pre / f"{p}.json"),
                    ],
                    logs / "resample" / f"{p}.log",
                )
                for p in patients
            ],
            args.jobs,
            "resample",
        ),
    )
    stages.run(
        "ingest",
        [ingest / "manifest.parquet"],
        lambda: gohscore(
            [
                "ingest",
                "--cohort",
                str(cohort),
                "--geometry",
                *[str(pre / f"{p}.json") for p in patients],
                "--manifest",
                str(ingest / "manifest.parquet"),
                "--labels",
                str(ingest / "labels.parquet"),
                "--observers",
                str(ingest / "observers.parquet"),
                "--patches",
                str(ingest / "patches.parquet"),
            ],
            logs / "ingest.log",
        ),
    )
    stages.run(
        "folds",
        [work / "folds.parquet"],
        lambda: gohscore(
            [
                "folds",
                "--labels",
                str(ingest / "labels.parquet"),
                "--observers",
                str(ingest / "observers.parquet"),
                "--params-json",
                section(config, "folds"),
                "--seed",
                seed,
                "--out",
                str(work / "folds.parquet"),
            ],
            logs / "folds.log",
        ),
    )
    common = [
        "--volumes",
        str(pre),
        "--manifest",
        str(ingest / "manifest.parquet"),
        "--folds",
        str(work / "folds.parquet"),
    ]
    for fold in folds:
        fold_dir = work / "levels" / f"fold{fold}"
        stamp = fold_dir / "levels_params.json"
        stamped = stamp.read_text(encoding="utf-8") if stamp.is_file() else None
        if stamped != level_training and (fold_dir / "model.pt").exists():
            # other levels settings (as Snakemake's params trigger): train-levels continues from its
            # checkpoint when only the epoch budget grew, else starts afresh; predictions are redone
            for done in ("model.pt", "predictions.parquet"):
                (fold_dir / done).unlink(missing_ok=True)
        fold_dir.mkdir(parents=True, exist_ok=True)
        stamp.write_text(level_training, encoding="utf-8")
        # levels.window_stride is an inference key: another stride redoes the predictions only
        stride_stamp = fold_dir / "window_stride.txt"
        if stride_stamp.is_file() and stride_stamp.read_text(encoding="utf-8") != str(window_stride):
            (fold_dir / "predictions.parquet").unlink(missing_ok=True)
        stride_stamp.write_text(str(window_stride), encoding="utf-8")
        stages.run(
            f"train_fold{fold}",
            [fold_dir / "model.pt"],
            lambda fold=fold, fold_dir=fold_dir: gohscore(
                [
                    "train-levels",
                    "--fold",
                    str(fold),
                    *common,
                    "--labels",
                    str(ingest / "labels.parquet"),
                    "--params-json",
                    level_training,
                    "--seed",
                    seed,
                    "--model",
                    str(fold_dir / "model.pt"),
                    "--card",
                    str(fold_dir / "model.json"),
                    "--history",
                    str(fold_dir / "history.parquet"),
                    *machine,
                ],
                logs / f"train_fold{fold}.log",
            ),
        )
        stages.run(
            f"predict_fold{fold}",
            [fold_dir / "predictions.parquet"],
            lambda fold=fold, fold_dir=fold_dir: gohscore(
                [
                    "predict-levels",
                    "--models",
                    str(fold_dir / "model.pt"),
                    *common,
                    "--set",
                    "cv",
                    "--fold",
                    str(fold),
                    "--labels",
                    str(ingest / "labels.parquet"),
                    "--window-stride",
                    str(window_stride),
                    *machine,
                    "--out",
                    str(fold_dir / "predictions.parquet"),
                ],
                logs / f"predict_fold{fold}.log",
            ),
        )
    return report(config, config_path, work, folds, stages, args.out)


def report(config: dict, config_path: Path, work: Path, folds: list[int], stages: Stages, out: Path) -> int:
    """Table 1 over the trained folds, with the baseline from *all* other CV patients of each fold."""
    import pandas as pd
    import torch

    from gohscore.levels.data import level_index_targets, manifest_geometries

    ingest = work / "ingest"
    fold_of = pd.read_parquet(work / "folds.parquet").query("set == 'cv'").set_index("patient")["fold"]
    preds = pd.concat([pd.read_parquet(work / "levels" / f"fold{f}" / "predictions.parquet") for f in folds])
    # Reference positions of every CV patient (not only the predicted folds) for the baseline.
    geoms = manifest_geometries(pd.read_parquet(ingest / "manifest.parquet"), list(fold_of.index), "manifest")
    ref = level_index_targets(pd.read_parquet(ingest / "labels.parquet"), geoms, "labels")
    pool = pd.DataFrame(
        [
            {"patient": p, "fold": int(fold_of[p]), "level": k + 1, "ref_index": float(ref[i, k])}
            for i, p in enumerate(geoms)
            for k in range(5)
        ]
    )
    table = T.table1_levels(preds, training=pool)
    cards = {
        f: json.loads((work / "levels" / f"fold{f}" / "model.json").read_text(encoding="utf-8"))
        for f in folds
    }
    result = {
        "config": config_path.name,
        "patients": int(config["phantom"]["n_patients"]),
        "grid": {"spacing_mm": config["preprocess"]["spacing_mm"], "shape": config["preprocess"]["shape"]},
        "levels_params": config["levels"],
        "machine": config.get("machine"),
        "folds": folds,
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
        "cpu_count": os.cpu_count(),
        "stage_seconds": stages.seconds,
        "best_epoch": {f: cards[f]["training"]["best_epoch"] for f in folds},
        "table1": table.to_dict(orient="records"),
    }
    out.mkdir(parents=True, exist_ok=True)
    name = "level_accuracy_smoke" if config_path.stem == "tiny" else "level_accuracy"
    (out / f"{name}.json").write_text(json.dumps(result, indent=2, default=float) + "\n", encoding="utf-8")
    doc = markdown_document(
        f"Table 1 ({config_path.name}, folds {folds}, {config['levels']['epochs']} epochs)",
        T.table1_display(table),
        ["MAE (SD) of |predicted - reference| in grid slices; baseline: mean training position, no image."],
    )
    (out / f"{name}.md").write_text(doc, encoding="utf-8")
    for f in folds if name == "level_accuracy" else []:  # the smoke run keeps only its summary
        for file in ("predictions.parquet", "history.parquet", "model.json"):
            shutil.copy(work / "levels" / f"fold{f}" / file, out / f"{name}_fold{f}_{file}")
    print(doc, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
