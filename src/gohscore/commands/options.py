"""Options that several commands share: the machine keys and the files of a training run."""

from __future__ import annotations

import argparse
from pathlib import Path

from gohscore.settings import MachineParams, section_schema

SWITCHES = ("amp", "deterministic")  # the boolean machine keys, given as on | off


def _switch(parser: argparse.ArgumentParser, key: str, props: dict) -> None:
    """``--KEY on|off`` for the boolean machine key ``key`` (default: the schema's)."""
    description = " ".join(props[key]["description"].split())
    parser.add_argument(f"--{key}", choices=["on", "off"], default=None, help=f"{description} (on or off)")


def add_machine_options(
    parser: argparse.ArgumentParser, amp: bool = True, deterministic: bool = True
) -> None:
    """``--device``, ``--amp`` and ``--deterministic``: the ``machine:`` keys (defaults: the schema's).

    ``amp=False`` or ``deterministic=False`` leaves that option out (the command does not use it).
    """
    props = section_schema("machine")["properties"]
    parser.add_argument(
        "--device", choices=props["device"]["enum"], default=None, help=props["device"]["description"]
    )
    for key, wanted in zip(SWITCHES, (amp, deterministic), strict=True):
        if wanted:
            _switch(parser, key, props)
        else:
            parser.set_defaults(**{key: None})


def machine_from_args(args: argparse.Namespace) -> MachineParams:
    """The ``machine:`` section from ``--device`` / ``--amp`` / ``--deterministic`` (absent ones: the schema's)."""
    given = {}
    if getattr(args, "device", None) is not None:
        given["device"] = args.device
    for key in SWITCHES:
        if getattr(args, key, None) is not None:
            given[key] = getattr(args, key) == "on"
    return MachineParams.from_section(given, "--device/--amp/--deterministic")


def add_run_files(parser: argparse.ArgumentParser) -> None:
    """``--model``, ``--card``, ``--history``: the files a training command writes (exactly these paths)."""
    parser.add_argument("--model", type=Path, required=True, help="output weights (model.pt)")
    parser.add_argument("--card", type=Path, required=True, help="output model card (model.json)")
    parser.add_argument(
        "--history", type=Path, required=True, help="output training curves (history.parquet)"
    )
