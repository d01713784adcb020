"""How a trained network runs for prediction on each device: memory layout and inputs per forward pass.

Channels-last on every device: it is the layout the networks train in on CUDA, and on the CPU it
made the paper-size nets' forward passes faster (benchmarks/cpu_predict.py). Inputs per pass:
as many as keep the first layer's activations (voxels x channels) within a budget per device. On
the CPU the budget is one 192x256x256 window of the paper's level net (width 8): a pass of eight
such windows was no faster per window and held 7.2 GB instead of 1.5 GB. On CUDA it is eight.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from gohscore.training import first_conv, memory_format_for, spatial_dims

PAPER_WINDOW = 192 * 256 * 256 * 8  # voxels x first-layer channels of one paper level-net window
BUDGET = {"cpu": PAPER_WINDOW, "cuda": 8 * PAPER_WINDOW}


def first_layer_channels(model: nn.Module) -> int:
    """Output channels of the first convolution (1 for a network without one)."""
    conv = first_conv(model)
    return int(conv.out_channels) if conv is not None else 1


def per_pass(model: nn.Module, input_shape: Sequence[int], device: torch.device) -> int:
    """How many inputs of spatial shape ``input_shape`` one forward pass of ``model`` takes on ``device``.

    >>> from gohscore.networks import vgg11
    >>> per_pass(vgg11(3, 1, 5, width=8), (192, 256, 256), torch.device("cpu"))
    1
    >>> per_pass(vgg11(2, 1, 3, width=64), (512, 512), torch.device("cpu"))
    6
    """
    units = math.prod(int(s) for s in input_shape) * first_layer_channels(model)
    return max(1, BUDGET["cuda" if device.type == "cuda" else "cpu"] // units)


def for_inference(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` moved to ``device``, in eval mode and channels-last layout (changed in place, returned)."""
    model = model.to(device).eval()
    dims = spatial_dims(model)
    if dims:
        model = model.to(memory_format=memory_format_for(dims + 2))
    return model
