"""Split tables: each network job's patients and labels, changed only by what that job reads."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from gohscore.commands import splits as splits_cmd
from gohscore.errors import GohscoreError
from gohscore.goh import PATTERNS, Z_COLUMNS, score_column
from gohscore.levels.train import training_patients
from gohscore.splits import check_split_fold, members, split_names, split_table

# fold 0: A, B; fold 1: C, D; test: E, F (rows out of order on purpose)
FOLDS = pd.DataFrame(
    {
        "patient": ["D", "A", "E", "C", "B", "F"],
        "set": ["cv", "cv", "test", "cv", "cv", "test"],
        "fold": [1, 0, -1, 1, 0, -1],
    }
)
PATIENTS = sorted(FOLDS["patient"])
SCORES = [score_column(level, p) for level in range(1, 6) for p in PATTERNS]


def labels() -> pd.DataFrame:
    rows = []
    for i, patient in enumerate(PATIENTS):
        row = {"patient": patient, **{z: 300.0 - 40 * k + i for k, z in enumerate(Z_COLUMNS)}}
        row.update({c: 5 * ((i + k) % 4) for k, c in enumerate(SCORES)})
        rows.append(row)
    return pd.DataFrame(rows)


def manifest() -> pd.DataFrame:
    return pd.DataFrame(
        {"patient": PATIENTS, "path": [f"scans/{p}.nii.gz" for p in PATIENTS], "size_xyz_2": 80}
    )


@pytest.fixture
def cohort(tmp_path):
    """Tables plus a volume and a slice file per patient, each with different bytes."""
    for folder in ("volumes", "slices"):
        (tmp_path / folder).mkdir()
        for i, patient in enumerate(PATIENTS):
            np.save(tmp_path / folder / f"{patient}.npy", np.full((2, 3), i, np.int16))
    for name, table in (("labels", labels()), ("manifest", manifest()), ("folds", FOLDS)):
        table.to_parquet(tmp_path / f"{name}.parquet", index=False)
    return tmp_path


def run_splits(root, out) -> dict[str, bytes]:
    """``gohscore splits`` on the cohort; the bytes of every table it wrote, by relative path."""
    args = ["--manifest", root / "manifest.parquet", "--labels", root / "labels.parquet"]
    args += ["--folds", root / "folds.parquet", "--n-folds", "2", "--volumes", root / "volumes"]
    args += ["--slices", root / "slices", "--out-dir", out]
    assert splits_cmd.main([str(a) for a in args]) == 0
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*.parquet"))}


def test_members_of_each_split():
    assert split_names(2) == ["fold0_train", "fold0_eval", "fold1_train", "fold1_eval", "test"]
    expected = {
        "fold0_train": (["C", "D"], 0),
        "fold0_eval": (["A", "B"], 0),
        "fold1_train": (["A", "B"], 1),
        "fold1_eval": (["C", "D"], 1),
        "test": (["E", "F"], -1),
    }
    for name, (patients, fold) in expected.items():
        rows = members(FOLDS, name)
        assert rows["patient"].tolist() == patients, name
        assert rows["split_fold"].tolist() == [fold, fold], name


def test_tables_hold_their_task_only_and_the_file_digests(cohort):
    table = split_table("levels", "fold0_train", FOLDS, labels(), manifest(), cohort / "volumes")
    assert table["patient"].tolist() == ["C", "D"]
    assert set(Z_COLUMNS) <= set(table.columns) and "path" in table.columns
    assert not set(SCORES) & set(table.columns)  # a score edit cannot touch a level table
    for patient, digest in zip(table["patient"], table["volume_sha256"], strict=True):
        assert digest == hashlib.sha256((cohort / "volumes" / f"{patient}.npy").read_bytes()).hexdigest()
    scores = split_table("scores", "test", FOLDS, labels(), manifest(), cohort / "slices")
    assert scores["patient"].tolist() == ["E", "F"]
    assert set(SCORES) <= set(scores.columns) and not set(Z_COLUMNS) & set(scores.columns)
    assert "path" not in scores.columns
    assert (
        scores.loc[0, "slices_sha256"]
        == hashlib.sha256((cohort / "slices" / "E.npy").read_bytes()).hexdigest()
    )
    # the level net's own fold is not in its training table, yet the table is accepted for it
    assert training_patients(table, 0, "split") == ["C", "D"]


def test_an_edit_changes_only_the_tables_of_the_jobs_that_read_it(cohort, tmp_path):
    before = run_splits(cohort, tmp_path / "a")
    assert len(before) == 10
    assert run_splits(cohort, tmp_path / "b") == before  # the same input gives the same bytes

    edited = labels()
    edited.loc[edited["patient"] == "A", "L5_TOT"] += 5  # A is in fold 0
    edited.to_parquet(cohort / "labels.parquet", index=False)
    after = run_splits(cohort, tmp_path / "c")
    assert {k for k in before if before[k] != after[k]} == {
        "scores/fold1_train.parquet",
        "scores/fold0_eval.parquet",
    }

    edited.loc[edited["patient"] == "C", "L2_z_mm"] += 3  # C is in fold 1
    edited.to_parquet(cohort / "labels.parquet", index=False)
    moved = run_splits(cohort, tmp_path / "d")
    assert {k for k in after if after[k] != moved[k]} == {
        "levels/fold0_train.parquet",
        "levels/fold1_eval.parquet",
    }

    np.save(cohort / "slices" / "E.npy", np.zeros((2, 3), np.int16))  # new slices of a test patient
    resliced = run_splits(cohort, tmp_path / "e")
    assert {k for k in moved if moved[k] != resliced[k]} == {"scores/test.parquet"}


def test_a_split_table_is_refused_for_another_fold():
    table = members(FOLDS, "fold1_train")
    check_split_fold(table, 1, "t")
    check_split_fold(FOLDS, 3, "t")  # a whole folds table is not a split table
    with pytest.raises(GohscoreError, match="split table of fold 1, used for fold 0"):
        check_split_fold(table, 0, "t")
    with pytest.raises(GohscoreError, match="split table of the test set, used for fold 1"):
        check_split_fold(members(FOLDS, "test"), 1, "t")
    with pytest.raises(GohscoreError, match="fold 1, used for fold 0"):
        training_patients(table, 0, "t")


def test_a_missing_volume_names_the_file(cohort):
    (cohort / "volumes" / "D.npy").unlink()
    with pytest.raises(GohscoreError, match=r"volumes/D\.npy: missing resampled volume of patient 'D'"):
        split_table("levels", "fold0_train", FOLDS, labels(), manifest(), cohort / "volumes")
