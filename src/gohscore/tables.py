"""The paper's tables from prediction tables: pure functions, DataFrames in, DataFrames out.

Numeric tables (for parquet and figures) come from ``table1_levels``, ``levels_agreement``,
``table2_scores_cv``, ``table3_observers``, ``test_set``, ``stages``, ``label_distribution``
and ``scatter_counts``; the ``*_display`` functions turn them into text frames for Markdown.
Input formats are those of ``docs/architecture.md`` (long prediction tables, wide labels).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from gohscore import metrics, staging
from gohscore.errors import GohscoreError
from gohscore.folds import FOLD_COLUMNS
from gohscore.goh import LEVEL_NAMES, LEVELS, PATTERNS, SCORE_COLUMNS, SCORE_STEP, Z_COLUMNS, score_column
from gohscore.labels import OBSERVER_COLUMNS
from gohscore.settings import section_schema

#: The columns a level prediction table must have.
LEVEL_PREDICTION_COLUMNS: tuple[str, ...] = ("patient", "level", "pred_index", "ref_index")
#: The columns a score prediction table must have.
SCORE_PREDICTION_COLUMNS: tuple[str, ...] = ("patient", "ablation", "level", "source") + tuple(
    f"{side}_{p}" for side in ("pred", "ref") for p in PATTERNS
)
SIGNIFICANCE = 0.05
# config cohort.source (folder = a real cohort), from the schema
COHORT_SOURCES: tuple[str, ...] = tuple(section_schema("cohort")["properties"]["source"]["enum"])

# The frames of Table 1's figures. Grid index 0 is the bottom slice (docs/architecture.md, Conventions).
LEVEL_FRAME = (
    "grid slices, the z index of the resampled scan counted from the bottom (pred_index, ref_index; "
    "0 = bottom slice)"
)
LEVEL_FRAME_MM = "world z in mm (pred_z_mm, ref_z_mm)"
TABLE1_NOTES: tuple[str, ...] = (
    f"MAE, SD, ICC and baseline MAE are in {LEVEL_FRAME}, the paper's frame; MAE (SD) [mm] is the same "
    f"error in {LEVEL_FRAME_MM}.",
    "MAE and SD of |predicted - reference|; ICC(2,1) absolute agreement of the positions.",
    "The 'all' ICC pools levels whose positions differ by design, so it is close to 1 by construction.",
)
# What one row of a score prediction table is (gohscore.scores.predict.predict_table).
SCORE_UNIT_NOTE = (
    "Per level, not per image: one (reference, score) pair per patient and level, and n counts these pairs; "
    "the reference is the level's consensus score (labels.parquet)."
)
MODEL_SCORE_NOTE = (
    "A model score is the network output averaged over the level's slices_per_level adjacent slices (and "
    "over the fold models where several are ensembled), then rounded half up to 5 and clipped to 0..100."
)


# ---------------------------------------------------------------- input checks


def require_columns(df: pd.DataFrame, columns: Iterable[str], source: str) -> None:
    """Raise GohscoreError naming ``source`` and the first missing column."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise GohscoreError(
            f"{source}: missing column {missing[0]!r}"
            + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
            + "; regenerate the file or add the column (see docs/architecture.md)"
        )


def check_score_values(df: pd.DataFrame, columns: Iterable[str], source: str) -> None:
    """Raise GohscoreError if a score is not a multiple of 5 in 0..100 (NaN allowed)."""
    for col in columns:
        values = pd.to_numeric(df[col], errors="coerce").to_numpy(float)
        bad = ~np.isnan(values) & (
            (values < 0)
            | (values > 100)
            | (np.abs(values / SCORE_STEP - np.rint(values / SCORE_STEP)) > 1e-9)
        )
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise GohscoreError(
                f"{source}: column {col!r} row {row} holds {values[row]!r}, not a multiple of 5 in 0..100; "
                "round scores half up to 5 (gohscore.goh.round_to_5)"
            )


def check_sets(df: pd.DataFrame, folds: pd.DataFrame, expected: str, source: str) -> None:
    """Raise GohscoreError if a patient of ``df`` is unknown to folds or belongs to another set."""
    sets = folds.drop_duplicates("patient").set_index("patient")["set"]
    patients = pd.Index(df["patient"].astype(str).unique())
    unknown = patients.difference(sets.index)
    if len(unknown):
        raise GohscoreError(
            f"{source}: patient {unknown[0]!r} is not in folds.parquet; rerun 'gohscore folds' for this cohort"
        )
    wrong = [p for p in patients if sets[p] != expected]
    if wrong:
        raise GohscoreError(
            f"{source}: patient {wrong[0]!r} is in the {sets[wrong[0]]!r} set of folds.parquet, expected "
            f"{expected!r}; pass the predictions of the matching set"
        )


def check_unique(df: pd.DataFrame, keys: Sequence[str], source: str) -> None:
    """Raise GohscoreError if the key columns repeat (e.g. one file passed twice)."""
    dup = df.duplicated(list(keys))
    if dup.any():
        first = df.loc[dup, list(keys)].iloc[0].to_dict()
        raise GohscoreError(f"{source}: duplicate rows for {first}; pass each prediction file once")


# ---------------------------------------------------------------- reshaping


def labels_long(labels: pd.DataFrame) -> pd.DataFrame:
    """Wide labels/observer scores to long rows ``[id columns], level, pattern, value``."""
    ids = [c for c in labels.columns if c not in SCORE_COLUMNS and c not in Z_COLUMNS]
    long = labels.melt(id_vars=ids, value_vars=list(SCORE_COLUMNS), var_name="key", value_name="value")
    parts = long["key"].str.extract(r"^L(?P<level>\d)_(?P<pattern>\w+)$")
    long["level"] = parts["level"].astype(int)
    long["pattern"] = parts["pattern"]
    long["patient"] = long["patient"].astype(str)
    return long.drop(columns="key")


def scores_long(scores: pd.DataFrame) -> pd.DataFrame:
    """Long score predictions to one row per pattern: ``..., pattern, ref, pred``."""
    keep = [c for c in scores.columns if not c.startswith(("pred_", "ref_"))]
    frames = []
    for p in PATTERNS:
        part = scores[keep].copy()
        part["pattern"] = p
        part["ref"] = scores[f"ref_{p}"].astype(float)
        part["pred"] = scores[f"pred_{p}"].astype(float)
        frames.append(part)
    out = pd.concat(frames, ignore_index=True)
    out["patient"] = out["patient"].astype(str)
    return out


def _ordered(values: Iterable[str], order: Sequence[str] | None) -> list[str]:
    """Unique values in ``order`` first, then the rest in order of appearance."""
    seen = list(dict.fromkeys(values))
    head = [v for v in (order or []) if v in seen]
    return head + [v for v in seen if v not in head]


def _complete(df: pd.DataFrame, a: str, b: str) -> pd.DataFrame:
    """Rows where both ``a`` and ``b`` are present."""
    return df[df[a].notna() & df[b].notna()]


# ---------------------------------------------------------------- Table 1: levels


def mean_position_errors(levels: pd.DataFrame, training: pd.DataFrame | None = None) -> pd.Series:
    """``|ref - mean training reference|`` per row: the error of a level "predictor" that ignores the image.

    The training reference positions are the rows of ``training`` (default: ``levels`` itself)
    whose fold differs from the row's fold: for a cross-validation row, the patients its model
    was trained on; for a test row (fold -1) against the CV table, every CV patient. Without fold
    columns every training row counts. The mean is taken per level.
    """
    pool = levels if training is None else training
    if "fold" not in levels.columns or "fold" not in pool.columns:
        means = pool.groupby("level")["ref_index"].mean()
        return (levels["ref_index"] - levels["level"].map(means)).abs()
    out = pd.Series(np.nan, index=levels.index, dtype=float)
    for fold in levels["fold"].dropna().unique():
        inside = levels["fold"] == fold
        means = pool.loc[pool["fold"] != fold].groupby("level")["ref_index"].mean()
        out[inside] = (levels.loc[inside, "ref_index"] - levels.loc[inside, "level"].map(means)).abs()
    return out


def _mm_errors(part: pd.DataFrame) -> dict[str, float]:
    """MAE and SD of |pred_z_mm - ref_z_mm| (NaN without those columns)."""
    if not {"pred_z_mm", "ref_z_mm"} <= set(part.columns):
        return {"mae_mm": float("nan"), "sd_mm": float("nan")}
    mae, sd = metrics.mae_sd(part["ref_z_mm"], part["pred_z_mm"])
    return {"mae_mm": mae, "sd_mm": sd}


TABLE1_COLUMNS = ["level", "name", "n", "mae", "sd", "icc", "baseline_mae", "mae_mm", "sd_mm"]


def table1_levels(levels: pd.DataFrame, training: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per level and overall: n, MAE and SD of |pred - ref|, ICC(2,1), mean-position baseline, MAE in mm.

    ``n``, ``mae``, ``sd``, ``icc`` and ``baseline_mae`` are in the paper's frame, the grid z index
    (``pred_index``, ``ref_index``; 0 = bottom slice of the resampled scan, :data:`LEVEL_FRAME`);
    ``mae_mm`` and ``sd_mm`` are the same errors in world z (``pred_z_mm``, ``ref_z_mm``; NaN
    without those columns). ``baseline_mae`` is the MAE of predicting every patient's level at
    the mean reference position of the training patients (:func:`mean_position_errors`;
    ``training`` as there): a network that does not beat it has learned nothing about the image.
    """
    require_columns(levels, LEVEL_PREDICTION_COLUMNS, "level predictions")
    data = _complete(levels, "pred_index", "ref_index")
    data = data.assign(baseline=mean_position_errors(data, training))
    groups = [(f"L{k}", LEVEL_NAMES[k], data[data["level"] == k]) for k in LEVELS]
    rows = []
    for level, name, part in [*groups, ("all", "all levels", data)]:
        stats = metrics.level_agreement(part["ref_index"], part["pred_index"])
        rows.append(
            {
                "level": level,
                "name": name,
                **stats,
                "baseline_mae": part["baseline"].mean(),
                **_mm_errors(part),
            }
        )
    return pd.DataFrame(rows, columns=TABLE1_COLUMNS)


def levels_agreement(levels: pd.DataFrame) -> pd.DataFrame:
    """Bland–Altman (pred - ref) and regression of pred on ref, over all levels and per level."""
    require_columns(levels, LEVEL_PREDICTION_COLUMNS, "level predictions")
    data = _complete(levels, "pred_index", "ref_index")
    groups = [("all", data)] + [(f"L{k}", data[data["level"] == k]) for k in LEVELS]
    rows = []
    for name, part in groups:
        ba = metrics.bland_altman(part["ref_index"], part["pred_index"])
        reg = metrics.regression(part["ref_index"], part["pred_index"])
        rows.append({"level": name, **ba, **reg})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- Table 2 and test set


def _pattern_rows(long: pd.DataFrame, keys: dict[str, object]) -> list[dict[str, object]]:
    """One metrics row per pattern of a long score frame, prefixed with ``keys``."""
    rows = []
    for p in PATTERNS:
        part = _complete(long[long["pattern"] == p], "ref", "pred")
        rows.append({**keys, "pattern": p, **metrics.score_agreement(part["ref"], part["pred"])})
    return rows


def table2_scores_cv(scores: pd.DataFrame, ablation_order: Sequence[str] | None = None) -> pd.DataFrame:
    """Per ablation × pattern: MAE, SD, weighted kappa, ICC and Wilcoxon p vs the previous ablation.

    The Wilcoxon test pairs each (patient, level) of an ablation with the same one of the
    previous ablation row (same source) and compares absolute errors. ``better`` is True when
    p < 0.05 and the MAE decreased, False when p < 0.05 and it increased, missing otherwise.
    """
    require_columns(scores, SCORE_PREDICTION_COLUMNS, "CV score predictions")
    check_unique(scores, ["ablation", "source", "patient", "level"], "CV score predictions")
    long = scores_long(scores)
    rows: list[dict[str, object]] = []
    for source in _ordered(long["source"], ["reference", "predicted"]):
        previous: pd.DataFrame | None = None
        previous_rows: dict[str, dict[str, object]] = {}
        for ablation in _ordered(long["ablation"], ablation_order):
            part = long[(long["source"] == source) & (long["ablation"] == ablation)]
            if part.empty:
                continue
            current_rows = {}
            for row in _pattern_rows(part, {"ablation": ablation, "source": source}):
                p = row["pattern"]
                row["p_vs_previous"] = float("nan")
                row["better"] = pd.NA
                if previous is not None:
                    pair = _complete(part[part["pattern"] == p], "ref", "pred").merge(
                        _complete(previous[previous["pattern"] == p], "ref", "pred")[
                            ["patient", "level", "ref", "pred"]
                        ],
                        on=["patient", "level"],
                        suffixes=("", "_prev"),
                    )
                    pval = metrics.wilcoxon_abs_errors(pair["ref"], pair["pred"], pair["pred_prev"])
                    row["p_vs_previous"] = pval
                    if pval < SIGNIFICANCE:
                        row["better"] = bool(row["mae"] < previous_rows[p]["mae"])
                current_rows[p] = row
                rows.append(row)
            previous, previous_rows = part, current_rows
    columns = ["ablation", "source", "pattern", "n", "mae", "sd", "kappa", "icc", "p_vs_previous", "better"]
    out = pd.DataFrame(rows, columns=columns)
    out["better"] = out["better"].astype("boolean")
    return out


def test_set(scores: pd.DataFrame, ablation_order: Sequence[str] | None = None) -> pd.DataFrame:
    """Per ablation × source × pattern on the test set: n, MAE, SD, weighted kappa, ICC."""
    require_columns(scores, SCORE_PREDICTION_COLUMNS, "test score predictions")
    check_unique(scores, ["ablation", "source", "patient", "level"], "test score predictions")
    long = scores_long(scores)
    rows: list[dict[str, object]] = []
    for ablation in _ordered(long["ablation"], ablation_order):
        for source in _ordered(long["source"], ["predicted", "reference"]):
            part = long[(long["ablation"] == ablation) & (long["source"] == source)]
            if not part.empty:
                rows += _pattern_rows(part, {"ablation": ablation, "source": source})
    return pd.DataFrame(rows, columns=["ablation", "source", "pattern", "n", "mae", "sd", "kappa", "icc"])


def final_predictions(
    scores: pd.DataFrame, final_ablation: str, source: str = "test score predictions"
) -> pd.DataFrame:
    """Rows of ``final_ablation`` at predicted levels (all its rows if none is 'predicted')."""
    require_columns(scores, SCORE_PREDICTION_COLUMNS, source)
    part = scores[scores["ablation"] == final_ablation]
    if part.empty:
        found = ", ".join(map(str, _ordered(scores["ablation"], None))) or "none"
        raise GohscoreError(
            f"{source}: no rows for --final-ablation {final_ablation!r} (ablations found: {found}); "
            "pass a name from config 'ablations'"
        )
    if (part["source"] == "predicted").any():
        part = part[part["source"] == "predicted"]
    return part


# ---------------------------------------------------------------- Table 3: observers


def simulated_observers_note() -> str:
    """How the embedded synthetic cohort simulates the re-reads, from :data:`gohscore.phantom.observers.READERS`."""
    from gohscore.phantom.observers import READERS

    readers = "; ".join(
        f"{observer} T{read}: bias {bias:+g} %, SD {sd:g} %"
        for (observer, read), (bias, sd) in READERS.items()
    )
    return (
        "The observers are simulated, not human readers (embedded synthetic cohort, gohscore.phantom.observers): "
        "each re-read is the consensus score of the level plus a fixed bias and independent Gaussian noise "
        f"per observer and read ({readers}), both scaled down for GG and RET and at levels whose consensus "
        "is 0 %; the sum is clipped at 0, rounded half up to 5 and made consistent "
        "(max(GG, RET) <= TOT <= min(GG + RET, 100))."
    )


def observer_notes(cohort_source: str) -> list[str]:
    """Where Table 3's observer scores and reference come from, for a ``cohort_source`` of :data:`COHORT_SOURCES`."""
    if cohort_source not in COHORT_SOURCES:
        raise GohscoreError(
            f"cohort source {cohort_source!r} is not one of {', '.join(COHORT_SOURCES)}; pass config cohort.source"
        )
    predicted = "model at predicted levels on the test set"
    if cohort_source == "phantom":
        return [
            simulated_observers_note(),
            "Reference: the synthetic cohort's consensus labels (labels.parquet: lung area fractions of the "
            f"phantom's disease masks, rounded half up to 5); {predicted}.",
        ]
    return [
        "Observer re-reads from observers.parquet.",
        f"Reference: expert consensus (labels.parquet); {predicted}.",
    ]


def table3_observers(
    observers: pd.DataFrame,
    labels: pd.DataFrame,
    scores_test: pd.DataFrame,
    final_ablation: str,
    cohort_source: str = "folder",
) -> tuple[pd.DataFrame, list[str]]:
    """Each observer × read, and the final model, against the consensus on the observer patients.

    Returns the table (``method, kind, pattern, n_patients, n, mae, sd, kappa, icc``) and notes
    for the Markdown file: where the observer scores come from (simulated for the ``phantom``
    cohort source, :func:`observer_notes`), what a row is, and why a row is missing.
    """
    require_columns(observers, OBSERVER_COLUMNS, "observers.parquet")
    require_columns(labels, ("patient",) + SCORE_COLUMNS, "labels.parquet")
    source_notes = observer_notes(cohort_source)
    notes: list[str] = []
    consensus = labels_long(labels[["patient", *SCORE_COLUMNS]]).rename(columns={"value": "ref"})
    columns = ["method", "kind", "pattern", "n_patients", "n", "mae", "sd", "kappa", "icc"]
    if observers.empty:
        notes.append("observers.parquet has no rows: no observer re-reads, so Table 3 is empty.")
        return pd.DataFrame(columns=columns), notes
    notes += [source_notes[0], SCORE_UNIT_NOTE, MODEL_SCORE_NOTE]
    obs = labels_long(observers[list(OBSERVER_COLUMNS)]).rename(columns={"value": "pred"})
    obs = obs.merge(consensus, on=["patient", "level", "pattern"], how="left")
    unlabelled = sorted(set(obs.loc[obs["ref"].isna(), "patient"]))
    if unlabelled:
        notes.append(
            f"{len(unlabelled)} observer patient(s) have no consensus label and are left out: {unlabelled[:5]}"
        )
    rows: list[dict[str, object]] = []
    for (observer, read), part in obs.groupby(["observer", "read"], sort=True):
        keys = {"method": f"{observer} T{int(read)}", "kind": "observer"}
        keys["n_patients"] = int(_complete(part, "ref", "pred")["patient"].nunique())
        rows += _pattern_rows(part, keys)
    patients = set(obs["patient"])
    model = final_predictions(scores_test, final_ablation)
    model = scores_long(model[model["patient"].astype(str).isin(patients)])
    model = model.drop(columns="ref").merge(consensus, on=["patient", "level", "pattern"], how="left")
    n_model = int(_complete(model, "ref", "pred")["patient"].nunique())
    if n_model < len(patients):
        notes.append(
            f"the model has test predictions for {n_model} of the {len(patients)} observer patients."
        )
    keys = {"method": f"model ({final_ablation})", "kind": "model", "n_patients": n_model}
    rows += _pattern_rows(model, keys)
    notes.append(source_notes[1])
    return pd.DataFrame(rows, columns=columns), notes


# ---------------------------------------------------------------- staging, distributions


def stages(
    scores_test: pd.DataFrame, labels: pd.DataFrame, folds: pd.DataFrame, final_ablation: str
) -> pd.DataFrame:
    """Per test patient: global extent and Goh stage (full and 20 % variant), reference and predicted.

    FVC (``fvc_percent`` in labels, optional) resolves the indeterminate band for both.
    """
    require_columns(folds, FOLD_COLUMNS, "folds.parquet")
    require_columns(labels, ["patient"] + [score_column(k, "TOT") for k in LEVELS], "labels.parquet")
    test_patients = pd.Index(
        sorted(folds.loc[folds["set"] == "test", "patient"].astype(str).unique()), name="patient"
    )
    lab = labels.assign(patient=labels["patient"].astype(str)).drop_duplicates("patient").set_index("patient")
    fvc = (
        lab["fvc_percent"].astype(float)
        if "fvc_percent" in lab.columns
        else pd.Series(np.nan, index=lab.index)
    )
    fvc = fvc.reindex(test_patients)
    ref = staging.stage_frame(lab.reindex(test_patients), fvc)
    model = final_predictions(scores_test, final_ablation).assign(
        patient=lambda d: d["patient"].astype(str), level=lambda d: d["level"].astype(int)
    )
    wide = model.pivot_table(index="patient", columns="level", values="pred_TOT", aggfunc="first")
    wide = wide.reindex(index=test_patients, columns=list(LEVELS))
    wide.columns = [score_column(k, "TOT") for k in LEVELS]
    pred = staging.stage_frame(wide, fvc)
    out = pd.DataFrame(
        {
            "patient": test_patients,
            "fvc_percent": fvc.to_numpy(),
            "ref_extent": ref["extent"].to_numpy(),
            "pred_extent": pred["extent"].to_numpy(),
            "ref_stage": ref["stage"].to_numpy(),
            "pred_stage": pred["stage"].to_numpy(),
            "ref_stage_simple": ref["stage_simple"].to_numpy(),
            "pred_stage_simple": pred["stage_simple"].to_numpy(),
        }
    )
    return out.reset_index(drop=True)


def stage_notes(table: pd.DataFrame) -> list[str]:
    """One-line summaries of stage agreement for the Markdown file."""
    notes = []
    for col, name in (("stage", "Goh stage (10/30 % with FVC 70 %)"), ("stage_simple", "20 % cut-off")):
        known = table[(table[f"ref_{col}"] != staging.UNKNOWN) & (table[f"pred_{col}"] != staging.UNKNOWN)]
        agree = int((known[f"ref_{col}"] == known[f"pred_{col}"]).sum())
        notes.append(f"{name}: predicted equals reference for {agree} of {len(known)} patients.")
    notes.append("Extent = mean TOT of the five levels; the predicted stage uses the patient's measured FVC.")
    return notes


def label_distribution(labels: pd.DataFrame) -> pd.DataFrame:
    """Count of each score value 0, 5, ..., 100 per pattern over all patients and levels (Figure 2)."""
    require_columns(labels, ("patient",) + SCORE_COLUMNS, "labels.parquet")
    long = labels_long(labels[["patient", *SCORE_COLUMNS]])
    out = pd.DataFrame({"score": list(metrics.SCORE_LABELS)})
    for p in PATTERNS:
        values = np.rint(long.loc[long["pattern"] == p, "value"].dropna().to_numpy(float)).astype(int)
        counts = pd.Series(values).value_counts()
        out[p] = [int(counts.get(s, 0)) for s in metrics.SCORE_LABELS]
    return out


def scatter_counts(scores: pd.DataFrame, final_ablation: str) -> pd.DataFrame:
    """Number of (reference, predicted) pairs at each position per pattern, final model on the test set."""
    long = scores_long(final_predictions(scores, final_ablation))
    long = _complete(long, "ref", "pred")
    long = long.assign(ref=np.rint(long["ref"]).astype(int), pred=np.rint(long["pred"]).astype(int))
    counts = long.groupby(["pattern", "ref", "pred"]).size().rename("count").reset_index()
    counts["pattern"] = pd.Categorical(counts["pattern"], categories=list(PATTERNS), ordered=True)
    counts = counts.sort_values(["pattern", "ref", "pred"]).reset_index(drop=True)
    counts["pattern"] = counts["pattern"].astype(str)
    return counts


# ---------------------------------------------------------------- Markdown views


def _mae_sd_text(mae: float, sd: float) -> str:
    """'4.21 (3.58)', or 'n/a'."""
    return "n/a" if pd.isna(mae) else f"{mae:.2f} ({sd:.2f})" if not pd.isna(sd) else f"{mae:.2f}"


def _num(x: float) -> str:
    """A number with 2 decimals, or 'n/a'."""
    return "n/a" if pd.isna(x) else f"{x:.2f}"


def table1_display(table: pd.DataFrame) -> pd.DataFrame:
    """Table 1 as text: level, name, MAE (SD), ICC and baseline MAE in grid slices, MAE (SD) in mm, n.

    The mm column is left out when the level predictions had no ``*_z_mm`` columns.
    """
    out = pd.DataFrame(
        {
            "level": table["level"],
            "name": table["name"],
            "MAE (SD) [grid slices]": [
                _mae_sd_text(m, s) for m, s in zip(table["mae"], table["sd"], strict=True)
            ],
            "ICC [grid slices]": table["icc"].map(_num),
            "baseline MAE [grid slices]": table["baseline_mae"].map(_num),
            "MAE (SD) [mm]": [
                _mae_sd_text(m, s) for m, s in zip(table["mae_mm"], table["sd_mm"], strict=True)
            ],
            "n": table["n"],
        }
    )
    return out if table["mae_mm"].notna().any() else out.drop(columns="MAE (SD) [mm]")


def wide_display(table: pd.DataFrame, index: Sequence[str], marker: bool = False) -> pd.DataFrame:
    """Rows ``index``, columns ``<pattern> MAE (SD) / kappa / ICC`` as in the paper's Tables 2 and 3."""
    rows = []
    for key, part in table.groupby(list(index), sort=False):
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(index, key, strict=True))
        for p in PATTERNS:
            sel = part[part["pattern"] == p]
            if sel.empty:
                row.update({f"{p} MAE (SD) [%]": "n/a", f"{p} kappa": "n/a", f"{p} ICC": "n/a"})
                continue
            r = sel.iloc[0]
            text = _mae_sd_text(r["mae"], r["sd"])
            if marker and "better" in r and not pd.isna(r["better"]):
                text += " †" if bool(r["better"]) else " ‡"
            row.update(
                {f"{p} MAE (SD) [%]": text, f"{p} kappa": _num(r["kappa"]), f"{p} ICC": _num(r["icc"])}
            )
        row["n"] = int(part["n"].max()) if len(part) else 0
        rows.append(row)
    return pd.DataFrame(rows)


SCORE_METRICS_NOTE = (
    "MAE and SD of absolute errors on scores rounded to 5 %; kappa linearly weighted over 0, 5, …, 100; "
    "ICC(2,1) absolute agreement."
)
TABLE2_NOTES = [
    SCORE_UNIT_NOTE,
    MODEL_SCORE_NOTE,
    SCORE_METRICS_NOTE,
    "† significantly better, ‡ significantly worse than the row above (Wilcoxon signed-rank on absolute "
    "errors paired by patient and level, p < 0.05); p-values in table2_scores_cv.parquet.",
]
TEST_SET_NOTES = [
    "Scores at the levels given by 'source' (predicted: the level network's output).",
    SCORE_UNIT_NOTE,
    MODEL_SCORE_NOTE,
    SCORE_METRICS_NOTE,
]


# ---------------------------------------------------------------- what the score nets were taught

LABEL_DRAW_COLUMNS: tuple[str, ...] = ("ablation", "score", "real", "drawn", "synthetic", "seen")


def label_draws(draws: pd.DataFrame) -> pd.DataFrame:
    """Mean over folds, per ablation and TOT value, of the shares in the runs' ``draws.parquet`` tables.

    ``draws`` stacks those tables with an ``ablation`` column; shares are of all draws (``real``:
    of the training slices), so each of real and seen sums to 1 per ablation.
    """
    require_columns(draws, ("fold", *LABEL_DRAW_COLUMNS), "draws tables")
    shares = list(LABEL_DRAW_COLUMNS[2:])
    table = draws.groupby(["ablation", "score"], sort=False)[shares].mean()
    return table.reset_index()[list(LABEL_DRAW_COLUMNS)]
