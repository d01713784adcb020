"""The shared loop: device choice, precision, determinism, loss goes down, bit-identical resume
(also from a torn checkpoint), the files it writes."""

from __future__ import annotations

import contextlib
import os
import warnings

import pandas as pd
import pytest
import torch

import gohscore.training as training
from gohscore.errors import GohscoreError
from gohscore.networks import vgg11
from gohscore.training import (
    LoopConfig,
    RunFiles,
    autocast,
    choose_precision,
    configure_determinism,
    fit,
    lr_at,
    machine_record,
    make_scaler,
    select_device,
)

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


def _counting(validate):
    """``validate`` that counts its calls (one per epoch trained) in ``.calls``."""

    def wrapped(model: torch.nn.Module) -> dict[str, float]:
        wrapped.calls += 1
        return validate(model)

    wrapped.calls = 0
    return wrapped


def _same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_torn_checkpoint_resumes_from_the_previous_one(tmp_path, caplog) -> None:
    """checkpoint.pt cut to half its bytes after epoch 4: the run resumes at epoch 3 from
    checkpoint.prev.pt, warns, and ends with an unbroken 6-epoch run's weights and history."""
    sample, validate = _problem()
    six = LoopConfig(epochs=6, steps_per_epoch=3, lr=3e-3, checkpoint_every=1, seed=5)
    four = LoopConfig(**{**six.__dict__, "epochs": 4})
    loss = torch.nn.functional.mse_loss
    full = fit(_net(), sample, loss, validate, six, tmp_path / "a", CPU)
    run = tmp_path / "b"
    fit(_net(), sample, loss, validate, four, run, CPU)
    assert torch.load(run / "checkpoint.prev.pt", weights_only=True)["epoch"] == 3
    ckpt = run / "checkpoint.pt"
    data = ckpt.read_bytes()
    with open(ckpt, "r+b") as f:  # torn in place, as a crash during a non-atomic copy would leave it
        f.truncate(len(data) // 2)
    counted = _counting(validate)
    with caplog.at_level("WARNING", logger="gohscore"):
        hist = fit(_net(), sample, loss, counted, six, run, CPU)
    assert counted.calls == 3  # epochs 4, 5 and 6: epochs 1-3 came from checkpoint.prev.pt
    assert "cannot be read" in caplog.text and "checkpoint.prev.pt at epoch 3" in caplog.text
    assert (run / "checkpoint.pt.corrupt").is_file()
    pd.testing.assert_frame_equal(full.drop(columns="seconds"), hist.drop(columns="seconds"))
    for name in ("model.pt",):
        assert _same_weights(
            torch.load(tmp_path / "a" / name, weights_only=True), torch.load(run / name, weights_only=True)
        )
    a = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=True)
    b = torch.load(run / "checkpoint.pt", weights_only=True)
    assert b["epoch"] == 6 and _same_weights(a["model"], b["model"])
    assert _same_weights(a["best_state"], b["best_state"])


def test_unreadable_checkpoints_train_from_scratch(tmp_path, caplog) -> None:
    """Both checkpoints unreadable (or the previous one missing): a warning and a fresh run, no crash."""
    sample, validate = _problem()
    cfg = LoopConfig(epochs=2, steps_per_epoch=2, lr=3e-3, checkpoint_every=1, seed=5)
    loss = torch.nn.functional.mse_loss
    fresh = fit(_net(), sample, loss, validate, cfg, tmp_path / "a", CPU)
    run = tmp_path / "b"
    run.mkdir()
    (run / "checkpoint.pt").write_bytes(b"PK\x03\x04 not a zip")
    (run / "checkpoint.prev.pt").write_bytes(b"")
    counted = _counting(validate)
    with caplog.at_level("WARNING", logger="gohscore"):
        hist = fit(_net(), sample, loss, counted, cfg, run, CPU)
    assert counted.calls == 2 and "training from scratch" in caplog.text
    assert (run / "checkpoint.pt.corrupt").is_file() and (run / "checkpoint.prev.pt.corrupt").is_file()
    pd.testing.assert_frame_equal(fresh.drop(columns="seconds"), hist.drop(columns="seconds"))
    # a torn checkpoint.pt with no previous one: the same
    torch.save({"model": {}}, run / "checkpoint.pt")  # readable, but not a whole checkpoint
    (run / "checkpoint.prev.pt").unlink()
    caplog.clear()
    with caplog.at_level("WARNING", logger="gohscore"):
        fit(_net(), sample, loss, validate, cfg, run, CPU)
    assert "lacks optimizer" in caplog.text and "does not exist" in caplog.text


def test_each_checkpoint_keeps_the_one_before(tmp_path) -> None:
    """After epoch k, checkpoint.pt holds epoch k and checkpoint.prev.pt epoch k - 1, in separate files."""
    sample, validate = _problem()
    cfg = LoopConfig(epochs=3, steps_per_epoch=1, lr=3e-3, checkpoint_every=1, seed=5)
    fit(_net(), sample, torch.nn.functional.mse_loss, validate, cfg, tmp_path, CPU)
    now, before = tmp_path / "checkpoint.pt", tmp_path / "checkpoint.prev.pt"
    assert torch.load(now, weights_only=True)["epoch"] == 3
    assert torch.load(before, weights_only=True)["epoch"] == 2
    assert not now.samefile(before)
    assert not list(tmp_path.glob(".*.tmp*"))  # no temporary file left behind


def test_precision_follows_the_gpus_capability(monkeypatch) -> None:
    """bf16 from compute capability 8 on, fp16 below; fp32 on the CPU or with amp off."""
    cuda = torch.device("cuda")
    capability = {"value": (8, 0)}
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability["value"])
    for cap, expected in [
        ((9, 0), "bf16"),
        ((8, 6), "bf16"),
        ((8, 0), "bf16"),
        ((7, 5), "fp16"),
        ((6, 0), "fp16"),
    ]:
        capability["value"] = cap
        assert choose_precision(cuda, amp=True) == expected, cap
        assert choose_precision(cuda, amp=False) == "fp32"
    assert choose_precision(CPU, amp=True) == "fp32" and choose_precision(CPU, amp=False) == "fp32"
    assert machine_record(cuda, True, False) == {
        "device": "cuda",
        "precision": "fp16",
        "deterministic": False,
    }
    assert machine_record(CPU, True, True) == {"device": "cpu", "precision": "fp32", "deterministic": True}
    # inference's autocast(device, amp) follows the same rule
    assert isinstance(autocast(CPU, True), contextlib.nullcontext)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns that this machine has no CUDA
        assert autocast(cuda, True).fast_dtype == torch.float16
        capability["value"] = (9, 0)
        assert autocast(cuda, True).fast_dtype == torch.bfloat16
    assert isinstance(autocast(cuda, False), contextlib.nullcontext)
    assert autocast(CPU, precision="fp16").fast_dtype == torch.float16


def test_fp16_trains_with_a_gradient_scaler(tmp_path, monkeypatch) -> None:
    """Under fp16 every step goes through a GradScaler, whose state the checkpoint keeps and resume restores."""
    assert isinstance(make_scaler("fp16", CPU), torch.amp.GradScaler)
    assert make_scaler("bf16", CPU) is None and make_scaler("fp32", CPU) is None
    made = []

    class Spy(torch.amp.GradScaler):
        calls = {"scale": 0, "step": 0, "update": 0}

        def scale(self, outputs):
            if not hasattr(self, "start"):
                self.start = self.state_dict()  # the state it began training with
            Spy.calls["scale"] += 1
            return super().scale(outputs)

        def step(self, optimizer, *args, **kwargs):
            Spy.calls["step"] += 1
            return super().step(optimizer, *args, **kwargs)

        def update(self, new_scale=None):
            Spy.calls["update"] += 1
            return super().update(new_scale)

    def spy_scaler(precision, device):
        assert precision == "fp16"
        made.append(Spy(device.type))
        return made[-1]

    monkeypatch.setattr(training, "choose_precision", lambda device, amp=True: "fp16")
    monkeypatch.setattr(training, "make_scaler", spy_scaler)
    sample, validate = _problem()
    cfg = LoopConfig(epochs=2, steps_per_epoch=3, lr=3e-3, checkpoint_every=1, seed=5)
    hist = fit(_net(), sample, torch.nn.functional.mse_loss, validate, cfg, tmp_path, CPU)
    assert Spy.calls == {"scale": 6, "step": 6, "update": 6} and len(hist) == 2
    saved = torch.load(tmp_path / "checkpoint.pt", weights_only=True)["scaler"]
    assert saved == made[0].state_dict() and saved["_growth_tracker"] == 6
    longer = LoopConfig(**{**cfg.__dict__, "epochs": 3})
    fit(_net(), sample, torch.nn.functional.mse_loss, validate, longer, tmp_path, CPU)
    assert made[1].start == saved  # the resumed run's scaler starts where the checkpoint left it


@pytest.fixture
def restore_determinism(monkeypatch):
    """Leave torch's global determinism switches and CUBLAS_WORKSPACE_CONFIG as they were."""
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", "unset")  # records the original value for undo
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG")
    before = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
    )
    yield
    torch.use_deterministic_algorithms(before[0], warn_only=before[1])
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = before[2:]


def test_deterministic_switch(restore_determinism) -> None:
    """On: deterministic algorithms, cuDNN deterministic without autotuning, the cuBLAS workspace on CUDA."""
    configure_determinism(True, CPU)
    assert torch.are_deterministic_algorithms_enabled()
    assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
    assert "CUBLAS_WORKSPACE_CONFIG" not in os.environ  # the CPU needs none
    configure_determinism(True, torch.device("cuda"))
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    os.environ["CUBLAS_WORKSPACE_CONFIG"] = ":16:8"  # a value the user set is kept
    configure_determinism(True, torch.device("cuda"))
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":16:8"
    configure_determinism(False, CPU)
    assert not torch.are_deterministic_algorithms_enabled() and not torch.backends.cudnn.deterministic


def test_deterministic_cpu_runs_repeat(tmp_path, restore_determinism) -> None:
    """With deterministic kernels on, two runs give the same weights (and nothing in the loop refuses them)."""
    configure_determinism(True, CPU)
    sample, validate = _problem()
    cfg = LoopConfig(epochs=2, steps_per_epoch=2, lr=3e-3, checkpoint_every=1, seed=5)
    for run in ("a", "b"):
        fit(_net(), sample, torch.nn.functional.mse_loss, validate, cfg, tmp_path / run, CPU)
    a, b = (torch.load(tmp_path / run / "model.pt", weights_only=True) for run in ("a", "b"))
    assert _same_weights(a, b)


def _scripted(losses: list[float]):
    """``validate`` that returns ``losses`` in turn and keeps a copy of the weights it saw in ``.seen``."""

    def validate(model: torch.nn.Module) -> dict[str, float]:
        validate.seen.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        return {"val_loss": losses[len(validate.seen) - 1]}

    validate.seen = []
    return validate


@pytest.mark.parametrize(("choice", "epoch"), [("best", 2), ("last", 4)])
def test_checkpoint_choice_writes_the_best_or_the_last_weights(tmp_path, choice, epoch) -> None:
    """Validation losses 3, 1, 2, 5: ``best`` writes epoch 2's weights, ``last`` epoch 4's."""
    sample, _ = _problem()
    validate = _scripted([3.0, 1.0, 2.0, 5.0])
    cfg = LoopConfig(epochs=4, steps_per_epoch=2, lr=3e-3, seed=3, checkpoint_choice=choice)
    fit(_net(), sample, torch.nn.functional.mse_loss, validate, cfg, tmp_path, CPU)
    written = torch.load(tmp_path / "model.pt", weights_only=True)
    assert _same_weights(written, validate.seen[epoch - 1])
    assert not _same_weights(written, validate.seen[(4 if epoch == 2 else 2) - 1])


def test_finished_run_rewrites_the_other_choice_without_training(tmp_path) -> None:
    """The choice is not part of the run's fingerprint: a finished ``best`` run asked for ``last``
    writes the last epoch's weights from its checkpoint and trains nothing."""
    sample, _ = _problem()
    validate = _scripted([3.0, 1.0, 2.0, 5.0])
    cfg = LoopConfig(epochs=4, steps_per_epoch=2, lr=3e-3, seed=3)
    fit(_net(), sample, torch.nn.functional.mse_loss, validate, cfg, tmp_path, CPU)
    again = _counting(validate)
    cfg.checkpoint_choice = "last"
    fit(_net(), sample, torch.nn.functional.mse_loss, again, cfg, tmp_path, CPU)
    assert again.calls == 0
    assert _same_weights(torch.load(tmp_path / "model.pt", weights_only=True), validate.seen[3])


def test_unknown_checkpoint_choice_is_refused(tmp_path) -> None:
    sample, validate = _problem()
    cfg = LoopConfig(epochs=1, steps_per_epoch=1, checkpoint_choice="mean")
    with pytest.raises(GohscoreError, match="checkpoint_choice"):
        fit(_net(), sample, torch.nn.functional.mse_loss, validate, cfg, tmp_path, CPU)
    assert not (tmp_path / "model.pt").exists()


def _bn_net() -> torch.nn.Sequential:
    """Dropout then BatchNorm on 2 features: the statistics show whether dropout was on."""
    return torch.nn.Sequential(torch.nn.Dropout(0.5), torch.nn.BatchNorm1d(2), torch.nn.Linear(2, 1)).eval()


def test_recalibrate_batchnorm_averages_the_batches_statistics() -> None:
    """Two batches of known values: the mean of their means and of their unbiased variances; dropout
    stays off, modes, momentum and weights are as before."""
    net = _bn_net()
    bn = net[1]
    weights = {k: v.clone() for k, v in net.state_dict().items() if "running" not in k and "num_" not in k}
    a = torch.tensor([[0.0, 10.0], [2.0, 10.0]])  # means 1, 10; unbiased variances 2, 0
    b = torch.tensor([[4.0, 0.0], [6.0, 4.0]])  # means 5, 2; variances 2, 8
    assert training.recalibrate_batchnorm(net, [a, b]) == 2
    assert torch.allclose(bn.running_mean, torch.tensor([3.0, 6.0]))
    assert torch.allclose(bn.running_var, torch.tensor([2.0, 4.0]))
    assert not net.training and not bn.training and not net[0].training
    assert bn.momentum == 0.1
    now = net.state_dict()
    assert all(torch.equal(v, now[k]) for k, v in weights.items())


def test_recalibrate_batchnorm_without_batches_changes_nothing() -> None:
    net = _bn_net()
    net[1].running_mean.fill_(7.0)
    assert training.recalibrate_batchnorm(net, []) == 0
    assert torch.equal(net[1].running_mean, torch.full((2,), 7.0)) and net[1].momentum == 0.1
    assert training.recalibrate_batchnorm(torch.nn.Linear(2, 1), [torch.zeros(3, 2)]) == 0


def test_calibrate_changes_validation_not_the_weights_path(tmp_path) -> None:
    """With a calibration step the trained weights are the same, bit for bit; the BatchNorm
    statistics, and so the validation losses, are those of the calibration data."""
    sample, validate = _problem()
    x = torch.rand(8, 1, 12, 12, generator=torch.Generator().manual_seed(5)) * 3

    def calibrate(model: torch.nn.Module) -> None:
        training.recalibrate_batchnorm(model, [x[:4], x[4:]])

    cfg = LoopConfig(epochs=3, steps_per_epoch=3, lr=3e-3, seed=3, checkpoint_choice="last")
    plain = fit(_net(), sample, torch.nn.functional.mse_loss, validate, cfg, tmp_path / "a", CPU)
    calibrated = fit(
        _net(), sample, torch.nn.functional.mse_loss, validate, cfg, tmp_path / "b", CPU, calibrate=calibrate
    )
    a = torch.load(tmp_path / "a" / "model.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "model.pt", weights_only=True)
    buffers = {k for k in a if "running" in k or "num_batches" in k}
    assert buffers and all(torch.equal(a[k], b[k]) for k in a if k not in buffers)
    assert not all(torch.equal(a[k], b[k]) for k in buffers if "running" in k)
    assert (plain["train_loss"] == calibrated["train_loss"]).all()
    assert (plain["val_loss"] != calibrated["val_loss"]).all()
