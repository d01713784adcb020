"""Model cards: what a trained network reads, what it returns, how it was trained; and loading a model.

Both networks write the same shape of card (``model.json`` beside ``model.pt`` in the workflow):

- ``task``: ``levels`` or ``scores``;
- ``network``: the :func:`gohscore.networks.vgg11` arguments that rebuild the network;
- ``input``: how to prepare what it reads (grid or slice size, HU window, ...);
- ``output``: what its outputs mean and how to scale them;
- ``training``: fold, seeds, the training section, patients, checkpoint choice and the machine
  (device, precision, deterministic kernels);
- ``software``: library versions (filled in when the card is written);
- ``weights_sha256``: the SHA-256 of the weights file the card was written for (``null`` when
  it was written without one).

The models of one ensemble must agree on ``task``, ``input`` and ``output``
(:func:`check_ensemble`); they may differ in everything else. :func:`load_model` refuses weights
whose SHA-256 is not their card's, so a card never describes weights it was not written for.
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import ClassVar

import numpy as np

from gohscore.errors import GohscoreError
from gohscore.files import atomic_path, json_object

log = logging.getLogger("gohscore")

TASKS = ("levels", "scores")
CARD_NAME = "model.json"  # the card's name beside a weights file when no card path is given


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes (hex), read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _jsonable(obj: object) -> object:
    """Tuples, paths and numpy scalars as plain JSON values."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def software_versions() -> dict[str, str]:
    """Versions of the libraries a model depends on."""
    import monai
    import torch

    import gohscore

    return {
        "gohscore": gohscore.__version__,
        "torch": torch.__version__,
        "monai": monai.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


@dataclass(frozen=True)
class ModelCard:
    """The card of one trained network (see the module docstring for its sections)."""

    task: str
    network: dict
    input: dict
    output: dict
    training: dict
    software: dict = field(default_factory=dict)
    weights_sha256: str | None = None

    OPTIONAL: ClassVar[tuple[str, ...]] = ("software", "weights_sha256")  # fields a card may lack

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"model card task {self.task!r} is not one of {TASKS}")
        for name in ("network", "input", "output", "training"):
            if not isinstance(getattr(self, name), dict):
                raise ValueError(f"model card section {name!r} must be a mapping")
        digest = self.weights_sha256
        if digest is not None and not (
            isinstance(digest, str) and len(digest) == 64 and set(digest) <= set("0123456789abcdef")
        ):
            raise ValueError(f"model card weights_sha256 {digest!r} is not a SHA-256 hex digest")

    def to_dict(self) -> dict:
        """The card as JSON values."""
        return _jsonable(asdict(self))

    def for_weights(self, weights: Path) -> ModelCard:
        """This card for the weights file ``weights``: its SHA-256 recorded."""
        return replace(self, weights_sha256=file_sha256(weights))

    def write(self, path: Path, weights: Path | None = None) -> None:
        """Write the card as JSON with the current library versions; sorted keys and no time stamp,
        so that the same training writes the same card.

        ``weights``: the weights file the card describes (already written); its SHA-256 goes into
        the card, and :func:`load_model` then loads those weights only.
        """
        card = self.for_weights(weights) if weights is not None else self
        body = {**card.to_dict(), "software": software_versions()}
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(body, indent=2, sort_keys=True) + "\n", encoding="utf-8")

    @classmethod
    def from_dict(cls, data: dict, source: str = "model card") -> ModelCard:
        """A card from its JSON body; an error names ``source`` and what is missing."""
        names = [f.name for f in fields(cls)]
        missing = [n for n in names if n not in cls.OPTIONAL and n not in data]
        if missing:
            raise GohscoreError(
                f"{source}: model card lacks {', '.join(missing)}; it was written by another "
                "gohscore version or is not a model card, so retrain the model"
            )
        try:
            return cls(**{n: data[n] for n in names if n in data})
        except ValueError as err:
            raise GohscoreError(f"{source}: {err}; retrain the model") from None

    @classmethod
    def read(cls, path: Path) -> ModelCard:
        """Read a card written by :meth:`write`."""
        path = Path(path)
        if not path.is_file():
            raise GohscoreError(f"{path}: model card not found; pass the model.json written with the model")
        data = json_object(path.read_text(encoding="utf-8"), f"{path} (model card)", "retrain the model")
        return cls.from_dict(data, str(path))


def card_path_for(model_path: Path) -> Path:
    """Where the card of ``model_path`` lies when none is named: ``model.json`` in the same folder."""
    return Path(model_path).with_name(CARD_NAME)


def check_ensemble(cards: Sequence[ModelCard], task: str) -> ModelCard:
    """The first card, after checking that every card is a ``task`` card and that all agree on input and output."""
    if not cards:
        raise GohscoreError(f"no {task} model given; pass at least one model.pt")
    for i, card in enumerate(cards, start=1):
        if card.task != task:
            raise GohscoreError(f"model {i} is a {card.task!r} model, not a {task!r} one; pass {task} models")
    first = cards[0]
    for i, card in enumerate(cards[1:], start=2):
        for part in ("input", "output"):
            if getattr(card, part) != getattr(first, part):
                raise GohscoreError(
                    f"{task} model {i} has {part} {getattr(card, part)}, model 1 has {getattr(first, part)}; "
                    "the models of one ensemble must come from one run"
                )
    return first


def load_model(model_path: Path, card_path: Path | None = None):
    """Rebuild the network its card describes and load ``model_path``'s weights (CPU, eval mode).

    Returns ``(model, card)``. ``card_path`` defaults to :func:`card_path_for`.

    Weights whose SHA-256 differs from the card's ``weights_sha256`` are refused (a GohscoreError
    naming both files). A card without a hash (written by hand, or by gohscore before cards held
    one) loads with a warning: its weights cannot be checked, but refusing them would make every
    model trained before this check unusable without retraining.
    """
    import torch

    from gohscore.networks import vgg11

    model_path = Path(model_path)
    if not model_path.is_file():
        raise GohscoreError(f"{model_path}: model weights not found; train the model first")
    card_path = Path(card_path or card_path_for(model_path))
    card = ModelCard.read(card_path)
    if card.weights_sha256 is None:
        log.warning("%s records no weights_sha256; %s is loaded unchecked", card_path, model_path)
    else:
        digest = file_sha256(model_path)
        if digest != card.weights_sha256:
            raise GohscoreError(
                f"{model_path}: weights (sha256 {digest[:12]}) are not the ones its card {card_path} "
                f"was written for (sha256 {card.weights_sha256[:12]}); retrain the model or restore "
                "the matching weights and card pair"
            )
    net = vgg11(**card.network)
    state = torch.load(model_path, map_location="cpu", weights_only=True)
    try:
        net.load_state_dict(state)
    except RuntimeError as err:
        raise GohscoreError(
            f"{model_path}: weights do not match the card's network ({str(err)[:120]})"
        ) from err
    return net.eval(), card
