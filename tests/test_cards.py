"""Model cards: one shape for both networks, a deterministic round trip, the weights' hash, one ensemble check."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch

from gohscore.cards import ModelCard, card_path_for, check_ensemble, file_sha256, load_model
from gohscore.errors import GohscoreError
from gohscore.networks import vgg11

NETWORK = {
    "spatial_dims": 2,
    "in_channels": 1,
    "out_features": 2,
    "width": 2,
    "head_features": 16,
    "dropout": 0.1,
}


def _card(task: str = "scores", **input_) -> ModelCard:
    return ModelCard(
        task=task,
        network=NETWORK,
        input={"input_size": 9, "hu_window": (-1500, 1500), **input_},
        output={"scale": 100.0},
        training={"fold": 1},
    )


def test_round_trip_is_deterministic_and_loads_the_weights(tmp_path) -> None:
    net = vgg11(**NETWORK)
    torch.save(net.state_dict(), tmp_path / "model.pt")
    card = _card()
    card.write(tmp_path / "model.json", weights=tmp_path / "model.pt")
    first = (tmp_path / "model.json").read_text(encoding="utf-8")
    card.write(tmp_path / "model.json", weights=tmp_path / "model.pt")
    assert (tmp_path / "model.json").read_text(encoding="utf-8") == first
    body = json.loads(first)
    assert set(body) == {"task", "network", "input", "output", "training", "software", "weights_sha256"}
    assert {"torch", "monai", "numpy", "gohscore"} <= set(body["software"])
    assert body["weights_sha256"] == hashlib.sha256((tmp_path / "model.pt").read_bytes()).hexdigest()
    loaded, got = load_model(tmp_path / "model.pt")
    assert got.training["fold"] == 1 and got.input["hu_window"] == [-1500, 1500]
    x = torch.rand(2, 1, 9, 9)
    assert torch.equal(loaded(x), net.eval()(x))
    assert card_path_for(tmp_path / "model.pt") == tmp_path / "model.json"


def test_a_card_may_lie_elsewhere(tmp_path) -> None:
    net = vgg11(**NETWORK)
    torch.save(net.state_dict(), tmp_path / "weights.pt")
    _card().write(tmp_path / "cards" / "fold1.json")
    _, got = load_model(tmp_path / "weights.pt", tmp_path / "cards" / "fold1.json")
    assert got.task == "scores"
    with pytest.raises(GohscoreError, match="model card not found"):
        load_model(tmp_path / "weights.pt")


def test_bad_cards_are_user_errors(tmp_path) -> None:
    with pytest.raises(GohscoreError, match="model weights not found"):
        load_model(tmp_path / "nothing.pt")
    (tmp_path / "old.json").write_text(json.dumps({"network": NETWORK, "input_size": 9}), encoding="utf-8")
    with pytest.raises(GohscoreError, match="lacks task, input, output, training"):
        ModelCard.read(tmp_path / "old.json")
    bad = {"task": "goh_levels", "network": NETWORK, "input": {}, "output": {}, "training": {}}
    (tmp_path / "task.json").write_text(json.dumps(bad), encoding="utf-8")
    with pytest.raises(GohscoreError, match="goh_levels"):
        ModelCard.read(tmp_path / "task.json")


def test_ensemble_check() -> None:
    assert check_ensemble([_card(), _card()], "scores").input["input_size"] == 9
    with pytest.raises(GohscoreError, match="model 2 has input"):
        check_ensemble([_card(), _card(input_size=16)], "scores")
    with pytest.raises(GohscoreError, match="not a 'scores' one"):
        check_ensemble([_card(), _card("levels")], "scores")
    with pytest.raises(GohscoreError, match="no levels model"):
        check_ensemble([], "levels")


def test_weights_that_are_not_the_cards_are_refused(tmp_path) -> None:
    """A card holds its weights' SHA-256; other weights (retrained, swapped, tampered) are refused."""
    torch.manual_seed(0)
    torch.save(vgg11(**NETWORK).state_dict(), tmp_path / "model.pt")
    _card().write(tmp_path / "model.json", weights=tmp_path / "model.pt")
    _, card = load_model(tmp_path / "model.pt")
    assert card.weights_sha256 == file_sha256(tmp_path / "model.pt")
    torch.manual_seed(1)  # the same network with other weights: it would load without the hash
    torch.save(vgg11(**NETWORK).state_dict(), tmp_path / "model.pt")
    with pytest.raises(GohscoreError) as err:
        load_model(tmp_path / "model.pt")
    message = str(err.value)
    assert "\n" not in message and str(tmp_path / "model.pt") in message
    assert str(tmp_path / "model.json") in message and "retrain the model or restore" in message
    data = bytearray((tmp_path / "model.pt").read_bytes())  # one flipped bit is enough
    data[len(data) // 2] ^= 1
    (tmp_path / "model.pt").write_bytes(bytes(data))
    with pytest.raises(GohscoreError, match="not the ones its card"):
        load_model(tmp_path / "model.pt")


def test_a_card_without_a_hash_loads_with_a_warning(tmp_path, caplog) -> None:
    """Cards written by hand or before cards held a hash still load, with a warning; bad hashes are refused."""
    torch.save(vgg11(**NETWORK).state_dict(), tmp_path / "model.pt")
    _card().write(tmp_path / "model.json")
    assert json.loads((tmp_path / "model.json").read_text(encoding="utf-8"))["weights_sha256"] is None
    body = json.loads((tmp_path / "model.json").read_text(encoding="utf-8"))
    del body["weights_sha256"]  # a card of an older gohscore
    (tmp_path / "model.json").write_text(json.dumps(body), encoding="utf-8")
    with caplog.at_level("WARNING", logger="gohscore"):
        _, card = load_model(tmp_path / "model.pt")
    assert card.weights_sha256 is None and "no weights_sha256" in caplog.text
    (tmp_path / "model.json").write_text(json.dumps({**body, "weights_sha256": "abc"}), encoding="utf-8")
    with pytest.raises(GohscoreError, match="not a SHA-256"):
        load_model(tmp_path / "model.pt")
