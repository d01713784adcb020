"""The QC sheet and the heat-map file of one scored scan."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk
from matplotlib.image import imread

from gohscore.goh import PATTERNS
from gohscore.qc_sheet import qc_figure, qc_sheet, write_heatmaps


def fake_result(maps: bool, review: tuple[bool, ...] = (False,) * 5) -> dict:
    """A cascade result for a 40 x 48 matrix, 30 slices, with made-up scores and spreads."""
    rng = np.random.default_rng(3)
    table = pd.DataFrame(
        {
            "patient": "P1",
            "level": [1, 2, 3, 4, 5],
            "z_mm": [-100.0, -130.0, -160.0, -190.0, -220.0],
            "z_mm_sd": [1.0, 2.0, 0.5, 6.0, 1.0],
            "TOT": [0.0, 5.0, 10.0, 20.0, 35.0],
            "GG": [0.0, 5.0, 5.0, 15.0, 20.0],
            "RET": [0.0, 0.0, 5.0, 10.0, 25.0],
            **{f"{p}_sd": [0.5, 1.0, 2.0, 11.0, 3.0] for p in PATTERNS},
            "review": list(review),
        }
    )
    return {
        "patient": "P1",
        "table": table,
        "global_extent": 14.0,
        "global_extent_sd": 2.5,
        "goh_stage": "indeterminate",
        "qc": {
            "slices": rng.normal(-800, 100, (5, 40, 48)).astype(np.float32),
            "spacing_yx_mm": (0.8, 0.7),
            "coronal": rng.normal(-500, 300, (30, 48)).astype(np.float32),
            "spacing_zx_mm": (5.0, 0.7),
            "level_slices": np.array([25.0, 20.0, 15.0, 10.0, 5.0]),
        },
        "maps": rng.random((5, 3, 40, 48)).astype(np.float32) if maps else None,
    }


def test_sheet_shows_one_column_per_overlay_and_the_review_flag(tmp_path: Path) -> None:
    plain = imread(qc_sheet(fake_result(False), tmp_path / "plain.png"))
    explained = imread(qc_sheet(fake_result(True), tmp_path / "maps.png"))
    # panels are 512 px wide (a 48-column matrix shown at 512 / 48 px per pixel): two more with maps
    assert explained.shape[1] - plain.shape[1] == 2 * 512
    flagged = qc_figure(fake_result(False, review=(False, False, False, True, False)))
    texts = [t.get_text() for ax in flagged.axes for t in ax.texts]
    assert sum("REVIEW" in t for t in texts) == 1
    assert any(t.startswith("L4\nTOT 20 % (SD 11.0)") for t in texts)
    assert "REVIEW" not in " ".join(
        t.get_text() for ax in qc_figure(fake_result(False)).axes for t in ax.texts
    )


def test_heatmaps_file_is_level_major_with_the_scans_pixel_spacing(tmp_path: Path) -> None:
    maps = np.zeros((5, 3, 4, 6), dtype=np.float32)
    for k in range(5):
        for j in range(3):
            maps[k, j] = 10 * k + j
    image = sitk.ReadImage(str(write_heatmaps(maps, (0.8, 0.7), tmp_path / "h.nii.gz")))
    array = sitk.GetArrayFromImage(image)
    assert array.shape == (15, 4, 6)
    assert array[:, 0, 0].tolist() == [10 * k + j for k in range(5) for j in range(3)]
    assert np.allclose(image.GetSpacing(), (0.7, 0.8, 1.0))
