# Configuration, the patient list and input functions shared by all rules.
import hashlib
import json
import os
import shlex
import sys
from pathlib import Path

from snakemake.utils import validate

# The package's code comes from this workflow's own source tree (src/ beside workflow/), both
# while the Snakefile parses and in every job (`python -m gohscore`, which inherits PYTHONPATH),
# so the jobs' software environment holds only the pinned dependencies (envs/gohscore.yaml),
# whatever --conda-prefix, --directory or module prefix. A workflow read from a remote source
# has no local src/ and uses the installed package.
SRC = Path(
    workflow.current_basedir.get_path_or_uri(secret_free=True), "..", "..", "src"
)
if (SRC / "gohscore").is_dir():
    SRC = str(SRC.resolve())
    sys.path.insert(0, SRC)
    PYTHONPATH = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if SRC not in PYTHONPATH:
        os.environ.update(PYTHONPATH=os.pathsep.join([SRC, *PYTHONPATH]))

from gohscore.cohort import MASK_DIR, discover_scans, find_table
from gohscore.phantom.sizes import PatientParams
from gohscore.reports import (
    FIGURE_NAMES,
    HEATMAP_FIGURE,
    HEATMAP_TABLE,
    TABLE_FORMATS,
    TABLE_NAMES,
    TABLE_PAGE_FORMAT,
)
from gohscore.scores.ablations import unread_keys
from gohscore.settings import SCHEMA_PATH, SLICE_KEYS, LevelParams, ScoreParams
from gohscore.splits import TASKS, split_names, split_path

# One schema for the workflow and the package: it lies in the package (src/gohscore/).
validate(config, str(SCHEMA_PATH))

R = config["results"]
SEED = config["seed"]
FOLDS = list(range(config["folds"]["n_folds"]))
# Paths the user gives are made absolute, so that a module's prefix: is not put before them.
PREVIOUS_FOLDS = (
    [os.path.abspath(config["folds"]["previous"])]
    if config["folds"].get("previous")
    else []
)
ABLATIONS = config["scores"]["ablations"]
FINAL = config["scores"]["final_ablation"]
# The rules get only the keys they read, so that changing a key reruns only what depends on it.
# The training rules get the training keys (never levels.window_stride, the ablation list or the
# machine), the slice rules the slice keys, each phantom patient the keys it depends on.
PHANTOM_PATIENT_KEYS = PatientParams.keys()
LEVEL_TRAINING_KEYS = LevelParams.keys()
SCORE_TRAINING_KEYS = ScoreParams.keys()
WINDOW_STRIDE = config["levels"]["window_stride"]
# The machine keys travel as resources, which Snakemake does not count as rerun triggers (params
# are), so moving a run to another machine, or switching amp or deterministic, retrains nothing.
MACHINE = {
    "device": config["machine"]["device"],
    "amp": "on" if config["machine"]["amp"] else "off",
    "deterministic": "on" if config["machine"]["deterministic"] else "off",
}
if FINAL not in ABLATIONS:
    raise ValueError(
        f"config key scores.final_ablation={FINAL!r} is not in scores.ablations={ABLATIONS}; "
        "add it to the list or choose one of them"
    )

if config["cohort"]["source"] == "phantom":
    COHORT = f"{R}/phantom"
    PATIENTS = [f"P{i:04d}" for i in range(1, config["phantom"]["n_patients"] + 1)]
    SCANS = {p: f"{COHORT}/scans/{p}" for p in PATIENTS}
    COHORT_TABLES = [
        f"{COHORT}/labels.csv",
        f"{COHORT}/observers.csv",
        f"{COHORT}/patches/patches.csv",
    ]
else:
    if not config["cohort"].get("path"):
        raise ValueError(
            "config key cohort.path is empty but cohort.source is 'folder'; "
            "set cohort.path to your cohort folder (see README, 'Bring your own cohort')"
        )
    COHORT = os.path.abspath(config["cohort"]["path"])
    SCANS = {p: str(path) for p, path in discover_scans(COHORT).items()}
    PATIENTS = sorted(SCANS)
    COHORT_TABLES = [
        str(t)
        for t in (
            find_table(COHORT, "labels"),
            find_table(COHORT, "observers"),
            Path(COHORT, "patches", "patches.csv"),
        )
        if t is not None and Path(t).exists()
    ]

# synthetic follow-up pairs (benchmarks/followup_change.py), written only when followup.n_pairs > 0
FOLLOWUP = config.get("followup", {})
FOLLOWUP_PAIRS = [f"{R}/followup_pairs"] if FOLLOWUP.get("n_pairs", 0) > 0 else []

TABLES = expand(f"{R}/tables/{{name}}.{{ext}}", name=TABLE_NAMES, ext=TABLE_FORMATS)
TABLE_PAGES = expand(f"{R}/tables/{{name}}.{TABLE_PAGE_FORMAT}", name=TABLE_NAMES)
HISTORIES = expand(f"{R}/levels/fold{{fold}}/history.parquet", fold=FOLDS) + expand(
    f"{R}/scores/{{ablation}}/fold{{fold}}/history.parquet",
    ablation=ABLATIONS,
    fold=FOLDS,
)
DRAWS = expand(
    f"{R}/scores/{{ablation}}/fold{{fold}}/draws.parquet",
    ablation=ABLATIONS,
    fold=FOLDS,
)
FIGURES = expand(
    f"{R}/figures/{{name}}.png", name=FIGURE_NAMES
)  # the report registry's
# heat maps of the test set against the lesion masks (written by explain_test, not the tables rule)
HEATMAP_TABLES = expand(f"{R}/tables/{HEATMAP_TABLE}.{{ext}}", ext=TABLE_FORMATS)
HEATMAP_PAGE = f"{R}/tables/{HEATMAP_TABLE}.{TABLE_PAGE_FORMAT}"
HEATMAP_PNG = f"{R}/figures/{HEATMAP_FIGURE}.png"
HEATMAP_OUTPUTS = HEATMAP_TABLES + [HEATMAP_PAGE, HEATMAP_PNG]
# lesion masks: the phantom writes them; a user's cohort may have a masks/ folder, or none
if config["cohort"]["source"] == "phantom":
    MASKS_DIR = f"{COHORT}/{MASK_DIR}"
    MASKS = expand(f"{MASKS_DIR}/{{patient}}.npz", patient=PATIENTS)
else:
    MASKS_DIR = str(Path(COHORT, MASK_DIR)) if Path(COHORT, MASK_DIR).is_dir() else ""
    MASKS = []


def report_pages(files, names, category):
    """``files`` (one per name of the report registry) in the report, captioned report/<category>/<name>.rst."""
    # (`report` must not open a line: Snakemake's parser would read its `report:` keyword)
    mark = report
    captions = [f"../report/{category.lower()}/{name}.rst" for name in names]
    return [
        mark(path, caption=c, category=category)
        for path, c in zip(files, captions, strict=True)
    ]


def per_attempt(first):
    """A resource callable: ``first`` on a job's first attempt, twice that on the second, and so on.

    With ``retries`` (profiles/slurm), a job killed for its memory or time limit comes back with more.
    """

    def grow(wildcards, attempt):
        return first * attempt

    return grow


def masks_option(wildcards, input):
    """``--masks <folder>`` for explain-test: the phantom's masks (inputs) or the cohort's masks/."""
    folder = str(Path(input.masks[0]).parent) if input.masks else MASKS_DIR
    return f"--masks {shlex.quote(folder)}" if folder else ""


def section(name, only=None, without=()):
    """One config section as sorted JSON, passed to a command as --params-json.

    ``only`` or ``without`` narrow it to the keys the command reads, so that changing another
    key of the section (e.g. adding an ablation) does not rerun the rule through its params.
    """
    keys = [k for k in config[name] if (only is None or k in only) and k not in without]
    return json.dumps({k: config[name][k] for k in keys}, sort_keys=True)


def folder_of(kind, key=None):
    """A params function: the folder of a rule's first (or named) input or output file."""

    def get(wildcards, input, output):
        files = input if kind == "input" else output
        item = getattr(files, key) if key else files[0]
        if not isinstance(item, str):
            item = item[0]
        return str(Path(item).parent)

    return get


def cohort_folder(wildcards, input):
    """The cohort folder: where the labels table lies (phantom or the user's folder)."""
    return str(Path(input.tables[0]).parent) if input.tables else COHORT


def get_scan(wildcards):
    """The scan (file or folder) of one patient."""
    return SCANS[wildcards.patient]


# Each network job reads one split table (gohscore.splits) through the checkpoint `splits`, so it
# is checked again after that job and reruns only if its own table's content changed.
SPLITS = f"{R}/splits"
SPLIT_TABLES = [
    split_path(SPLITS, task, name) for task in TASKS for name in split_names(len(FOLDS))
]
# the folds are drawn again when the patient list changes, not when a label does (rule folds)
PATIENT_LIST = hashlib.sha256("\n".join(sorted(PATIENTS)).encode()).hexdigest()


def ingested(name, mark=str):
    """An input function: ``ingest/<name>.parquet`` (``mark``ed, e.g. ancient) once the checkpoint ran."""

    def get(wildcards):
        checkpoints.ingest.get()
        return mark(f"{R}/ingest/{name}.parquet")

    return get


def split_input(task, name):
    """An input function: split table ``name`` (wildcards filled in) of ``task``, after the checkpoint."""

    def get(wildcards):
        checkpoints.splits.get()
        return split_path(SPLITS, task, name.format(**wildcards))

    return get


def in_results(folder):
    """A params function: ``folder`` of the results, found from the job's split table (so that a
    module's prefix: applies to it as it does to inputs): {results}/splits/<task>/<name>.parquet.
    """

    def get(wildcards, input):
        return str(Path(input.split).parents[2] / folder)

    return get


def splits_folder(wildcards, output):
    """The splits folder, from the checkpoint's first output (prefix: included)."""
    return str(Path(output[0]).parents[1])


def all_volumes():
    return expand(f"{R}/preprocess/{{patient}}.npy", patient=PATIENTS)


def all_geometries():
    return expand(f"{R}/preprocess/{{patient}}.json", patient=PATIENTS)


def level_models():
    return expand(f"{R}/levels/fold{{fold}}/model.pt", fold=FOLDS)


def score_models(wildcards):
    return expand(f"{R}/scores/{wildcards.ablation}/fold{{fold}}/model.pt", fold=FOLDS)
