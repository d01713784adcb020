"""The cascade on new scans: trained level and score models give five levels, 15 scores, the Goh stage and a QC image."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from gohscore.cards import ModelCard
from gohscore.errors import GohscoreError
from gohscore.files import atomic_path
from gohscore.goh import LEVELS, PATTERNS, round_to_5

log = logging.getLogger("gohscore")


@dataclass
class Models:
    """The level-model ensemble and the score-model ensemble with their (shared) model cards.

    ``files`` lists every model file with its card, for the provenance of each result.
    """

    levels: list[torch.nn.Module]
    level_card: ModelCard
    scores: list[torch.nn.Module]
    score_card: ModelCard
    files: list[tuple[Path, ModelCard]] = field(default_factory=list)


def find_models(results: Path, ablation: str) -> tuple[list[Path], list[Path]]:
    """Level and score model files of a finished workflow run under ``results``."""
    levels = sorted(Path(results).glob("levels/fold*/model.pt"))
    scores = sorted(Path(results).glob(f"scores/{ablation}/fold*/model.pt"))
    if not levels:
        raise GohscoreError(
            f"{results}: no levels/fold*/model.pt; point --models at the workflow's results folder "
            "(e.g. results or results/demo) or pass --level-models"
        )
    if not scores:
        raise GohscoreError(
            f"{results}: no scores/{ablation}/fold*/model.pt; train that ablation or pass --score-models"
        )
    return levels, scores


def load_models(level_paths: Sequence[Path], score_paths: Sequence[Path], device: torch.device) -> Models:
    """Load both ensembles and check that each shares one input convention."""
    from gohscore.cards import check_ensemble, load_model
    from gohscore.inference import for_inference

    levels, level_cards = zip(*(load_model(Path(p)) for p in level_paths), strict=True)
    scores, score_cards = zip(*(load_model(Path(p)) for p in score_paths), strict=True)
    level_card = check_ensemble(level_cards, "levels")
    score_card = check_ensemble(score_cards, "scores")
    for net in (*levels, *scores):
        for_inference(net, device)
    files = list(zip([*level_paths, *score_paths], [*level_cards, *score_cards], strict=True))
    return Models(list(levels), level_card, list(scores), score_card, [(Path(p), c) for p, c in files])


def score_scan(
    scan: Path,
    patient: str,
    models: Models,
    device: torch.device,
    fvc_percent: float | None = None,
    window_stride: int | None = None,
    amp: bool = True,
    explain: bool = False,
    review: tuple[float, float] | None = None,
) -> dict:
    """Run the cascade on one scan; return levels, scores and their spread, stage, and what the QC sheet needs.

    ``window_stride`` is ``levels.window_stride`` (default: the schema's). ``explain`` adds the
    score ensemble's heat maps (:mod:`gohscore.scores.explain`) of each level's centre slice, on
    the original pixel grid, under ``"maps"`` (``(5, 3, rows, columns)``). ``review`` is the pair
    (position SD in mm, score SD in %) above which a level is flagged (default:
    :mod:`gohscore.uncertainty`'s).
    """
    from gohscore import io, preprocess
    from gohscore.levels.decode import ensemble
    from gohscore.levels.predict import predict_levels_members
    from gohscore.resample import resample_read_scan
    from gohscore.scores.predict import level_members
    from gohscore.scores.slices import extract_levels, nearest_slice, unsquare
    from gohscore.settings import level_window_stride
    from gohscore.staging import global_extent, goh_stage, simple_stage
    from gohscore.uncertainty import review_flags, spread

    stride = level_window_stride({} if window_stride is None else {"window_stride": window_stride})
    grid = models.level_card.input
    original = io.read_scan(scan)  # keep it referenced: ``array`` below is a view of its pixels
    volume, geom, array = resample_read_scan(
        original, patient, float(grid["spacing_mm"]), int(grid["grid_shape"])
    )
    members = predict_levels_members(models.levels, volume, models.level_card, device, stride, amp)
    index = ensemble(members)
    z_mm = np.asarray(preprocess.grid_index_to_world_z(index, geom), dtype=float)
    z_sd = spread(preprocess.grid_index_to_world_z(members, geom))
    slice_k = np.asarray(preprocess.world_z_to_original_slice(z_mm, geom), dtype=float)

    card = models.score_card
    per_level = int(card.input["slices_per_level"])
    spacing_xyz = geom["lps_spacing_xyz_mm"]
    slices, rows, _ = extract_levels(array, spacing_xyz, slice_k, per_level, int(card.input["input_size"]))
    score_members = level_members(models.scores, slices, card, device)
    scores = round_to_5(score_members.mean(axis=0))
    score_sd = spread(score_members)
    extent = global_extent(scores[:, 0])
    extent_sd = float(spread(score_members[:, :, 0].mean(axis=1)))
    flags = review_flags(z_sd, score_sd) if review is None else review_flags(z_sd, score_sd, *review)
    levels = pd.DataFrame(
        {
            "patient": patient,
            "level": np.array(LEVELS),
            "z_mm": z_mm,
            "z_mm_sd": z_sd,
            "original_slice": np.rint(slice_k).astype(int),
            "original_slice_float": slice_k,
            "grid_index": index,
            **{p: scores[:, j] for j, p in enumerate(PATTERNS)},
            **{f"{p}_sd": score_sd[:, j] for j, p in enumerate(PATTERNS)},
            "review": flags,
        }
    )
    centre = [nearest_slice(float(k), array.shape[0]) for k in slice_k]
    spacing_yx = (float(spacing_xyz[1]), float(spacing_xyz[0]))
    result = {
        "patient": patient,
        "scan": str(scan),
        "table": levels,
        "global_extent": float(extent),
        "global_extent_sd": extent_sd,
        "fvc_percent": fvc_percent,
        "goh_stage": goh_stage(extent, fvc_percent),
        "simple_stage": simple_stage(extent),
        "source": scan_source(original),
        "qc": {
            "slices": np.asarray(array[centre], dtype=np.float32),
            "spacing_yx_mm": spacing_yx,
            "coronal": coronal_view(array),
            "spacing_zx_mm": (float(spacing_xyz[2]), float(spacing_xyz[0])),
            "level_slices": slice_k,
        },
        "maps": None,
    }
    if explain:
        from gohscore.scores.explain import explain_slices

        centre_rows = [r["row"] for r in rows if r["offset"] == 0]
        maps = explain_slices(models.scores, slices[centre_rows], card, device)
        shape = array.shape[1:]
        result["maps"] = np.stack([unsquare(maps[:, j], shape, spacing_yx) for j in range(len(PATTERNS))], 1)
    return result


def coronal_view(array: np.ndarray) -> np.ndarray:
    """The coronal plane (``z, x``; row 0 = bottom) through the scan's middle row, where the lungs are widest."""
    return np.asarray(array[:, array.shape[1] // 2, :], dtype=np.float32)


def scan_source(scan) -> dict:
    """What identifies the input: its path, format, the SHA-256 of its files and (DICOM) its UIDs."""
    from gohscore.io import sha256_files

    return {
        "path": str(scan.path),
        "format": scan.format,
        "sha256": sha256_files(scan.files) if scan.files else None,
        "files": len(scan.files),
        "series_uid": scan.series_uid,
        "study_uid": scan.study_uid,
    }


def provenance(
    models: Models,
    device: torch.device,
    amp: bool,
    arguments: Sequence[str],
    seconds: float,
    ablation: str | None,
) -> dict:
    """What produced a result: versions, each model file's SHA-256 and fold, device, precision, arguments, time."""
    from gohscore.cards import file_sha256, software_versions
    from gohscore.training import choose_precision

    files = [
        {
            "task": card.task,
            "fold": card.training.get("fold"),
            "ablation": card.training.get("ablation"),
            "file": str(path),
            "sha256": card.weights_sha256 or file_sha256(path),
        }
        for path, card in models.files
    ]
    ablations = sorted({str(f["ablation"]) for f in files if f["task"] == "scores" and f["ablation"]})
    return {
        "software": software_versions(),
        "models": files,
        "ablation": ablation
        if ablation is not None
        else (ablations[0] if len(ablations) == 1 else ablations),
        "device": str(device),
        "precision": {"levels": choose_precision(device, amp), "scores": "fp32"},
        "arguments": list(arguments),
        "seconds": round(float(seconds), 3),
    }


def _summary(result: dict, provenance_record: dict | None) -> dict:
    """The JSON summary of one scan's result."""
    table = result["table"]
    return {
        "patient": result["patient"],
        "scan": result["scan"],
        "global_extent_percent": result["global_extent"],
        "global_extent_sd": round(result["global_extent_sd"], 3),
        "fvc_percent": result["fvc_percent"],
        "goh_stage": result["goh_stage"],
        "goh_stage_note": "10-30 % is indeterminate without FVC (>= 70 % predicted: limited)",
        "simple_stage_20_percent": result["simple_stage"],
        "review_levels": [int(r.level) for r in table.itertuples() if r.review],
        "levels": [
            {
                "level": int(r.level),
                "z_mm": round(float(r.z_mm), 2),
                "z_mm_sd": round(float(r.z_mm_sd), 2),
                "original_slice": int(r.original_slice),
                **{p: float(getattr(r, p)) for p in PATTERNS},
                **{f"{p}_sd": round(float(getattr(r, f"{p}_sd")), 2) for p in PATTERNS},
                "review": bool(r.review),
            }
            for r in table.itertuples()
        ],
        "source": result["source"],
        "provenance": provenance_record,
    }


def write_result(result: dict, out_dir: Path, provenance_record: dict | None = None) -> Path:
    """``levels.csv`` (levels, 15 scores, their spread), ``summary.json``, ``qc.png`` and, with maps,
    ``heatmaps.nii.gz`` in ``out_dir``; returns the QC sheet's path."""
    from gohscore.qc_sheet import qc_sheet, write_heatmaps

    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / "levels.csv") as tmp:
        result["table"].to_csv(tmp, index=False, float_format="%.2f")
    summary = _summary(result, provenance_record)
    with atomic_path(out_dir / "summary.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    if result["maps"] is not None:
        write_heatmaps(result["maps"], result["qc"]["spacing_yx_mm"], out_dir / "heatmaps.nii.gz")
    return qc_sheet(result, out_dir / "qc.png")
