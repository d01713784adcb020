"""A hand-made cohort mixing NIfTI, MetaImage, NRRD and DICOM runs through resample, ingest and validate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from gohscore import io
from gohscore.cli import main as cli_main
from gohscore.commands import ingest as ingest_cmd
from gohscore.commands import resample as resample_cmd
from gohscore.commands import validate as validate_cmd
from gohscore.errors import GohscoreError
from tests.conftest import GRID_PARAMS, chest_image, labels_row, resample_cohort, write_dicom_series

PARAMS = GRID_PARAMS


def make_mixed_cohort(root: Path) -> Path:
    """Four patients, one per format, plus observers and patches tables."""
    scans = root / "scans"
    scans.mkdir(parents=True)
    images = {f"P{i}": chest_image(seed=i) for i in range(4)}
    sitk.WriteImage(images["P0"], str(scans / "P0.nii.gz"))
    sitk.WriteImage(images["P1"], str(scans / "P1.mha"))
    (scans / "P2").mkdir()
    sitk.WriteImage(images["P2"], str(scans / "P2" / "volume.nrrd"))
    write_dicom_series(images["P3"], scans / "P3")
    pd.DataFrame([labels_row(p, img) for p, img in images.items()]).to_csv(root / "labels.csv", index=False)
    obs = []
    for observer in ("Obs1", "Obs2"):
        for read in (1, 2):
            row = {k: v for k, v in labels_row("P3", images["P3"]).items() if "_z_mm" not in k}
            obs.append({**row, "observer": observer, "read": read})
    pd.DataFrame(obs).to_csv(root / "observers.csv", index=False)
    (root / "patches").mkdir()
    patch = sitk.GetImageFromArray(np.full((8, 8), -600, np.int16))
    sitk.WriteImage(patch, str(root / "patches" / "gg 1.nii.gz"))
    pd.DataFrame([{"file": "gg 1.nii.gz", "pattern": "gg", "patient": "P1"}]).to_csv(
        root / "patches" / "patches.csv", index=False
    )
    return root


def run_cohort(cohort: Path, out: Path) -> dict[str, Path]:
    """Resample every scan and ingest the cohort through the commands' main()."""
    geometries = resample_cohort(cohort, out / "preprocess")
    outputs = {
        name: out / "ingest" / f"{name}.parquet"
        for name in ("manifest", "labels", "observers", "patches", "positions")
    }
    argv = ["--cohort", str(cohort), "--geometry", *geometries]
    for name, path in outputs.items():
        argv += [f"--{name}", str(path)]
    assert ingest_cmd.main(argv) == 0
    return outputs


@pytest.mark.parametrize("name", ["mixed cohort", "kohorte ünïcødé 患者"])
def test_mixed_formats_run_through(tmp_path, name) -> None:
    cohort = make_mixed_cohort(tmp_path / name)
    outputs = run_cohort(cohort, tmp_path / f"results {name}")
    manifest = pd.read_parquet(outputs["manifest"])
    assert sorted(manifest["format"]) == ["dicom", "mha", "nifti", "nrrd"]
    assert manifest["patient"].tolist() == ["P0", "P1", "P2", "P3"]
    assert (manifest["hu_p01"] < -900).all() and manifest["sha256"].str.len().eq(64).all()
    assert manifest["series_uid"].notna().sum() == 1
    labels = pd.read_parquet(outputs["labels"])
    assert len(labels) == 4 and labels["L1_TOT"].dtype == np.int64
    positions = pd.read_parquet(outputs["positions"])  # the level positions alone, for slice extraction
    assert positions.columns.tolist() == ["patient", "L1_z_mm", "L2_z_mm", "L3_z_mm", "L4_z_mm", "L5_z_mm"]
    assert positions.equals(labels[positions.columns.tolist()])
    assert len(pd.read_parquet(outputs["observers"])) == 4
    patches = pd.read_parquet(outputs["patches"])
    assert patches["pattern"].tolist() == ["GG"] and Path(patches["file"][0]).is_file()
    vols = {
        p: io.read_volume(tmp_path / f"results {name}" / "preprocess" / f"{p}.npy")
        for p in manifest["patient"]
    }
    assert all(v.shape == (48, 48, 48) and v.dtype == np.int16 for v in vols.values())
    # the DICOM patient (stored + 1024 with intercept -1024) matches its NIfTI twin
    twin = tmp_path / "twin.nii.gz"
    sitk.WriteImage(chest_image(seed=3), str(twin))
    assert (
        resample_cmd.main(
            [
                "--scan",
                str(twin),
                "--patient",
                "T",
                "--params-json",
                PARAMS,
                "--volume",
                str(tmp_path / "t.npy"),
                "--geometry",
                str(tmp_path / "t.json"),
            ]
        )
        == 0
    )
    assert np.array_equal(io.read_volume(tmp_path / "t.npy"), vols["P3"])
    geo = json.loads((tmp_path / f"results {name}" / "preprocess" / "P3.json").read_text(encoding="utf-8"))
    assert geo["format"] == "dicom" and geo["lungs_found"]


def test_validate_ok_and_through_cli(tmp_path, capsys) -> None:
    cohort = make_mixed_cohort(tmp_path / "c")
    assert validate_cmd.main(["--cohort", str(cohort)]) == 0
    assert "4 scans" in capsys.readouterr().out
    (cohort / "scans" / "P9.nii.gz").write_bytes(b"not an image")
    assert cli_main(["validate", "--cohort", str(cohort)]) == 2
    err = capsys.readouterr().err
    assert "P9.nii.gz" in err and "problem" in err


def test_empty_optional_tables_keep_columns(tmp_path, cohort) -> None:
    outputs = run_cohort(cohort, tmp_path / "out")
    assert list(pd.read_parquet(outputs["observers"]).columns)[:3] == ["patient", "observer", "read"]
    assert list(pd.read_parquet(outputs["patches"]).columns) == ["file", "pattern", "patient"]


@pytest.mark.parametrize("beyond_mm,accepted", [(0.4 * 7.5, True), (0.6 * 7.5, False)])
def test_validate_and_ingest_share_one_z_range_rule(tmp_path, beyond_mm, accepted) -> None:
    """A level half a slice (7.5 mm here) above the top slice centre is in the scan for both commands."""
    cohort = tmp_path / "c"
    (cohort / "scans").mkdir(parents=True)
    image = chest_image(seed=1)
    sitk.WriteImage(image, str(cohort / "scans" / "P0.nii.gz"))
    row = labels_row("P0", image)
    top = image.GetOrigin()[2] + (image.GetSize()[2] - 1) * image.GetSpacing()[2]
    row["L1_z_mm"] = top + beyond_mm
    pd.DataFrame([row]).to_csv(cohort / "labels.csv", index=False)
    problems, _ = validate_cmd.validate_cohort(cohort)
    assert (not problems) == accepted, problems
    if accepted:
        run_cohort(cohort, tmp_path / "out")
    else:
        assert "outside the scan" in problems[0]
        with pytest.raises(GohscoreError, match="outside the scan"):
            run_cohort(cohort, tmp_path / "out")
