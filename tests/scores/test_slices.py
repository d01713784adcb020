"""Slices at the levels: nearest slice, neighbours, clamping, square resize, and the extract-slices command."""

from __future__ import annotations

import importlib
import sys
import types

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from gohscore.scores.slices import (
    extract_levels,
    level_offsets,
    level_slice_indices,
    nearest_slice,
    resize_square,
)


def test_level_offsets_are_centred():
    assert level_offsets(3) == [-1, 0, 1]
    assert level_offsets(1) == [0]
    assert level_offsets(2) == [-1, 0]


def test_nearest_slice_rounds_half_up_and_clamps():
    assert nearest_slice(4.49, 10) == 4
    assert nearest_slice(4.5, 10) == 5
    assert nearest_slice(-3.0, 10) == 0
    assert nearest_slice(12.0, 10) == 9


def test_neighbours_are_clamped_at_the_ends():
    assert level_slice_indices(0.2, 10, 3) == [(-1, 0), (0, 0), (1, 1)]
    assert level_slice_indices(9.0, 10, 3) == [(-1, 8), (0, 9), (1, 9)]
    assert level_slice_indices(5.0, 10, 3) == [(-1, 4), (0, 5), (1, 6)]


def test_extract_levels_picks_the_right_slices():
    volume = np.broadcast_to(np.arange(20, dtype=np.float32)[:, None, None] * 10 - 500, (20, 16, 16)).copy()
    stack, rows, mm = extract_levels(volume, (1.0, 1.0, 2.0), [18.0, 12.4, 7.6, 3.0, 0.0], 3, 8)
    assert stack.shape == (15, 8, 8) and stack.dtype == np.int16
    picked = [r["slice_index"] for r in rows]
    assert picked == [17, 18, 19, 11, 12, 13, 7, 8, 9, 2, 3, 4, 0, 0, 1]
    assert np.array_equal(stack[:, 4, 4], np.array(picked) * 10 - 500)
    assert [r["row"] for r in rows] == list(range(15))
    assert mm == pytest.approx(2.0)


def test_resize_square_pads_with_air_and_keeps_the_mean():
    img = np.full((1, 32, 64), -800.0)
    out, mm = resize_square(img, (1.0, 1.0), 16)
    assert out.shape == (1, 16, 16) and mm == pytest.approx(4.0)
    assert out[0, 8, 8] == pytest.approx(-800.0)
    assert out[0, 0, 8] == pytest.approx(-1024.0)
    noise = np.random.default_rng(0).normal(-500, 200, size=(1, 64, 64))
    small, _ = resize_square(noise, (0.5, 0.5), 16)
    assert small.mean() == pytest.approx(noise.mean(), abs=2.0)
    assert small.std() < 60  # antialiased: the noise is averaged away, not aliased


def _standins(monkeypatch):
    """Stand-ins for gohscore.io / gohscore.preprocess functions that are not there yet."""
    try:
        importlib.import_module("gohscore.preprocess")
    except ImportError:
        fake = types.ModuleType("gohscore.preprocess")

        def world_z_to_original_slice(z, geom):
            return (z - geom["lps_origin_xyz_mm"][2]) / geom["spacing_xyz_mm"][2]

        def original_slice_to_world_z(k, geom):
            return geom["lps_origin_xyz_mm"][2] + k * geom["spacing_xyz_mm"][2]

        fake.world_z_to_original_slice = world_z_to_original_slice
        fake.original_slice_to_world_z = original_slice_to_world_z
        monkeypatch.setitem(sys.modules, "gohscore.preprocess", fake)


def test_extract_slices_command(tmp_path, monkeypatch):
    _standins(monkeypatch)
    from gohscore.commands import extract_slices

    n = 30
    vol = np.full((n, 40, 40), -1000, dtype=np.int16)
    vol[:, 5:35, 5:35] = 40
    vol[:, 10:30, 8:18] = -850
    vol[:, 5, 5] = np.arange(n) * 10  # slice identity, survives as a bright corner
    img = sitk.GetImageFromArray(vol)
    img.SetSpacing((0.8, 0.8, 2.5))
    img.SetOrigin((-16.0, -16.0, -100.0))
    path = tmp_path / "P1.nii.gz"
    sitk.WriteImage(img, str(path))
    geom = {
        "patient": "P1",
        "path": str(path),
        "format": "nifti",
        "series_uid": None,
        "size_xyz": [40, 40, n],
        "spacing_xyz_mm": [0.8, 0.8, 2.5],
        "origin_xyz_mm": [-16.0, -16.0, -100.0],
        "direction": [1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0],
        "lps_origin_xyz_mm": [-16.0, -16.0, -100.0],
        "lps_size_xyz": [40, 40, n],
        "grid_origin_xyz_mm": [0.0, 0.0, 0.0],
        "grid_spacing_mm": 2.0,
        "grid_shape": 32,
        "hu_p01": -1000.0,
        "hu_p50": -800.0,
        "hu_p99": 40.0,
        "sha256": "x",
    }
    rows = []
    for g in (geom, {**geom, "patient": "P2"}):  # flattened as `gohscore ingest` writes it: key_0, key_1, ...
        rows.append(
            {f"{k}_{i}": x for k, v in g.items() if isinstance(v, list) for i, x in enumerate(v)}
            | {k: v for k, v in g.items() if not isinstance(v, list)}
        )
    manifest = pd.DataFrame(rows)
    manifest.to_parquet(tmp_path / "manifest.parquet")
    z = [-100.0 + 2.5 * k for k in (28, 20, 12.2, 5, 0)]
    labels = pd.DataFrame(
        [
            {
                "patient": "P1",
                **{f"L{i + 1}_z_mm": z[i] for i in range(5)},
                **{f"L{i}_{s}": 0.0 for i in range(1, 6) for s in ("TOT", "GG", "RET")},
            }
        ]
    )
    labels.to_parquet(tmp_path / "labels.parquet")
    out = tmp_path / "slices"
    params = '{"input_size": 16, "slices_per_level": 3}'
    assert (
        extract_slices.main(
            [
                "--manifest",
                str(tmp_path / "manifest.parquet"),
                "--levels",
                str(tmp_path / "labels.parquet"),
                "--source",
                "reference",
                "--params-json",
                params,
                "--out-dir",
                str(out),
            ]
        )
        == 0
    )
    index = pd.read_parquet(out / "index.parquet")
    assert list(index.columns) == [
        "patient",
        "level",
        "offset",
        "row",
        "slice_index",
        "z_mm",
        "pixel_spacing_mm",
    ]
    assert set(index["patient"]) == {"P1"} and not (out / "P2.npy").exists()
    assert index["slice_index"].tolist() == [27, 28, 29, 19, 20, 21, 11, 12, 13, 4, 5, 6, 0, 0, 1]
    assert index["z_mm"].tolist() == pytest.approx([-100.0 + 2.5 * k for k in index["slice_index"]])
    stack = np.load(out / "P1.npy")
    assert stack.shape == (15, 16, 16) and stack.dtype == np.int16
    assert index["pixel_spacing_mm"].iloc[0] == pytest.approx(2.0)

    long = pd.DataFrame({"patient": "P1", "level": [1, 2, 3, 4, 5], "pred_z_mm": z})
    long.to_parquet(tmp_path / "pred.parquet")
    out2 = tmp_path / "slices_pred"
    assert (
        extract_slices.main(
            [
                "--manifest",
                str(tmp_path / "manifest.parquet"),
                "--levels",
                str(tmp_path / "pred.parquet"),
                "--source",
                "predicted",
                "--params-json",
                params,
                "--out-dir",
                str(out2),
            ]
        )
        == 0
    )
    assert np.array_equal(np.load(out2 / "P1.npy"), stack)


def test_manifest_geometry_unflattens_lists():
    from gohscore.ingest import manifest_geometry

    row = pd.Series(
        {
            "patient": "P1",
            "spacing_xyz_mm_0": 0.7,
            "spacing_xyz_mm_1": 0.7,
            "spacing_xyz_mm_2": 2.0,
            "hu_p01": -1000.0,
            "series_uid": None,
        }
    )
    geom = manifest_geometry(row)
    assert geom["spacing_xyz_mm"] == [0.7, 0.7, 2.0] and geom["hu_p01"] == -1000.0 and geom["patient"] == "P1"


def test_unsquare_puts_input_grid_pixels_back_where_they_came_from() -> None:
    """A 6 x 10 slice (1 mm) is padded to 10 x 10 (2 rows of air above and below), then resized to 5 x 5.

    Input-grid row 2 covers padded rows 4-5, which are original rows 2-3.
    """
    from gohscore.scores.slices import square_box, unsquare

    assert square_box((6, 10), (1.0, 1.0)) == (10, 10, 2, 0)
    heat = np.zeros((1, 5, 5), dtype=np.float32)
    heat[0, 2, 4] = 1.0
    back = unsquare(heat, (6, 10), (1.0, 1.0))
    assert back.shape == (1, 6, 10)
    row, col = np.unravel_index(np.argmax(back[0]), back[0].shape)
    assert row in (2, 3) and col in (8, 9)
    # a smooth slice survives resize_square -> unsquare nearly unchanged
    yy, xx = np.mgrid[0:6, 0:10]
    smooth = (-800.0 + 20.0 * xx + 10.0 * yy)[None].astype(np.float32)
    squared, _ = resize_square(smooth, (1.0, 1.0), 10)
    assert np.allclose(unsquare(squared, (6, 10), (1.0, 1.0)), smooth, atol=1e-3)
