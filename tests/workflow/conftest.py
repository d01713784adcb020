"""The tiny end-to-end run of test_workflow.py doubles as the fault tests' uninterrupted reference.

The fault tests (test_faults.py) compare a run that was killed and resumed with an unbroken one;
the report test (test_report.py) opens that run's report; the rerun tests (test_reruns.py) edit
copies of it. When they are collected with test_workflow.py, they are moved after it and reuse
the results of its tiny run (if that test passed), which saves a whole tiny run (minutes) each in
CI; run on their own they make their reference run themselves.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.workflow.helpers import TINY_ARGS, one_thread_args, scratch_workdir, snakemake

TINY_TEST = "test_tiny_dag_end_to_end"  # in test_workflow.py: TINY_ARGS with one_thread_args()
REUSING_MODULES = ("test_faults.py", "test_report.py", "test_reruns.py")  # the modules using tiny_reference
_passed_tiny_runs: list[Path] = []  # workdirs of tiny runs that passed in this session


def pytest_collection_modifyitems(config, items):
    tiny = [i for i in items if i.name == TINY_TEST]
    reusing = [i for i in items if i.path.name in REUSING_MODULES]
    if not tiny or not reusing:
        return
    rest = [i for i in items if i.path.name not in REUSING_MODULES]
    after = max(k for k, i in enumerate(rest) if i.path == tiny[0].path) + 1  # keep that module whole
    items[:] = rest[:after] + reusing + rest[after:]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if item.name == TINY_TEST and report.when == "call" and report.passed:
        workdir = item.funcargs.get("workdir")
        if workdir is not None:
            _passed_tiny_runs.append(Path(workdir))
    return report


@pytest.fixture(scope="session")
def tiny_reference(tmp_path_factory) -> Path:
    """The results folder (results/tiny) of an uninterrupted tiny run: test_workflow's, or a new one."""
    if _passed_tiny_runs:
        return _passed_tiny_runs[-1] / "results" / "tiny"
    workdir = scratch_workdir(tmp_path_factory.mktemp("tiny_reference"))
    res = snakemake([*TINY_ARGS, *one_thread_args()], workdir, timeout=1500)
    assert res.returncode == 0, res.stdout[-5000:] + res.stderr[-5000:]
    return workdir / "results" / "tiny"
