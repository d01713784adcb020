"""``gohscore predict-levels``: the five Goh levels of a set of patients with one model or a fold ensemble."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from gohscore.commands.options import add_machine_options, machine_from_args
from gohscore.errors import GohscoreError
from gohscore.files import atomic_path, read_parquet
from gohscore.progress import progress
from gohscore.settings import level_window_stride

log = logging.getLogger("gohscore")


def build_parser() -> argparse.ArgumentParser:
    """The command's options."""
    p = argparse.ArgumentParser(prog="gohscore predict-levels", description=__doc__)
    p.add_argument(
        "--models", type=Path, nargs="+", required=True, help="model.pt files (several = ensemble)"
    )
    p.add_argument("--volumes", type=Path, required=True, help="folder of {patient}.npy grid volumes")
    p.add_argument("--manifest", type=Path, required=True, help="ingest/manifest.parquet")
    p.add_argument("--folds", type=Path, required=True, help="folds.parquet")
    p.add_argument("--set", dest="subset", choices=["cv", "test"], required=True, help="which patients")
    p.add_argument("--fold", type=int, default=None, help="with --set cv: only this fold's patients")
    p.add_argument(
        "--labels", type=Path, default=None, help="ingest/labels.parquet (fills the ref_* columns)"
    )
    p.add_argument("--out", type=Path, required=True, help="predictions.parquet")
    p.add_argument(
        "--window-stride",
        type=int,
        default=None,
        help="levels.window_stride: slices between sliding windows (default: the schema's)",
    )
    add_machine_options(p, deterministic=False)
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the command."""
    args = build_parser().parse_args(argv)
    machine = machine_from_args(args)
    given = {} if args.window_stride is None else {"window_stride": args.window_stride}
    stride = level_window_stride(given, "--window-stride")
    from gohscore.cards import check_ensemble, load_model
    from gohscore.goh import Z_COLUMNS
    from gohscore.levels.data import load_volume, manifest_geometries
    from gohscore.levels.predict import card_settings, level_table, predict_levels_volume
    from gohscore.splits import check_split_fold
    from gohscore.training import select_device

    folds = read_parquet(args.folds, "folds table")
    check_split_fold(folds, args.fold if args.subset == "cv" else None, str(args.folds))
    chosen = folds[folds["set"] == args.subset]
    if args.fold is not None:
        if args.subset != "cv":
            raise GohscoreError("--fold only applies to --set cv; drop --fold for the test set")
        chosen = chosen[chosen["fold"].astype(int) == args.fold]
    patients = sorted(chosen["patient"].astype(str))
    if not patients:
        raise GohscoreError(
            f"{args.folds}: no patients in set {args.subset!r} (fold {args.fold}); check the options"
        )
    loaded = [load_model(m) for m in args.models]
    models, cards = [m for m, _ in loaded], [c for _, c in loaded]
    card = check_ensemble(cards, "levels")
    card_settings(card)
    device = select_device(machine.device)
    models = [m.to(device).eval() for m in models]
    geoms = manifest_geometries(read_parquet(args.manifest, "manifest"), patients, str(args.manifest))
    side = int(card.input["grid_shape"])
    ref = None
    if args.labels is not None:
        labels = read_parquet(args.labels, "labels").set_index("patient")
        ref = np.full((len(patients), len(Z_COLUMNS)), np.nan)
        for i, patient in enumerate(patients):
            if patient in labels.index and set(Z_COLUMNS) <= set(labels.columns):
                ref[i] = labels.loc[patient, list(Z_COLUMNS)].to_numpy(dtype=float)
    pred = np.empty((len(patients), len(Z_COLUMNS)))
    log.info(
        "predicting levels of %d %s patients with %d model(s) on %s",
        len(patients),
        args.subset,
        len(models),
        device,
    )
    for i, patient in enumerate(progress(patients, "predict-levels")):
        volume = load_volume(args.volumes / f"{patient}.npy", side)
        pred[i] = predict_levels_volume(models, volume, card, device, stride, machine.amp)
    table = level_table(patients, pred, ref, geoms, folds)
    with atomic_path(args.out) as tmp:
        table.to_parquet(tmp, index=False)
    log.info("wrote %s (%d rows)", args.out, len(table))
    return 0
