"""The workflow on a user's own cohort folder: discovery by the Snakefile, one broken scan, --keep-going."""

from __future__ import annotations

import json
import subprocess
import sys

import yaml

from tests.workflow.helpers import scratch_workdir, snakemake

PHANTOM = {
    "n_patients": 4,
    "size": "tiny",
    "dicom_every": 2,
    "n_observer_patients": 0,
    "patches_per_pattern": 0,
}


def make_cohort(root):
    """A 4-patient tiny cohort in the user layout (2 NIfTI, 2 DICOM), written by the package."""
    cohort = root / "my cohort"
    cmd = [sys.executable, "-m", "gohscore", "phantom-cohort", "--out", str(cohort)]
    cmd += ["--params-json", json.dumps(PHANTOM), "--seed", "3"]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    return cohort


def test_folder_cohort_with_a_broken_scan_keeps_going(tmp_path):
    workdir = scratch_workdir(tmp_path / "run")
    cohort = make_cohort(tmp_path)
    broken = next((cohort / "scans" / "P0001").glob("*.nii.gz"))
    broken.write_bytes(broken.read_bytes()[:2000])  # truncated download

    cfg = yaml.safe_load((workdir / "config" / "tiny.yaml").read_text(encoding="utf-8"))
    cfg["cohort"] = {"source": "folder", "path": str(cohort)}
    (workdir / "config" / "mine.yaml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
    targets = [f"results/tiny/preprocess/P000{i}.json" for i in range(1, 5)]
    res = snakemake(["--configfile", "config/mine.yaml", "--cores", "2", "--keep-going", *targets], workdir)

    assert res.returncode != 0
    log = (workdir / "results" / "tiny" / "logs" / "resample" / "P0001.log").read_text(encoding="utf-8")
    assert broken.name in log and "error" in log
    assert not (workdir / "results" / "tiny" / "preprocess" / "P0001.npy").exists()
    for i in (2, 3, 4):  # the other patients completed, DICOM ones included
        geometry = json.loads((workdir / targets[i - 1]).read_text(encoding="utf-8"))
        assert geometry["patient"] == f"P000{i}"
        assert (workdir / "results" / "tiny" / "preprocess" / f"P000{i}.npy").stat().st_size > 0
