"""Config sections: one typed object per section, defaults from the schema, errors that name the key."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator

from gohscore.commands.options import add_machine_options, machine_from_args
from gohscore.errors import GohscoreError
from gohscore.phantom.sizes import SIZES, PatientParams, PhantomParams
from gohscore.scores.augment import AugmentConfig
from gohscore.settings import (
    LEVEL_INFERENCE_KEYS,
    SCHEMA_PATH,
    SCORE_WORKFLOW_KEYS,
    SLICE_KEYS,
    FoldParams,
    LevelParams,
    MachineParams,
    PreprocessParams,
    ScoreParams,
    level_window_stride,
)

ROOT = Path(__file__).resolve().parents[1]
RAW = yaml.safe_load(SCHEMA_PATH.read_text(encoding="utf-8"))

# every section object and the keys of its section that it leaves to others
SECTIONS = [
    (PreprocessParams, ()),
    (FoldParams, ()),
    (LevelParams, LEVEL_INFERENCE_KEYS),
    (ScoreParams, SCORE_WORKFLOW_KEYS),
    (MachineParams, ()),
    (PhantomParams, ()),
]


def raw_defaults(section: str) -> dict:
    """The schema's defaults of a section, read straight from the YAML (one level of $ref)."""
    out = {}
    for key, prop in RAW["properties"][section]["properties"].items():
        if "$ref" in prop:
            prop = {**RAW["$defs"][prop["$ref"].split("/")[-1]], **prop}
        out[key] = prop["default"]
    return out


@pytest.mark.parametrize("cls,others", SECTIONS, ids=lambda c: getattr(c, "__name__", ""))
def test_objects_cover_their_section_exactly(cls, others):
    props = set(RAW["properties"][cls.SECTION]["properties"])
    assert set(cls.keys()) | set(others) == props
    assert not set(cls.keys()) & set(others)


@pytest.mark.parametrize("cls,others", SECTIONS, ids=lambda c: getattr(c, "__name__", ""))
def test_code_defaults_are_the_schemas(cls, others):
    expected = {k: v for k, v in raw_defaults(cls.SECTION).items() if k not in others}
    assert cls.from_section({}).to_dict() == expected


def test_every_key_has_a_default_and_a_description():
    for section in ("phantom", "preprocess", "folds", "levels", "scores", "machine"):
        for key, prop in RAW["properties"][section]["properties"].items():
            assert "description" in prop or "$ref" in prop, f"{section}.{key}"
        assert set(raw_defaults(section)) == set(RAW["properties"][section]["properties"])


def test_training_keys_leave_out_inference_workflow_and_machine_keys():
    assert "window_stride" not in LevelParams.keys() and "device" not in LevelParams.keys()
    assert not {"ablations", "final_ablation", "device", "amp", "deterministic"} & set(ScoreParams.keys())
    assert set(SLICE_KEYS) <= set(ScoreParams.keys())
    assert set(PatientParams.keys()) == {"size", "dicom_every", "patches_per_pattern"}


def test_values_given_win_and_are_typed():
    p = LevelParams.from_section({"width": 4, "hu_window": [-1000, 400]})
    assert p.width == 4 and p.hu_window == (-1000, 400) and p.crop_z == 192
    assert level_window_stride({"window_stride": 2}) == 2 and level_window_stride() == 4
    with pytest.raises(AttributeError):
        p.width = 8  # frozen


def test_misspelt_and_bad_keys_name_the_key():
    with pytest.raises(GohscoreError, match=r"'scores\.synthesis_prob'.*misspelt"):
        ScoreParams.from_section({"synthesis_prob": 0.5})
    with pytest.raises(GohscoreError, match=r"'preprocess\.shape' is 8"):  # the schema's minimum is 16
        PreprocessParams.from_section({"shape": 8})
    with pytest.raises(GohscoreError, match=r"'scores\.synthesis_on' is \"all\""):
        ScoreParams.from_section({"synthesis_on": "all"})
    with pytest.raises(GohscoreError, match=r"'scores\.balance_power' is 2"):
        ScoreParams.from_section({"balance_power": 2})
    with pytest.raises(GohscoreError, match=r"'machine\.device'"):
        MachineParams.from_section({"device": "tpu"})
    with pytest.raises(GohscoreError, match="n_observer_patients"):
        PhantomParams.from_section({"n_patients": 3, "n_observer_patients": 4})


def test_partial_augmentation_takes_the_rest_from_the_schema():
    inner = RAW["properties"]["scores"]["properties"]["augmentation"]
    defaults = {k: v["default"] for k, v in inner["oneOf"][1]["properties"].items()}
    assert defaults == inner["default"]
    p = ScoreParams.from_section({"augmentation": {"rotate_deg": 5.0}})
    assert dict(p.augmentation) == {**defaults, "rotate_deg": 5.0}
    assert ScoreParams.from_section({"augmentation": None}).augmentation is None
    assert AugmentConfig.from_section(None) is None
    cfg = AugmentConfig.defaults()
    assert (cfg.rotate_deg, cfg.scale, cfg.noise_hu) == (
        defaults["rotate_deg"],
        tuple(defaults["scale"]),
        20.0,
    )
    with pytest.raises(GohscoreError, match="scores.augmentation"):
        ScoreParams.from_section({"augmentation": {"rotate": 5.0}})


def test_json_option_text_or_file(tmp_path):
    assert FoldParams.from_json('{"n_folds": 3}').n_folds == 3
    path = tmp_path / "folds.json"
    path.write_text('{"n_test": 0.2}', encoding="utf-8")
    assert FoldParams.from_json(str(path)).n_test == 0.2
    with pytest.raises(GohscoreError, match="not valid JSON"):
        FoldParams.from_json("{n_folds: 3")


def test_phantom_sizes_are_the_schemas():
    assert set(SIZES) == set(RAW["properties"]["phantom"]["properties"]["size"]["enum"])


@pytest.mark.parametrize("name", ["config.yaml", "demo.yaml", "tiny.yaml", "validate.yaml"])
def test_shipped_configs_follow_the_schema(name):
    config = yaml.safe_load((ROOT / "config" / name).read_text(encoding="utf-8"))
    errors = list(Draft202012Validator(RAW).iter_errors(config))
    assert not errors, [e.message for e in errors]
    for cls, _ in SECTIONS:  # and every section builds its object
        cls.from_section(config[cls.SECTION])


def test_machine_options_of_the_commands():
    """--device/--amp/--deterministic give the machine: section; absent ones take the schema's defaults."""
    parser = argparse.ArgumentParser()
    add_machine_options(parser)
    assert machine_from_args(parser.parse_args([])) == MachineParams.from_section({})
    assert MachineParams.from_section({}).deterministic is False
    got = machine_from_args(parser.parse_args(["--device", "cpu", "--amp", "off", "--deterministic", "on"]))
    assert got == MachineParams(device="cpu", amp=False, deterministic=True)
    with pytest.raises(SystemExit):
        parser.parse_args(["--deterministic", "yes"])
    bare = argparse.ArgumentParser()
    add_machine_options(bare, amp=False, deterministic=False)  # a command that uses neither
    args = bare.parse_args(["--device", "cpu"])
    assert machine_from_args(args) == MachineParams.from_section({"device": "cpu"})
    with pytest.raises(SystemExit):
        bare.parse_args(["--deterministic", "on"])
