"""Options that several commands share: the machine keys and the files of a training run."""

from __future__ import annotations

import argparse
from pathlib import Path

from gohscore.settings import MachineParams, section_schema


def add_machine_options(parser: argparse.ArgumentParser, amp: bool = True) -> None:
    """``--device`` and (unless ``amp`` is false) ``--amp``: the ``machine:`` keys (defaults: the schema's)."""
    props = section_schema("machine")["properties"]
    parser.add_argument(
        "--device", choices=props["device"]["enum"], default=None, help=props["device"]["description"]
    )
    if not amp:
        parser.set_defaults(amp=None)
        return
    parser.add_argument(
        "--amp", choices=["on", "off"], default=None, help=f"{props['amp']['description']} (on or off)"
    )


def machine_from_args(args: argparse.Namespace) -> MachineParams:
    """The ``machine:`` section from ``--device`` / ``--amp`` (absent ones take the schema's defaults)."""
    given = {}
    if args.device is not None:
        given["device"] = args.device
    if args.amp is not None:
        given["amp"] = args.amp == "on"
    return MachineParams.from_section(given, "--device/--amp")


def add_run_files(parser: argparse.ArgumentParser) -> None:
    """``--model``, ``--card``, ``--history``: the files a training command writes (exactly these paths)."""
    parser.add_argument("--model", type=Path, required=True, help="output weights (model.pt)")
    parser.add_argument("--card", type=Path, required=True, help="output model card (model.json)")
    parser.add_argument(
        "--history", type=Path, required=True, help="output training curves (history.parquet)"
    )
