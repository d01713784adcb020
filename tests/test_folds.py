"""Fold assignment: deterministic, disjoint, stratified, exact counts, stable when patients join."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gohscore.commands import folds as folds_cmd
from gohscore.errors import GohscoreError
from gohscore.folds import assign_folds, check_folds, inner_validation_split
from gohscore.levels.train import training_patients


def _cohort(n: int, seed: int = 1) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    tot = np.where(rng.random(n) < 0.5, 0.0, rng.gamma(2.0, 10.0, n)).clip(0, 100)
    return [f"P{i:04d}" for i in range(n)], tot


def test_paper_counts_and_disjoint_sets() -> None:
    patients, tot = _cohort(227)
    forced = patients[:16]
    out = assign_folds(patients, tot, n_folds=4, n_test=47, seed=2022, forced_test=forced, stratify=True)
    check_folds(out, 4)
    assert (out["set"] == "test").sum() == 47 and (out["set"] == "cv").sum() == 180
    assert sorted(out.loc[out["set"] == "cv", "fold"].value_counts().tolist()) == [45, 45, 45, 45]
    assert set(forced) <= set(out.loc[out["set"] == "test", "patient"])
    # no patient in two sets: each patient exactly once, cv folds and test disjoint
    assert out["patient"].is_unique and set(out["patient"]) == set(patients)
    groups = [set(out.loc[(out["set"] == "cv") & (out["fold"] == k), "patient"]) for k in range(4)]
    groups.append(set(out.loc[out["set"] == "test", "patient"]))
    assert sum(map(len, groups)) == len(set().union(*groups)) == 227


def test_deterministic_by_seed_and_independent_of_row_order() -> None:
    patients, tot = _cohort(60)
    a = assign_folds(patients, tot, n_test=0.2, seed=5, n_folds=4, stratify=True)
    b = assign_folds(patients[::-1], tot[::-1], n_test=0.2, seed=5, n_folds=4, stratify=True)
    c = assign_folds(patients, tot, n_test=0.2, seed=6, n_folds=4, stratify=True)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)
    assert (a["set"] == "test").sum() == 12


def test_stable_when_patients_are_added() -> None:
    patients, tot = _cohort(120)
    first = assign_folds(patients[:100], tot[:100], n_test=0.2, seed=3, n_folds=4, stratify=True)
    second = assign_folds(patients, tot, n_test=0.2, seed=3, previous=first, n_folds=4, stratify=True)
    merged = first.merge(second, on="patient", suffixes=("_1", "_2"))
    assert len(merged) == 100
    assert (merged["set_1"] == merged["set_2"]).all() and (merged["fold_1"] == merged["fold_2"]).all()
    assert (second["set"] == "test").sum() == 24  # the new patients fill the test fraction
    check_folds(second, 4)


def test_previous_observer_in_cv_is_an_error() -> None:
    patients, tot = _cohort(40)
    first = assign_folds(patients, tot, n_test=8, seed=1, n_folds=4, stratify=True)
    cv_patient = first.loc[first["set"] == "cv", "patient"].iloc[0]
    with pytest.raises(GohscoreError, match=cv_patient):
        assign_folds(
            patients,
            tot,
            n_test=8,
            seed=1,
            forced_test=[cv_patient],
            previous=first,
            n_folds=4,
            stratify=True,
        )


def test_stratification_balances_mean_tot() -> None:
    spreads = {True: [], False: []}
    for seed in range(10):
        patients, tot = _cohort(200, seed)
        for stratify in (True, False):
            out = assign_folds(patients, tot, n_test=40, stratify=stratify, seed=seed, n_folds=4)
            cv = out[out["set"] == "cv"].copy()
            cv["tot"] = cv["patient"].map(dict(zip(patients, tot, strict=True)))
            means = cv.groupby("fold")["tot"].mean()
            spreads[stratify].append(means.max() - means.min())
    assert np.mean(spreads[True]) < 0.6 * np.mean(spreads[False])


def test_too_many_observers_is_an_error() -> None:
    patients, tot = _cohort(30)
    with pytest.raises(GohscoreError, match="raise n_test"):
        assign_folds(patients, tot, n_test=3, forced_test=patients[:5], n_folds=4, stratify=True, seed=0)


def test_folds_command_writes_parquet(tmp_path) -> None:
    patients, tot = _cohort(30)
    labels = pd.DataFrame({"patient": patients, **{f"L{n}_TOT": tot for n in range(1, 6)}})
    labels.to_parquet(tmp_path / "labels.parquet")
    pd.DataFrame({"patient": patients[:3]}).to_parquet(tmp_path / "observers.parquet")
    argv = [
        "--labels",
        str(tmp_path / "labels.parquet"),
        "--observers",
        str(tmp_path / "observers.parquet"),
        "--params-json",
        '{"n_folds": 3, "n_test": 6, "stratify": true}',
        "--seed",
        "7",
        "--out",
        str(tmp_path / "folds.parquet"),
    ]
    assert folds_cmd.main(argv) == 0
    out = pd.read_parquet(tmp_path / "folds.parquet")
    assert list(out.columns) == ["patient", "set", "fold"] and (out["set"] == "test").sum() == 6
    assert set(patients[:3]) <= set(out.loc[out["set"] == "test", "patient"])


def test_inner_validation_split_is_seeded_and_never_uses_the_fold() -> None:
    """The inner split depends on seed and fold only; the reported fold is excluded."""
    folds = pd.DataFrame(
        {
            "patient": [f"p{i}" for i in range(9)],
            "set": ["cv"] * 8 + ["test"],
            "fold": [0, 1, 0, 1, 0, 1, 0, 1, -1],
        }
    )
    train = training_patients(folds, 1, "folds")
    assert train == ["p0", "p2", "p4", "p6"]
    a, b = inner_validation_split(train, 0.25, 7, 1), inner_validation_split(train, 0.25, 7, 1)
    assert a == b and len(a[1]) == 1 and sorted(a[0] + a[1]) == train
    assert inner_validation_split(["p0"], 0.25, 7, 1, reuse_single=True) == (["p0"], ["p0"])
    with pytest.raises(GohscoreError, match="at least 2"):
        inner_validation_split(["p0"], 0.25, 7, 1)
    with pytest.raises(GohscoreError):
        training_patients(folds, 5, "folds")
