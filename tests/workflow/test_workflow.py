"""The workflow as a whole: lint, config validation, the default DAG, and the tiny DAG end to end on CPU."""

from __future__ import annotations

import hashlib
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
import yaml

from tests.workflow.helpers import REPO, job_counts, scratch_workdir, snakemake


@pytest.fixture()
def workdir(tmp_path):
    return scratch_workdir(tmp_path)


def test_lint_is_clean(workdir):
    res = snakemake(["--lint"], workdir, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr


def test_default_dry_run_lists_every_stage(workdir):
    """The paper's protocol: 227 patients, 4 folds, three score-network ablations."""
    res = snakemake(["-n", "--cores", "8", "--resources", "gpu=1"], workdir, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    counts = job_counts(res.stdout + res.stderr)
    expected = {
        "phantom_patient": 227,
        "phantom_tables": 1,
        "resample": 227,
        "ingest": 1,
        "folds": 1,
        "splits": 1,
        "train_levels": 4,
        "predict_levels_cv": 4,
        "predict_levels_test": 1,
        "slices_reference": 1,
        "slices_predicted": 1,
        "train_scores": 12,
        "predict_scores_cv": 12,
        "predict_scores_test": 3,
        "tables": 1,
        "figures": 1,
        "explain_test": 1,
        "all": 1,
    }
    assert counts == expected


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ({"levels": {"bogus_key": 1}}, "bogus_key"),
        ({"folds": {"n_folds": 1}}, "n_folds"),
        ({"scores": {"final_ablation": "balanced_synthesis", "ablations": ["none"]}}, "final_ablation"),
    ],
)
def test_bad_config_stops_with_the_key_named(workdir, override, named):
    cfg = yaml.safe_load((workdir / "config" / "tiny.yaml").read_text(encoding="utf-8"))
    for section, values in override.items():
        cfg[section].update(values)
    bad = workdir / "bad.yaml"
    bad.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    res = snakemake(["-n", "--configfile", str(bad)], workdir, timeout=120)
    assert res.returncode != 0
    assert named in res.stdout + res.stderr


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def check_job_logs(logs, run_output, cfg):
    """One log per job of the run (rule ``all`` aside), none with an error, training to the last epoch."""
    found = {f.relative_to(logs).as_posix(): f.read_text(encoding="utf-8") for f in logs.rglob("*.log")}
    counts = job_counts(run_output)
    assert counts and len(found) == sum(counts.values()) - counts.get("all", 0), sorted(found)
    patients = [f"P{i:04d}" for i in range(1, cfg["phantom"]["n_patients"] + 1)]
    folds = range(cfg["folds"]["n_folds"])
    ablations = cfg["scores"]["ablations"]
    expected = {
        *(f"phantom/{p}.log" for p in patients),
        *(f"resample/{p}.log" for p in patients),
        "phantom/tables.log",
        "ingest.log",
        "folds.log",
        "levels/predict_test.log",
        "slices/reference.log",
        "slices/predicted.log",
        "tables.log",
        "figures.log",
        "explain_test.log",
        *(f"levels/{stage}_fold{f}.log" for f in folds for stage in ("train", "predict")),
        *(
            f"scores/{stage}_{a}_fold{f}.log"
            for f in folds
            for a in ablations
            for stage in ("train", "predict")
        ),
        *(f"scores/predict_{a}_test.log" for a in ablations),
    }
    assert expected <= set(found), sorted(expected - set(found))
    for name, text in found.items():
        assert "Traceback" not in text and " ERROR " not in text, (name, text[-2000:])
    for p in patients:  # resample reports every volume it writes
        assert f"INFO {p}: " in found[f"resample/{p}.log"], p
    last = {"levels": cfg["levels"]["epochs"], "scores": cfg["scores"]["epochs"]}
    for name, text in found.items():
        stage, _, file = name.rpartition("/")
        if stage in last and file.startswith("train_"):
            assert f"INFO epoch {last[stage]}/{last[stage]}: train_loss" in text, (name, text[-2000:])
    for f in folds:
        assert f"fold {f}: best epoch" in found[f"levels/train_fold{f}.log"]


@pytest.mark.slow
def test_tiny_dag_end_to_end(workdir):
    """Every stage runs on the tiny phantom cohort on CPU, the tables are finite, a rerun does nothing."""
    args = ["--configfile", "config/tiny.yaml", "--cores", "2"]
    # tiny jobs are mostly imports: one thread each lets two run side by side (201 s -> 110 s here)
    one_thread = [f"{rule}=1" for rule, n in rule_settings(r"threads:\s*(\d+)").items() if int(n) > 1]
    res = snakemake([*args, "--set-threads", *one_thread], workdir, timeout=1500)
    assert res.returncode == 0, res.stdout[-5000:] + res.stderr[-5000:]

    results = workdir / "results" / "tiny"
    t1 = pd.read_parquet(results / "tables" / "table1_levels.parquet")
    assert {"level", "mae", "sd", "icc"} <= set(t1.columns)
    assert np.isfinite(t1["mae"].astype(float)).all()
    t2 = pd.read_parquet(results / "tables" / "table2_scores_cv.parquet")
    assert {"ablation", "pattern", "mae", "kappa", "icc"} <= set(t2.columns)
    assert set(t2["ablation"]) == {"none", "balanced", "balanced_synthesis"}
    assert np.isfinite(t2["mae"].astype(float)).all()
    for name in [
        "table3_observers",
        "test_set",
        "stages",
        "label_distribution",
        "levels_agreement",
        "label_draws",
    ]:
        table = pd.read_parquet(results / "tables" / f"{name}.parquet")
        assert len(table) > 0, name
        markdown = (results / "tables" / f"{name}.md").read_text(encoding="utf-8")
        assert markdown.startswith("# ") and "\n| " in markdown, name
    parquets = sorted((results / "tables").glob("*.parquet"))
    assert len(parquets) >= 7
    for path in parquets:  # every table has rows, columns and its Markdown twin
        table = pd.read_parquet(path)
        assert len(table) > 0 and len(table.columns) > 1, path.name
        assert path.with_suffix(".md").read_text(encoding="utf-8").startswith("# "), path.name
    for png in (results / "figures").glob("*.png"):
        head = png.read_bytes()[:24]
        assert head[:8] == PNG_SIGNATURE and head[12:16] == b"IHDR", png.name
        width, height = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
        assert width >= 100 and height >= 100, (png.name, width, height)
        assert png.stat().st_size > 1000, png.name
    assert len(list((results / "figures").glob("*.png"))) == 8
    heat = pd.read_parquet(results / "tables" / "heatmap_validation.parquet")
    assert set(heat["method"]) == {"gradcam", "gradcam_in_lung", "lung_mask"}
    assert (heat["n_levels"] > 0).all()  # the tiny phantom's test patients have lesions to check against
    flat = heat[heat["method"] == "lung_mask"]
    assert np.allclose(flat["pixel_auc"], 0.5) and np.allclose(flat["pointing_game"], flat["energy_in_mask"])
    draws = pd.read_parquet(results / "tables" / "label_draws.parquet")
    assert set(draws["ablation"]) == {"none", "balanced", "balanced_synthesis"}
    seen = draws.groupby("ablation")["seen"].sum()
    assert np.allclose(seen.to_numpy(), 1.0, atol=1e-6)  # each ablation's draws add up to all of them
    assert draws.loc[draws["ablation"] != "balanced_synthesis", "synthetic"].eq(0).all()

    levels = pd.read_parquet(results / "levels" / "test" / "predictions.parquet")
    assert levels["pred_z_mm"].map(math.isfinite).all()
    tiny = yaml.safe_load((workdir / "config" / "tiny.yaml").read_text(encoding="utf-8"))
    check_job_logs(results / "logs", res.stdout + res.stderr, tiny)

    again = snakemake(["-n", *args], workdir, timeout=300)
    assert again.returncode == 0
    assert "Nothing to be done" in again.stdout + again.stderr

    # choosing another final ablation only redoes the reports and the final models' heat maps
    cfg = yaml.safe_load((workdir / "config" / "tiny.yaml").read_text(encoding="utf-8"))
    cfg["scores"]["final_ablation"] = "none"
    (workdir / "final_none.yaml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
    changed = snakemake(["-n", "--configfile", "final_none.yaml", "--cores", "2"], workdir, timeout=300)
    assert changed.returncode == 0, changed.stdout[-3000:] + changed.stderr[-3000:]
    assert set(job_counts(changed.stdout + changed.stderr)) == {"tables", "figures", "explain_test", "all"}
    # more observer patients: new cohort tables and everything after them, but no scan is redone
    cfg = yaml.safe_load((workdir / "config" / "tiny.yaml").read_text(encoding="utf-8"))
    cfg["phantom"]["n_observer_patients"] += 1
    (workdir / "more_observers.yaml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
    changed = snakemake(["-n", "--configfile", "more_observers.yaml", "--cores", "2"], workdir, timeout=300)
    assert changed.returncode == 0, changed.stdout[-3000:] + changed.stderr[-3000:]
    counts = job_counts(changed.stdout + changed.stderr)
    assert counts.get("phantom_tables") == 1 and "phantom_patient" not in counts and "resample" not in counts

    # the trained models score a new scan: levels, 15 scores, stage and QC image
    scans = sorted((results / "phantom" / "scans").iterdir())[:2]
    out = workdir / "scored"
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "gohscore",
            "predict",
            "--models",
            str(results),
            "--scan",
            *map(str, scans),
            "--out-dir",
            str(out),
            "--device",
            "cpu",
            "--explain",
            "--qc-pdf",
            str(out / "qc.pdf"),
        ],
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    table = pd.read_csv(out / "scores.csv")
    assert len(table) == 10 and set(table["level"]) == {1, 2, 3, 4, 5}
    assert {"z_mm", "original_slice", "TOT", "GG", "RET", "goh_stage"} <= set(table.columns)
    assert ((table[["TOT", "GG", "RET"]] % 5) == 0).all().all()
    assert {"z_mm_sd", "TOT_sd", "GG_sd", "RET_sd", "review", "global_extent_sd"} <= set(table.columns)
    assert (table[["z_mm_sd", "TOT_sd", "GG_sd", "RET_sd"]] >= 0).all().all()
    assert len(re.findall(rb"/Type\s*/Page(?!s)", (out / "qc.pdf").read_bytes())) == len(scans)
    for scan in scans:
        assert (out / scan.name / "qc.png").stat().st_size > 1000
        summary = json.loads((out / scan.name / "summary.json").read_text(encoding="utf-8"))
        record = summary["provenance"]
        assert record["precision"]["levels"] == "fp32" and record["device"] == "cpu"
        assert sorted(m["fold"] for m in record["models"] if m["task"] == "levels") == list(range(2))
        for m in record["models"]:
            assert m["sha256"] == hashlib.sha256(Path(m["file"]).read_bytes()).hexdigest()
        assert summary["source"]["sha256"] and "--explain" in record["arguments"]
        heat = sitk.GetArrayFromImage(sitk.ReadImage(str(out / scan.name / "heatmaps.nii.gz")))
        assert heat.shape[0] == 15 and 0.0 <= heat.min() and heat.max() <= 1.0


def test_slurm_profile_is_accepted_and_asks_for_a_gpu(workdir):
    """The cluster profile parses with the SLURM executor plugin; GPU jobs request one GPU."""
    pytest.importorskip("snakemake_executor_plugin_slurm")
    profile = REPO / "profiles" / "slurm"
    res = snakemake(
        ["-n", "--profile", str(profile), "--configfile", "config/tiny.yaml"], workdir, timeout=120
    )
    assert res.returncode == 0, res.stdout + res.stderr
    out = res.stdout + res.stderr
    assert job_counts(out)["train_scores"] == 6
    train_block = out[out.index("rule train_levels:") :].split("\n\n")[0]
    assert "gpu=1" in train_block and "runtime=1440" in train_block


def rule_settings(pattern: str) -> dict[str, str]:
    """Rule name -> first match of ``pattern`` (one group) inside that rule, over workflow/rules/*.smk."""
    found = {}
    for smk in sorted((REPO / "workflow" / "rules").glob("*.smk")):
        for block in re.split(r"^rule ", smk.read_text(encoding="utf-8"), flags=re.MULTILINE)[1:]:
            name = block.split(":", 1)[0]
            match = re.search(pattern, block)
            if match:
                found[name] = match.group(1)
    return found


def test_cluster_profiles_retry_requeue_and_group_the_patient_jobs():
    """Both SLURM profiles retry failed jobs and requeue preempted ones; a patient's steps form one group.

    Memory and time of the sized rules grow with the attempt (per_attempt in common.smk), so a
    retry asks for more; .ci/slurm-e2e checks a real retry on a real cluster.
    """
    groups = rule_settings(r'group:\s*"(\w+)"')
    assert groups == {"phantom_patient": "patient", "resample": "patient"}
    growing = rule_settings(r"mem_mb=per_attempt\((\d+)\)")
    assert {"train_levels", "train_scores", "resample"} <= set(growing)
    assert set(growing) == set(rule_settings(r"runtime=per_attempt\((\d+)\)"))
    for profile_dir in (REPO / "profiles" / "slurm", REPO / ".ci" / "slurm-profile"):
        profile = yaml.safe_load((profile_dir / "config.yaml").read_text(encoding="utf-8"))
        assert profile["retries"] >= 1 and profile["slurm-requeue"] is True, profile_dir
        # group-components is merged twice when checkpoints update the DAG (Snakemake 9.27): a
        # group of 2 patients became 4, which pends for ever on a 2-CPU node
        assert "group-components" not in profile, profile_dir
        assert "attempt" in str(profile["default-resources"]["mem_mb"]), profile_dir


def test_ci_slurm_profile_fits_a_two_cpu_node(workdir):
    """.ci/slurm-e2e's profile: every GPU rule holds a GPU, every rule asking for > 2 CPUs is capped at 2.

    A SLURM job asking for more CPUs than the node has pends for ever (reason PartitionConfig).
    """
    pytest.importorskip("snakemake_executor_plugin_slurm")
    profile_dir = REPO / ".ci" / "slurm-profile"
    profile = yaml.safe_load((profile_dir / "config.yaml").read_text(encoding="utf-8"))
    many_threads = {r for r, n in rule_settings(r"threads:\s*(\d+)").items() if int(n) > 2}
    gpu_rules = set(rule_settings(r"(gpu)=1"))
    assert many_threads and gpu_rules
    assert many_threads <= {r for r, n in profile["set-threads"].items() if int(n) <= 2}
    assert gpu_rules == {r for r, res in profile["set-resources"].items() if res.get("gpu") == 1}
    res = snakemake(
        ["-n", "--profile", str(profile_dir), "--configfile", "config/tiny.yaml"], workdir, timeout=120
    )
    assert res.returncode == 0, res.stdout + res.stderr
