"""``gohscore predict``: score new scans with trained models (levels, 15 scores, Goh stage, QC image)."""

from __future__ import annotations

import argparse
import logging
import re
import sys
import time
from contextlib import ExitStack
from pathlib import Path

from gohscore.commands.options import add_machine_options, machine_from_args
from gohscore.errors import GohscoreError
from gohscore.files import atomic_path
from gohscore.settings import level_window_stride, section_defaults
from gohscore.uncertainty import REVIEW_SD_MM, REVIEW_SD_PERCENT

log = logging.getLogger("gohscore")

_SUFFIXES = (".nii.gz", ".nii", ".mha", ".mhd", ".nrrd")


def scan_id(path: Path) -> str:
    """A patient id from a scan path: the file name without its image suffix, or the folder name."""
    name = path.name
    for suffix in _SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def result_id(path: Path) -> str:
    """The name of a scan's result folder: its id with anything but letters, digits, '.', '-' as '_'."""
    return re.sub(r"[^\w.-]+", "_", scan_id(path))


def main(argv: list[str] | None = None) -> int:
    """Score one or more scans; write one folder per scan and a table over all scans."""
    parser = argparse.ArgumentParser(prog="gohscore predict", description=__doc__)
    parser.add_argument(
        "--scan",
        nargs="+",
        required=True,
        type=Path,
        help="scan files, DICOM folders, DICOMDIRs or .zip exports",
    )
    parser.add_argument(
        "--models",
        type=Path,
        help="results folder of a finished workflow run (levels/, scores/), or a bundle from gohscore export",
    )
    parser.add_argument(
        "--ablation",
        default=section_defaults("scores")["final_ablation"],
        help="score-model variant to use (default: the schema's scores.final_ablation)",
    )
    parser.add_argument(
        "--level-models", nargs="+", type=Path, help="level model.pt files (instead of --models)"
    )
    parser.add_argument(
        "--score-models", nargs="+", type=Path, help="score model.pt files (instead of --models)"
    )
    parser.add_argument("--out-dir", required=True, type=Path, help="one sub-folder per scan + scores.csv")
    parser.add_argument(
        "--fvc", nargs="+", type=float, help="FVC in %% predicted, one per scan: resolves 10-30 %% extents"
    )
    parser.add_argument(
        "--window-stride", type=int, default=None, help="levels.window_stride (default: the schema's)"
    )
    parser.add_argument(
        "--dicom-out",
        type=Path,
        help="also write a DICOM SR (TID 1500) and a Secondary Capture of qc.png per scan, for PACS",
    )
    parser.add_argument(
        "--explain",
        action="store_true",
        help="also write the score ensemble's heat maps (heatmaps.nii.gz) and overlay them on the QC sheet",
    )
    parser.add_argument("--qc-pdf", type=Path, help="also write every scan's QC sheet as one multi-page PDF")
    parser.add_argument(
        "--review-sd-mm",
        type=float,
        default=REVIEW_SD_MM,
        help="flag a level for review above this SD of its position across the fold models (default %(default)s)",
    )
    parser.add_argument(
        "--review-sd-percent",
        type=float,
        default=REVIEW_SD_PERCENT,
        help="... or above this SD of any of its scores (default %(default)s)",
    )
    add_machine_options(parser, deterministic=False)
    parser.add_argument("-v", "--verbose", action="store_true")
    arguments = list(sys.argv[1:] if argv is None else argv)  # recorded in each result's provenance
    args = parser.parse_args(arguments)
    machine = machine_from_args(args)
    stride = level_window_stride(
        {} if args.window_stride is None else {"window_stride": args.window_stride}, "--window-stride"
    )

    import pandas as pd

    from gohscore.bundle import is_bundle, load_bundle
    from gohscore.cascade import find_models, load_models, provenance, score_scan, write_result
    from gohscore.progress import progress
    from gohscore.qc_sheet import add_page
    from gohscore.training import select_device

    if args.models is None and not (args.level_models and args.score_models):
        raise GohscoreError("give --models RESULTS_DIR, or both --level-models and --score-models")
    bundle = args.models is not None and is_bundle(args.models)
    ablation = args.ablation if args.models is not None and not bundle else None
    level_paths, score_paths = (
        ([], [])
        if bundle
        else find_models(args.models, args.ablation)
        if args.models is not None
        else (args.level_models, args.score_models)
    )
    ids = [result_id(p) for p in args.scan]
    if len(set(ids)) != len(ids):
        raise GohscoreError("two scans share one name; score them in separate calls or rename them")
    fvc = args.fvc or [None] * len(ids)
    if len(fvc) != len(ids):
        raise GohscoreError(f"--fvc has {len(fvc)} values for {len(ids)} scans; give one per scan, in order")
    review = (args.review_sd_mm, args.review_sd_percent)
    if min(review) < 0:
        raise GohscoreError("--review-sd-mm and --review-sd-percent must be 0 or more")
    device = select_device(machine.device)
    models = load_bundle(args.models, device) if bundle else load_models(level_paths, score_paths, device)
    log.info("%d level models, %d score models on %s", len(models.levels), len(models.scores), device)

    tables = []
    with ExitStack() as stack:
        pdf = None
        if args.qc_pdf is not None:
            from matplotlib.backends.backend_pdf import PdfPages

            pdf = stack.enter_context(PdfPages(stack.enter_context(atomic_path(args.qc_pdf))))
        jobs = list(zip(args.scan, ids, fvc, strict=True))
        for scan, patient, fvc_percent in progress(jobs, "scans scored"):
            start = time.perf_counter()
            result = score_scan(
                scan, patient, models, device, fvc_percent, stride, machine.amp, args.explain, review
            )
            record = provenance(models, device, machine.amp, arguments, time.perf_counter() - start, ablation)
            write_result(result, args.out_dir / patient, record)
            if args.dicom_out is not None:
                from gohscore.dicom_results import write_dicom_results

                write_dicom_results(args.out_dir / patient, args.dicom_out / patient)
            if pdf is not None:
                add_page(pdf, result)
            table = result["table"].assign(
                global_extent=result["global_extent"],
                global_extent_sd=result["global_extent_sd"],
                goh_stage=result["goh_stage"],
            )
            tables.append(table)
            log.info(
                "%s: extent %.1f %% (SD %.1f), %s (%.1f s)",
                patient,
                result["global_extent"],
                result["global_extent_sd"],
                result["goh_stage"],
                time.perf_counter() - start,
            )
    with atomic_path(args.out_dir / "scores.csv") as tmp:
        pd.concat(tables, ignore_index=True).to_csv(tmp, index=False, float_format="%.2f")
    return 0
