"""Run the Snakemake workflow from tests in a scratch working directory."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def scratch_workdir(tmp: Path) -> Path:
    """A working directory holding a copy of config/, as a user's checkout would."""
    shutil.copytree(REPO / "config", tmp / "config")
    return tmp


def snakemake(
    args: list[str], cwd: Path, timeout: float = 900, snakefile: Path = REPO / "workflow" / "Snakefile"
) -> subprocess.CompletedProcess:
    """Run snakemake with this interpreter's environment on PATH (so the jobs' `python` is this one)."""
    env = os.environ.copy()
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(snakefile), *args]
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


TINY_ARGS = ["--configfile", "config/tiny.yaml", "--cores", "2"]


def one_thread_args() -> list[str]:
    """``--set-threads`` giving every rule that asks for more than one thread one (as the tiny run does)."""
    rules = []
    for smk in sorted((REPO / "workflow" / "rules").glob("*.smk")):
        for block in re.split(r"^rule ", smk.read_text(encoding="utf-8"), flags=re.MULTILINE)[1:]:
            match = re.search(r"threads:\s*(\d+)", block)
            if match and int(match.group(1)) > 1:
                rules.append(f"{block.split(':', 1)[0]}=1")
    return ["--set-threads", *rules] if rules else []


def start_snakemake(args: list[str], cwd: Path, out: Path) -> subprocess.Popen:
    """Start snakemake as :func:`snakemake` does, in its own process group, stdout and stderr to ``out``.

    The jobs it runs stay in that group, so ``os.killpg(proc.pid, signal.SIGKILL)`` kills them all.
    """
    env = os.environ.copy()
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "workflow" / "Snakefile"), *args]
    with open(out, "wb") as sink:
        return subprocess.Popen(
            cmd,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def group_members(pgid: int) -> list[str]:
    """'pid command' of every live (not zombie) process in process group ``pgid``, from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # the process ended meanwhile
            continue
        head, _, rest = text.rpartition(")")
        fields = rest.split()
        if len(fields) > 2 and fields[0] != "Z" and int(fields[2]) == pgid:
            found.append(f"{stat.parent.name} {head.partition('(')[2]}")
    return found


def _can_write_in(folder: Path) -> bool:
    try:
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def read_only_folder(folder: Path) -> Iterator[bool]:
    """Make ``folder`` (created if missing) refuse new files for this process; yield whether it does.

    chmod 0555 for a normal user; root ignores modes, so as root the folder is made immutable
    (``chattr +i``, which needs CAP_LINUX_IMMUTABLE and a file system that has the flag: ext4,
    xfs, btrfs). Yields False where neither works (e.g. root in a container without that
    capability). Writable again on leaving the block.
    """
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        folder.chmod(0o555)

        def undo() -> None:
            folder.chmod(0o755)
    elif (
        shutil.which("chattr")
        and subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0
    ):

        def undo() -> None:
            subprocess.run(["chattr", "-i", str(folder)], check=True, capture_output=True)
    else:
        yield False
        return
    try:
        yield not _can_write_in(folder)
    finally:
        if folder.exists():  # snakemake may have removed it (an empty output folder)
            undo()
