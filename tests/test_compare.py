"""Follow-up comparison: changes, minimum detectable change and verdicts on hand-worked values."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
import SimpleITK as sitk

from gohscore.cli import main as cli_main
from gohscore.compare import compare_results, minimum_detectable_change
from gohscore.errors import GohscoreError
from tests.conftest import chest_image

# per level: (TOT, GG, RET) and their SDs; worked out by hand below
BASE = {1: ((10, 5, 10), (2, 0, 4)), 2: ((30, 20, 10), (1, 0, 0))}
FOLLOW = {1: ((20, 10, 5), (3, 0, 3)), 2: ((20, 15, 10), (1, 0, 0)), 3: ((15, 15, 0), (0, 0, 0))}


def write_result(folder: Path, scores: dict, extent_sd: float, stage: str, scan: Path | None = None) -> Path:
    """A predict result folder by hand: levels.csv with *_sd columns and summary.json."""
    folder.mkdir(parents=True)
    rows = []
    for level in range(1, 6):
        (tot, gg, ret), (s_tot, s_gg, s_ret) = scores.get(level, ((0, 0, 0), (0, 0, 0)))
        rows.append(
            {
                "patient": folder.name,
                "level": level,
                "z_mm": -60.0 - 30 * level,
                "z_mm_sd": 1.0,
                "original_slice": 32 - 4 * level,
                "TOT": tot,
                "GG": gg,
                "RET": ret,
                "TOT_sd": s_tot,
                "GG_sd": s_gg,
                "RET_sd": s_ret,
            }
        )
    table = pd.DataFrame(rows)
    table.to_csv(folder / "levels.csv", index=False)
    summary = {
        "patient": folder.name,
        "scan": str(scan) if scan else None,
        "global_extent_percent": table["TOT"].mean(),
        "global_extent_sd": extent_sd,
        "goh_stage": stage,
    }
    (folder / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    return folder


@pytest.fixture
def pair(tmp_path) -> tuple[Path, Path]:
    scan = tmp_path / "S1.nii.gz"
    sitk.WriteImage(chest_image(), str(scan))
    # extents: (10 + 30) / 5 = 8 (limited), (20 + 20 + 15) / 5 = 11 (indeterminate without FVC)
    return (
        write_result(tmp_path / "base", BASE, 1.0, "limited", scan),
        write_result(tmp_path / "follow", FOLLOW, 1.0, "indeterminate", scan),
    )


def test_changes_mdc_and_verdicts(pair) -> None:
    table, summary = compare_results(*pair)
    t = table.set_index(["level", "pattern"])
    # L1 TOT: +10 against max(5, 1.96 * sqrt(2^2 + 3^2)) = 7.067
    assert t.loc[(1, "TOT"), "change"] == 10 and t.loc[(1, "TOT"), "mdc"] == pytest.approx(7.0668, abs=1e-4)
    assert t.loc[(1, "TOT"), "direction"] == "increase"
    # L1 GG: +5 with no spread reaches the 5 % floor exactly
    assert t.loc[(1, "GG"), "mdc"] == 5 and t.loc[(1, "GG"), "direction"] == "increase"
    # L1 RET: -5 against 1.96 * sqrt(4^2 + 3^2) = 9.8
    assert (
        t.loc[(1, "RET"), "mdc"] == pytest.approx(9.8)
        and t.loc[(1, "RET"), "direction"] == "no detectable change"
    )
    # L2 TOT: -10 against the floor (1.96 * sqrt(2) = 2.77 < 5)
    assert t.loc[(2, "TOT"), "direction"] == "decrease" and t.loc[(2, "TOT"), "mdc"] == 5
    assert t.loc[(3, "GG"), "change"] == 15 and t.loc[(5, "RET"), "direction"] == "no detectable change"
    assert len(table) == 15
    # extent 8 -> 11: +3 against max(1, 1.96 * sqrt(2)) = 2.772
    assert summary["global_extent_change"] == pytest.approx(3.0)
    assert summary["global_extent_mdc"] == pytest.approx(1.96 * math.sqrt(2), abs=1e-6)
    assert summary["global_extent_direction"] == "increase"
    assert (summary["stage_baseline"], summary["stage_followup"], summary["stage_changed"]) == (
        "limited",
        "indeterminate",
        True,
    )


def test_mdc_floor() -> None:
    assert minimum_detectable_change([0.0], [0.0], 1.0).tolist() == [1.0]
    assert minimum_detectable_change([0.3], [0.4], 1.0).tolist() == [1.0]  # 1.96 * 0.5 = 0.98 < 1


def test_command_writes_table_summary_and_sheet(pair, tmp_path) -> None:
    out = tmp_path / "cmp"
    assert (
        cli_main(["compare", "--baseline", str(pair[0]), "--followup", str(pair[1]), "--out-dir", str(out)])
        == 0
    )
    table = pd.read_csv(out / "comparison.csv")
    assert (
        list(table.columns[:5]) == ["level", "pattern", "baseline", "followup", "change"] and len(table) == 15
    )
    summary = json.loads((out / "comparison.json").read_text(encoding="utf-8"))
    assert summary["stage_changed"] is True and len(summary["levels"]) == 15
    assert (out / "comparison_qc.png").stat().st_size > 10_000


def test_results_without_spread_or_scans_without_models_are_refused(pair, tmp_path) -> None:
    old = pd.read_csv(pair[0] / "levels.csv").drop(columns=["TOT_sd"])
    old.to_csv(pair[0] / "levels.csv", index=False)
    with pytest.raises(GohscoreError, match=r"lacks columns \['TOT_sd'\]"):
        compare_results(*pair)
    code = cli_main(
        [
            "compare",
            "--baseline",
            str(tmp_path / "S1.nii.gz"),
            "--followup",
            str(pair[1]),
            "--out-dir",
            str(tmp_path / "x"),
        ]
    )
    assert code == 2 and not (tmp_path / "x" / "comparison.csv").exists()


def test_scans_are_scored_on_the_way(tmp_path) -> None:
    """Two scans and --models: predict runs for each, and its spread columns feed the comparison."""
    from tests.tiny_models import write_tiny_results

    results = write_tiny_results(tmp_path / "results")
    for name, seed in (("A", 0), ("B", 1)):
        sitk.WriteImage(chest_image(seed=seed), str(tmp_path / f"{name}.nii.gz"))
    out = tmp_path / "cmp"
    argv = ["compare", "--baseline", str(tmp_path / "A.nii.gz"), "--followup", str(tmp_path / "B.nii.gz")]
    assert cli_main([*argv, "--models", str(results), "--out-dir", str(out), "--device", "cpu"]) == 0
    table = pd.read_csv(out / "comparison.csv")
    base = pd.read_csv(out / "baseline" / "A" / "levels.csv").set_index("level")
    follow = pd.read_csv(out / "followup" / "B" / "levels.csv").set_index("level")
    for r in table.itertuples():
        assert r.change == pytest.approx(follow.loc[r.level, r.pattern] - base.loc[r.level, r.pattern])
        sd = math.hypot(base.loc[r.level, f"{r.pattern}_sd"], follow.loc[r.level, f"{r.pattern}_sd"])
        assert r.mdc == pytest.approx(max(5.0, 1.96 * sd), abs=2e-3)  # the CSVs round the SDs
