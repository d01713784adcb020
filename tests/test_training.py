"""The shared loop: device choice, loss goes down, bit-identical resume, the files it writes."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from gohscore.errors import GohscoreError
from gohscore.networks import vgg11
from gohscore.training import LoopConfig, RunFiles, fit, lr_at, select_device

CPU = torch.device("cpu")


def _problem(n: int = 16):
    """A tiny 2D regression: predict the mean brightness of each half of an image."""
    g = torch.Generator().manual_seed(1)
    x = torch.rand(n, 1, 12, 12, generator=g)
    y = torch.stack([x[:, 0, :6].mean((1, 2)), x[:, 0, 6:].mean((1, 2))], 1) * 10

    def sample(gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.randint(0, n, (4,), generator=gen, device=gen.device)
        return x[idx], y[idx]

    def validate(model: torch.nn.Module) -> dict[str, float]:
        err = model(x).float().detach() - y
        return {"val_loss": float((err**2).mean()), "val_mae": float(err.abs().mean())}

    return sample, validate


def _net() -> torch.nn.Module:
    torch.manual_seed(0)
    return vgg11(2, 1, 2, width=2, head_features=16, dropout=0.1)


def test_select_device() -> None:
    """'cpu' is honoured; 'auto' returns a real device; nonsense is a user error."""
    assert select_device("cpu") == CPU
    assert select_device("auto").type in {"cpu", "cuda"}
    with pytest.raises(GohscoreError):
        select_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(GohscoreError):
            select_device("cuda")


def test_fit_lowers_loss_and_writes_outputs(tmp_path) -> None:
    """A short CPU run lowers the training loss and writes model.pt, history.parquet, checkpoint.pt."""
    sample, validate = _problem()
    cfg = LoopConfig(epochs=8, steps_per_epoch=6, lr=3e-3, checkpoint_every=4, seed=3)
    hist = fit(_net(), sample, torch.nn.functional.mse_loss, validate, cfg, tmp_path, CPU)
    assert list(hist.columns) == ["epoch", "train_loss", "lr", "val_loss", "val_mae", "seconds"]
    assert (hist["lr"] == 3e-3).all()
    assert hist["train_loss"].iloc[-3:].mean() < hist["train_loss"].iloc[0]
    assert hist["val_loss"].min() < hist["val_loss"].iloc[0]
    for name in ("model.pt", "history.parquet", "checkpoint.pt"):
        assert (tmp_path / name).is_file()
    assert pd.read_parquet(tmp_path / "history.parquet")["epoch"].tolist() == list(range(1, 9))
    best = torch.load(tmp_path / "model.pt", weights_only=True)
    net = _net()
    net.load_state_dict(best)
    assert validate(net.eval())["val_loss"] == pytest.approx(hist["val_loss"].min(), rel=1e-5)


class _Killed(Exception):
    pass


def test_lr_schedules() -> None:
    """constant keeps lr; cosine falls monotonically from lr to lr/100 over the budget; others are refused."""
    const = LoopConfig(epochs=10, steps_per_epoch=1, lr=1e-3)
    assert [lr_at(const, e) for e in (1, 5, 10)] == [1e-3] * 3
    cos = LoopConfig(epochs=11, steps_per_epoch=1, lr=1e-3, lr_schedule="cosine")
    rates = [lr_at(cos, e) for e in range(1, 12)]
    assert rates[0] == pytest.approx(1e-3) and rates[-1] == pytest.approx(1e-5)
    assert rates[5] == pytest.approx((1e-3 + 1e-5) / 2)  # half way: the cosine's midpoint
    assert all(a > b for a, b in zip(rates, rates[1:], strict=False))
    assert lr_at(LoopConfig(epochs=1, steps_per_epoch=1, lr=1e-3, lr_schedule="cosine"), 1) == 1e-3
    with pytest.raises(GohscoreError, match="lr_schedule"):
        lr_at(LoopConfig(epochs=3, steps_per_epoch=1, lr_schedule="step"), 1)


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_resume_after_interruption_is_bit_identical(tmp_path, schedule) -> None:
    """Kill at epoch 5 (last checkpoint at 4), restart: same weights and history as an unbroken run."""
    sample, validate = _problem()
    cfg = LoopConfig(epochs=6, steps_per_epoch=3, lr=3e-3, checkpoint_every=2, seed=5, lr_schedule=schedule)
    full = fit(_net(), sample, torch.nn.functional.mse_loss, validate, cfg, tmp_path / "a", CPU)

    calls = {"n": 0}

    def dying_validate(model: torch.nn.Module) -> dict[str, float]:
        calls["n"] += 1
        if calls["n"] == 5:
            raise _Killed
        return validate(model)

    with pytest.raises(_Killed):
        fit(_net(), sample, torch.nn.functional.mse_loss, dying_validate, cfg, tmp_path / "b", CPU)
    assert torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)["epoch"] == 4
    assert not (tmp_path / "b" / "model.pt").exists()
    torch.manual_seed(123)  # a restarted process has other global RNG state; the checkpoint restores it
    resumed = fit(
        vgg11(2, 1, 2, width=2, head_features=16, dropout=0.1),
        sample,
        torch.nn.functional.mse_loss,
        validate,
        cfg,
        tmp_path / "b",
        CPU,
    )
    a = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert all(torch.equal(a["best_state"][k], b["best_state"][k]) for k in a["best_state"])
    pd.testing.assert_frame_equal(full.drop(columns="seconds"), resumed.drop(columns="seconds"))
    # A finished run restarted has nothing left to do and rewrites the same outputs.
    again = fit(_net(), sample, torch.nn.functional.mse_loss, validate, cfg, tmp_path / "b", CPU)
    assert len(again) == 6


def test_checkpoint_of_another_configuration_is_not_resumed(tmp_path) -> None:
    """A finished run's checkpoint is reused for the same run, set aside when the config changes."""
    sample, validate = _problem()
    cfg = LoopConfig(epochs=2, steps_per_epoch=2, lr=3e-3, checkpoint_every=1, seed=5)
    fit(_net(), sample, torch.nn.functional.mse_loss, validate, cfg, tmp_path, CPU, identity={"fold": 0})
    same = fit(
        _net(), sample, torch.nn.functional.mse_loss, validate, cfg, tmp_path, CPU, identity={"fold": 0}
    )
    assert len(same) == 2 and not (tmp_path / "checkpoint.pt.stale").exists()
    machine = LoopConfig(epochs=2, steps_per_epoch=2, lr=3e-3, checkpoint_every=1, seed=5, amp=False)
    fit(_net(), sample, torch.nn.functional.mse_loss, validate, machine, tmp_path, CPU, identity={"fold": 0})
    assert not (tmp_path / "checkpoint.pt.stale").exists()  # the machine's precision is not the run's
    other = LoopConfig(epochs=2, steps_per_epoch=2, lr=1e-3, checkpoint_every=1, seed=5)
    fit(_net(), sample, torch.nn.functional.mse_loss, validate, other, tmp_path, CPU, identity={"fold": 0})
    assert (tmp_path / "checkpoint.pt.stale").exists()
    ckpt = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert ckpt["config"]["lr"] == 1e-3


def test_raising_the_budget_of_a_cosine_run_resumes_with_a_warning(tmp_path, caplog) -> None:
    """A finished cosine run given more epochs continues (no retraining) and says the curve changed."""
    sample, validate = _problem()
    cfg = LoopConfig(epochs=3, steps_per_epoch=2, lr=3e-3, checkpoint_every=3, seed=2, lr_schedule="cosine")
    fit(_net(), sample, torch.nn.functional.mse_loss, validate, cfg, tmp_path, CPU)
    longer = LoopConfig(**{**cfg.__dict__, "epochs": 5})
    with caplog.at_level("WARNING", logger="gohscore"):
        hist = fit(_net(), sample, torch.nn.functional.mse_loss, validate, longer, tmp_path, CPU)
    assert hist["epoch"].tolist() == [1, 2, 3, 4, 5]
    assert "budget changed from 3 to 5" in caplog.text
    assert hist["lr"].iloc[3] == pytest.approx(lr_at(longer, 4))


def test_lowering_the_budget_trains_afresh(tmp_path) -> None:
    """A checkpoint beyond a lowered epoch budget is set aside: the result equals an unbroken short run."""
    sample, validate = _problem()
    long = LoopConfig(epochs=4, steps_per_epoch=2, lr=3e-3, checkpoint_every=2, seed=5)
    short = LoopConfig(**{**long.__dict__, "epochs": 2})
    fit(_net(), sample, torch.nn.functional.mse_loss, validate, short, tmp_path / "a", CPU)
    fit(_net(), sample, torch.nn.functional.mse_loss, validate, long, tmp_path / "b", CPU)
    hist = fit(_net(), sample, torch.nn.functional.mse_loss, validate, short, tmp_path / "b", CPU)
    assert hist["epoch"].tolist() == [1, 2]
    assert (tmp_path / "b" / "checkpoint.pt.stale").exists()
    a = torch.load(tmp_path / "a" / "model.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "model.pt", weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_run_files_are_written_where_named(tmp_path) -> None:
    """fit writes the weights and history exactly where RunFiles says; the checkpoint lies beside the weights."""
    sample, validate = _problem()
    cfg = LoopConfig(epochs=1, steps_per_epoch=1, lr=3e-3, checkpoint_every=1, seed=5)
    files = RunFiles(
        tmp_path / "w" / "net.pt", tmp_path / "c" / "card.json", tmp_path / "h" / "curves.parquet"
    )
    fit(_net(), sample, torch.nn.functional.mse_loss, validate, cfg, files, CPU)
    assert (tmp_path / "w" / "net.pt").is_file() and (tmp_path / "h" / "curves.parquet").is_file()
    assert (tmp_path / "w" / "checkpoint.pt").is_file() and not (tmp_path / "c").exists()
