"""Typed, validated config sections: one frozen dataclass per section, defaults read from the schema.

``config.schema.yaml`` beside this module is the one place where a config key, its type, its range
and its default are written. The workflow validates the whole config against that file, and every
command builds its section with :meth:`Section.from_section`, which fills the schema's defaults,
validates with ``jsonschema`` and names the offending key on error. No other module holds a default
for a config key.

Keys that change what a network learns are kept apart from the keys that do not:

- :class:`LevelParams` and :class:`ScoreParams` hold only training keys (the workflow passes just
  these to the training rules, so only they retrain a network);
- ``levels.window_stride`` is an inference key (:data:`LEVEL_INFERENCE_KEYS`);
- ``scores.ablations`` / ``scores.final_ablation`` choose which models the workflow builds
  (:data:`SCORE_WORKFLOW_KEYS`);
- :class:`MachineParams` (``machine:``) says where the networks run.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, ClassVar

from gohscore.errors import GohscoreError
from gohscore.files import json_object

SCHEMA_PATH = Path(__file__).with_name("config.schema.yaml")
EXAMPLE = "config/config.yaml"

LEVEL_INFERENCE_KEYS = ("window_stride",)
SCORE_WORKFLOW_KEYS = ("ablations", "final_ablation")
SLICE_KEYS = ("input_size", "slices_per_level")  # what `gohscore extract-slices` reads of `scores:`


@functools.cache
def schema() -> dict:
    """The config schema as a dict (read once)."""
    import yaml

    return yaml.safe_load(SCHEMA_PATH.read_text(encoding="utf-8"))


def _resolve(node: Mapping) -> dict:
    """A property's schema with a local ``$ref`` merged in (the property's own keys win)."""
    node = dict(node)
    ref = node.pop("$ref", None)
    if ref is None:
        return node
    target: Any = schema()
    for part in ref.removeprefix("#/").split("/"):
        target = target[part]
    return {**_resolve(target), **node}


def section_schema(name: str) -> dict:
    """The schema of one top-level section, with the shared ``$defs`` its references need."""
    root = schema()
    if name not in root["properties"]:
        raise KeyError(f"no config section {name!r} in {SCHEMA_PATH.name}")
    return {"$defs": root.get("$defs", {}), **root["properties"][name]}


def object_defaults(node: Mapping) -> dict:
    """The ``default`` of every property of an object schema that has one (deep copies)."""
    out = {}
    for key, prop in node.get("properties", {}).items():
        prop = _resolve(prop)
        if "default" in prop:
            out[key] = copy.deepcopy(prop["default"])
    return out


def section_defaults(name: str) -> dict:
    """The schema's default of every key of section ``name``."""
    return object_defaults(section_schema(name))


def augmentation_defaults() -> dict:
    """Defaults of the keys inside ``scores.augmentation`` (the object branch of its schema)."""
    node = section_schema("scores")["properties"]["augmentation"]
    branch = next(b for b in node["oneOf"] if b.get("type") == "object")
    return object_defaults(branch)


def _key_path(name: str, path: Any) -> str:
    return ".".join([name, *map(str, path)])


def checked_section(name: str, section: Mapping | None, source: str = "config") -> dict:
    """Section ``name`` with the schema's defaults filled in, validated; errors name the key.

    >>> checked_section("preprocess", {"shape": 64})
    {'spacing_mm': 1.2, 'shape': 64}
    """
    from jsonschema import Draft202012Validator

    if section is None:
        section = {}
    if not isinstance(section, Mapping):
        raise GohscoreError(f"{source}: the '{name}:' section must be a mapping; see {EXAMPLE}")
    node = section_schema(name)
    allowed = list(node.get("properties", {}))
    unknown = sorted(set(section) - set(allowed))
    if unknown:
        raise GohscoreError(
            f"{source}: unknown key(s) {', '.join(repr(f'{name}.{k}') for k in unknown)}; "
            f"allowed in '{name}:' are {', '.join(allowed)} (is one misspelt?)"
        )
    merged = {**section_defaults(name), **dict(section)}
    errors = sorted(Draft202012Validator(node).iter_errors(merged), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        key = _key_path(name, err.absolute_path)
        value = err.instance if err.absolute_path else None
        shown = f" is {json.dumps(value)}" if err.absolute_path else ""
        raise GohscoreError(f"{source}: config key '{key}'{shown}: {err.message}; see {SCHEMA_PATH.name}")
    return merged


def read_json_option(text: str, name: str, option: str = "--params-json") -> dict:
    """A config section handed to a command as JSON text or as the path of a JSON file."""
    source = option
    if not text.lstrip().startswith("{") and Path(text).is_file():
        source, text = f"{option} {text}", Path(text).read_text(encoding="utf-8")
    return json_object(text, source, f"pass the '{name}:' config section as a JSON object")


def _frozen(value: Any) -> Any:
    """Lists as tuples (recursively), so that a params object is immutable and hashable."""
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    return value


@dataclass(frozen=True)
class Section:
    """A config section as a frozen dataclass; subclasses name their ``SECTION`` and list their keys."""

    SECTION: ClassVar[str]

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        """The config keys this object holds (its fields)."""
        return tuple(f.name for f in fields(cls))

    @classmethod
    def from_section(cls, section: Mapping | None = None, source: str = "config"):
        """Validate ``section`` (any keys of the config section), fill defaults, keep this object's keys."""
        merged = checked_section(cls.SECTION, section, source)
        obj = cls(**{k: _frozen(merged[k]) for k in cls.keys()})
        obj.check(source)
        return obj

    @classmethod
    def from_json(cls, text: str, option: str = "--params-json"):
        """:meth:`from_section` of a ``--params-json`` option (JSON text or a JSON file)."""
        return cls.from_section(read_json_option(text, cls.SECTION, option), option)

    def check(self, source: str) -> None:
        """Checks across keys that the schema cannot express (none by default)."""

    def to_dict(self) -> dict:
        """The section as plain JSON-able values (tuples back to lists)."""
        return json.loads(json.dumps(asdict(self)))


@dataclass(frozen=True)
class PreprocessParams(Section):
    """``preprocess:``: the level network's isotropic grid."""

    SECTION: ClassVar[str] = "preprocess"
    spacing_mm: float
    shape: int


@dataclass(frozen=True)
class FoldParams(Section):
    """``folds:``: cross-validation folds and the held-out test set."""

    SECTION: ClassVar[str] = "folds"
    n_folds: int
    n_test: float
    stratify: bool
    previous: str | None


@dataclass(frozen=True)
class NetworkTraining(Section):
    """The training keys that ``levels:`` and ``scores:`` share (a base, not a section of its own)."""

    width: int
    head_features: int
    dropout: float
    hu_window: tuple[float, float]
    batch_size: int
    epochs: int
    steps_per_epoch: int | None
    lr: float
    lr_schedule: str
    weight_decay: float
    val_fraction: float
    checkpoint_every: int


@dataclass(frozen=True)
class LevelParams(NetworkTraining):
    """The training keys of ``levels:`` (the 3D level network); changing any of them retrains it."""

    SECTION: ClassVar[str] = "levels"
    crop_z: int
    crop_sampling: str
    flip_probability: float
    shift_voxels: int


@dataclass(frozen=True)
class ScoreParams(NetworkTraining):
    """The training keys of ``scores:`` (the 2D score network); changing any of them retrains it."""

    SECTION: ClassVar[str] = "scores"
    checkpoint_choice: str
    batchnorm_statistics: str
    input_size: int
    slices_per_level: int
    synthesis_probability: float
    synthesis_on: str
    synthesis_extent: str
    balance_power: float
    balance_keeps_healthy_share: bool
    loss: str
    augmentation: Mapping | None
    pretrained: str | None

    @classmethod
    def from_section(cls, section: Mapping | None = None, source: str = "config") -> ScoreParams:
        """As :meth:`Section.from_section`; a partial ``augmentation`` mapping gets its defaults too."""
        section = dict(section or {})
        if isinstance(section.get("augmentation"), Mapping):
            section["augmentation"] = {**augmentation_defaults(), **section["augmentation"]}
        return super().from_section(section, source)


@dataclass(frozen=True)
class MachineParams(Section):
    """``machine:``: where and how the networks run (never retrains anything)."""

    SECTION: ClassVar[str] = "machine"
    device: str
    amp: bool
    deterministic: bool


def level_window_stride(section: Mapping | None = None, source: str = "config") -> int:
    """``levels.window_stride`` (an inference key), validated with its section."""
    return int(checked_section("levels", section, source)["window_stride"])
