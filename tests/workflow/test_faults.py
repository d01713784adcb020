"""Faults that lose nothing: a hard kill in training, a second run on the same results, an unwritable folder.

The kill test runs the tiny workflow, SIGKILLs snakemake and its jobs while a training job is
between its first checkpoint and its weights, and resumes; it ends with the weights and tables
of the uninterrupted tiny run (``tiny_reference`` in conftest.py, test_workflow.py's when both run).
To save CI time it starts from the reference run's stages before training (the cohort, volumes,
folds and reference slices, copied with their times), so it runs training and everything after it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from tests.workflow.helpers import (
    TINY_ARGS,
    group_members,
    job_counts,
    one_thread_args,
    read_only_folder,
    scratch_workdir,
    snakemake,
    start_snakemake,
)

RUN = [*TINY_ARGS, *one_thread_args()]  # exactly the reference run's options
LOCKED = "Directory cannot be locked"


@dataclass
class KilledRun:
    workdir: Path
    killed: Path  # the training job's folder that held a checkpoint and no weights at the kill
    epoch: int  # the epoch of that checkpoint
    epochs: int  # the job's epoch budget
    survivors: list[str]  # processes of the killed group still alive after the kill
    locks: list[str]  # what the kill left in .snakemake/locks
    refused: subprocess.CompletedProcess  # the rerun without --unlock
    weights_after_refusal: bool  # the killed job's model.pt existed after the refused rerun
    unlock: subprocess.CompletedProcess
    second: subprocess.CompletedProcess  # a second run started while the resumed one ran
    first_ran_on: bool  # the resumed run was still running when the second one had given up
    resumed_rc: int
    resumed_out: str


def training_folders(results: Path, cfg: dict) -> dict[Path, int]:
    """Each training job's output folder -> its epoch budget."""
    folds = range(cfg["folds"]["n_folds"])
    found = {results / "levels" / f"fold{f}": cfg["levels"]["epochs"] for f in folds}
    for ablation in cfg["scores"]["ablations"]:
        found.update({results / "scores" / ablation / f"fold{f}": cfg["scores"]["epochs"] for f in folds})
    return found


def wait_for_training(proc: subprocess.Popen, folders: list[Path], limit: float) -> Path | None:
    """Poll every 20 ms for a training folder with checkpoint.pt but no model.pt; None if the run ends."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and proc.poll() is None:
        for folder in folders:
            if (folder / "checkpoint.pt").exists() and not (folder / "model.pt").exists():
                return folder
        time.sleep(0.02)
    return None


def wait_for_lock(proc: subprocess.Popen, workdir: Path, limit: float = 300) -> None:
    locks = workdir / ".snakemake" / "locks"
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and proc.poll() is None:
        if locks.is_dir() and any(locks.iterdir()):
            return
        time.sleep(0.1)


BEFORE_TRAINING = ["phantom", "preprocess", "ingest", "folds.parquet", "slices/reference", "splits"]


def copy_stages(reference: Path, results: Path, stages: list[str]) -> None:
    """Copy ``stages`` (files or folders under a results folder) with their times."""
    for stage in stages:
        source, target = reference / stage, results / stage
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, copy_function=shutil.copy2)
        else:
            shutil.copy2(source, target)


@pytest.fixture(scope="module")
def killed_run(tmp_path_factory, tiny_reference) -> KilledRun:
    """Kill the tiny run hard inside a training job, rerun, unlock, resume with a second run started alongside."""
    workdir = scratch_workdir(tmp_path_factory.mktemp("killed"))
    results = workdir / "results" / "tiny"
    copy_stages(tiny_reference, results, BEFORE_TRAINING)
    cfg = yaml.safe_load((workdir / "config" / "tiny.yaml").read_text(encoding="utf-8"))
    folders = training_folders(results, cfg)

    first = start_snakemake(RUN, workdir, workdir / "first.out")
    try:
        caught = wait_for_training(first, list(folders), limit=1200)
        os.killpg(first.pid, signal.SIGKILL)  # snakemake and every job it started
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=60)
    out = (workdir / "first.out").read_text(encoding="utf-8", errors="replace")
    assert caught is not None, f"the run ended before a training job was caught:\n{out[-3000:]}"
    assert not {"phantom_patient", "resample", "ingest"} & set(job_counts(out)), "the copied stages ran again"
    deadline = time.monotonic() + 10
    while (survivors := group_members(first.pid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    epoch = int(torch.load(caught / "checkpoint.pt", map_location="cpu", weights_only=True)["epoch"])
    locks = sorted(p.name for p in (workdir / ".snakemake" / "locks").glob("*"))

    refused = snakemake(RUN, workdir, timeout=300)
    weights_after_refusal = (caught / "model.pt").exists()
    unlock = snakemake(["--unlock", *RUN], workdir, timeout=300)

    resumed = start_snakemake(RUN, workdir, workdir / "resumed.out")
    try:
        wait_for_lock(resumed, workdir)
        second = snakemake(RUN, workdir, timeout=300)
        first_ran_on = resumed.poll() is None
        resumed_rc = resumed.wait(timeout=1500)
    finally:
        if resumed.poll() is None:
            os.killpg(resumed.pid, signal.SIGKILL)
            resumed.wait(timeout=60)
    return KilledRun(
        workdir=workdir,
        killed=caught,
        epoch=epoch,
        epochs=folders[caught],
        survivors=survivors,
        locks=locks,
        refused=refused,
        weights_after_refusal=weights_after_refusal,
        unlock=unlock,
        second=second,
        first_ran_on=first_ran_on,
        resumed_rc=resumed_rc,
        resumed_out=(workdir / "resumed.out").read_text(encoding="utf-8", errors="replace"),
    )


def assert_same_tables(results: Path, reference: Path) -> None:
    """Every table of the reference run, equal (values, dtypes, order) in ``results``."""
    names = sorted(p.name for p in (reference / "tables").glob("*.parquet"))
    assert len(names) >= 7
    assert sorted(p.name for p in (results / "tables").glob("*.parquet")) == names
    for name in names:
        pd.testing.assert_frame_equal(
            pd.read_parquet(results / "tables" / name), pd.read_parquet(reference / "tables" / name)
        )


@pytest.mark.slow
def test_hard_kill_leaves_the_lock_and_unlock_lets_the_rerun_go(killed_run):
    """SIGKILL leaves Snakemake's lock: the plain rerun is refused (and touches nothing), --unlock clears it."""
    run = killed_run
    assert run.survivors == [], "jobs outlived the killed snakemake"
    assert run.locks, "the kill left no lock (then no unlock would be needed)"
    refused = run.refused.stdout + run.refused.stderr
    assert run.refused.returncode != 0
    assert LOCKED in refused and "--unlock" in refused, refused[-3000:]
    assert "Execute" not in refused  # nothing ran
    assert (run.killed / "checkpoint.pt").exists() and not run.weights_after_refusal
    assert run.unlock.returncode == 0, run.unlock.stdout[-3000:] + run.unlock.stderr[-3000:]
    assert "Unlocked working directory" in run.unlock.stdout + run.unlock.stderr
    assert run.resumed_rc == 0, run.resumed_out[-5000:]


@pytest.mark.slow
def test_killed_training_resumes_to_the_weights_of_an_unbroken_run(killed_run, tiny_reference):
    """The killed job resumes from its checkpoint; every model and every table equals the unbroken run's."""
    run = killed_run
    assert run.resumed_rc == 0, run.resumed_out[-5000:]
    results = run.workdir / "results" / "tiny"
    rel = run.killed.relative_to(run.workdir)
    stage = "levels" if rel.parts[2] == "levels" else "scores"
    name = f"train_fold{rel.parts[-1][4:]}" if stage == "levels" else f"train_{rel.parts[3]}_{rel.parts[-1]}"
    log = (results / "logs" / stage / f"{name}.log").read_text(encoding="utf-8")
    assert f"resuming {rel}/checkpoint.pt at epoch {run.epoch} of {run.epochs}" in log, log[-3000:]
    assert "Traceback" not in log

    models = sorted(p.relative_to(tiny_reference) for p in tiny_reference.glob("**/model.pt"))
    assert len(models) == 8  # 2 level and 6 score models
    for model in models:
        ours = torch.load(results / model, map_location="cpu", weights_only=True)
        theirs = torch.load(tiny_reference / model, map_location="cpu", weights_only=True)
        assert list(ours) == list(theirs), model
        different = [k for k in theirs if not torch.equal(ours[k], theirs[k])]
        assert not different, (model, different[:5])
    assert_same_tables(results, tiny_reference)


@pytest.mark.slow
def test_a_second_run_on_the_same_results_is_refused_and_the_first_finishes(killed_run, tiny_reference):
    """While a run holds the results, the same run started again stops at the lock and harms nothing."""
    run = killed_run
    second = run.second.stdout + run.second.stderr
    assert run.first_ran_on, "the first run had finished before the second gave up: no overlap tested"
    assert run.second.returncode != 0
    assert LOCKED in second, second[-3000:]
    assert "Execute" not in second
    assert run.resumed_rc == 0, run.resumed_out[-5000:]
    assert_same_tables(run.workdir / "results" / "tiny", tiny_reference)
    tables = run.workdir / "results" / "tiny" / "tables"
    for md in sorted((tiny_reference / "tables").glob("*.md")):  # the Markdown twins too
        assert (tables / md.name).read_text(encoding="utf-8") == md.read_text(encoding="utf-8"), md.name


PATIENT = "P0001"
PHANTOM_PART = f"results/tiny/phantom/parts/{PATIENT}.json"
PREPROCESSED = f"results/tiny/preprocess/{PATIENT}.json"
PERMISSION = ("Permission denied", "Operation not permitted")  # EACCES (chmod), EPERM (chattr +i)


def assert_no_temporary_files(results: Path) -> None:
    left = [p for p in results.rglob("*") if ".tmp" in p.name]
    assert not left, left


@pytest.mark.slow
def test_a_file_in_place_of_the_results_folder_stops_the_run_and_a_rerun_completes(tmp_path):
    """Works as root too: results/tiny is a regular file; the run stops naming it, then completes once moved."""
    workdir = scratch_workdir(tmp_path)
    blocker = workdir / "results" / "tiny"
    blocker.parent.mkdir()
    blocker.write_text("not a folder\n", encoding="utf-8")
    res = snakemake([*TINY_ARGS, PHANTOM_PART], workdir, timeout=300)
    out = res.stdout + res.stderr
    assert res.returncode != 0
    assert "results/tiny" in out and "Not a directory" in out, out[-3000:]
    assert blocker.read_text(encoding="utf-8") == "not a folder\n"  # left as it was

    blocker.unlink()
    res = snakemake([*TINY_ARGS, PHANTOM_PART], workdir, timeout=300)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert json.loads((workdir / PHANTOM_PART).read_text(encoding="utf-8"))
    assert any((workdir / "results" / "tiny" / "phantom" / "scans" / PATIENT).iterdir())
    assert_no_temporary_files(workdir / "results")


@dataclass
class ReadOnlyRuns:
    workdir: Path
    whole: subprocess.CompletedProcess  # results/tiny read-only: the phantom job
    whole_files: list[str]  # what results/tiny held after that run
    stage: subprocess.CompletedProcess  # results/tiny/preprocess read-only: phantom, then resample
    stage_log: str  # the resample job's log
    stage_files: list[str]  # what the preprocess folder held after that run
    rerun: subprocess.CompletedProcess  # everything writable again


@pytest.fixture(scope="module")
def read_only_runs(tmp_path_factory) -> ReadOnlyRuns:
    workdir = scratch_workdir(tmp_path_factory.mktemp("read_only"))
    results = workdir / "results" / "tiny"
    with read_only_folder(results) as blocked:
        if not blocked:
            pytest.skip(
                "cannot make a folder read-only here: running as root (which ignores file modes) "
                "without chattr +i (needs CAP_LINUX_IMMUTABLE and ext4/xfs/btrfs); the regular-file "
                "test covers root"
            )
        whole = snakemake([*TINY_ARGS, PHANTOM_PART], workdir, timeout=300)
        whole_files = sorted(str(p.relative_to(results)) for p in results.rglob("*"))
    with read_only_folder(results / "preprocess"):
        stage = snakemake([*TINY_ARGS, PREPROCESSED], workdir, timeout=300)
        folder = results / "preprocess"
        stage_files = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    log = results / "logs" / "resample" / f"{PATIENT}.log"
    stage_log = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
    rerun = snakemake([*TINY_ARGS, PREPROCESSED], workdir, timeout=300)
    return ReadOnlyRuns(workdir, whole, whole_files, stage, stage_log, stage_files, rerun)


@pytest.mark.slow
def test_an_unwritable_results_folder_is_named_and_nothing_half_written_counts(read_only_runs):
    """A read-only results folder, then a read-only stage folder: each stops its job with the folder or the
    permission named and leaves no file behind; made writable again, the rerun redoes exactly that job."""
    runs = read_only_runs
    whole = runs.whole.stdout + runs.whole.stderr
    assert runs.whole.returncode != 0
    assert "results/tiny" in whole and any(p in whole for p in PERMISSION), whole[-3000:]
    assert runs.whole_files == []  # nothing written, not even a log

    stage = runs.stage.stdout + runs.stage.stderr
    assert runs.stage.returncode != 0
    assert job_counts(stage) == {"phantom_patient": 1, "resample": 1}
    assert "results/tiny/preprocess" in runs.stage_log, runs.stage_log[-3000:]
    assert any(p in runs.stage_log for p in PERMISSION), runs.stage_log[-3000:]
    assert runs.stage_files == []  # no partial volume, no temporary file

    rerun = runs.rerun.stdout + runs.rerun.stderr
    assert runs.rerun.returncode == 0, rerun[-5000:]
    assert job_counts(rerun) == {"resample": 1}  # the phantom kept, the failed job redone
    results = runs.workdir / "results" / "tiny"
    volume = np.load(results / "preprocess" / f"{PATIENT}.npy")
    assert volume.shape == (32, 32, 32) and volume.dtype == np.int16
    geometry = json.loads((results / "preprocess" / f"{PATIENT}.json").read_text(encoding="utf-8"))
    assert geometry["patient"] == PATIENT
    assert_no_temporary_files(runs.workdir / "results")


@pytest.mark.slow
def test_an_unwritable_stage_folder_is_a_one_line_error(read_only_runs):
    log = read_only_runs.stage_log
    assert "Traceback" not in log, log[-3000:]
    lines = [line for line in log.splitlines() if line.startswith("gohscore resample: error:")]
    assert lines and "results/tiny/preprocess" in lines[0], log[-3000:]


def test_read_only_folder_helper_restores_the_folder(tmp_path):
    """The helper leaves the folder writable again (else pytest could not clean tmp_path)."""
    folder = tmp_path / "ro"
    with read_only_folder(folder) as blocked:
        if blocked:
            with pytest.raises(OSError):
                (folder / "x").write_text("x", encoding="utf-8")
    (folder / "x").write_text("x", encoding="utf-8")
    shutil.rmtree(folder)
