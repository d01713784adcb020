"""Every bad-input case: one-line error naming the file/row/column, exit status 2, no partial output."""

from __future__ import annotations

import gzip
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from gohscore import io
from gohscore.cli import main as cli_main
from tests.conftest import (
    GRID_PARAMS,
    chest_array,
    chest_image,
    resample_cohort,
    tilted,
    write_cohort,
    write_dicom_series,
    write_enhanced_ct,
    zip_tree,
)

PARAMS = GRID_PARAMS


def resample(scan: Path, out: Path, capsys) -> tuple[int, str]:
    """Run 'gohscore resample' through the CLI; return exit status and stderr."""
    rc = cli_main(
        [
            "resample",
            "--scan",
            str(scan),
            "--patient",
            "X",
            "--params-json",
            PARAMS,
            "--volume",
            str(out / "X.npy"),
            "--geometry",
            str(out / "X.json"),
        ]
    )
    return rc, capsys.readouterr().err


def assert_failed(rc: int, err: str, out: Path, *needles: str) -> None:
    """Exit 2, one line naming ``needles``, and nothing left in ``out``."""
    assert rc == 2
    lines = [ln for ln in err.splitlines() if "error:" in ln]
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert not out.exists() or not any(out.iterdir()), list(out.iterdir())


def ingest(cohort: Path, out: Path, capsys) -> tuple[int, str]:
    """Resample every scan (must succeed) and run 'gohscore ingest' through the CLI."""
    geometries = resample_cohort(cohort, out.parent / "pre")
    capsys.readouterr()
    argv = ["ingest", "--cohort", str(cohort), "--geometry", *geometries]
    for name in ("manifest", "labels", "observers", "patches"):
        argv += [f"--{name}", str(out / f"{name}.parquet")]
    return cli_main(argv), capsys.readouterr().err


def edit_labels(cohort: Path, change) -> pd.DataFrame:
    """Apply ``change`` to labels.csv and save it."""
    df = pd.read_csv(cohort / "labels.csv", dtype={"patient": str})
    df = change(df)
    df.to_csv(cohort / "labels.csv", index=False)
    return df


# --- scans -----------------------------------------------------------------------------------


def test_unreadable_image(tmp_path, capsys) -> None:
    scan = tmp_path / "bad.nii.gz"
    scan.write_bytes(b"this is not an image at all")
    rc, err = resample(scan, tmp_path / "out", capsys)
    assert_failed(rc, err, tmp_path / "out", "bad.nii.gz", "re-export")


@pytest.mark.parametrize("suffix", ["nii.gz", "mha", "nii"])
def test_truncated_image(tmp_path, chest, capsys, suffix) -> None:
    scan = tmp_path / f"cut.{suffix}"
    sitk.WriteImage(chest, str(scan), useCompression=False)
    data = scan.read_bytes()
    scan.write_bytes(data[: len(data) // 2])
    rc, err = resample(scan, tmp_path / "out", capsys)
    assert_failed(rc, err, tmp_path / "out", f"cut.{suffix}", "truncated")


def test_2d_image(tmp_path, capsys) -> None:
    scan = tmp_path / "slice.nii.gz"
    sitk.WriteImage(sitk.GetImageFromArray(chest_array()[10]), str(scan))
    rc, err = resample(scan, tmp_path / "out", capsys)
    assert_failed(rc, err, tmp_path / "out", "slice.nii.gz", "not a 3D volume")


def test_single_slice_3d_image(tmp_path, capsys) -> None:
    scan = tmp_path / "one.mha"
    sitk.WriteImage(sitk.GetImageFromArray(chest_array()[10:11]), str(scan))
    rc, err = resample(scan, tmp_path / "out", capsys)
    assert_failed(rc, err, tmp_path / "out", "one.mha", "not a 3D volume")


def test_not_hu(tmp_path, capsys) -> None:
    raw = (chest_array().astype(np.int32) + 1024).clip(0, 4095).astype(np.uint16)  # no rescale applied
    image = sitk.GetImageFromArray(raw)
    scan = tmp_path / "raw.nrrd"
    sitk.WriteImage(image, str(scan))
    rc, err = resample(scan, tmp_path / "out", capsys)
    assert_failed(rc, err, tmp_path / "out", "raw.nrrd", "HU", "RescaleIntercept")


def test_non_axial_orientation(tmp_path, chest, capsys) -> None:
    c, s = np.cos(np.radians(30)), np.sin(np.radians(30))
    chest.SetDirection((1, 0, 0, 0, c, -s, 0, s, c))  # slices tilted by 30 degrees
    scan = tmp_path / "oblique.mha"
    sitk.WriteImage(chest, str(scan))
    rc, err = resample(scan, tmp_path / "out", capsys)
    assert_failed(rc, err, tmp_path / "out", "oblique.mha", "not axial")


def test_sagittal_is_rejected(tmp_path, chest, capsys) -> None:
    chest.SetDirection((0, 0, 1, 1, 0, 0, 0, 1, 0))  # slice axis along world x
    scan = tmp_path / "sag.nii.gz"
    sitk.WriteImage(chest, str(scan))
    rc, err = resample(scan, tmp_path / "out", capsys)
    assert_failed(rc, err, tmp_path / "out", "sag.nii.gz", "not axial")


def test_dicom_mixed_series_without_axial_ct(tmp_path, chest, capsys) -> None:
    folder = tmp_path / "dcm"
    write_dicom_series(chest[:, :, :3], folder, "1.2.3.1", modality="MR")
    for k, f in enumerate(write_dicom_series(chest[:, :, 3:6], tmp_path / "pt", "1.2.3.2", modality="PT")):
        f.rename(folder / f"pt{k}.dcm")
    rc, err = resample(folder, tmp_path / "out", capsys)
    assert_failed(rc, err, tmp_path / "out", "dcm", "no axial CT series", "1.2.3.1", "1.2.3.2")


def test_dicom_mixed_series_picks_largest_and_says_so(tmp_path, chest, capsys, caplog) -> None:
    folder = tmp_path / "dcm"
    write_dicom_series(chest, folder, "1.2.3.1")
    scout = tmp_path / "scout"
    for k, f in enumerate(write_dicom_series(chest[:, :, :4], scout, "1.2.3.9", description="scout")):
        f.rename(folder / f"scout{k}.dcm")
    with caplog.at_level(logging.WARNING, logger="gohscore"):
        rc, _ = resample(folder, tmp_path / "out", capsys)
    assert rc == 0 and "using 1.2.3.1" in caplog.text and "scout" in caplog.text


def test_dicom_gantry_tilt(tmp_path, chest, capsys) -> None:
    write_dicom_series(chest, tmp_path / "dcm", tilt_deg=15.0)
    rc, err = resample(tmp_path / "dcm", tmp_path / "out", capsys)
    assert_failed(rc, err, tmp_path / "out", "dcm", "gantry tilt of 15 degrees", "tilt-corrected")


def test_dicom_irregular_spacing(tmp_path, chest, capsys) -> None:
    files = write_dicom_series(chest, tmp_path / "dcm")
    files[17].unlink()  # a missing slice
    rc, err = resample(tmp_path / "dcm", tmp_path / "out", capsys)
    assert_failed(rc, err, tmp_path / "out", "dcm", "irregular slice spacing")


def test_path_with_spaces_and_non_ascii_works(tmp_path, chest, capsys) -> None:
    folder = tmp_path / "my scans ä" / "Patiënt 1 名"
    folder.mkdir(parents=True)
    sitk.WriteImage(chest, str(folder / "scan file.nii.gz"))
    write_dicom_series(chest, folder / "dicom é")
    out = tmp_path / "out put ü"
    for scan in (folder / "scan file.nii.gz", folder / "dicom é"):
        rc, err = resample(scan, out, capsys)
        assert rc == 0, err
        assert (out / "X.npy").is_file() and (out / "X.json").is_file()


def test_other_patients_still_complete(tmp_path, capsys) -> None:
    """What snakemake --keep-going relies on: each patient's step is independent."""
    cohort = write_cohort(tmp_path / "c", {"A": chest_image(), "B": chest_image(seed=1)})
    (cohort / "scans" / "A.nii.gz").write_bytes(gzip.compress(b"garbage"))
    rc_a, _ = resample(cohort / "scans" / "A.nii.gz", tmp_path / "a", capsys)
    rc_b, _ = resample(cohort / "scans" / "B.nii.gz", tmp_path / "b", capsys)
    assert (rc_a, rc_b) == (2, 0) and (tmp_path / "b" / "X.npy").exists()


# --- tables ----------------------------------------------------------------------------------


def test_patient_in_labels_without_scan(tmp_path, cohort, capsys) -> None:
    (cohort / "scans" / "P1.nii.gz").unlink()
    rc, err = ingest(cohort, tmp_path / "out", capsys)
    assert_failed(rc, err, tmp_path / "out", "labels.csv", "row 3", "'P1'", "no scan")


def test_scan_without_labels(tmp_path, cohort, capsys) -> None:
    edit_labels(cohort, lambda df: df[df["patient"] != "P2"])
    rc, err = ingest(cohort, tmp_path / "out", capsys)
    assert_failed(rc, err, tmp_path / "out", "P2.nii.gz", "no row in")


def test_duplicate_patient_ids(tmp_path, cohort, capsys) -> None:
    edit_labels(cohort, lambda df: pd.concat([df, df.iloc[[0]]]))
    rc, err = ingest(cohort, tmp_path / "out", capsys)
    assert_failed(rc, err, tmp_path / "out", "labels.csv", "row 5", "'P0'", "row 2")


def test_levels_out_of_order(tmp_path, cohort, capsys) -> None:
    def swap(df: pd.DataFrame) -> pd.DataFrame:
        df.loc[1, ["L2_z_mm", "L3_z_mm"]] = df.loc[1, ["L3_z_mm", "L2_z_mm"]].to_numpy()
        return df

    edit_labels(cohort, swap)
    rc, err = ingest(cohort, tmp_path / "out", capsys)
    assert_failed(rc, err, tmp_path / "out", "labels.csv", "row 3", "L2_z_mm", "out of order")


def test_level_outside_scan(tmp_path, cohort, capsys) -> None:
    edit_labels(cohort, lambda df: df.assign(L1_z_mm=np.where(df["patient"] == "P2", 500.0, df["L1_z_mm"])))
    rc, err = ingest(cohort, tmp_path / "out", capsys)
    assert_failed(rc, err, tmp_path / "out", "labels.csv", "row 4", "L1_z_mm", "outside the scan")


@pytest.mark.parametrize(
    "value, needle", [(105, "outside 0..100"), (-5, "outside 0..100"), (np.nan, "missing score")]
)
def test_scores_out_of_range_or_nan(tmp_path, cohort, capsys, value, needle) -> None:
    edit_labels(cohort, lambda df: df.assign(L3_RET=[0, value, 0], L3_GG=0, L3_TOT=[0, 100, 0]))
    rc, err = ingest(cohort, tmp_path / "out", capsys)
    assert_failed(rc, err, tmp_path / "out", "labels.csv", "row 3", "L3_RET", needle)


def test_scores_not_multiple_of_5_warn_and_round(tmp_path, cohort, capsys, caplog) -> None:
    edit_labels(cohort, lambda df: df.assign(L2_TOT=[12.5, 7, 0], L2_GG=[12.5, 7, 0], L2_RET=0))
    with caplog.at_level(logging.WARNING, logger="gohscore"):
        rc, err = ingest(cohort, tmp_path / "out", capsys)
    assert rc == 0, err
    labels = pd.read_parquet(tmp_path / "out" / "labels.parquet")
    assert labels["L2_TOT"].tolist() == [15, 5, 0]  # half up, not banker's rounding
    assert "L2_TOT" in caplog.text and "rounded" in caplog.text


@pytest.mark.parametrize("pattern", ["GG", "RET"])
def test_gg_or_ret_above_tot(tmp_path, cohort, capsys, pattern) -> None:
    edit_labels(
        cohort, lambda df: df.assign(**{"L4_TOT": 10, "L4_GG": 0, "L4_RET": 0, f"L4_{pattern}": [0, 0, 30]})
    )
    rc, err = ingest(cohort, tmp_path / "out", capsys)
    assert_failed(rc, err, tmp_path / "out", "labels.csv", "row 4", f"L4_{pattern}", "above L4_TOT")


def test_unknown_column(tmp_path, cohort, capsys) -> None:
    edit_labels(cohort, lambda df: df.rename(columns={"L5_RET": "L5_RETICULATION"}))
    rc, err = ingest(cohort, tmp_path / "out", capsys)
    assert_failed(rc, err, tmp_path / "out", "labels.csv", "L5_RETICULATION", "L5_RET")


def test_missing_column(tmp_path, cohort, capsys) -> None:
    edit_labels(cohort, lambda df: df.drop(columns=["L3_z_mm"]))
    rc, err = ingest(cohort, tmp_path / "out", capsys)
    assert_failed(rc, err, tmp_path / "out", "labels.csv", "missing column 'L3_z_mm'")


def test_observer_patient_not_in_labels(tmp_path, cohort, capsys) -> None:
    labels = pd.read_csv(cohort / "labels.csv", dtype={"patient": str})
    obs = labels.drop(columns=[c for c in labels.columns if c.endswith("_z_mm")]).iloc[[0]]
    obs = obs.assign(patient="NOPE", observer="Obs1", read=1)
    obs.to_csv(cohort / "observers.csv", index=False)
    rc, err = ingest(cohort, tmp_path / "out", capsys)
    assert_failed(rc, err, tmp_path / "out", "observers.csv", "row 2", "'NOPE'")


# --- exports as hospitals make them ----------------------------------------------------------


@pytest.mark.parametrize("suffix", ["nrrd", "nii", "nii.gz", "mha"])
def test_nonfinite_voxels(tmp_path, chest, capsys, suffix) -> None:
    """NaN/Inf in a float image; ITK reads NIfTI NaN as 0, so that one is counted in the raw data."""
    values = sitk.GetArrayFromImage(chest).astype(np.float32)
    sitk.WriteImage(sitk.GetImageFromArray(values), str(tmp_path / f"fine.{suffix}"))
    io.read_scan(tmp_path / f"fine.{suffix}")  # a float scan with finite voxels is fine
    values[3, 4, 5:8] = np.nan
    values[20, 10, 10:12] = [np.inf, -np.inf]
    scan = tmp_path / f"nan.{suffix}"
    sitk.WriteImage(sitk.GetImageFromArray(values), str(scan))
    rc, err = resample(scan, tmp_path / "out", capsys)
    assert_failed(rc, err, tmp_path / "out", f"nan.{suffix}", "5 non-finite voxels", "re-export")


def write_odd_slices(folder: Path, chest: sitk.Image, odd: str) -> None:
    """The axial series with slices 10-13 replaced, same SeriesInstanceUID and position, differing in ``odd``."""
    files = write_dicom_series(chest, folder, "1.2.3.5")
    for f in files[10:14]:
        f.unlink()
    part = sitk.Image(chest[:, :, 10:14])
    z = [chest.TransformIndexToPhysicalPoint((0, 0, k))[2] for k in range(10, 14)]
    modality = "CT"
    if odd == "orientation":
        part.SetDirection((1, 0, 0, 0, 0, 1, 0, -1, 0))  # coronal
    elif odd == "spacing":
        part.SetSpacing((5.0, 5.0, 7.5))
    elif odd == "size":
        part = part[:24, :20]
    else:
        modality = "MR"
    for k, f in enumerate(write_dicom_series(part, folder / "x", "1.2.3.5", modality=modality, z_override=z)):
        f.rename(folder / f"odd{k}.dcm")
    (folder / "x").rmdir()


@pytest.mark.parametrize(
    "odd, needle",
    [
        ("orientation", "mixes orientations"),
        ("spacing", "pixel spacing 5x5 mm (first file: 6x6 mm)"),
        ("size", "20 rows x 24 columns (first file: 40 x 48)"),
        ("modality", "modality MR (first file: CT)"),
    ],
)
def test_dicom_series_with_inconsistent_slices(tmp_path, chest, capsys, odd, needle) -> None:
    write_odd_slices(tmp_path / "dcm", chest, odd)
    rc, err = resample(tmp_path / "dcm", tmp_path / "out", capsys)
    assert_failed(rc, err, tmp_path / "out", "1.2.3.5", "odd0.dcm", needle, "its own series")


@pytest.mark.parametrize("degrees, tag", [(12.0, 12.0), (0.5, None)])
def test_dicom_tilted_orientation_names_the_tilt(tmp_path, chest, capsys, degrees, tag) -> None:
    """Slices tilted against the axial plane (12 degrees: no longer 'axial'; 0.5: within 1 degree)."""
    write_dicom_series(tilted(chest, degrees), tmp_path / "dcm", tilt_deg=tag)
    rc, err = resample(tmp_path / "dcm", tmp_path / "out", capsys)
    assert_failed(rc, err, tmp_path / "out", "dcm", f"tilted by {degrees:.2f} degrees", "tilt-corrected")


def test_dicom_tree_with_two_patients(tmp_path, chest, capsys) -> None:
    import pydicom

    for patient, uid in (("A", "1.2.3.1"), ("B", "1.2.3.2")):
        for f in write_dicom_series(chest, tmp_path / "cd" / patient / "SER1", uid):
            ds = pydicom.dcmread(f)
            ds.PatientID = patient
            ds.save_as(f)
    rc, err = resample(tmp_path / "cd", tmp_path / "out", capsys)
    assert_failed(rc, err, tmp_path / "out", "cd", "2 patients", "'A', 'B'", "one patient's export")


def test_dicom_multi_frame(tmp_path, chest, capsys) -> None:
    write_enhanced_ct(chest_array(), tmp_path / "dcm" / "enhanced.dcm")
    rc, err = resample(tmp_path / "dcm", tmp_path / "out", capsys)
    assert_failed(rc, err, tmp_path / "out", "enhanced.dcm", "multi-frame", "36 frames", "classic series")


@pytest.mark.parametrize("member", ["../evil.dcm", "/tmp/evil.dcm", "SER1/../../evil.dcm"])
def test_zip_slip(tmp_path, chest, capsys, monkeypatch, member) -> None:
    import tempfile
    import zipfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    files = write_dicom_series(chest, tmp_path / "dcm")
    archive = zip_tree(tmp_path / "dcm", tmp_path / "P1.zip", prefix="SER1/")
    with zipfile.ZipFile(archive, "a") as zf:
        zf.writestr(member, files[0].read_bytes())
    rc, err = resample(archive, tmp_path / "out", capsys)
    assert_failed(rc, err, tmp_path / "out", "P1.zip", "unsafe path", repr(member))
    assert not (tmp_path / "evil.dcm").exists() and not Path("/tmp/evil.dcm").exists()
    assert list((tmp_path / "tmp").iterdir()) == []


def test_zip_damaged(tmp_path, chest, capsys) -> None:
    write_dicom_series(chest, tmp_path / "dcm")
    archive = zip_tree(tmp_path / "dcm", tmp_path / "P1.zip")
    archive.write_bytes(archive.read_bytes()[:-2000])  # cut: the central directory is gone
    rc, err = resample(archive, tmp_path / "out", capsys)
    assert_failed(rc, err, tmp_path / "out", "P1.zip", "not a readable zip")


def test_zip_without_a_series_names_the_zip(tmp_path, capsys) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "report.pdf").write_bytes(b"%PDF-1.4 nothing")
    archive = zip_tree(tmp_path / "docs", tmp_path / "P1.zip")
    rc, err = resample(archive, tmp_path / "out", capsys)
    assert_failed(rc, err, tmp_path / "out", f"no DICOM series found in {archive}")
    assert "gohscore-zip" not in err


def test_zip_with_a_bad_series_names_the_member(tmp_path, chest, capsys) -> None:
    write_odd_slices(tmp_path / "dcm", chest, "orientation")
    archive = zip_tree(tmp_path / "dcm", tmp_path / "P1.zip", prefix="PAT/SER/")
    rc, err = resample(archive, tmp_path / "out", capsys)
    assert_failed(rc, err, tmp_path / "out", f"{archive}/PAT/SER/odd0.dcm", "mixes orientations")
    assert "gohscore-zip" not in err
