"""CI helper of .ci/slurm-e2e: kill a training job's process, then check that the run recovered.

python .ci/recovery.py kill RESULTS SNAKEMAKE_PID
    waits for a training folder with checkpoint.pt and no model.pt, SIGKILLs the training
    process writing it (found by its command line in /proc) and prints the folder
python .ci/recovery.py check RESULTS REFERENCE KILLED_FOLDER
    the killed job failed in SLURM and its retry completed with twice the first memory and
    resumed from the checkpoint; every table equals the unbroken reference run's, and the
    same figures exist
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

FIRST_MEM_MB = 1500  # .ci/slurm-profile's mem_mb for the training rules, times the attempt


def training_folders(results: Path) -> list[Path]:
    return sorted(results.glob("levels/fold*")) + sorted(results.glob("scores/*/fold*"))


def training_pids(model: Path) -> list[int]:
    """PIDs of live `python -m gohscore train-*` processes writing ``model``."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        words = [a.decode(errors="replace") for a in args]
        if "gohscore" in words and any(w.startswith("train-") for w in words) and str(model) in words:
            found.append(int(cmdline.parent.name))
    return found


def kill(results: Path, snakemake_pid: int, limit: float = 900) -> int:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            os.kill(snakemake_pid, 0)
        except ProcessLookupError:
            print("the run ended before a training job was caught", file=sys.stderr)
            return 1
        for folder in training_folders(results):
            if (folder / "checkpoint.pt").exists() and not (folder / "model.pt").exists():
                pids = training_pids(folder / "model.pt")
                for pid in pids:
                    os.kill(pid, signal.SIGKILL)
                if pids:
                    print(folder)
                    return 0
        time.sleep(0.02)
    print(f"no training job caught within {limit:.0f} s", file=sys.stderr)
    return 1


def slurm_jobs() -> list[dict[str, str]]:
    """Every job SLURM still lists (finished ones stay MinJobAge), as key=value fields."""
    out = subprocess.run(["scontrol", "show", "job", "-o"], capture_output=True, text=True, check=True)
    return [dict(re.findall(r"(\w+)=(\S*)", line)) for line in out.stdout.splitlines() if line.strip()]


def check(results: Path, reference: Path, killed: Path) -> int:
    import pandas as pd

    if killed.parent.name == "levels":
        rule, wildcards = "train_levels", [killed.name.removeprefix("fold")]
    else:
        rule, wildcards = "train_scores", [killed.parent.name, killed.name.removeprefix("fold")]
    comment = f"rule_{rule}_wildcards_{'_'.join(wildcards)}"
    tries = [j for j in slurm_jobs() if j.get("Comment") == comment]
    states = sorted((j["JobId"], j["JobState"], j.get("MinMemoryNode", "")) for j in tries)
    failed = [s for s in states if s[1] == "FAILED"]
    retried = [s for s in states if s[1] == "COMPLETED" and s[2] == f"{2 * FIRST_MEM_MB}M"]
    if not failed or not retried:
        print(f"{comment}: expected a FAILED job and a COMPLETED retry with twice the memory: {states}")
        return 1
    stage = "levels" if rule == "train_levels" else "scores"
    log_name = f"train_{killed.name}.log" if stage == "levels" else f"train_{wildcards[0]}_{killed.name}.log"
    log = (results / "logs" / stage / log_name).read_text(encoding="utf-8")
    if "resuming" not in log:
        print(f"{log_name}: the retry did not resume from the checkpoint:\n{log[-2000:]}")
        return 1
    names = sorted(p.name for p in (reference / "tables").glob("*.parquet"))
    figures = sorted(p.name for p in (reference / "figures").glob("*.png"))
    if not names or names != sorted(p.name for p in (results / "tables").glob("*.parquet")):
        print(f"the tables differ from the reference run's {names}")
        return 1
    if not figures or figures != sorted(p.name for p in (results / "figures").glob("*.png")):
        print(f"the figures differ from the reference run's {figures}")
        return 1
    for name in names:
        pd.testing.assert_frame_equal(
            pd.read_parquet(results / "tables" / name), pd.read_parquet(reference / "tables" / name)
        )
    print(
        f"{comment}: {states}; resumed; {len(names)} tables equal to the unbroken run's, {len(figures)} figures"
    )
    return 0


if __name__ == "__main__":
    command, *rest = sys.argv[1:]
    if command == "kill":
        sys.exit(kill(Path(rest[0]), int(rest[1])))
    sys.exit(check(Path(rest[0]), Path(rest[1]), Path(rest[2])))
