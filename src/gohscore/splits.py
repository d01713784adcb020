"""Training sets as tables: what each network job reads, and nothing else, so reruns follow the data.

The network jobs (training and prediction, per task and fold) do not read the cohort-wide tables
(``ingest/manifest.parquet``, ``ingest/labels.parquet``, ``folds.parquet``) or the cohort-wide
folders of volumes and slices as inputs of their own. Each reads one *split table* instead:
the rows of exactly the patients it uses, and of the label columns of its own task, with a
SHA-256 of each volume or slice file it will load. A split table is therefore unchanged, byte
for byte, unless something that job reads has changed.

The workflow writes every split table in one checkpoint job. Snakemake checks the jobs that
read a checkpoint's outputs again once it has run, and takes an input file that is newer than
a job's outputs but has the checksum it had when that job last ran as unchanged. So an edit of
one patient's scores rewrites every split table, but only the tables that hold that patient's
scores differ, and only the score networks trained on that patient run again.

A split table carries the columns of the three tables it stands for (the folds table's
``patient, set, fold``, the task's label columns and, for the level net, the manifest's), so
it is passed to a command wherever that command asks for a manifest, labels or folds table.
Its column ``split_fold`` names the fold it was made for (-1 for the test set).

The tables, per task (``levels``, ``scores``):

- ``fold{f}_train``: the cross-validation patients outside fold ``f`` (training and inner validation);
- ``fold{f}_eval``: the patients of fold ``f`` (its cross-validation predictions);
- ``test``: the held-out test set.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from gohscore.errors import GohscoreError
from gohscore.goh import PATTERNS, Z_COLUMNS, score_column

if TYPE_CHECKING:
    import pandas as pd

#: the tasks that have split tables, and the file whose digest a task's rows carry
TASKS = ("levels", "scores")
DIGEST_COLUMN = {"levels": "volume_sha256", "scores": "slices_sha256"}
SPLIT_FOLD = "split_fold"
FOLD_COLUMNS = ("patient", "set", "fold")
TEST = "test"


def split_names(n_folds: int) -> list[str]:
    """The split tables of one task, in a fixed order: ``fold{f}_train``, ``fold{f}_eval``, then ``test``."""
    return [f"fold{f}_{role}" for f in range(n_folds) for role in ("train", "eval")] + [TEST]


def split_path(root: str | Path, task: str, name: str) -> str:
    """Where split table ``name`` of ``task`` lies under the splits folder ``root``."""
    return f"{root}/{task}/{name}.parquet"


def label_columns(task: str) -> list[str]:
    """The label columns a task's networks learn from: level positions, or the 15 scores."""
    if task == "levels":
        return list(Z_COLUMNS)
    return [score_column(level, p) for level in range(1, 6) for p in PATTERNS]


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, read in blocks (volumes can be tens of MB)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def members(folds: pd.DataFrame, name: str) -> pd.DataFrame:
    """The folds-table rows of split ``name`` (sorted by patient), with ``split_fold`` added."""
    cv = folds["set"].astype(str) == "cv"
    if name == TEST:
        rows, fold = folds[folds["set"].astype(str) == TEST], -1
    else:
        head, role = name.split("_")
        fold = int(head.removeprefix("fold"))
        in_fold = folds["fold"].astype(int) == fold
        rows = folds[cv & (~in_fold if role == "train" else in_fold)]
    rows = rows[list(FOLD_COLUMNS)].assign(patient=rows["patient"].astype(str))
    return rows.sort_values("patient").reset_index(drop=True).assign(**{SPLIT_FOLD: fold})


def digests(patients: list[str], folder: Path, what: str) -> dict[str, str]:
    """SHA-256 of ``folder/<patient>.npy`` per patient; a missing file names the step to rerun."""
    out = {}
    for patient in patients:
        path = folder / f"{patient}.npy"
        if not path.is_file():
            raise GohscoreError(
                f"{path}: missing {what} of patient {patient!r}; rerun the step that writes {folder}"
            )
        out[patient] = file_sha256(path)
    return out


def split_table(
    task: str,
    name: str,
    folds: pd.DataFrame,
    labels: pd.DataFrame,
    manifest: pd.DataFrame,
    files: Path,
    source: str = "labels table",
    known: dict[str, str] | None = None,
) -> pd.DataFrame:
    """Split table ``name`` of ``task``: its patients' fold rows, task labels, (manifest) and file digests.

    ``files`` is the folder of the files the task's networks load per patient: the resampled
    volumes (levels) or the reference slices (scores). ``known`` holds the digests already taken
    (patient -> SHA-256); it gains this table's, so that a file in several splits is read once.
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")
    table = members(folds, name)
    columns = label_columns(task)
    missing = [c for c in ["patient", *columns] if c not in labels.columns]
    if missing:
        raise GohscoreError(f"{source}: missing column {missing[0]!r}; rerun 'gohscore ingest'")
    task_labels = labels[["patient", *columns]].assign(patient=labels["patient"].astype(str))
    table = table.merge(task_labels, on="patient", how="left", validate="one_to_one")
    if task == "levels":
        extra = manifest.drop(columns=[c for c in manifest.columns if c in table.columns and c != "patient"])
        table = table.merge(extra.assign(patient=extra["patient"].astype(str)), on="patient", how="left")
        what = "resampled volume"
    else:
        what = "reference slices"
    lost = table.loc[table[columns[0]].isna(), "patient"].tolist()
    if lost:
        raise GohscoreError(
            f"{source}: no labels for patient {lost[0]!r} of the folds table; rerun 'gohscore folds'"
        )
    patients = table["patient"].tolist()
    known = {} if known is None else known
    known.update(digests([p for p in patients if p not in known], Path(files), what))
    table[DIGEST_COLUMN[task]] = [known[p] for p in patients]
    return table


def made_for(folds: pd.DataFrame) -> int | None:
    """The fold a split table was made for (-1: the test set); None for a whole folds table."""
    if SPLIT_FOLD not in folds.columns or folds.empty:
        return None
    values = set(folds[SPLIT_FOLD].astype(int))
    return values.pop() if len(values) == 1 else None


def check_split_fold(folds: pd.DataFrame, fold: int | None, source: str) -> None:
    """Refuse a split table used for another fold than its own (``fold`` None: the test set)."""
    own = made_for(folds)
    wanted = -1 if fold is None else int(fold)
    if own is not None and own != wanted:
        mine = "the test set" if own == -1 else f"fold {own}"
        asked = "the test set" if wanted == -1 else f"fold {wanted}"
        raise GohscoreError(
            f"{source}: a split table of {mine}, used for {asked}; pass that one's split table"
        )
