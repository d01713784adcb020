"""Heat maps of the score ensemble: where on a slice each model looks when it scores TOT, GG or RET.

The method is Grad-CAM (Selvaraju et al. 2017), taken at the last convolution block whose
feature map is still 1/4 of the input side (32 x 32 for a 128 px slice):

- it costs one forward pass and, per pattern, a backward pass through the layers after that
  block only, so the maps add less time than the scoring itself; occlusion sensitivity would
  need hundreds of passes per slice;
- the score net regresses an *amount*, and Grad-CAM weights each feature map by how much it
  raises that output, which is the question a reader asks ("what made the TOT high?");
- deeper blocks give coarser maps that agreed less with the phantom's true lesion masks: on the
  validation run's test levels (one model) the pixel AUC inside the lung was 0.68-0.70 at 1/4
  of the side, 0.65-0.67 at 1/8 and 0.56-0.58 at 1/16.

Each model's map is scaled to a maximum of 1 per slice and pattern (0 where the model found
nothing that raises the output), then the ensemble's maps are averaged. The maps show what
raised the networks' outputs, not a segmentation: a region can be lesion without being lit, and
lit without being lesion.

Why not ``monai.visualize.GradCAM`` itself: it runs a forward pass and a full backward pass (to
every weight) for each pattern, three times the work, which missed the speed target (maps at
most as costly as scoring) on the CPU. :func:`gradcam` computes the same map (the tests check it
against MONAI's to 1e-5) from one forward pass, without gradients up to the target layer, and
``torch.autograd.grad`` from each output back to that layer only.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gohscore.cards import ModelCard
from gohscore.goh import PATTERNS
from gohscore.scores.data import normalize_hu
from gohscore.scores.slices import resize_square

log = logging.getLogger("gohscore")

METHOD = "gradcam"
FEATURE_STRIDE = 4  # the target layer's feature map is 1/4 of the input side


def scale_to_max(maps: torch.Tensor) -> torch.Tensor:
    """Each map of ``(B, 1, H, W)`` divided by its maximum; an all-zero map stays zero.

    MONAI's default post-processing maps (min, max) to (1, 0), which suits occlusion maps but
    would invert a Grad-CAM map, so this one keeps zero at zero.

    >>> scale_to_max(torch.tensor([[[[0.0, 2.0]]], [[[0.0, 0.0]]]])).flatten().tolist()
    [0.0, 1.0, 0.0, 0.0]
    """
    peak = maps.flatten(1).amax(dim=1).clamp_min(1e-12).view(-1, *([1] * (maps.ndim - 1)))
    return torch.where(peak > 1e-12, maps / peak, torch.zeros_like(maps))


def target_layer(model: nn.Module, stride: int = FEATURE_STRIDE) -> str:
    """Name of the last ReLU of ``model.features`` before its feature map shrinks below 1/``stride``.

    For the VGG11 plan (pools after convolutions 1, 2, 4, 6 and 8) and ``stride`` 4 that is the
    ReLU of the fourth convolution, ``features.13``; for ``stride`` 8, ``features.20``.
    """
    pools = 0
    last = None
    for name, module in model.features.named_children():
        if isinstance(module, nn.MaxPool2d | nn.MaxPool3d):
            pools += 1
            if 2**pools > stride:
                break
        elif isinstance(module, nn.ReLU):
            last = name
    if last is None:
        raise ValueError("the score network has no ReLU in its features to explain")
    return f"features.{last}"


@contextmanager
def _not_in_place(model: nn.Module) -> Iterator[None]:
    """ReLUs of ``model`` out of place for the block (an in-place ReLU after the target layer
    would overwrite the activation whose gradient is asked for); restored afterwards."""
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU) and m.inplace]
    for m in relus:
        m.inplace = False
    try:
        yield
    finally:
        for m in relus:
            m.inplace = True


def gradcam(model: nn.Module, x: torch.Tensor, layer: str) -> torch.Tensor:
    """Grad-CAM maps ``(B, outputs, H, W)`` of every output of a :class:`~gohscore.networks.VGG11`
    for the input batch ``x``; ``layer`` is a feature layer's name (``features.<k>``).

    For output ``j``: ReLU of the sum over channels of the activation ``A`` of ``layer`` weighted
    by the spatial mean of ``d output_j / d A``; upsampled (bilinear) to the input size and
    scaled by :func:`scale_to_max`. The layers up to ``layer`` run without gradients; only the
    rest of the network is differentiated, once per output.
    """
    k = int(layer.rsplit(".", 1)[1])
    with _not_in_place(model):
        with torch.no_grad():
            act = model.features[: k + 1](x)
        act = act.detach().requires_grad_(True)
        with torch.enable_grad():
            out = model.forward_from(act, k + 1).float()
            maps = []
            for j in range(out.shape[1]):
                (grad,) = torch.autograd.grad(out[:, j].sum(), act, retain_graph=j < out.shape[1] - 1)
                weights = grad.mean(dim=(2, 3), keepdim=True)
                maps.append(F.relu((weights * act).sum(dim=1, keepdim=True)))
    cam = torch.cat(maps, dim=1).detach().float()
    cam = F.interpolate(cam, size=x.shape[2:], mode="bilinear", align_corners=False)
    b, n = cam.shape[:2]
    return scale_to_max(cam.reshape(b * n, 1, *cam.shape[2:])).reshape(cam.shape)


def explain_slices(
    models: Sequence[nn.Module],
    slices_hu: np.ndarray,
    card: ModelCard,
    device: torch.device,
    batch_size: int = 16,
) -> np.ndarray:
    """Heat maps ``(N, 3, size, size)`` in [0, 1] for TOT, GG, RET of ``(N, H, W)`` HU slices.

    The slices are resized to the card's input size first, as for scoring, so the maps lie on
    the network's input grid (see :func:`gohscore.scores.slices.resize_square`).
    """
    size, hu_window = int(card.input["input_size"]), card.input["hu_window"]
    images = np.asarray(slices_hu, dtype=np.float32)
    if images.shape[1:] != (size, size):
        images, _ = resize_square(images, (1.0, 1.0), size)
    total = np.zeros((len(images), len(PATTERNS), size, size), dtype=np.float64)
    for model in models:
        model = model.to(device).eval()
        layer = target_layer(model)
        for start in range(0, len(images), batch_size):
            x = normalize_hu(torch.as_tensor(images[start : start + batch_size]).to(device), hu_window)[
                :, None
            ]
            total[start : start + len(x)] += gradcam(model, x, layer).cpu().numpy()
    return (total / max(len(models), 1)).astype(np.float32)
