"""Run the Snakemake workflow from tests in a scratch working directory."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def scratch_workdir(tmp: Path) -> Path:
    """A working directory holding a copy of config/, as a user's checkout would."""
    shutil.copytree(REPO / "config", tmp / "config")
    return tmp


def snakemake(args: list[str], cwd: Path, timeout: float = 900) -> subprocess.CompletedProcess:
    """Run snakemake with this interpreter's environment on PATH (so `gohscore` is found)."""
    env = os.environ.copy()
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "workflow" / "Snakefile"), *args]
    return subprocess.run(
        cmd,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        timeout=timeout,
    )


def job_counts(dry_run_output: str) -> dict[str, int]:
    """Parse the 'Job stats' table of a dry run into {rule: count}."""
    counts: dict[str, int] = {}
    in_table = False
    for line in dry_run_output.splitlines():
        if line.startswith("Job stats"):
            in_table, counts = True, {}
            continue
        if in_table:
            m = re.match(r"^(\w+)\s+(\d+)\s*$", line.strip())
            if m and m.group(1) != "total":
                counts[m.group(1)] = int(m.group(2))
            elif line.strip().startswith("total"):
                in_table = False
    return counts
