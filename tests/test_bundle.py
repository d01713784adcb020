"""Model bundles: export, move, verify, predict with the same result; altered bundles are refused."""

from __future__ import annotations

import json
import shutil
import zipfile

import pandas as pd
import pytest
import SimpleITK as sitk

from gohscore.bundle import DISCLAIMER, METADATA, export_bundle, is_bundle, open_bundle
from gohscore.cards import file_sha256
from gohscore.cli import main as cli_main
from gohscore.errors import GohscoreError
from tests.conftest import chest_image
from tests.tiny_models import ABLATION, TRAIN, VAL, write_tiny_results


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Tiny models and the two tables of a run that a bundle quotes (values made up, rows as tables.py writes)."""
    results = write_tiny_results(tmp_path_factory.mktemp("run") / "results")
    (results / "tables").mkdir()
    levels = pd.DataFrame({"level": ["L1", "L2", "L3", "L4", "L5", "all"], "mae_mm": [5, 4, 3, 2, 1, 3.0]})
    levels.to_parquet(results / "tables" / "table1_levels_test.parquet")
    scores = pd.DataFrame(
        {
            "ablation": ["none", ABLATION],
            "source": ["predicted"] * 2,
            "pattern": ["TOT"] * 2,
            "mae": [9.0, 5.5],
            "kappa": [0.1, 0.5],
            "icc": [0.2, 0.75],
        }
    )
    scores.to_parquet(results / "tables" / "test_set.parquet")
    pd.DataFrame({"patient": ["P0009", "P0010", "P0001"], "set": ["test", "test", "cv"]}).to_parquet(
        results / "folds.parquet"
    )
    return results


def bundle_text(path) -> str:
    """Every text file of a bundle zip, concatenated."""
    with zipfile.ZipFile(path) as zf:
        return "".join(zf.read(n).decode("utf-8") for n in zf.namelist() if n.endswith(".json"))


def test_export_writes_one_card_hashes_and_no_patient_ids(results, tmp_path) -> None:
    meta = export_bundle(results, tmp_path / "b.zip", ABLATION)
    with zipfile.ZipFile(tmp_path / "b.zip") as zf:
        names = set(zf.namelist())
        on_disk = json.loads(zf.read(METADATA))
    assert on_disk == meta
    models = {f"levels/fold{k}/model.pt" for k in (0, 1)} | {
        f"scores/{ABLATION}/fold{k}/model.pt" for k in (0, 1)
    }
    cards = {m.replace("model.pt", "model.json") for m in models}
    assert names == models | cards | {METADATA}
    for model in models:  # the weights travel unchanged
        assert meta["files"][model]["sha256"] == file_sha256(results / model)
    assert meta["disclaimer"] == DISCLAIMER == "research use only, not a medical device"
    assert any("Jia" in r for r in meta["references"])
    assert meta["training"]["n_cross_validation_patients"] == len(TRAIN + VAL) == 4
    assert meta["training"]["n_level_models"] == meta["training"]["n_score_models"] == 2
    ct = meta["network_data_format"]["inputs"]["ct"]
    assert ct["units"] == "HU" and ct["level_network"]["spacing_mm"] == 9.6
    assert ct["level_network"]["hu_window"] == [-1500.0, 1500.0]
    assert meta["network_data_format"]["outputs"]["scores"]["unit"].startswith("%")
    assert {"name", "version", "description", "intended_use"} <= set(meta)
    figures = meta["training"]["summary_figures"]
    assert figures["level_mae_mm_test"] == {"L1": 5, "L2": 4, "L3": 3, "L4": 2, "L5": 1, "all": 3}
    assert figures["score_test"] == {"predicted/TOT": {"mae_percent": 5.5, "kappa": 0.5, "icc": 0.75}}
    assert figures["n_test_patients"] == 2
    text = bundle_text(tmp_path / "b.zip")
    assert not any(p in text for p in [*TRAIN, *VAL, "P0009", "P0010"])
    card = json.loads(zipfile.ZipFile(tmp_path / "b.zip").read("scores/balanced_synthesis/fold0/model.json"))
    assert card["training"]["n_train_patients"] == 3 and card["training"]["texture_tiles"]["n_patients"] == 2


def test_a_folder_bundle_and_an_altered_one(results, tmp_path) -> None:
    export_bundle(results, tmp_path / "folder", ABLATION)
    assert is_bundle(tmp_path / "folder") and not is_bundle(results)
    with open_bundle(tmp_path / "folder") as bundle:
        assert [p.parent.name for p in bundle.levels] == ["fold0", "fold1"] and len(bundle.scores) == 2
    weights = tmp_path / "folder" / "levels" / "fold1" / "model.pt"
    data = weights.read_bytes()
    weights.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # one bit flipped
    with pytest.raises(GohscoreError, match=r"levels/fold1/model.pt has sha256 .* refused"):
        with open_bundle(tmp_path / "folder"):
            pass
    (tmp_path / "folder" / "levels" / "fold1" / "model.pt").unlink()
    with pytest.raises(GohscoreError, match="listed in metadata.json but missing"):
        with open_bundle(tmp_path / "folder"):
            pass


def test_export_refuses_weights_that_are_not_their_cards(results, tmp_path) -> None:
    broken = tmp_path / "results"
    shutil.copytree(results, broken)
    card = broken / "scores" / ABLATION / "fold0" / "model.json"
    body = json.loads(card.read_text(encoding="utf-8"))
    body["weights_sha256"] = "0" * 64
    card.write_text(json.dumps(body), encoding="utf-8")
    with pytest.raises(GohscoreError, match="not the ones its card"):
        export_bundle(broken, tmp_path / "b.zip", ABLATION)
    assert not (tmp_path / "b.zip").exists()


def test_exported_bundle_moved_elsewhere_scores_identically(results, tmp_path) -> None:
    scan = tmp_path / "S1.nii.gz"
    sitk.WriteImage(chest_image(), str(scan))
    assert cli_main(["export", "--results", str(results), "--out", str(tmp_path / "site_a" / "b.zip")]) == 0
    moved = tmp_path / "site_b" / "models.zip"
    moved.parent.mkdir()
    shutil.move(tmp_path / "site_a" / "b.zip", moved)
    common = ["predict", "--scan", str(scan), "--device", "cpu"]
    assert cli_main([*common, "--models", str(results), "--out-dir", str(tmp_path / "from_run")]) == 0
    assert cli_main([*common, "--models", str(moved), "--out-dir", str(tmp_path / "from_bundle")]) == 0
    for name in ("scores.csv", "S1/levels.csv"):
        a = (tmp_path / "from_run" / name).read_text(encoding="utf-8")
        assert a == (tmp_path / "from_bundle" / name).read_text(encoding="utf-8")
    assert len(pd.read_csv(tmp_path / "from_bundle" / "scores.csv")) == 5
    record = json.loads((tmp_path / "from_bundle" / "S1" / "summary.json").read_text(encoding="utf-8"))
    files = {m["file"] for m in record["provenance"]["models"]}
    assert (
        str(moved / "levels" / "fold0" / "model.pt") in files and record["provenance"]["ablation"] == ABLATION
    )
    # an altered zip is refused by predict, with the file named
    with zipfile.ZipFile(moved) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    members["scores/balanced_synthesis/fold1/model.pt"] += b"x"
    with zipfile.ZipFile(tmp_path / "altered.zip", "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    code = cli_main([*common, "--models", str(tmp_path / "altered.zip"), "--out-dir", str(tmp_path / "no")])
    assert code == 2 and not (tmp_path / "no" / "scores.csv").exists()
