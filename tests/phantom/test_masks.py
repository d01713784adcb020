"""The phantom's lesion masks: on the right slices and pixels of the scan as gohscore reads it back."""

from __future__ import annotations

import numpy as np
import pytest

from gohscore import io
from gohscore.errors import GohscoreError
from gohscore.goh import LEVELS, PATTERNS, score_column, z_column
from gohscore.lesion_masks import LevelMasks, read_masks, write_masks
from gohscore.phantom.cohort import write_patient
from gohscore.phantom.labels import area_percentages, consistent_scores
from gohscore.phantom.sizes import PhantomParams
from gohscore.preprocess import world_z_to_original_slice
from gohscore.scores.slices import nearest_slice

TINY = {"n_patients": 6, "size": "tiny", "dicom_every": 3, "n_observer_patients": 2, "patches_per_pattern": 0}


@pytest.mark.parametrize("patient", ["P0002", "P0003"])  # NIfTI, DICOM
def test_masks_lie_on_the_level_slices_of_the_scan_read_back(tmp_path, patient):
    params = PhantomParams.from_section(TINY)
    scan_dir, masks_file = tmp_path / "scans" / patient, tmp_path / "masks" / f"{patient}.npz"
    part = write_patient(patient, params, 11, scan_dir, tmp_path / "patches" / patient, masks_file)
    masks = read_masks(masks_file)
    scan = io.read_scan(scan_dir)
    array, geom = io.lps_array(scan.image), io.lps_geometry(scan.image)
    assert masks.lung.shape == (5, *array.shape[1:])
    assert np.allclose(masks.spacing_yx_mm, geom["lps_spacing_xyz_mm"][1::-1])
    label = part["label"]
    checked = 0
    for k in LEVELS:
        # the masks' slice is the one nearest the labelled level position
        z = label[z_column(k)]
        assert masks.slice_index[k - 1] == nearest_slice(
            float(world_z_to_original_slice(z, geom)), array.shape[0]
        )
        # the label is the masks' area share, rounded the phantom's way
        percent = area_percentages(masks.lung[k - 1], masks.gg[k - 1], masks.ret[k - 1])
        expected = consistent_scores(*percent)
        assert [label[score_column(k, p)] for p in PATTERNS] == list(expected)
        # and the masks sit on the scan's own pixels: lung is air-like, lesions are denser than healthy lung
        hu = array[masks.slice_index[k - 1]].astype(float)
        lung = masks.lung[k - 1]
        assert np.median(hu[lung]) < -600
        lesion = masks.pattern("TOT")[k - 1]
        if lesion.sum() >= 20:
            assert np.median(hu[lesion]) > np.median(hu[lung & ~lesion]) + 50
            checked += 1
    assert checked >= 2  # both patients have at least two levels with lesions to look at


def test_a_bad_masks_file_is_named(tmp_path):
    bad = tmp_path / "P1.npz"
    np.savez(bad, lung=np.zeros((4, 3, 3), bool))
    with pytest.raises(GohscoreError, match="P1.npz.*not a lesion-mask file"):
        read_masks(bad)
    masks = LevelMasks(*(np.zeros((5, 3, 3), bool),) * 2, np.zeros((4, 3, 3), bool), np.arange(5), (1.0, 1.0))
    write_masks(masks, tmp_path / "P2.npz")
    with pytest.raises(GohscoreError, match="P2.npz"):
        read_masks(tmp_path / "P2.npz")
    with pytest.raises(GohscoreError, match="not found"):
        read_masks(tmp_path / "none.npz")
