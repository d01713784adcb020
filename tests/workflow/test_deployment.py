"""Deployment: the pinned job environment agrees with pyproject, and the workflow runs from anywhere.

No conda channel is reachable from CI, so ``--sdm conda`` itself is not run; what it depends on
is: the environment file's pins, and a workflow that finds its own code and the user's files
whatever the working directory (``--directory``) or module ``prefix:``.
"""

from __future__ import annotations

import tomllib

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.workflow.helpers import REPO, job_counts, scratch_workdir, snakemake
from tests.workflow.test_workflow_folder import make_cohort

ENV_FILE = REPO / "workflow" / "envs" / "gohscore.yaml"


def env_pins() -> tuple[str, dict[str, str]]:
    """(python version, {package: pinned version}) of the environment file."""
    env = yaml.safe_load(ENV_FILE.read_text(encoding="utf-8"))
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    python = next(d.split("=", 1)[1] for d in conda if d.startswith("python="))
    pins = {}
    for line in pip:
        req = Requirement(line)
        (spec,) = req.specifier  # exactly one ==version per package
        assert spec.operator == "==", line
        pins[canonicalize_name(req.name)] = spec.version
    return python, pins


def test_environment_pins_every_dependency_of_pyproject_within_its_range():
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    python, pins = env_pins()
    assert Version(python) in Requirement(f"python{project['requires-python']}").specifier
    wanted = {
        canonicalize_name(Requirement(d).name): Requirement(d).specifier for d in project["dependencies"]
    }
    assert set(pins) == set(wanted), set(pins) ^ set(wanted)
    for name, version in pins.items():
        assert Version(version) in wanted[name], (name, version, str(wanted[name]))


def test_environment_names_no_local_path():
    """A relative path (``-e ../..``) resolves against the conda prefix, not the workflow: none here."""
    text = ENV_FILE.read_text(encoding="utf-8")
    body = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    assert not any(("-e " in line or "file:" in line or "/" in line.split("#")[0]) for line in body)


def test_runs_with_directory_elsewhere(tmp_path):
    """Started from an unrelated folder with --directory: the whole DAG plans, one patient really runs."""
    workdir = scratch_workdir(tmp_path / "run")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # --configfile is read from where snakemake starts; the config's paths from --directory
    args = [
        "--directory",
        str(workdir),
        "--configfile",
        str(workdir / "config" / "tiny.yaml"),
        "--cores",
        "2",
    ]
    plan = snakemake(["-n", *args], elsewhere, timeout=300)
    assert plan.returncode == 0, plan.stdout[-3000:] + plan.stderr[-3000:]
    assert job_counts(plan.stdout + plan.stderr)["train_scores"] == 6
    target = "results/tiny/preprocess/P0001.json"
    res = snakemake([*args, target], elsewhere, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert (workdir / target).is_file() and not (elsewhere / "results").exists()


HOST_SNAKEFILE = """\
configfile: "config/mine.yaml"


module gohscore:
    snakefile:
        "{snakefile}"
    config:
        config
    prefix:
        "gs"


use rule * from gohscore as gs_*
"""


@pytest.mark.slow
def test_runs_as_a_module_with_a_prefix_on_a_relative_folder_cohort(tmp_path):
    """A host workflow uses gohscore as a module with prefix:; the cohort path stays the user's."""
    workdir = scratch_workdir(tmp_path / "host")
    cohort = make_cohort(workdir)  # workdir / "my cohort"
    cfg = yaml.safe_load((workdir / "config" / "tiny.yaml").read_text(encoding="utf-8"))
    cfg["cohort"] = {"source": "folder", "path": cohort.name}  # relative to the working directory
    (workdir / "config" / "mine.yaml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
    host = workdir / "Snakefile"
    host.write_text(HOST_SNAKEFILE.format(snakefile=REPO / "workflow" / "Snakefile"), encoding="utf-8")

    plan = snakemake(["-n", "--cores", "2"], workdir, timeout=300, snakefile=host)
    assert plan.returncode == 0, plan.stdout[-3000:] + plan.stderr[-3000:]
    counts = job_counts(plan.stdout + plan.stderr)
    assert counts["gs_resample"] == 4 and counts["gs_train_scores"] == 6, counts
    # a level network: through the checkpoint `splits`, whose tables give the prefixed folders
    target = "gs/results/tiny/levels/fold0/model.pt"
    res = snakemake(["--cores", "2", target], workdir, timeout=600, snakefile=host)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert (workdir / target).is_file() and (workdir / "gs/results/tiny/ingest/labels.parquet").is_file()
    assert len(list((workdir / "gs" / "results" / "tiny" / "splits").rglob("*.parquet"))) == 10
    assert len(list((workdir / "gs" / "results" / "tiny" / "preprocess").glob("P000?.npy"))) == 4
    assert not (workdir / "gs" / cohort.name).exists()
