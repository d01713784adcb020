"""Which weights and which BatchNorm statistics, measured on a finished run without training again.

Every score network of a workflow run keeps two sets of weights: ``model.pt`` (the epoch with the
lowest inner-validation loss, ``checkpoint_choice: best``) and the last epoch's, inside
``checkpoint.pt``. This scores the CV predictions of both, each with the BatchNorm statistics as
trained (``batchnorm_statistics: running``) and recomputed over the fold's real training slices
(``recomputed``) by the same :func:`gohscore.scores.train.make_calibrator` that training uses. The
weights' path does not depend on ``batchnorm_statistics`` (only the validation, and hence the best
epoch, does), so ``last`` + ``recomputed`` here is what training with those keys writes; ``best`` +
``recomputed`` is not: with recomputed statistics the best epoch can be another one.

    python benchmarks/score_weights_posthoc.py --config config/validate.yaml --name batch4_posthoc

It also scores each fold's last weights on their own training slices, per slice, with running,
each batch's or recomputed BatchNorm statistics and dropout off or on (on, with each batch's
statistics, is how the network was trained), which tells what pulls the outputs down.

Run it where the config's ``results:`` path and the run's patch files resolve. Writes
``<name>.json`` and ``<name>.md`` (the figures of ``score_recipe.py``) to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from score_recipe import per_fold, summarise  # noqa: E402

from gohscore.cards import load_model  # noqa: E402
from gohscore.folds import inner_validation_split  # noqa: E402
from gohscore.goh import PATTERNS, score_column  # noqa: E402
from gohscore.markdown import markdown_document  # noqa: E402
from gohscore.scores.data import (  # noqa: E402
    fold_patients,
    load_slices,
    normalize_hu,
    slice_score_targets,
)
from gohscore.scores.predict import predict_table  # noqa: E402
from gohscore.scores.train import make_calibrator  # noqa: E402
from gohscore.settings import ScoreParams  # noqa: E402

CPU = torch.device("cpu")
VARIANTS = [("best", "running"), ("best", "recomputed"), ("last", "running"), ("last", "recomputed")]


def fold_predictions(
    run: Path, ablation: str, fold: int, params: ScoreParams, seed: int
) -> list[pd.DataFrame]:
    """CV predictions of one fold's network, one table per entry of :data:`VARIANTS`."""
    folder = run / "scores" / ablation / f"fold{fold}"
    folds = pd.read_parquet(run / "folds.parquet")
    labels = pd.read_parquet(run / "ingest/labels.parquet").set_index("patient")
    model, card = load_model(folder / "model.pt")
    weights = {
        "best": {k: v.clone() for k, v in model.state_dict().items()},
        "last": torch.load(folder / "checkpoint.pt", map_location="cpu", weights_only=True)["model"],
    }
    train_p, _ = inner_validation_split(
        fold_patients(folds, fold, "cv", exclude=True), params.val_fraction, seed, fold
    )
    train_img, _ = load_slices(run / "slices/reference", train_p)
    calibrate = make_calibrator(
        torch.as_tensor(train_img),
        params.batch_size,
        [float(v) for v in params.hu_window],
        np.random.default_rng([seed, fold, 7]),  # as train_scores draws it
    )
    images, index = load_slices(run / "slices/reference", fold_patients(folds, fold, "cv"))
    out = []
    for choice, stats in VARIANTS:
        model.load_state_dict(weights[choice])
        if stats == "recomputed":
            calibrate(model)
        table = predict_table([model.eval()], card, images, index, CPU)
        for p in PATTERNS:
            table[f"ref_{p}"] = [
                float(labels.at[patient, score_column(int(level), p)])
                for patient, level in zip(table["patient"], table["level"], strict=True)
            ]
        out.append(table)
    return out


FIT_MODES = [  # (BatchNorm statistics, dropout on) for training_slice_fit
    ("running", False),  # how the network is used
    ("batch", False),
    ("recomputed", False),
    ("running", True),
    ("batch", True),  # how it was trained
]


def training_slice_fit(run: Path, ablation: str, fold: int, params: ScoreParams, seed: int) -> dict:
    """The last weights on the fold's own training slices, per slice: L1 (fraction) and TOT bias (%)
    with running, each batch's or recomputed BatchNorm statistics, dropout off or on."""
    folder = run / "scores" / ablation / f"fold{fold}"
    folds = pd.read_parquet(run / "folds.parquet")
    model, _ = load_model(folder / "model.pt")
    last = torch.load(folder / "checkpoint.pt", map_location="cpu", weights_only=True)["model"]
    train_p, _ = inner_validation_split(
        fold_patients(folds, fold, "cv", exclude=True), params.val_fraction, seed, fold
    )
    images, index = load_slices(run / "slices/reference", train_p)
    labels = pd.read_parquet(run / "ingest/labels.parquet")
    y = torch.as_tensor(slice_score_targets(index, labels), dtype=torch.float32)
    hu_window = [float(v) for v in params.hu_window]
    x = normalize_hu(torch.as_tensor(images).float(), hu_window)[:, None]
    order = torch.as_tensor(np.random.default_rng([seed, fold, 8]).permutation(len(x)))
    row = {"ablation": ablation, "fold": fold, "n_slices": len(x)}
    for stats, dropout in FIT_MODES:
        model.load_state_dict(last)
        if stats == "recomputed":
            make_calibrator(
                torch.as_tensor(images), params.batch_size, hu_window, np.random.default_rng([seed, fold, 7])
            )(model)
        model.eval()
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.train(stats == "batch")
            elif isinstance(m, torch.nn.Dropout):
                m.train(dropout)
        torch.manual_seed(seed)
        pred = torch.empty_like(y)
        with torch.no_grad():
            for i in range(0, len(x), params.batch_size):
                rows = order[i : i + params.batch_size]
                pred[rows] = model(x[rows]).float() * 100
        name = f"{stats}_bn_dropout_{'on' if dropout else 'off'}"
        row[f"{name}_l1"] = float((pred - y).abs().mean()) / 100
        row[f"{name}_TOT_bias"] = float((pred - y)[:, 0].mean())
    return row


def main() -> None:
    """Score every ablation and fold of the run four ways; write the comparison."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=ROOT / "config/validate.yaml")
    ap.add_argument("--ablations", nargs="+", default=["none", "balanced", "balanced_synthesis"])
    ap.add_argument("--folds", type=int, nargs="+", default=None, help="default: every CV fold")
    ap.add_argument("--name", default="score_weights_posthoc")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/score_recipe")
    args = ap.parse_args()
    torch.set_num_threads(1)
    config = yaml.safe_load(args.config.read_text(encoding="utf-8"))
    run = Path(config["results"])
    params = ScoreParams.from_section(
        {k: v for k, v in config["scores"].items() if k in ScoreParams.keys()}, str(args.config)
    )
    folds = args.folds or sorted(
        int(f) for f in pd.read_parquet(run / "folds.parquet").query("set == 'cv'")["fold"].unique()
    )
    t0 = time.perf_counter()
    rows = []
    for ablation in args.ablations:
        by_fold = [fold_predictions(run, ablation, f, params, config["seed"]) for f in folds]
        for v, (choice, stats) in enumerate(VARIANTS):
            tables = [four[v] for four in by_fold]
            row = {"ablation": ablation, "checkpoint_choice": choice, "batchnorm_statistics": stats}
            row.update(summarise(pd.concat(tables, ignore_index=True)))
            row.update(per_fold(tables))
            rows.append(row)
    table = pd.DataFrame(rows)
    fits = pd.DataFrame(
        [training_slice_fit(run, a, f, params, config["seed"]) for a in args.ablations for f in folds]
    )
    args.out.mkdir(parents=True, exist_ok=True)
    record = {
        "what": "the run's score networks scored with their best or last weights and running or "
        "recomputed BatchNorm statistics, CV at the reference levels (per level)",
        "run": str(run),
        "config": str(args.config),
        "folds": folds,
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "wall_seconds": round(time.perf_counter() - t0, 1),
        "rows": json.loads(table.to_json(orient="records")),
        "training_slices": json.loads(fits.to_json(orient="records")),
    }
    (args.out / f"{args.name}.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    shown = table[
        ["ablation", "checkpoint_choice", "batchnorm_statistics"]
        + [f"{p}_{m}" for p in PATTERNS for m in ("mae", "kappa", "bias")]
        + ["healthy_at_0", "TOT_mae_per_fold", "TOT_bias_per_fold"]
    ].round(3)
    text = markdown_document(f"Best or last weights, running or recomputed statistics: {run}", shown)
    text += "\n" + markdown_document(
        "Last weights on their own training slices, per slice, by BatchNorm statistics and dropout; "
        "L1 as a fraction, TOT bias in %",
        fits.round(4),
    ).replace("# ", "## ", 1)
    (args.out / f"{args.name}.md").write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
