"""Portable model bundles: the fold models of both networks with one model card, as a folder or a zip.

A bundle holds the same layout as a workflow's results folder, so the models are found the same
way, plus ``metadata.json`` (in the spirit of a MONAI bundle's): what the cascade is for, what it
reads and returns, how it was trained, and the SHA-256 of every file beside it::

    metadata.json
    levels/fold0/model.pt, levels/fold0/model.json, ...
    scores/<ablation>/fold0/model.pt, scores/<ablation>/fold0/model.json, ...

Each fold's ``model.json`` is its training card with the patient lists replaced by their sizes, so
a bundle can leave the site that trained it without carrying patient identifiers. Opening a bundle
checks every listed file against its recorded hash and refuses the bundle on any difference.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from gohscore.archive import unsafe_member
from gohscore.cards import ModelCard, card_path_for, check_ensemble, file_sha256
from gohscore.errors import GohscoreError
from gohscore.files import atomic_path, json_object
from gohscore.goh import LEVEL_NAMES, LEVELS, PATTERNS, SCORE_STEP

METADATA = "metadata.json"
FORMAT = "gohscore-bundle/1"
DISCLAIMER = "research use only, not a medical device"
REFERENCES = (
    "Jia J, et al. Prediction of lung CT scores of systemic sclerosis by cascaded regression neural "
    "networks. Proc. SPIE 12033, Medical Imaging 2022: Computer-Aided Diagnosis.",
    "Goh NSL, et al. Interstitial lung disease in systemic sclerosis: a simple staging system. "
    "Am J Respir Crit Care Med 2008;177:1248-1254.",
)


def _patient_free(value: object) -> object:
    """``value`` with every list under a key ending in ``patients`` replaced by its length."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if str(k).endswith("patients") and isinstance(v, list):
                out[f"n_{k}"] = len(v)
            else:
                out[k] = _patient_free(v)
        return out
    if isinstance(value, list):
        return [_patient_free(v) for v in value]
    return value


def patient_free_card(card: ModelCard) -> ModelCard:
    """The card with its patient lists (training, validation, texture donors) replaced by counts."""
    return ModelCard.from_dict({**card.to_dict(), "training": _patient_free(card.training)})


def _cohort_patients(cards: list[ModelCard]) -> set[str]:
    """Every patient a set of cards names as trained or validated on."""
    names: set[str] = set()
    for card in cards:
        for key in ("train_patients", "val_patients"):
            names.update(map(str, card.training.get(key) or []))
    return names


def _checked_card(model: Path) -> ModelCard:
    """The card beside ``model`` after checking that it was written for these weights."""
    card = ModelCard.read(card_path_for(model))
    if card.weights_sha256 is None:
        raise GohscoreError(
            f"{card_path_for(model)} records no weights_sha256, so the bundle could not prove its weights; "
            "retrain the model with this gohscore version"
        )
    if file_sha256(model) != card.weights_sha256:
        raise GohscoreError(
            f"{model}: weights are not the ones its card {card_path_for(model)} was written for; "
            "restore the matching pair or retrain"
        )
    return card


def _summary_figures(results: Path, ablation: str) -> dict:
    """Level and score errors on the held-out test set from the run's tables (those that exist)."""
    import pandas as pd

    figures: dict = {}
    levels = results / "tables" / "table1_levels_test.parquet"
    if levels.is_file():
        t = pd.read_parquet(levels)
        figures["level_mae_mm_test"] = {str(r.level): round(float(r.mae_mm), 2) for r in t.itertuples()}
    scores = results / "tables" / "test_set.parquet"
    if scores.is_file():
        t = pd.read_parquet(scores)
        t = t[t["ablation"] == ablation]
        figures["score_test"] = {
            f"{r.source}/{r.pattern}": {
                "mae_percent": round(float(r.mae), 2),
                "kappa": round(float(r.kappa), 3),
                "icc": round(float(r.icc), 3),
            }
            for r in t.itertuples()
        }
    folds = results / "folds.parquet"
    if folds.is_file():
        figures["n_test_patients"] = int((pd.read_parquet(folds)["set"] == "test").sum())
    return figures


def metadata(
    level_cards: list[ModelCard],
    score_cards: list[ModelCard],
    ablation: str,
    files: dict[str, dict],
    figures: dict,
    name: str,
    version: str,
) -> dict:
    """The bundle's ``metadata.json`` body (no patient identifiers: only counts and figures)."""
    import gohscore

    level, score = level_cards[0], score_cards[0]
    return {
        "format": FORMAT,
        "name": name,
        "version": version,
        "gohscore_version": gohscore.__version__,
        "description": (
            "Cascaded regression of the Goh score on chest CT: a 3D VGG11 ensemble places the five Goh "
            "levels, a 2D VGG11 ensemble scores total extent, ground glass and reticulation at each level."
        ),
        "intended_use": (
            "Research on automated Goh scoring of systemic-sclerosis interstitial lung disease on "
            "non-contrast chest CT of adults."
        ),
        "disclaimer": DISCLAIMER,
        "references": list(REFERENCES),
        "software": level.software,
        "network_data_format": {
            "inputs": {
                "ct": {
                    "modality": "CT",
                    "units": "HU",
                    "formats": "NIfTI, MetaImage, NRRD, a DICOM series (folder, DICOMDIR or zip)",
                    "level_network": {
                        "spacing_mm": level.input.get("spacing_mm"),
                        "grid_shape": level.input.get("grid_shape"),
                        "hu_window": level.input.get("hu_window"),
                    },
                    "score_network": {
                        "input_size": score.input.get("input_size"),
                        "hu_window": score.input.get("hu_window"),
                        "slices_per_level": score.input.get("slices_per_level"),
                    },
                }
            },
            "outputs": {
                "levels": {
                    "names": {f"L{k}": LEVEL_NAMES[k] for k in LEVELS},
                    "unit": "mm (world z, DICOM patient coordinates, towards the head)",
                },
                "scores": {
                    "patterns": list(PATTERNS),
                    "unit": "% of the lung area on the level's slice",
                    "step_percent": SCORE_STEP,
                },
                "global_extent": {"unit": "%", "meaning": "mean TOT of the five levels"},
                "goh_stage": {"values": ["limited", "extensive", "indeterminate"]},
            },
        },
        "training": {
            "ablation": ablation,
            "n_level_models": len(level_cards),
            "n_score_models": len(score_cards),
            "n_cross_validation_patients": len(_cohort_patients(level_cards)),
            "summary_figures": figures,
        },
        "files": files,
    }


def _write_tree(results: Path, ablation: str, root: Path, name: str, version: str) -> None:
    """Write the bundle's files under ``root`` from a results folder."""
    from gohscore.cascade import find_models

    level_paths, score_paths = find_models(results, ablation)
    cards = {"levels": [], "scores": []}
    files: dict[str, dict] = {}
    for task, paths in (("levels", level_paths), ("scores", score_paths)):
        for model in paths:
            card = _checked_card(model)
            cards[task].append(card)
            relative = model.relative_to(results)
            target = root / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(model, target)
            patient_free_card(card).write(card_path_for(target))
            for file in (target, card_path_for(target)):
                files[file.relative_to(root).as_posix()] = {"sha256": file_sha256(file), "task": task}
    check_ensemble(cards["levels"], "levels")
    check_ensemble(cards["scores"], "scores")
    body = metadata(
        cards["levels"],
        cards["scores"],
        ablation,
        files,
        _summary_figures(results, ablation),
        name,
        version,
    )
    (root / METADATA).write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")


def export_bundle(
    results: Path, out: Path, ablation: str, name: str = "gohscore-goh-cascade", version: str = "1.0.0"
) -> dict:
    """Pack a run's level models and ``ablation``'s score models into ``out`` (a folder, or a ``.zip``).

    Returns the metadata written. ``out`` appears complete or not at all.
    """
    results, out = Path(results), Path(out)
    if out.suffix.lower() == ".zip":
        with tempfile.TemporaryDirectory(prefix="gohscore-bundle-") as tmp:
            root = Path(tmp)
            _write_tree(results, ablation, root, name, version)
            with atomic_path(out) as archive, zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
                for file in sorted(p for p in root.rglob("*") if p.is_file()):
                    zf.write(file, file.relative_to(root).as_posix())
            return json.loads((root / METADATA).read_text(encoding="utf-8"))
    with atomic_path(out, directory=True) as tmp:
        _write_tree(results, ablation, tmp, name, version)
    return json.loads((out / METADATA).read_text(encoding="utf-8"))


def is_bundle(path: Path) -> bool:
    """True for a folder holding ``metadata.json`` or a zip file holding it at its top."""
    path = Path(path)
    if path.is_dir():
        return (path / METADATA).is_file()
    if path.is_file() and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            return METADATA in zf.namelist()
    return False


@dataclass
class Bundle:
    """An opened, verified bundle: its folder, metadata and the model files of both ensembles."""

    root: Path
    metadata: dict
    levels: list[Path]
    scores: list[Path]


def _unpack(path: Path, into: Path) -> None:
    """Unpack a bundle zip into ``into``, refusing members that would land outside it."""
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if unsafe_member(info.filename):
                    raise GohscoreError(
                        f"{path}: member {info.filename!r} has an unsafe path; re-export the bundle"
                    )
            zf.extractall(into)
    except zipfile.BadZipFile as err:
        raise GohscoreError(f"{path}: not a readable zip ({err}); copy or re-export the bundle") from None


def verify(root: Path, shown: Path) -> tuple[dict, list[Path], list[Path]]:
    """Read ``root``'s metadata, check every listed file's SHA-256 and return it with the model files.

    ``shown`` is the bundle as the user named it (for messages).
    """
    meta_path = root / METADATA
    meta = json_object(meta_path.read_text(encoding="utf-8"), f"{shown}/{METADATA}", "re-export the bundle")
    if meta.get("format") != FORMAT:
        raise GohscoreError(
            f"{shown}/{METADATA}: format {meta.get('format')!r} is not {FORMAT!r}; "
            "export the bundle with this gohscore version"
        )
    files = meta.get("files")
    if not isinstance(files, dict) or not files:
        raise GohscoreError(f"{shown}/{METADATA}: no 'files' with their sha256; re-export the bundle")
    for name, entry in files.items():
        file = root.joinpath(*PurePosixPath(name).parts)
        if unsafe_member(name) or not file.is_file():
            raise GohscoreError(f"{shown}: {name} is listed in {METADATA} but missing; re-export the bundle")
        digest = file_sha256(file)
        if digest != entry.get("sha256"):
            raise GohscoreError(
                f"{shown}: {name} has sha256 {digest[:12]}, {METADATA} records "
                f"{str(entry.get('sha256'))[:12]}; the bundle was altered or damaged, so it is refused: "
                "copy it again from its source or re-export it"
            )
    models = {
        task: sorted(root / n for n, e in files.items() if e.get("task") == task and n.endswith("model.pt"))
        for task in ("levels", "scores")
    }
    for task, paths in models.items():
        if not paths:
            raise GohscoreError(f"{shown}: {METADATA} lists no {task} model.pt; re-export the bundle")
    return meta, models["levels"], models["scores"]


@contextlib.contextmanager
def open_bundle(path: Path) -> Iterator[Bundle]:
    """Open a bundle folder or zip (a zip is unpacked into a temporary folder for the block) and verify it."""
    path = Path(path)
    if path.is_dir():
        yield Bundle(path, *verify(path, path))
        return
    with tempfile.TemporaryDirectory(prefix="gohscore-bundle-") as tmp:
        _unpack(path, Path(tmp))
        yield Bundle(Path(tmp), *verify(Path(tmp), path))


def load_bundle(path: Path, device):
    """The verified bundle's ensembles, loaded on ``device`` (:class:`gohscore.cascade.Models`)."""
    from gohscore.cascade import load_models

    with open_bundle(path) as bundle:
        models = load_models(bundle.levels, bundle.scores, device)
        # name each file as it lies in the bundle, not in the temporary folder it was read from
        models.files = [(Path(path) / f.relative_to(bundle.root), card) for f, card in models.files]
        return models
