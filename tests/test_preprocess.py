"""Grid geometry: centring the grid, and world <-> grid/original slice conversions through a resample."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from gohscore import io, preprocess
from gohscore.resample import resample_scan
from tests.conftest import chest_image


def test_conversions_are_inverse() -> None:
    geom = {
        "grid_origin_xyz_mm": [0.0, 0.0, -312.4],
        "grid_spacing_mm": 1.2,
        "lps_origin_xyz_mm": [0.0, 0.0, -350.0],
        "lps_spacing_xyz_mm": [0.7, 0.7, 0.8],
        "spacing_xyz_mm": [0.7, 0.7, 0.8],
    }
    idx = np.array([0.0, 17.3, 255.0])
    z = preprocess.grid_index_to_world_z(idx, geom)
    assert np.allclose(preprocess.world_z_to_grid_index(z, geom), idx)
    k = preprocess.world_z_to_original_slice(z, geom)
    assert np.allclose(preprocess.original_slice_to_world_z(k, geom), z)
    assert float(preprocess.world_z_to_original_slice(-350.0, geom)) == 0.0


def _marked_image(direction: tuple[float, ...], marker_k: int) -> tuple[sitk.Image, np.ndarray]:
    """A chest whose array slice ``marker_k`` (in storage order) is bright bone; stored with ``direction``."""
    arr = sitk.GetArrayFromImage(chest_image(size_xyz=(40, 36, 60), spacing_xyz=(5.0, 5.0, 3.0)))
    arr[marker_k] = 1000
    image = sitk.GetImageFromArray(arr)
    image.SetSpacing((5.0, 5.0, 3.0))
    image.SetOrigin((120.0, -90.0, 40.0))
    image.SetDirection(direction)
    return image, arr


@pytest.mark.parametrize(
    "direction",
    [
        (1, 0, 0, 0, 1, 0, 0, 0, 1),
        (1, 0, 0, 0, 1, 0, 0, 0, -1),  # stored upside down
        (-1, 0, 0, 0, 1, 0, 0, 0, 1),  # flipped x
        (0, 1, 0, 1, 0, 0, 0, 0, -1),  # x/y swapped and upside down
    ],
)
def test_round_trip_through_grid_within_half_voxel(tmp_path, direction) -> None:
    marker_k = 20
    image, _ = _marked_image(direction, marker_k)
    path = tmp_path / "scan.mha"
    sitk.WriteImage(image, str(path))
    volume, geom = resample_scan(path, "P", spacing_mm=3.0, shape=64)

    # the marker's world z, computed from the image as stored
    marker_z = image.TransformContinuousIndexToPhysicalPoint((20.0, 18.0, float(marker_k)))[2]
    # original slice (from the bottom of the LPS-oriented scan) and back
    k_lps = preprocess.world_z_to_original_slice(marker_z, geom)
    expected_k = marker_k if direction[8] > 0 else 59 - marker_k
    assert k_lps == pytest.approx(expected_k, abs=1e-6)
    assert preprocess.original_slice_to_world_z(k_lps, geom) == pytest.approx(marker_z, abs=1e-6)
    lps = sitk.DICOMOrient(sitk.ReadImage(str(path)), "LPS")
    assert lps.TransformIndexToPhysicalPoint((0, 0, int(expected_k)))[2] == pytest.approx(marker_z)
    assert io.read_lps(path).GetOrigin() == pytest.approx(tuple(geom["lps_origin_xyz_mm"]))

    # the bright slab lands at the grid index the conversion predicts, within half a grid voxel
    index = preprocess.world_z_to_grid_index(marker_z, geom)
    profile = (volume > 500).sum(axis=(1, 2))
    found = float(np.sum(np.arange(64) * profile) / profile.sum())
    assert abs(found - index) <= 0.5
    assert preprocess.grid_index_to_world_z(index, geom) == pytest.approx(marker_z)


def test_flipped_x_keeps_left_right(tmp_path) -> None:
    arr = sitk.GetArrayFromImage(chest_image())
    arr[:, :, :5] = 900  # a bright band at the image's first columns
    image = sitk.GetImageFromArray(arr)
    image.SetSpacing((6.0, 6.0, 7.5))
    image.SetDirection((-1, 0, 0, 0, 1, 0, 0, 0, 1))
    image.SetOrigin((141.0, -117.0, -300.0))
    lps = io.lps_array(image)
    # the first stored columns are the largest world x: after LPS they are the last columns
    assert (lps[:, :, -5:] == 900).all() and not (lps[:, :, :5] == 900).all()


def test_lungs_centre_the_grid_in_z(chest) -> None:
    arr = sitk.GetArrayViewFromImage(chest)
    centre, found = preprocess.find_grid_centre(arr, chest.GetSpacing(), chest.GetOrigin())
    assert found
    lung_mid_z = chest.GetOrigin()[2] + 0.55 * 36 * 7.5
    assert abs(centre[2] - lung_mid_z) < 2 * 7.5
    body_mid_x = chest.GetOrigin()[0] + 47 * 6.0 / 2
    assert abs(centre[0] - body_mid_x) < 2 * 6.0


def test_no_lungs_falls_back_to_scan_centre() -> None:
    arr = np.full((20, 20, 20), 40, np.int16)
    centre, found = preprocess.find_grid_centre(arr, (2.0, 2.0, 2.0), (0, 0, 0))
    assert not found and centre[2] == pytest.approx(19.0)


def test_world_slice_round_trip() -> None:
    """Grid index -> world z -> original slice -> world z -> grid index is the identity."""
    geom = {
        "grid_origin_xyz_mm": [0.0, 0.0, -153.0],
        "grid_spacing_mm": 1.2,
        "grid_shape": 256,
        "lps_origin_xyz_mm": [-170.0, -190.0, -160.25],
        "spacing_xyz_mm": [0.68, 0.68, 1.25],
    }
    idx = np.array([0.0, 17.25, 128.0, 255.0])
    z = preprocess.grid_index_to_world_z(idx, geom)
    k = preprocess.world_z_to_original_slice(z, geom)
    assert np.allclose(k, (z + 160.25) / 1.25)
    back = preprocess.world_z_to_grid_index(preprocess.original_slice_to_world_z(k, geom), geom)
    assert np.allclose(back, idx)
