"""The ``gohscore`` command: one subcommand per workflow step, each a thin wrapper over the API.

Subcommands live in ``gohscore.commands.<module>`` and are imported only when called,
so ``gohscore --help`` stays fast (no torch, SimpleITK or pandas import).
"""

from __future__ import annotations

import importlib
import sys

from gohscore import __version__

# name -> (module under gohscore.commands, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "phantom": ("phantom", "generate one synthetic patient of the embedded default cohort"),
    "phantom-tables": ("phantom_tables", "collect per-patient phantom rows into the cohort's tables"),
    "phantom-cohort": ("phantom_cohort", "generate a whole synthetic cohort in one folder (parallel)"),
    "phantom-pairs": ("phantom_pairs", "write synthetic follow-up pairs with a known change of disease"),
    "phantom-figure": ("phantom_figure", "draw the phantom realism figure (levels, GG/RET outlines)"),
    "validate": ("validate", "check a cohort folder (layout, labels, scan headers) without processing it"),
    "resample": ("resample", "read one scan, reorient, resample to the network grid, record geometry"),
    "ingest": ("ingest", "validate labels against the scans and write manifest/labels tables"),
    "folds": ("folds", "assign patients to cross-validation folds and the held-out test set"),
    "splits": ("splits", "write each network job's table of patients, labels and file digests"),
    "train-levels": ("train_levels", "train the 3D level network for one fold"),
    "predict-levels": ("predict_levels", "predict the five Goh levels with one or more level models"),
    "extract-slices": ("extract_slices", "cut the axial slices at reference or predicted levels"),
    "train-scores": ("train_scores", "train the 2D score network for one fold and ablation"),
    "predict-scores": ("predict_scores", "predict TOT/GG/RET on extracted slices"),
    "explain-test": ("explain_test", "heat maps of the test set, checked against the lesion masks"),
    "tables": ("tables", "compute the paper's tables (metrics) from prediction tables"),
    "figures": ("figures", "draw the paper's figures from tables"),
    "predict": ("predict", "score new scans with trained models: levels, 15 scores, Goh stage, QC"),
    "compare": ("compare", "compare a follow-up scan with a baseline: change per level, extent and stage"),
    "export": ("export", "pack trained fold models with one model card into a portable bundle"),
}


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [
        f"usage: gohscore <command> [options]   (gohscore {__version__})",
        "",
        "Automatic Goh scoring of systemic-sclerosis lung CT. Commands:",
    ]
    lines += [f"  {name:<{width}}  {text}" for name, (_, text) in COMMANDS.items()]
    lines += ["", "Run 'gohscore <command> --help' for the options of one command."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Dispatch to a subcommand; user errors print one line and return 2."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help", "help"}:
        print(_usage())
        return 0
    if argv[0] == "--version":
        print(__version__)
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"gohscore: unknown command {name!r}; run 'gohscore --help' for the list", file=sys.stderr)
        return 2
    from gohscore.errors import GohscoreError
    from gohscore.progress import setup_logging

    setup_logging(verbose="-v" in rest or "--verbose" in rest)
    module = importlib.import_module(f"gohscore.commands.{COMMANDS[name][0]}")
    try:
        result = module.main(rest)
    except GohscoreError as err:
        print(f"gohscore {name}: error: {err}", file=sys.stderr)
        return 2
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
