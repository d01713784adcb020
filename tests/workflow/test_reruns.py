"""Reruns follow the data: after an edit of the finished tiny run, only the jobs that read what changed run.

Each test edits a copy of the tiny run (``tiny_reference``, conftest.py): a patient's scores, a
level position, or a new patient with ``folds.previous``. Snakemake cannot know which split
tables (gohscore.splits) an edit changes before the checkpoint that writes them has run, so a dry
run straight after an edit lists every job that might run. The tests therefore run the cheap
steps up to that checkpoint first (``--until splits``), as any run does first, and then count
the jobs of a dry run. One test runs the whole workflow straight after an edit and counts the
jobs that really ran.

The tiny run has 2 folds and 3 ablations, so a patient of fold 0 is in the training set of the
fold-1 networks only: one level network and three score networks.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.workflow.helpers import TINY_ARGS, job_counts, one_thread_args, snakemake

pytestmark = pytest.mark.slow

# what reruns after the fold-1 score networks are retrained: their CV predictions, the CV
# predictions of fold 0 (whose reference values changed), the test ensemble and the reports
SCORES_OF_FOLD_1 = {
    "train_scores": 3,
    "predict_scores_cv": 6,
    "predict_scores_test": 3,
    "explain_test": 1,
    "tables": 1,
    "figures": 1,
    "all": 1,
}
# ... and after the fold-1 level network is retrained: its CV predictions and fold 0's, the test
# predictions, the slices at the predicted levels, then all of the above
LEVELS_OF_FOLD_1 = {
    "train_levels": 1,
    "predict_levels_cv": 2,
    "predict_levels_test": 1,
    "slices_predicted": 1,
    **SCORES_OF_FOLD_1,
}


def copy_run(reference: Path, dest: Path) -> Path:
    """A copy of the whole working directory of a finished run (results and .snakemake), times kept."""
    shutil.copytree(reference.parents[1], dest, symlinks=True)
    return dest


def fold0_patient(workdir: Path) -> str:
    """The first cross-validation patient of fold 0."""
    folds = pd.read_parquet(workdir / "results" / "tiny" / "folds.parquet")
    return sorted(folds.loc[(folds["set"] == "cv") & (folds["fold"] == 0), "patient"])[0]


def edit_labels(workdir: Path, patient: str, changes: dict[str, float]) -> None:
    """Add ``changes`` to one patient's row of the cohort's labels.csv (the phantom's, here)."""
    path = workdir / "results" / "tiny" / "phantom" / "labels.csv"
    labels = pd.read_csv(path, dtype={"patient": str})
    row = labels["patient"] == patient
    for column, delta in changes.items():
        labels.loc[row, column] = labels.loc[row, column] + delta
    labels.to_csv(path, index=False)


def run(args: list[str], workdir: Path, what: str):
    res = snakemake([*TINY_ARGS, *one_thread_args(), *args], workdir, timeout=900)
    assert res.returncode == 0, (what, res.stdout[-4000:] + res.stderr[-4000:])
    return res.stdout + res.stderr


def jobs_after_splits(workdir: Path, config: list[str] = ()) -> tuple[dict[str, int], dict[str, int]]:
    """Run up to the split tables, then dry-run the rest: (jobs that ran, jobs that would run)."""
    done = finished(run([*config, "--until", "splits"], workdir, "up to the split tables"))
    return done, job_counts(run([*config, "-n"], workdir, "dry run"))


def finished(output: str) -> dict[str, int]:
    """Jobs that ran, per rule, from a real run's log."""
    counts: dict[str, int] = {}
    for rule in re.findall(r"Finished jobid: \d+ \(Rule: (\w+)\)", output):
        counts[rule] = counts.get(rule, 0) + 1
    return counts


def test_a_score_edit_retrains_only_the_score_networks_trained_on_that_patient(tiny_reference, tmp_path):
    workdir = copy_run(tiny_reference, tmp_path / "run")
    results = workdir / "results" / "tiny"
    patient = fold0_patient(workdir)
    folds_before = (results / "folds.parquet").read_bytes()
    models = {
        p: p.stat().st_mtime_ns
        for p in [*results.glob("*/*/fold*/model.pt"), *results.glob("levels/fold*/model.pt")]
    }
    edit_labels(workdir, patient, {"L5_TOT": 5, "L5_RET": 5})

    ran = finished(run([], workdir, "the run after a score edit"))  # one plain run, as a user would
    networks = {k: v for k, v in ran.items() if k.startswith(("train_", "predict_levels"))}
    assert networks == {"train_scores": 3}, ran
    assert "slices_reference" not in ran and "folds" not in ran  # positions and folds are unchanged
    # (a retrained model's bytes can be the same: the tiny run's few draws may miss the edited slices)
    rewritten = sorted(
        p.relative_to(results).as_posix() for p, t in models.items() if p.stat().st_mtime_ns != t
    )
    assert rewritten == [f"scores/{a}/fold1/model.pt" for a in ("balanced", "balanced_synthesis", "none")]
    assert (results / "folds.parquet").read_bytes() == folds_before  # the folds did not move
    assert "Nothing to be done" in run(["-n"], workdir, "a dry run after it")


def test_a_score_edit_dry_run(tiny_reference, tmp_path):
    workdir = copy_run(tiny_reference, tmp_path / "run")
    edit_labels(workdir, fold0_patient(workdir), {"L5_TOT": 5, "L5_RET": 5})
    done, todo = jobs_after_splits(workdir)
    assert done == {"ingest": 1, "splits": 1}  # the level positions, and so the slices, are unchanged
    assert todo == SCORES_OF_FOLD_1


def test_a_synthesis_key_retrains_only_the_synthesis_networks(tiny_reference, tmp_path):
    workdir = copy_run(tiny_reference, tmp_path / "run")
    extra = workdir / "synthesis.yaml"
    extra.write_text(yaml.safe_dump({"scores": {"synthesis_probability": 0.25}}), encoding="utf-8")
    # --configfile replaces the list of files: the tiny config again, then the one changed key
    todo = job_counts(run(["--configfile", "config/tiny.yaml", str(extra), "-n"], workdir, "dry run"))
    # the two balanced + synthesis networks, their CV predictions, the test ensemble of that
    # ablation, the explanations of the final ablation and the reports; none and balanced stay
    assert todo == {
        "train_scores": 2,
        "predict_scores_cv": 2,
        "predict_scores_test": 1,
        "explain_test": 1,
        "tables": 1,
        "figures": 1,
        "all": 1,
    }


def test_a_level_edit_retrains_the_level_network_and_what_follows(tiny_reference, tmp_path):
    workdir = copy_run(tiny_reference, tmp_path / "run")
    patient = fold0_patient(workdir)
    manifest = pd.read_parquet(workdir / "results" / "tiny" / "ingest" / "manifest.parquet").set_index(
        "patient"
    )
    labels = pd.read_csv(workdir / "results" / "tiny" / "phantom" / "labels.csv", dtype={"patient": str})
    z = labels.set_index("patient").loc[patient]
    # two original slices up, still below L2: L3's reference slices (and so the score nets' data) move
    shift = 2 * float(manifest.loc[patient, "spacing_xyz_mm_2"])
    assert z["L3_z_mm"] + shift < z["L2_z_mm"]
    edit_labels(workdir, patient, {"L3_z_mm": shift})
    done, todo = jobs_after_splits(workdir)
    assert done == {"ingest": 1, "slices_reference": 1, "splits": 1}
    assert todo == LEVELS_OF_FOLD_1


def test_a_new_patient_with_previous_folds_joins_one_fold(tiny_reference, tmp_path):
    workdir = copy_run(tiny_reference, tmp_path / "run")
    results = workdir / "results" / "tiny"
    old = pd.read_parquet(results / "folds.parquet")
    shutil.copy(results / "folds.parquet", tmp_path / "old_folds.parquet")
    cfg = yaml.safe_load((workdir / "config" / "tiny.yaml").read_text(encoding="utf-8"))
    cfg["phantom"]["n_patients"] += 1
    # the phantom draws its observer patients again for another cohort size, which would put an
    # observer patient in a cross-validation fold; a real cohort's new patient has no re-reads
    cfg["phantom"]["n_observer_patients"] = 0
    cfg["folds"]["previous"] = str(tmp_path / "old_folds.parquet")
    (workdir / "grown.yaml").write_text(yaml.safe_dump(cfg), encoding="utf-8")

    done, todo = jobs_after_splits(workdir, ["--configfile", "grown.yaml"])
    new = f"P{cfg['phantom']['n_patients']:04d}"
    # the new patient alone is made and resampled; the old patients keep their set and fold
    steps = ("phantom_patient", "phantom_tables", "resample", "ingest", "folds", "slices_reference", "splits")
    assert done == dict.fromkeys(steps, 1)
    folds = pd.read_parquet(results / "folds.parquet")
    assert folds[folds["patient"] != new].reset_index(drop=True).equals(old)
    joined = folds.set_index("patient").loc[new]
    assert joined["set"] == "cv"
    # it joins the training set of the other fold's networks only (with 2 folds: one level net and
    # three score nets), whichever fold it joined
    assert todo == LEVELS_OF_FOLD_1, (int(joined["fold"]), todo)
