"""Scan entries as hospitals export them: folder trees, zips, DICOMDIR, per-slice rescale, float images."""

from __future__ import annotations

import logging
import shutil
import tempfile
import zipfile

import numpy as np
import pytest
import SimpleITK as sitk

from gohscore import io
from gohscore.archive import ArchiveMember
from gohscore.cohort import discover_scans
from gohscore.commands.validate import validate_cohort
from gohscore.dicom import list_series
from gohscore.resample import resample_scan
from tests.conftest import (
    labels_row,
    set_rescale,
    write_dicom_series,
    write_dicomdir,
    write_enhanced_ct,
    zip_tree,
)


@pytest.fixture
def private_tmp(tmp_path, monkeypatch):
    """Point :mod:`tempfile` at an empty folder, to see what unpacking leaves behind."""
    folder = tmp_path / "system-tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def export_tree(root, chest):
    """PATIENT/STUDY/SERIES folders: the axial CT, a 3-slice scout series and non-DICOM files; CT's files."""
    study = root / "PAT0001" / "STU0001"
    files = write_dicom_series(chest, study / "SER0002", "1.2.3.42", description="chest 1mm")
    write_dicom_series(chest[:, :, :3], study / "SER0001", "1.2.3.41", description="scout")
    (root / "README.TXT").write_text("exported by the PACS\n", encoding="utf-8")
    (study / "SER0002" / "viewer.ini").write_bytes(b"\x00\x01 not dicom")
    (root / "PAT0001" / ".hidden").mkdir()
    return files


def array(scan_or_image) -> np.ndarray:
    """The zyx voxels of a scan or an image."""
    image = scan_or_image.image if isinstance(scan_or_image, io.Scan) else scan_or_image
    return sitk.GetArrayFromImage(image)


def test_per_slice_rescale_gives_true_hu(tmp_path, chest) -> None:
    """Slices with their own slope/intercept; the first slice's integer type must not truncate 0.5 HU."""
    files = write_dicom_series(chest, tmp_path / "dcm")
    truth = set_rescale(files, [(1.0, -1024.0), (0.5, -1024.0), (2.0, -2048.0), (1.0, 0.0)])
    assert np.any(truth % 1 == 0.5)
    scan = io.read_scan(tmp_path / "dcm")
    assert np.array_equal(array(scan).astype(np.float64), truth)
    volume, geometry = resample_scan(tmp_path / "dcm", "X", 6.0, 48)  # a float32 series resamples
    assert volume.dtype == np.int16 and geometry["hu_p01"] < -900


def test_folder_tree_finds_the_series_and_logs_the_choice(tmp_path, chest, caplog) -> None:
    files = export_tree(tmp_path / "export", chest)
    with caplog.at_level(logging.WARNING, logger="gohscore"):
        scan = io.read_scan(tmp_path / "export")
    assert scan.series_uid == "1.2.3.42" and np.array_equal(array(scan), array(chest))
    assert "using 1.2.3.42" in caplog.text and "1.2.3.41" in caplog.text
    assert sorted(scan.files) == sorted(files)
    header = io.scan_header(tmp_path / "export")
    assert header["files"] == [str(f) for f in scan.files]
    assert header["size_xyz"] == list(chest.GetSize())


def test_series_split_over_folders_is_one_series(tmp_path, chest) -> None:
    files = write_dicom_series(chest, tmp_path / "dcm" / "part1")
    (tmp_path / "dcm" / "part2").mkdir()
    for f in files[::2]:
        f.rename(tmp_path / "dcm" / "part2" / f.name)
    series = list_series(tmp_path / "dcm")
    assert len(series) == 1 and len(series[0].files) == len(files)
    assert np.array_equal(array(io.read_scan(tmp_path / "dcm")), array(chest))


def test_zip_of_a_tree_reads_like_the_folder(tmp_path, chest, private_tmp) -> None:
    export_tree(tmp_path / "export", chest)
    archive = zip_tree(tmp_path / "export", tmp_path / "P1.zip", prefix="export/")
    folder_scan = io.read_scan(tmp_path / "export")
    scan = io.read_scan(archive)
    assert scan.path == archive and scan.format == "dicom" and scan.series_uid == "1.2.3.42"
    assert np.array_equal(array(scan), array(chest))
    assert all(isinstance(f, ArchiveMember) for f in scan.files)
    assert str(scan.files[0]).startswith(f"{archive}/export/PAT0001/STU0001/SER0002/")
    assert io.sha256_files(scan.files) == io.sha256_files(folder_scan.files)
    header = io.scan_header(archive)
    assert header["files"] == [str(f) for f in scan.files] and header["format"] == "dicom"
    assert list(private_tmp.iterdir()) == []  # the unpack folder is gone


def test_zip_of_one_image_file(tmp_path, chest, private_tmp) -> None:
    (tmp_path / "v").mkdir()
    sitk.WriteImage(chest, str(tmp_path / "v" / "volume.mhd"))
    archive = zip_tree(tmp_path / "v", tmp_path / "P2.zip", prefix="P2/")
    scan = io.read_scan(archive)
    assert scan.format == "mha" and np.array_equal(array(scan), array(chest))
    assert [f.name for f in scan.files] == ["P2/volume.mhd", "P2/volume.raw"]
    assert io.scan_header(archive)["format"] == "mha"
    assert list(private_tmp.iterdir()) == []


@pytest.mark.parametrize("entry", ["folder", "file"])
def test_dicomdir_file_set(tmp_path, chest, entry) -> None:
    files = write_dicom_series(chest, tmp_path / "src")
    dicomdir = write_dicomdir(files, tmp_path / "cd")
    target = dicomdir if entry == "file" else dicomdir.parent
    scan = io.read_scan(target)
    assert np.array_equal(array(scan), array(chest))
    assert all("DICOMDIR" not in str(f) for f in scan.files) and len(scan.files) == len(files)
    assert io.scan_header(target)["size_xyz"] == list(chest.GetSize())


def test_multi_frame_beside_a_classic_series_is_ignored(tmp_path, chest, caplog) -> None:
    write_dicom_series(chest, tmp_path / "dcm" / "classic")
    write_enhanced_ct(array(chest), tmp_path / "dcm" / "enhanced" / "ct.dcm")
    with caplog.at_level(logging.WARNING, logger="gohscore"):
        scan = io.read_scan(tmp_path / "dcm")
    assert len(scan.files) == chest.GetSize()[2] and "ignoring" in caplog.text


def test_discover_and_validate_accept_zip_entries(tmp_path, chest) -> None:
    import pandas as pd

    cohort = tmp_path / "cohort"
    (cohort / "scans").mkdir(parents=True)
    write_dicom_series(chest, tmp_path / "p1")
    zip_tree(tmp_path / "p1", cohort / "scans" / "P1.zip")
    sitk.WriteImage(chest, str(cohort / "scans" / "P2.nii.gz"))
    pd.DataFrame([labels_row("P1", chest), labels_row("P2", chest)]).to_csv(
        cohort / "labels.csv", index=False
    )
    found = discover_scans(cohort)
    assert found == {"P1": cohort / "scans" / "P1.zip", "P2": cohort / "scans" / "P2.nii.gz"}
    problems, summary = validate_cohort(cohort)
    assert problems == [] and summary["formats"] == {"dicom": 1, "nifti": 1}


def test_nifti_nonfinite_count_reads_the_raw_block(tmp_path, chest) -> None:
    values = array(chest).astype(np.float64)
    values.flat[[5, 999, 20_000]] = [np.nan, np.inf, -np.inf]
    sitk.WriteImage(sitk.GetImageFromArray(values), str(tmp_path / "f.nii"))
    assert np.count_nonzero(np.isnan(array(sitk.ReadImage(str(tmp_path / "f.nii"))))) == 0  # ITK hides them
    assert io.nifti_nonfinite_count(tmp_path / "f.nii") == 3
    assert io.nifti_nonfinite_count(tmp_path / "f.nii", chunk=1001) == 3  # chunks not a multiple of 8 bytes
    sitk.WriteImage(chest, str(tmp_path / "int.nii"))
    assert io.nifti_nonfinite_count(tmp_path / "int.nii") == 0


def test_unsafe_member_names() -> None:
    from gohscore.archive import unsafe_member

    for name in ("../x.dcm", "a/../../x", "/etc/x", "\\x", "C:/x", "a\\..\\x"):
        assert unsafe_member(name), name
    for name in ("a/b/c.dcm", "IM..0001", "x..y/z"):
        assert not unsafe_member(name), name


def test_zip_members_hash_like_files(tmp_path) -> None:
    (tmp_path / "a.bin").write_bytes(b"abc" * 1000)
    with zipfile.ZipFile(tmp_path / "a.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(tmp_path / "a.bin", "d/a.bin")
    member = ArchiveMember(tmp_path / "a.zip", "d/a.bin")
    assert io.sha256_files([member]) == io.sha256_files([tmp_path / "a.bin"])
    shutil.rmtree(tmp_path / "d", ignore_errors=True)
