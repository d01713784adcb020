"""End-to-end tests of the phantom commands and the DICOM writer (tiny size, temporary folders)."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pandas as pd
import pydicom
import SimpleITK as sitk

from gohscore.cli import main as cli
from gohscore.goh import SCORE_COLUMNS, Z_COLUMNS
from gohscore.io import check_nifti_complete
from gohscore.phantom.cohort import generate_patient, volume_image, write_patient
from gohscore.phantom.dicom import write_dicom_series
from gohscore.phantom.nifti import write_nifti_gz
from gohscore.phantom.observers import observer_patients
from gohscore.phantom.sizes import PatientParams, PhantomParams

TINY = {"n_patients": 6, "size": "tiny", "dicom_every": 3, "n_observer_patients": 2, "patches_per_pattern": 1}


def _read_series(folder):
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    return reader.Execute()


def test_dicom_round_trip_matches_nifti(tmp_path):
    pat = generate_patient("P0003", PhantomParams.from_section(TINY), 7)
    write_dicom_series(pat.volume, pat.spacing_xyz_mm, pat.origin_xyz_mm, "P0003", tmp_path / "dcm", 7)
    nifti = tmp_path / "P0003.nii.gz"
    sitk.WriteImage(volume_image(pat.volume, pat.spacing_xyz_mm, pat.origin_xyz_mm), str(nifti), True)
    a, b = _read_series(tmp_path / "dcm"), sitk.ReadImage(str(nifti))
    assert np.array_equal(sitk.GetArrayFromImage(a), sitk.GetArrayFromImage(b))
    assert np.array_equal(sitk.GetArrayFromImage(a), pat.volume)
    assert np.allclose(a.GetSpacing(), b.GetSpacing(), atol=1e-4)
    assert np.allclose(a.GetOrigin(), b.GetOrigin(), atol=1e-3)
    assert np.allclose(a.GetDirection(), b.GetDirection())
    ds = pydicom.dcmread(tmp_path / "dcm" / "IM0001.dcm")
    assert ds.Modality == "CT" and ds.PatientID == "P0003" and float(ds.RescaleIntercept) == -1024
    assert int(ds.pixel_array.min()) == int(pat.volume[0].min()) + 1024  # stored values are not plain HU


def test_fast_nifti_writer_reads_back_as_simpleitk_writes(tmp_path):
    rng = np.random.default_rng(0)
    volume = rng.normal(-500, 400, (7, 33, 41)).astype(np.int16)
    spacing, origin = (0.703, 0.703, 1.25), (-181.3, -176.2, -300.5)
    path = tmp_path / "fast.nii.gz"
    write_nifti_gz(path, volume, spacing, origin)
    sitk.WriteImage(volume_image(volume, spacing, origin), str(tmp_path / "itk.nii"))
    fast, itk = sitk.ReadImage(str(path)), sitk.ReadImage(str(tmp_path / "itk.nii"))
    assert fast.GetPixelID() == sitk.sitkInt16
    assert np.array_equal(sitk.GetArrayFromImage(fast), volume)
    assert fast.GetSpacing() == itk.GetSpacing() and fast.GetOrigin() == itk.GetOrigin()
    assert fast.GetDirection() == itk.GetDirection()
    check_nifti_complete(path)  # one gzip member: its trailer holds the whole length
    raw = gzip.decompress(path.read_bytes())  # checks the gzip CRC and length too
    assert raw[:352] == (tmp_path / "itk.nii").read_bytes()[:352]  # the very header ITK writes
    assert raw[352:] == volume.tobytes()
    # 2D (the patches): as ITK writes a 2D image
    image = volume[3]
    write_nifti_gz(tmp_path / "p.nii.gz", image, spacing[:2], origin[:2])
    ref = sitk.GetImageFromArray(image)
    ref.SetSpacing(spacing[:2])
    ref.SetOrigin(origin[:2])
    sitk.WriteImage(ref, str(tmp_path / "p.nii"))
    back = sitk.ReadImage(str(tmp_path / "p.nii.gz"))
    assert back.GetDimension() == 2 and np.array_equal(sitk.GetArrayFromImage(back), image)
    assert gzip.decompress((tmp_path / "p.nii.gz").read_bytes()) == (tmp_path / "p.nii").read_bytes()


def test_streamed_scan_equals_generated_volume(tmp_path, monkeypatch):
    import gohscore.phantom.cohort as cohort

    monkeypatch.setattr(cohort, "SLAB_SLICES", 3)  # several slabs, the last one short
    params = PhantomParams.from_section(TINY)
    for pid in ("P0002", "P0003"):  # NIfTI, DICOM (dicom_every 3)
        pat = generate_patient(pid, params, 7)
        part = write_patient(pid, params, 7, tmp_path / "s" / pid, tmp_path / "p" / pid)
        scan = tmp_path / "s" / pid
        img = sitk.ReadImage(str(scan / f"{pid}.nii.gz")) if pid == "P0002" else _read_series(scan)
        assert np.array_equal(sitk.GetArrayFromImage(img), pat.volume)
        assert np.allclose(img.GetOrigin(), pat.origin_xyz_mm, atol=1e-3)
        assert np.allclose(img.GetSpacing(), pat.spacing_xyz_mm, atol=1e-4)
        assert part["label"] == pat.label and part["info"]["shape_xyz"][2] == pat.volume.shape[0]


def test_phantom_commands_end_to_end(tmp_path):
    """Per-patient jobs get only the patient keys (as in the workflow); the tables pick the observers."""
    params = json.dumps({k: TINY[k] for k in PatientParams.keys()})
    out = tmp_path / "phantom"
    parts = []
    for i in range(1, 7):
        pid = f"P{i:04d}"
        part = out / "parts" / f"{pid}.json"
        args = ["--patient", pid, "--params-json", params, "--seed", "7"]
        args += [
            "--scan-dir",
            str(out / "scans" / pid),
            "--patch-dir",
            str(out / "patches" / pid),
            "--part",
            str(part),
        ]
        assert cli(["phantom", *args]) == 0
        parts.append(str(part))
    tables = ["phantom-tables", "--parts", *parts, "--cohort", str(out), "--params-json", json.dumps(TINY)]
    assert cli([*tables, "--seed", "7"]) == 0
    labels = pd.read_csv(out / "labels.csv")
    assert list(labels.columns[: 1 + 5 + 15]) == ["patient", *Z_COLUMNS, *SCORE_COLUMNS]
    assert labels["patient"].tolist() == [f"P{i:04d}" for i in range(1, 7)]
    observers = pd.read_csv(out / "observers.csv")
    assert len(observers) == 2 * 4 and set(observers["observer"]) == {"Obs1", "Obs2"}
    assert sorted(set(observers["patient"])) == observer_patients(7, 6, 2)
    patches = pd.read_csv(out / "patches" / "patches.csv")
    assert list(patches.columns) == ["file", "pattern", "patient"]
    for row in patches.itertuples():
        img = sitk.ReadImage(str(out / "patches" / row.file))
        assert img.GetDimension() == 2 and row.file.startswith(row.patient)
    # patient 3 and 6 are DICOM series, the others one NIfTI file each
    assert (out / "scans" / "P0001" / "P0001.nii.gz").exists()
    dicom = _read_series(out / "scans" / "P0003")
    nifti = sitk.ReadImage(str(out / "scans" / "P0001" / "P0001.nii.gz"))
    for img, pid in ((dicom, "P0003"), (nifti, "P0001")):
        row = labels.set_index("patient").loc[pid]
        z0, dz, n = img.GetOrigin()[2], img.GetSpacing()[2], img.GetSize()[2]
        for col in Z_COLUMNS:
            k = (row[col] - z0) / dz
            assert abs(k - round(k)) < 1e-3 and 0 <= k < n  # levels sit on slice centres
    # the cohort command gives the same labels
    assert (
        cli(
            [
                "phantom-cohort",
                "--out",
                str(tmp_path / "c"),
                "--params-json",
                json.dumps(TINY),
                "--seed",
                "7",
                "--jobs",
                "2",
            ]
        )
        == 0
    )
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "c" / "labels.csv"), labels)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "c" / "observers.csv"), observers)


def test_phantom_command_rejects_bad_input(tmp_path, capsys):
    args = [
        "--seed",
        "7",
        "--scan-dir",
        str(tmp_path / "s"),
        "--patch-dir",
        str(tmp_path / "p"),
        "--part",
        str(tmp_path / "x.json"),
    ]
    assert cli(["phantom", "--patient", "P0009", "--params-json", json.dumps(TINY), *args]) == 2
    assert cli(["phantom", "--patient", "P0001", "--params-json", "{not json", *args]) == 2
    assert "phantom" in capsys.readouterr().err


def test_a_patient_does_not_depend_on_the_cohort_size(tmp_path):
    """Growing the cohort or its observer share leaves an existing patient's files and part unchanged."""
    outputs = []
    for n, k in ((6, 2), (30, 9)):
        out = tmp_path / f"n{n}"
        section = json.dumps({**TINY, "n_patients": n, "n_observer_patients": k})
        args = [
            "--patient",
            "P0002",
            "--params-json",
            section,
            "--seed",
            "7",
            "--part",
            str(out / "part.json"),
        ]
        assert (
            cli(["phantom", *args, "--scan-dir", str(out / "scan"), "--patch-dir", str(out / "patches")]) == 0
        )
        part = json.loads((out / "part.json").read_text(encoding="utf-8"))
        part["info"].pop("seconds")
        outputs.append((part, (out / "scan" / "P0002.nii.gz").read_bytes()))
    assert outputs[0] == outputs[1]
    assert len(outputs[0][0]["observers"]) == 4  # kept or dropped by phantom-tables, not here


def test_phantom_patient_beyond_the_cohort_is_refused(tmp_path, capsys):
    """A patient id past n_patients stops with the key named and writes nothing."""
    args = [
        "--patient",
        "P0009",
        "--params-json",
        json.dumps(TINY),
        "--seed",
        "7",
        "--part",
        str(tmp_path / "p.json"),
    ]
    assert cli(["phantom", *args, "--scan-dir", str(tmp_path / "s"), "--patch-dir", str(tmp_path / "q")]) == 2
    assert "n_patients" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
