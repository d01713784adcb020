"""The paper's tables from small synthetic prediction tables, and the ``gohscore tables`` command."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gohscore import tables as T
from gohscore.cli import main as cli_main
from gohscore.commands import tables as tables_cmd
from gohscore.errors import GohscoreError
from gohscore.goh import PATTERNS, round_to_5
from gohscore.markdown import markdown_document, markdown_table
from gohscore.reports import TABLE_FORMATS, TABLE_NAMES, TABLE_PAGE_FORMAT

ABLATIONS = ["none", "balanced", "balanced_synthesis"]


def make_cohort(n_cv: int = 12, n_test: int = 6, n_obs: int = 4, seed: int = 3) -> dict[str, pd.DataFrame]:
    """A tiny cohort with predictions of the documented formats (seeded)."""
    rng = np.random.default_rng([seed, 0])
    cv = [f"P{i:03d}" for i in range(n_cv)]
    test = [f"P{i:03d}" for i in range(n_cv, n_cv + n_test)]
    folds = pd.DataFrame(
        {
            "patient": cv + test,
            "set": ["cv"] * n_cv + ["test"] * n_test,
            "fold": [i % 4 for i in range(n_cv)] + [-1] * n_test,
        }
    )
    label_rows = []
    for p in cv + test:
        row: dict[str, object] = {"patient": p}
        for k in range(1, 6):
            row[f"L{k}_z_mm"] = 100.0 - 40 * k
            gg = float(round_to_5(rng.gamma(0.6, 15)))
            ret = float(round_to_5(rng.gamma(0.5, 12)))
            row[f"L{k}_GG"], row[f"L{k}_RET"] = gg, ret
            row[f"L{k}_TOT"] = float(min(100.0, max(gg, ret) + round_to_5(0.5 * min(gg, ret))))
        row["fvc_percent"] = float(rng.uniform(50, 110))
        label_rows.append(row)
    labels = pd.DataFrame(label_rows)
    labels.loc[0, "L5_TOT"] = 100.0  # a 100 somewhere

    def level_rows(patients: list[str], set_name: str) -> pd.DataFrame:
        rows = []
        for p in patients:
            fold = int(folds.set_index("patient").loc[p, "fold"])
            for k in range(1, 6):
                ref = 200.0 - 25 * k + rng.normal(0, 6)
                pred = ref + rng.normal(0.3, 3)
                rows.append(
                    {
                        "patient": p,
                        "set": set_name,
                        "fold": fold,
                        "level": k,
                        "pred_index": pred,
                        "ref_index": ref,
                        "pred_z_mm": pred * 1.2,
                        "ref_z_mm": ref * 1.2,
                        "pred_slice": pred * 1.5,
                        "ref_slice": ref * 1.5,
                    }
                )
        return pd.DataFrame(rows)

    def score_rows(patients: list[str], set_name: str, source: str) -> pd.DataFrame:
        rows = []
        lab = labels.set_index("patient")
        for noise, ablation in zip([12.0, 8.0, 5.0], ABLATIONS, strict=True):
            for p in patients:
                fold = int(folds.set_index("patient").loc[p, "fold"])
                for k in range(1, 6):
                    row = {
                        "patient": p,
                        "set": set_name,
                        "fold": fold,
                        "ablation": ablation,
                        "level": k,
                        "source": source,
                    }
                    for pat in PATTERNS:
                        ref = float(lab.loc[p, f"L{k}_{pat}"])
                        row[f"ref_{pat}"] = ref
                        row[f"pred_{pat}"] = float(round_to_5(ref + rng.normal(0, noise)))
                    rows.append(row)
        return pd.DataFrame(rows)

    obs_rows = []
    lab = labels.set_index("patient")
    for p in test[:n_obs]:
        for observer in ["Obs1", "Obs2"]:
            for read in [1, 2]:
                row = {"patient": p, "observer": observer, "read": read}
                for k in range(1, 6):
                    for pat in PATTERNS:
                        row[f"L{k}_{pat}"] = float(round_to_5(lab.loc[p, f"L{k}_{pat}"] + rng.normal(0, 6)))
                obs_rows.append(row)
    return {
        "folds": folds,
        "labels": labels,
        "observers": pd.DataFrame(obs_rows),
        "levels_cv": level_rows(cv, "cv"),
        "levels_test": level_rows(test, "test"),
        "scores_cv": score_rows(cv, "cv", "reference"),
        "scores_test": score_rows(test, "test", "predicted"),
    }


@pytest.fixture(scope="module")
def cohort() -> dict[str, pd.DataFrame]:
    """One synthetic cohort for the module."""
    return make_cohort()


def write_inputs(cohort: dict[str, pd.DataFrame], root: Path) -> dict[str, list[Path] | Path]:
    """The cohort as parquet files: level predictions per fold, score predictions per ablation."""
    root.mkdir(parents=True, exist_ok=True)
    paths: dict[str, list[Path] | Path] = {"levels_cv": [], "scores_cv": [], "scores_test": []}
    for fold, part in cohort["levels_cv"].groupby("fold"):
        path = root / f"levels_fold{fold}.parquet"
        part.to_parquet(path)
        paths["levels_cv"].append(path)
    for ablation in ABLATIONS:
        for name in ("scores_cv", "scores_test"):
            path = root / f"{name}_{ablation}.parquet"
            cohort[name][cohort[name]["ablation"] == ablation].to_parquet(path)
            paths[name].append(path)
    for name in ("levels_test", "labels", "observers", "folds"):
        paths[name] = root / f"{name}.parquet"
        cohort[name].to_parquet(paths[name])
    return paths


def tables_argv(paths: dict[str, list[Path] | Path], out: Path) -> list[str]:
    """The command line for ``gohscore tables``."""
    return [
        "--levels-cv",
        *map(str, paths["levels_cv"]),
        "--levels-test",
        str(paths["levels_test"]),
        "--scores-cv",
        *map(str, paths["scores_cv"]),
        "--scores-test",
        *map(str, paths["scores_test"]),
        "--labels",
        str(paths["labels"]),
        "--observers",
        str(paths["observers"]),
        "--folds",
        str(paths["folds"]),
        "--final-ablation",
        "balanced_synthesis",
        "--out-dir",
        str(out),
    ]


def test_table1_levels(cohort: dict[str, pd.DataFrame]) -> None:
    t1 = T.table1_levels(cohort["levels_cv"])
    assert t1["level"].tolist() == ["L1", "L2", "L3", "L4", "L5", "all"]
    assert list(t1.columns) == ["level", "name", "n", "mae", "sd", "icc", "baseline_mae", "mae_mm", "sd_mm"]
    assert np.isfinite(t1[["mae", "sd", "icc", "baseline_mae", "mae_mm", "sd_mm"]].to_numpy(float)).all()
    assert t1["n"].tolist() == [12] * 5 + [60]
    display = T.table1_display(t1)
    assert display["MAE (SD) [grid slices]"].str.match(r"^\d+\.\d\d \(\d+\.\d\d\)$").all()
    assert display["MAE (SD) [mm]"].str.match(r"^\d+\.\d\d \(\d+\.\d\d\)$").all()
    # the cohort's mm are 1.2 x the grid index: the mm errors are the grid errors x 1.2
    assert t1["mae_mm"].to_numpy() == pytest.approx(1.2 * t1["mae"].to_numpy())
    without_mm = T.table1_levels(cohort["levels_cv"].drop(columns=["pred_z_mm", "ref_z_mm"]))
    assert without_mm["mae_mm"].isna().all() and "MAE (SD) [mm]" not in T.table1_display(without_mm)


def icc_a1_by_hand(a: np.ndarray, b: np.ndarray) -> float:
    """ICC(A,1) of McGraw and Wong (= Shrout and Fleiss ICC(2,1)) from the two-way ANOVA mean squares."""
    x = np.column_stack([a, b]).astype(float)
    n, k = x.shape
    grand = x.mean()
    ms_rows = k * ((x.mean(axis=1) - grand) ** 2).sum() / (n - 1)
    ms_cols = n * ((x.mean(axis=0) - grand) ** 2).sum() / (k - 1)
    resid = x - x.mean(axis=1, keepdims=True) - x.mean(axis=0, keepdims=True) + grand
    ms_err = (resid**2).sum() / ((n - 1) * (k - 1))
    return (ms_rows - ms_err) / (ms_rows + (k - 1) * ms_err + k * (ms_cols - ms_err) / n)


def test_table1_icc_is_in_the_grid_frame_counted_from_the_bottom() -> None:
    """The ICC is that of pred_index/ref_index (grid, 0 = bottom), not of the original slices or world mm."""
    ref = np.array([150.0, 162.0, 171.0, 158.0, 166.0, 149.0])
    pred = np.array([152.0, 160.0, 175.0, 158.0, 163.0, 151.0])
    # each patient has its own original-scan spacing and offsets, so the three frames give different ICCs
    slice_mm = np.array([1.0, 2.5, 0.625, 1.25, 2.0, 0.5])
    slice_off = np.array([-30.0, 10.0, 80.0, -5.0, 0.0, 120.0])
    z_off = np.array([-400.0, -250.0, -310.0, -280.0, -360.0, -200.0])
    grid_mm = 1.2
    levels = pd.DataFrame(
        {
            "patient": [f"P{i}" for i in range(6)],
            "set": "cv",
            "fold": [0, 0, 1, 1, 2, 2],
            "level": 2,
            "pred_index": pred,
            "ref_index": ref,
            "pred_z_mm": z_off + grid_mm * pred,
            "ref_z_mm": z_off + grid_mm * ref,
            "pred_slice": (grid_mm * pred + slice_off) / slice_mm,
            "ref_slice": (grid_mm * ref + slice_off) / slice_mm,
        }
    )
    row = T.table1_levels(levels).set_index("level").loc["L2"]
    expected = icc_a1_by_hand(ref, pred)
    assert row["icc"] == pytest.approx(expected, abs=1e-9)
    assert row["icc"] != pytest.approx(icc_a1_by_hand(levels["ref_slice"], levels["pred_slice"]), abs=1e-3)
    assert row["icc"] != pytest.approx(icc_a1_by_hand(levels["ref_z_mm"], levels["pred_z_mm"]), abs=1e-3)
    assert row["mae"] == pytest.approx(np.abs(pred - ref).mean())
    assert row["mae_mm"] == pytest.approx(grid_mm * np.abs(pred - ref).mean())
    # the notes and headers name each figure's frame
    frame = T.TABLE1_NOTES[0]
    assert "grid slices" in frame and "0 = bottom" in frame and "pred_index" in frame and "pred_z_mm" in frame
    assert {
        "MAE (SD) [grid slices]",
        "ICC [grid slices]",
        "baseline MAE [grid slices]",
        "MAE (SD) [mm]",
    } <= set(T.table1_display(T.table1_levels(levels)).columns)


def test_mean_position_baseline_leaves_the_fold_out() -> None:
    """Fold 0's patients are compared with the mean of fold 1's references, and vice versa; test with CV's mean."""
    cv = pd.DataFrame(
        {
            "patient": ["a", "b", "c", "d"],
            "set": "cv",
            "fold": [0, 0, 1, 1],
            "level": 1,
            "pred_index": [10.0, 10.0, 10.0, 10.0],
            "ref_index": [10.0, 14.0, 20.0, 30.0],
        }
    )
    # fold 0 vs mean(20, 30) = 25: errors 15, 11; fold 1 vs mean(10, 14) = 12: errors 8, 18
    assert T.mean_position_errors(cv).tolist() == [15.0, 11.0, 8.0, 18.0]
    test = cv.assign(set="test", fold=-1, ref_index=[18.5, 20.0, 17.0, 18.5])
    assert T.mean_position_errors(test, training=cv).tolist() == [0.0, 1.5, 1.5, 0.0]
    t1 = T.table1_levels(cv)
    assert t1.loc[t1["level"] == "L1", "baseline_mae"].item() == 13.0
    assert t1.loc[t1["level"] == "L1", "mae"].item() == 8.5  # (0 + 4 + 10 + 20) / 4


def test_levels_agreement(cohort: dict[str, pd.DataFrame]) -> None:
    agreement = T.levels_agreement(cohort["levels_cv"])
    row = agreement[agreement["level"] == "all"].iloc[0]
    err = cohort["levels_cv"]["pred_index"] - cohort["levels_cv"]["ref_index"]
    assert row["mean_error"] == pytest.approx(err.mean())
    assert row["loa_high"] - row["loa_low"] == pytest.approx(2 * 1.96 * err.std(ddof=1))
    assert 0.8 < row["slope"] < 1.2


def test_table2_scores_cv(cohort: dict[str, pd.DataFrame]) -> None:
    t2 = T.table2_scores_cv(cohort["scores_cv"])
    assert t2["ablation"].tolist() == [a for a in ABLATIONS for _ in PATTERNS]
    assert t2["pattern"].tolist() == list(PATTERNS) * 3
    assert np.isfinite(t2[["mae", "sd", "kappa", "icc"]].to_numpy(float)).all()
    assert t2["p_vs_previous"].iloc[:3].isna().all()
    assert np.isfinite(t2["p_vs_previous"].iloc[3:].to_numpy(float)).all()
    assert (t2["n"] == 60).all()
    # explicit order reverses the rows
    assert (
        T.table2_scores_cv(cohort["scores_cv"], ABLATIONS[::-1])["ablation"].iloc[0] == "balanced_synthesis"
    )
    wide = T.wide_display(t2, ["ablation", "source"], marker=True)
    assert list(wide["ablation"]) == ABLATIONS
    assert "TOT MAE (SD) [%]" in wide.columns


def test_table2_rejects_duplicate_rows(cohort: dict[str, pd.DataFrame]) -> None:
    doubled = pd.concat([cohort["scores_cv"], cohort["scores_cv"].head(3)])
    with pytest.raises(GohscoreError, match="duplicate"):
        T.table2_scores_cv(doubled)


def test_table3_observers(cohort: dict[str, pd.DataFrame]) -> None:
    t3, notes = T.table3_observers(
        cohort["observers"], cohort["labels"], cohort["scores_test"], "balanced_synthesis"
    )
    assert t3["method"].unique().tolist() == [
        "Obs1 T1",
        "Obs1 T2",
        "Obs2 T1",
        "Obs2 T2",
        "model (balanced_synthesis)",
    ]
    assert (t3["n_patients"] == 4).all() and (t3["n"] == 20).all()
    assert np.isfinite(t3[["mae", "kappa", "icc"]].to_numpy(float)).all()
    # default: a real cohort, whose observers are people
    assert "Observer re-reads from observers.parquet." in notes
    assert not any("simulated" in n for n in notes)
    assert T.SCORE_UNIT_NOTE in notes and any(n.startswith("Reference: expert consensus") for n in notes)


def test_table3_says_the_phantom_observers_are_simulated(cohort: dict[str, pd.DataFrame]) -> None:
    from gohscore.phantom.observers import READERS

    args = (cohort["observers"], cohort["labels"], cohort["scores_test"], "balanced_synthesis")
    t3, notes = T.table3_observers(*args, cohort_source="phantom")
    assert t3.equals(T.table3_observers(*args)[0])  # only the notes differ
    simulated = [n for n in notes if "simulated" in n]
    assert len(simulated) == 1 and "Observer re-reads from observers.parquet." not in notes
    for (observer, read), (bias, sd) in READERS.items():
        assert f"{observer} T{read}: bias {bias:+g} %, SD {sd:g} %" in simulated[0]
    assert "Gaussian noise" in simulated[0] and "rounded half up to 5" in simulated[0]
    assert not any("expert" in n for n in notes)
    with pytest.raises(GohscoreError, match="'dicom' is not one of phantom, folder"):
        T.table3_observers(*args, cohort_source="dicom")


def test_score_tables_say_per_level() -> None:
    """Table 2 and the test-set table are per level (mean of the level's slices, rounded), not per image."""
    for notes in (T.TABLE2_NOTES, T.TEST_SET_NOTES):
        assert T.SCORE_UNIT_NOTE in notes and T.MODEL_SCORE_NOTE in notes
    assert T.SCORE_UNIT_NOTE.startswith("Per level, not per image")
    assert "averaged over the level's slices_per_level adjacent slices" in T.MODEL_SCORE_NOTE
    assert "rounded half up to 5" in T.MODEL_SCORE_NOTE


def test_table3_without_observers_says_so(cohort: dict[str, pd.DataFrame]) -> None:
    empty = cohort["observers"].iloc[0:0]
    t3, notes = T.table3_observers(empty, cohort["labels"], cohort["scores_test"], "balanced_synthesis")
    assert t3.empty and "method" in t3.columns
    assert "no observer" in notes[0]


def test_test_set_stages_distribution_counts(cohort: dict[str, pd.DataFrame]) -> None:
    ts = T.test_set(cohort["scores_test"])
    assert len(ts) == 9 and (ts["source"] == "predicted").all()
    st = T.stages(cohort["scores_test"], cohort["labels"], cohort["folds"], "balanced_synthesis")
    assert len(st) == 6 and st["patient"].is_unique
    assert set(st["ref_stage"]) <= {"limited", "extensive", "indeterminate"}
    assert np.isfinite(st[["ref_extent", "pred_extent"]].to_numpy(float)).all()
    assert len(T.stage_notes(st)) == 3
    dist = T.label_distribution(cohort["labels"])
    assert dist["score"].tolist() == list(range(0, 101, 5))
    assert (dist[list(PATTERNS)].sum() == 18 * 5).all()
    assert dist.loc[dist["score"] == 100, "TOT"].item() >= 1
    counts = T.scatter_counts(cohort["scores_test"], "balanced_synthesis")
    assert counts.groupby("pattern")["count"].sum().to_dict() == {p: 30 for p in PATTERNS}


def test_unknown_final_ablation_and_missing_column(cohort: dict[str, pd.DataFrame]) -> None:
    with pytest.raises(GohscoreError, match="'nope'.*ablations found: none, balanced"):
        T.final_predictions(cohort["scores_test"], "nope")
    with pytest.raises(GohscoreError, match="levels.parquet: missing column 'ref_index'"):
        T.require_columns(
            cohort["levels_cv"].drop(columns="ref_index"), T.LEVEL_PREDICTION_COLUMNS, "levels.parquet"
        )


def test_markdown_is_well_formed() -> None:
    df = pd.DataFrame({"name": ["a|b", None], "x": [1.23456, float("nan")], "n": [3, 4]})
    text = markdown_table(df)
    lines = text.splitlines()
    assert lines[0] == "| name | x | n |"
    assert lines[1] == "|:--|--:|--:|"
    assert lines[2] == "| a\\|b | 1.23 | 3 |"
    assert lines[3] == "| n/a | n/a | 4 |"
    doc = markdown_document("T", df.iloc[0:0], ["note"])
    assert doc.startswith("# T\n") and "_No rows._" in doc and doc.endswith("- note\n")


def _pipes(line: str) -> int:
    """Pipes that separate cells (escaped ones excluded)."""
    return line.replace("\\|", "").count("|")


def test_tables_command_writes_every_table(cohort: dict[str, pd.DataFrame], tmp_path: Path) -> None:
    paths = write_inputs(cohort, tmp_path / "in")
    out = tmp_path / "tables"
    assert tables_cmd.main(tables_argv(paths, out)) == 0
    names = [
        "table1_levels",
        "levels_agreement",
        "table2_scores_cv",
        "table3_observers",
        "test_set",
        "stages",
        "label_distribution",
        "table1_levels_test",
        "scatter_counts",
    ]
    # exactly the registry's tables (the workflow's targets), less label_draws, whose draws were not given
    written = {p.name for p in out.iterdir()}
    formats = (*TABLE_FORMATS, TABLE_PAGE_FORMAT)
    assert written == {f"{n}.{ext}" for n in TABLE_NAMES if n != "label_draws" for ext in formats}
    assert set(names) == set(TABLE_NAMES) - {"label_draws"}
    for name in names:
        assert not pd.read_parquet(out / f"{name}.parquet").empty
        lines = (out / f"{name}.md").read_text(encoding="utf-8").splitlines()
        rows = [line for line in lines if line.startswith("|")]
        assert rows and len({_pipes(line) for line in rows}) == 1, name
    assert not list(out.glob(".*tmp*"))
    text = {name: (out / f"{name}.md").read_text(encoding="utf-8") for name in names}
    assert "- Observer re-reads from observers.parquet." in text["table3_observers"]
    assert "simulated" not in text["table3_observers"]
    for name in ("table2_scores_cv", "test_set", "table3_observers"):
        assert f"- {T.SCORE_UNIT_NOTE}" in text[name], name
    for name in ("table1_levels", "table1_levels_test"):
        assert f"- {T.TABLE1_NOTES[0]}" in text[name] and "| ICC [grid slices] |" in text[name], name
    assert "0 = bottom" in text["levels_agreement"]


def test_tables_command_phantom_cohort_source(cohort: dict[str, pd.DataFrame], tmp_path: Path) -> None:
    paths = write_inputs(cohort, tmp_path / "in")
    out = tmp_path / "tables"
    assert tables_cmd.main([*tables_argv(paths, out), "--cohort-source", "phantom"]) == 0
    text = (out / "table3_observers.md").read_text(encoding="utf-8")
    assert f"- {T.simulated_observers_note()}" in text
    assert "Observer re-reads from observers.parquet" not in text
    with pytest.raises(SystemExit):
        tables_cmd.build_parser().parse_args([*tables_argv(paths, out), "--cohort-source", "dicom"])


def test_tables_command_errors_are_one_line(
    cohort: dict[str, pd.DataFrame], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = write_inputs(cohort, tmp_path / "in")
    bad = cohort["levels_cv"].drop(columns="pred_index")
    bad.to_parquet(paths["levels_cv"][0])
    assert cli_main(["tables", *tables_argv(paths, tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "levels_fold0.parquet" in err and "'pred_index'" in err
    # a CV prediction of a test patient is a leak
    cohort["levels_cv"].assign(patient="P015").to_parquet(paths["levels_cv"][0])
    with pytest.raises(GohscoreError, match="'test' set"):
        tables_cmd.main(tables_argv(paths, tmp_path / "out"))
