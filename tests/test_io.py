"""Reading scans: formats, DICOM series (rescale, sorting, choice), LPS reorientation, cached volumes."""

from __future__ import annotations

import gzip
import logging

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from gohscore import io
from gohscore.cohort import discover_scans, find_table
from gohscore.errors import GohscoreError
from tests.conftest import write_dicom_series


@pytest.mark.parametrize("suffix", ["nii.gz", "nii", "mha", "mhd", "nrrd"])
def test_read_every_format(tmp_path, chest, suffix) -> None:
    path = tmp_path / f"scan.{suffix}"
    sitk.WriteImage(chest, str(path))
    scan = io.read_scan(path)
    assert scan.format == {"nii.gz": "nifti", "nii": "nifti", "mhd": "mha"}.get(suffix, suffix)
    assert np.array_equal(sitk.GetArrayFromImage(scan.image), sitk.GetArrayFromImage(chest))
    if suffix == "mhd":
        assert len(scan.files) == 2  # header and raw data are both hashed


def test_multi_member_gzip_nifti_is_read_and_a_cut_one_rejected(tmp_path, chest) -> None:
    """pigz/bgzip-style NIfTI (several gzip members): the trailer counts only the last member."""
    plain = tmp_path / "plain.nii"
    sitk.WriteImage(chest, str(plain))
    data = plain.read_bytes()
    cut = len(data) // 3
    path = tmp_path / "members.nii.gz"
    path.write_bytes(gzip.compress(data[:cut]) + gzip.compress(data[cut:]))
    scan = io.read_scan(path)
    assert np.array_equal(sitk.GetArrayFromImage(scan.image), sitk.GetArrayFromImage(chest))
    short = tmp_path / "short.nii.gz"
    short.write_bytes(gzip.compress(data[:cut]) + gzip.compress(data[cut : 2 * cut]))
    with pytest.raises(GohscoreError, match=r"short\.nii\.gz.*truncated: holds"):
        io.read_scan(short)


def test_dicom_series_rescaled_and_sorted(tmp_path, chest) -> None:
    files = write_dicom_series(chest, tmp_path / "dcm")
    raw = pydicom.dcmread(files[0])
    assert float(raw.RescaleIntercept) == -1024
    assert int(raw.pixel_array.min()) >= 0  # stored as HU + 1024
    # shuffle file names so that name order is not slice order
    for i, f in enumerate(files):
        f.rename(f.with_name(f"X{(i * 7) % len(files):04d}_{i}.dcm"))
    scan = io.read_scan(tmp_path / "dcm")
    assert scan.format == "dicom" and scan.series_uid
    assert np.array_equal(sitk.GetArrayFromImage(scan.image), sitk.GetArrayFromImage(chest))


def test_dicom_mixed_series_picks_axial_ct_with_most_slices(tmp_path, chest, caplog) -> None:
    folder = tmp_path / "dcm"
    write_dicom_series(chest, folder, "1.2.3.100")
    small = chest[:, :, 10:14]
    for k, f in enumerate(write_dicom_series(small, tmp_path / "tmp", "1.2.3.300", description="thick")):
        f.rename(folder / f"thick{k}.dcm")
    with caplog.at_level(logging.WARNING, logger="gohscore"):
        scan = io.read_scan(folder)
    assert scan.series_uid.startswith("1.2.3.100")
    assert scan.image.GetSize()[2] == chest.GetSize()[2]
    assert "using 1.2.3.100" in caplog.text and "1.2.3.300" in caplog.text


def test_read_lps_bottom_first(tmp_path, chest) -> None:
    flipped = sitk.Flip(chest, [False, False, True])
    flipped.SetDirection((1, 0, 0, 0, 1, 0, 0, 0, -1))
    flipped.SetOrigin(chest.TransformIndexToPhysicalPoint((0, 0, chest.GetSize()[2] - 1)))
    sitk.WriteImage(flipped, str(tmp_path / "f.nrrd"))
    lps = io.read_lps(tmp_path / "f.nrrd")
    assert lps.GetDirection() == pytest.approx((1, 0, 0, 0, 1, 0, 0, 0, 1))
    assert np.array_equal(sitk.GetArrayFromImage(lps), sitk.GetArrayFromImage(chest))


def test_read_volume_roundtrip(tmp_path) -> None:
    vol = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6)
    io.write_volume(vol, tmp_path / "v.npy")
    assert np.array_equal(io.read_volume(tmp_path / "v.npy"), vol)
    with pytest.raises(GohscoreError, match="v2.npy"):
        io.read_volume(tmp_path / "v2.npy")


def test_discover_scans_layout(tmp_path, chest) -> None:
    scans = tmp_path / "c" / "scans"
    scans.mkdir(parents=True)
    sitk.WriteImage(chest, str(scans / "A.nii.gz"))
    sitk.WriteImage(chest, str(scans / "B.mhd"))  # writes B.raw too (ignored)
    (scans / "C").mkdir()
    sitk.WriteImage(chest, str(scans / "C" / "anything.nrrd"))
    write_dicom_series(chest, scans / "D")
    (scans / ".DS_Store").write_text("x", encoding="utf-8")
    found = discover_scans(tmp_path / "c")
    assert list(found) == ["A", "B", "C", "D"]
    assert io.scan_header(found["C"])["format"] == "nrrd"
    assert io.scan_header(found["D"])["size_xyz"] == list(chest.GetSize())
    assert find_table(tmp_path / "c", "labels") is None
    (tmp_path / "c" / "labels.csv").write_text("patient\n", encoding="utf-8")
    (tmp_path / "c" / "labels.xlsx").write_text("", encoding="utf-8")
    with pytest.raises(GohscoreError, match="several labels tables"):
        find_table(tmp_path / "c", "labels")


def test_cohort_module_imports_only_stdlib() -> None:
    import subprocess
    import sys

    code = "import sys, gohscore.cohort; bad = {'numpy', 'pandas', 'SimpleITK'} & set(sys.modules); print(sorted(bad))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
