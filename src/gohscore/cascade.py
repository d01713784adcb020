"""The cascade on new scans: trained level and score models give five levels, 15 scores, the Goh stage and a QC image."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from gohscore.cards import ModelCard
from gohscore.errors import GohscoreError
from gohscore.files import atomic_path
from gohscore.goh import LEVELS, PATTERNS

log = logging.getLogger("gohscore")


@dataclass
class Models:
    """The level-model ensemble and the score-model ensemble with their (shared) model cards."""

    levels: list[torch.nn.Module]
    level_card: ModelCard
    scores: list[torch.nn.Module]
    score_card: ModelCard


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
    return Models(list(levels), level_card, list(scores), score_card)


def score_scan(
    scan: Path,
    patient: str,
    models: Models,
    device: torch.device,
    fvc_percent: float | None = None,
    window_stride: int | None = None,
    amp: bool = True,
) -> dict:
    """Run the cascade on one scan; return levels, scores, stage and what the QC image needs.

    ``window_stride`` is ``levels.window_stride`` (default: the schema's).
    """
    from gohscore import io, preprocess
    from gohscore.levels.predict import predict_levels_volume
    from gohscore.resample import resample_read_scan
    from gohscore.scores.predict import predict_scores_slices
    from gohscore.scores.slices import extract_levels
    from gohscore.settings import level_window_stride
    from gohscore.staging import global_extent, goh_stage, simple_stage

    stride = level_window_stride({} if window_stride is None else {"window_stride": window_stride})
    grid = models.level_card.input
    original = io.read_scan(scan)  # keep it referenced: ``array`` below is a view of its pixels
    volume, geom, array = resample_read_scan(
        original, patient, float(grid["spacing_mm"]), int(grid["grid_shape"])
    )
    index = predict_levels_volume(models.levels, volume, models.level_card, device, stride, amp)
    z_mm = np.asarray(preprocess.grid_index_to_world_z(index, geom), dtype=float)
    slice_k = np.asarray(preprocess.world_z_to_original_slice(z_mm, geom), dtype=float)

    card = models.score_card
    per_level = int(card.input["slices_per_level"])
    slices, rows, _ = extract_levels(
        array, geom["lps_spacing_xyz_mm"], slice_k, per_level, int(card.input["input_size"])
    )
    scores = predict_scores_slices(models.scores, slices, card, device)
    extent = global_extent(scores[:, 0])
    centre_rows = [r["row"] for r in rows if r["offset"] == 0]
    levels = pd.DataFrame(
        {
            "patient": patient,
            "level": np.array(LEVELS),
            "z_mm": z_mm,
            "original_slice": np.rint(slice_k).astype(int),
            "original_slice_float": slice_k,
            "grid_index": index,
            **{p: scores[:, j] for j, p in enumerate(PATTERNS)},
        }
    )
    return {
        "patient": patient,
        "scan": str(scan),
        "table": levels,
        "global_extent": float(extent),
        "fvc_percent": fvc_percent,
        "goh_stage": goh_stage(extent, fvc_percent),
        "simple_stage": simple_stage(extent),
        "qc_slices": [slices[r] for r in centre_rows],
        "qc_coronal": volume[:, volume.shape[1] // 2, :],
        "qc_rows": index,
    }


def write_result(result: dict, out_dir: Path) -> None:
    """``levels.csv`` (levels and 15 scores), ``summary.json`` and ``qc.png`` in ``out_dir``."""
    from gohscore.plots import qc_figure

    out_dir.mkdir(parents=True, exist_ok=True)
    table = result["table"]
    with atomic_path(out_dir / "levels.csv") as tmp:
        table.to_csv(tmp, index=False, float_format="%.2f")
    summary = {
        "patient": result["patient"],
        "scan": result["scan"],
        "global_extent_percent": result["global_extent"],
        "fvc_percent": result["fvc_percent"],
        "goh_stage": result["goh_stage"],
        "goh_stage_note": "10-30 % is indeterminate without FVC (>= 70 % predicted: limited)",
        "simple_stage_20_percent": result["simple_stage"],
        "levels": [
            {
                "level": int(r.level),
                "z_mm": round(float(r.z_mm), 2),
                "original_slice": int(r.original_slice),
                **{p: float(getattr(r, p)) for p in PATTERNS},
            }
            for r in table.itertuples()
        ],
    }
    with atomic_path(out_dir / "summary.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    scores = table[["level", *PATTERNS]]
    qc_figure(
        result["qc_slices"],
        result["qc_coronal"],
        list(result["qc_rows"]),
        scores,
        out_dir / "qc.png",
        title=f"{result['patient']}: extent {result['global_extent']:.1f} %, {result['goh_stage']}",
    )
