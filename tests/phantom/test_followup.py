"""Follow-up pairs: the same body re-scanned, disease that moves with the body and changes only with severity."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from gohscore.goh import LEVELS, PATTERNS, score_column
from gohscore.phantom.anatomy import draw_anatomy
from gohscore.phantom.cohort import _render_patient
from gohscore.phantom.followup import (
    FollowupParams,
    Rescan,
    draw_rescan,
    followup_renderer,
    generate_pair,
    rescan_anatomy,
    truth_row,
    write_pairs,
)
from gohscore.phantom.render import Renderer
from gohscore.phantom.sizes import SIZES

TINY = SIZES["tiny"]
KEY = (3, 31, 1)


def render_both(r: Rescan, severity: float = 0.4):
    """Baseline and follow-up volumes and labels of one tiny anatomy under rescan ``r``."""
    base = replace(draw_anatomy(np.random.default_rng(4), TINY), severity=severity)
    follow = rescan_anatomy(base, r)
    renderer = Renderer(base, KEY)
    out = []
    for anat, rend in ((base, renderer), (follow, followup_renderer(renderer, follow, r, KEY))):
        volume = np.empty((anat.n_slices, anat.matrix, anat.matrix), np.int16)
        out.append((anat, volume, _render_patient("P0001", anat, 3, volume=volume, renderer=rend).label))
    return out


def same_scan(base_slice_mm: float, severity: float = 0.4, **change) -> Rescan:
    fields = {
        "kind": "stable",
        "slice_mm": base_slice_mm,
        "fov_scale": 1.0,
        "table_shift_mm": 0.0,
        "start_shift_mm": 0.0,
        "xy_shift_mm": (0.0, 0.0),
        "inspiration": 1.0,
        "severity": severity,
    }
    return Rescan(**{**fields, **change})


def test_a_table_shift_moves_the_world_not_the_body() -> None:
    slice_mm = draw_anatomy(np.random.default_rng(4), TINY).slice_mm
    (a0, v0, l0), (a1, v1, l1) = render_both(same_scan(slice_mm, table_shift_mm=23.5, xy_shift_mm=(0.0, 0.0)))
    assert a1.origin_xyz_mm[2] == pytest.approx(a0.origin_xyz_mm[2] + 23.5)
    assert np.array_equal(v0, v1)  # disease included: it is read at the same body position
    assert all(l1[score_column(k, p)] == l0[score_column(k, p)] for k in LEVELS for p in PATTERNS)
    assert l1["L2_z_mm"] == pytest.approx(l0["L2_z_mm"] + 23.5)


def test_more_severity_only_adds_disease() -> None:
    slice_mm = draw_anatomy(np.random.default_rng(4), TINY).slice_mm
    (_, _, before), (_, _, after) = render_both(
        same_scan(slice_mm, severity=0.55, kind="grown"), severity=0.4
    )
    changes = [after[score_column(k, p)] - before[score_column(k, p)] for k in LEVELS for p in ("TOT",)]
    assert min(changes) >= 0 and sum(changes) > 0


def test_rescan_geometry_and_draws() -> None:
    base = replace(draw_anatomy(np.random.default_rng(4), TINY), severity=0.3)
    r = draw_rescan(np.random.default_rng(1), base, TINY, "regressed")
    assert r.slice_mm in TINY.slice_spacings_mm and r.slice_mm != base.slice_mm
    assert 0.94 <= r.inspiration <= 1.06 and 0.94 <= r.fov_scale <= 1.06 and r.severity < base.severity
    follow = rescan_anatomy(base, r)
    assert follow.dome_r == pytest.approx(base.dome_r * r.inspiration)
    assert follow.pixel_mm == pytest.approx(base.pixel_mm * r.fov_scale)
    # the scan covers the same length of body from a shifted start
    assert (
        abs((follow.n_slices - 1) * follow.slice_mm - (base.n_slices - 1) * base.slice_mm)
        <= follow.slice_mm / 2
    )
    assert follow.w_bottom == pytest.approx(base.w_bottom + r.start_shift_mm)
    with pytest.raises(ValueError, match="not one of"):
        draw_rescan(np.random.default_rng(1), base, TINY, "worse")


def test_pairs_truth_and_files(tmp_path) -> None:
    pair = generate_pair(2, TINY, 3)
    row = truth_row(pair)
    assert (
        row["pair"] == "F0002"
        and row["kind"] == "stable"
        and row["severity_followup"] == row["severity_baseline"]
    )
    assert row["L5_TOT_change"] == row["L5_TOT_followup"] - row["L5_TOT_baseline"]
    tot = [[labels[score_column(k, "TOT")] for k in LEVELS] for labels in pair.labels]
    assert row["extent_change"] == pytest.approx(np.mean(tot[1]) - np.mean(tot[0]))
    out = write_pairs(FollowupParams(n_pairs=3, size="tiny"), 3, tmp_path / "pairs")
    table = pd.read_csv(out / "pairs.csv")
    assert table["kind"].tolist() == ["grown", "stable", "regressed"]
    assert sorted(p.name for p in (out / "scans").iterdir()) == [
        f"F000{i}_{role}.nii.gz" for i in (1, 2, 3) for role in ("baseline", "followup")
    ]
    assert table.loc[1, "extent_change"] == pytest.approx(row["extent_change"])  # pair 2 as generated above
    assert table.loc[1, "L5_TOT_change"] == row["L5_TOT_change"]


def test_followup_section_is_the_schemas() -> None:
    from gohscore.settings import section_schema

    schema = section_schema("followup")["properties"]
    assert set(FollowupParams.keys()) == set(schema) and set(schema["size"]["enum"]) == set(SIZES)
    assert FollowupParams.from_section({}) == FollowupParams(n_pairs=0, size="demo")
