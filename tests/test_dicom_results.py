"""DICOM results: the SR and the QC capture read back with pydicom hold every value of levels.csv and summary.json."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pydicom  # noqa: E402
import pytest  # noqa: E402
import SimpleITK as sitk  # noqa: E402

from gohscore.dicom_results import SC_NAME, SCHEME, SR_NAME, write_dicom_results  # noqa: E402
from gohscore.errors import GohscoreError  # noqa: E402
from tests.conftest import chest_image, write_dicom_series  # noqa: E402

# levels at slice positions of chest_image() (origin z -300 mm, 7.5 mm apart): slices 30, 25, 20, 14, 9
Z_MM = [-75.0, -112.5, -150.0, -195.0, -232.5]
SCORES = [(0, 0, 0), (5, 5, 0), (10, 5, 5), (25, 15, 15), (40, 20, 30)]  # TOT, GG, RET per level
EXTENT = 16.0  # mean TOT
SERIES_UID = "1.2.826.0.1.3680043.2.1125.1"


def write_result(folder: Path, scan: Path, stage: str = "indeterminate") -> Path:
    """A predict result folder written by hand: levels.csv, summary.json and a small qc.png."""
    folder.mkdir(parents=True)
    rows = [
        {"patient": "S1", "level": k + 1, "z_mm": z, "TOT": s[0], "GG": s[1], "RET": s[2]}
        for k, (z, s) in enumerate(zip(Z_MM, SCORES, strict=True))
    ]
    pd.DataFrame(rows).to_csv(folder / "levels.csv", index=False)
    summary = {"patient": "S1", "scan": str(scan), "global_extent_percent": EXTENT, "goh_stage": stage}
    (folder / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    fig, ax = plt.subplots(figsize=(2, 1), dpi=50)
    ax.imshow(np.arange(12).reshape(3, 4))
    fig.savefig(folder / "qc.png")
    plt.close(fig)
    return folder


def content_items(item) -> list:
    """Every content item under ``item``, depth first."""
    out = []
    for child in getattr(item, "ContentSequence", []):
        out.append(child)
        out += content_items(child)
    return out


def groups(sr) -> list[dict]:
    """Per measurement group: its tracking identifier, {concept code: number}, qualitative codes, source SOP uids."""
    found = []
    for item in content_items(sr):
        if item.ValueType != "CONTAINER" or item.ConceptNameCodeSequence[0].CodeValue != "125007":
            continue
        group: dict = {"numbers": {}, "codes": {}, "sources": []}
        for child in item.ContentSequence:
            name = child.ConceptNameCodeSequence[0]
            if child.ValueType == "TEXT" and name.CodeMeaning == "Tracking Identifier":
                group["id"] = child.TextValue
            elif child.ValueType == "NUM":
                assert name.CodingSchemeDesignator == SCHEME
                measured = child.MeasuredValueSequence[0]
                unit = measured.MeasurementUnitsCodeSequence[0].CodeValue
                group["numbers"][name.CodeValue] = (float(measured.NumericValue), unit)
            elif child.ValueType == "CODE":
                group["codes"][name.CodeValue] = child.ConceptCodeSequence[0].CodeValue
            elif child.ValueType == "IMAGE":
                group["sources"].append(child.ReferencedSOPSequence[0].ReferencedSOPInstanceUID)
        found.append(group)
    return found


def test_sr_and_capture_of_a_dicom_scan_join_its_study(tmp_path) -> None:
    files = write_dicom_series(chest_image(), tmp_path / "ct", SERIES_UID)
    result = write_result(tmp_path / "result", tmp_path / "ct")
    write_dicom_results(result, tmp_path / "dcm", version="9.9.9")
    sr = pydicom.dcmread(tmp_path / "dcm" / SR_NAME)
    sc = pydicom.dcmread(tmp_path / "dcm" / SC_NAME)
    table = pd.read_csv(result / "levels.csv")

    assert sr.Modality == "SR" and sr.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.34"  # Comprehensive 3D SR
    assert sr.ContentTemplateSequence[0].TemplateIdentifier == "1500"
    assert sr.StudyInstanceUID == sc.StudyInstanceUID == SERIES_UID.rsplit(".", 1)[0]
    assert len({sr.SeriesInstanceUID, sc.SeriesInstanceUID, SERIES_UID}) == 3
    evidence = sr.CurrentRequestedProcedureEvidenceSequence[0]
    assert evidence.ReferencedSeriesSequence[0].SeriesInstanceUID == SERIES_UID
    # the CT slice at each level: chest_image's slice k lies at z = -300 + 7.5 k, file IM{k:04d}
    expected_sop = [pydicom.dcmread(files[k]).SOPInstanceUID for k in (30, 25, 20, 14, 9)]
    referenced = {
        r.ReferencedSOPInstanceUID for r in evidence.ReferencedSeriesSequence[0].ReferencedSOPSequence
    }
    assert referenced == set(expected_sop)

    found = groups(sr)
    assert len(found) == 6
    for row, group, sop in zip(table.itertuples(), found[:5], expected_sop, strict=True):
        assert group["id"].startswith(f"L{row.level} ")
        assert group["numbers"]["LEVEL_Z"] == (pytest.approx(row.z_mm), "mm")
        for pattern in ("TOT", "GG", "RET"):
            assert group["numbers"][pattern] == (pytest.approx(getattr(row, pattern)), "%")
        assert group["sources"] == [sop]
    assert found[5]["numbers"] == {"EXTENT": (pytest.approx(EXTENT), "%")}
    assert found[5]["codes"] == {"121071": "GOH", "STAGE": "INDETERMINATE"}  # finding type, stage
    algorithms = [
        i for i in content_items(sr) if i.ConceptNameCodeSequence[0].CodeMeaning == "Algorithm Version"
    ]
    assert algorithms and {a.TextValue for a in algorithms} == {"9.9.9"}

    assert sc.Modality == "OT" and sc.SOPClassUID == "1.2.840.10008.5.1.4.1.1.7"  # Secondary Capture
    png = plt.imread(result / "qc.png")[..., :3]
    assert sc.pixel_array.shape == png.shape
    assert np.array_equal(sc.pixel_array, np.rint(png * 255).astype(np.uint8))


def test_a_nifti_scan_gets_a_new_study_shared_by_both(tmp_path) -> None:
    sitk.WriteImage(chest_image(), str(tmp_path / "S1.nii.gz"))
    result = write_result(tmp_path / "result", tmp_path / "S1.nii.gz", stage="extensive")
    sr_path, sc_path = write_dicom_results(result, tmp_path / "dcm")
    sr, sc = pydicom.dcmread(sr_path), pydicom.dcmread(sc_path)
    assert sr.StudyInstanceUID == sc.StudyInstanceUID and sr.PatientID == sc.PatientID == "S1"
    evidence = sr.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0]
    assert evidence.SeriesInstanceUID == sc.SeriesInstanceUID
    assert evidence.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == sc.SOPInstanceUID
    assert groups(sr)[5]["codes"]["STAGE"] == "EXTENSIVE"
    # the same result writes the same objects again; a changed result gets new ones
    again = write_dicom_results(result, tmp_path / "again")
    assert pydicom.dcmread(again[0]).SOPInstanceUID == sr.SOPInstanceUID
    table = pd.read_csv(result / "levels.csv")
    table.loc[0, "TOT"] = 5
    table.to_csv(result / "levels.csv", index=False)
    changed = write_dicom_results(result, tmp_path / "changed")
    assert pydicom.dcmread(changed[0]).SOPInstanceUID != sr.SOPInstanceUID


def test_a_folder_that_is_no_result_is_refused_and_nothing_written(tmp_path) -> None:
    result = write_result(tmp_path / "result", tmp_path / "missing.nii.gz")
    (result / "qc.png").unlink()
    with pytest.raises(GohscoreError, match="qc.png not found"):
        write_dicom_results(result, tmp_path / "dcm")
    assert not (tmp_path / "dcm").exists() or not any((tmp_path / "dcm").iterdir())
    pd.read_csv(result / "levels.csv").iloc[:4].to_csv(result / "levels.csv", index=False)
    with pytest.raises(GohscoreError, match="lacks columns|one row per level"):
        write_dicom_results(result, tmp_path / "dcm")


def test_predict_dicom_out_reports_what_levels_csv_says(tmp_path) -> None:
    from gohscore.cli import main as cli_main
    from tests.tiny_models import write_tiny_results

    results = write_tiny_results(tmp_path / "results")
    write_dicom_series(chest_image(), tmp_path / "S1", SERIES_UID)
    argv = ["predict", "--models", str(results), "--scan", str(tmp_path / "S1"), "--device", "cpu"]
    assert cli_main([*argv, "--out-dir", str(tmp_path / "out"), "--dicom-out", str(tmp_path / "pacs")]) == 0
    table = pd.read_csv(tmp_path / "out" / "S1" / "levels.csv")
    summary = json.loads((tmp_path / "out" / "S1" / "summary.json").read_text(encoding="utf-8"))
    sr = pydicom.dcmread(tmp_path / "pacs" / "S1" / SR_NAME)
    assert sr.StudyInstanceUID == SERIES_UID.rsplit(".", 1)[0]
    found = groups(sr)
    for row, group in zip(table.itertuples(), found[:5], strict=True):
        assert group["numbers"]["LEVEL_Z"][0] == pytest.approx(row.z_mm, abs=1e-9)
        assert [group["numbers"][p][0] for p in ("TOT", "GG", "RET")] == [row.TOT, row.GG, row.RET]
    assert found[5]["numbers"]["EXTENT"][0] == pytest.approx(summary["global_extent_percent"])
    assert found[5]["codes"]["STAGE"] == summary["goh_stage"].upper()
    assert pydicom.dcmread(tmp_path / "pacs" / "S1" / SC_NAME).SeriesInstanceUID != SERIES_UID
    # the algorithm's parameters name each model's weights by the hash predict recorded
    shas = {m["sha256"] for m in summary["provenance"]["models"]}
    params = {
        i.TextValue
        for i in content_items(sr)
        if i.ConceptNameCodeSequence[0].CodeMeaning == "Algorithm Parameters"
    }
    assert len(shas) == 4 and {p.rsplit(" ", 1)[1] for p in params} == shas
