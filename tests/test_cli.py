"""The command-line front: fast help, every subcommand importable with --help, one-line user errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from gohscore.cli import COMMANDS, main


def test_help_lists_every_command(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert name in out


def test_help_does_not_import_heavy_modules():
    code = "import sys; from gohscore.cli import main; main(['--help']); print(sorted(m for m in ('torch','SimpleITK','pandas','monai') if m in sys.modules))"
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, encoding="utf-8"
    )
    assert res.stdout.strip().splitlines()[-1] == "[]"


def test_unknown_command_is_a_one_line_error(capsys):
    assert main(["no-such-command"]) == 2
    assert "unknown command" in capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_command_has_help(name):
    res = subprocess.run(
        [sys.executable, "-m", "gohscore", name, "--help"],
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
    )
    assert res.returncode == 0, res.stderr
    assert f"gohscore {name}" in res.stdout
