"""VGG11 regressors for 2D slices and 3D volumes, one definition built from MONAI's layer factories.

The level network is ``vgg11(3, 1, 5, width=8)`` (the paper's 8-16-32-32-64-64-128-128 net),
the score network ``vgg11(2, 1, 3, width=64)`` (the layout of torchvision's ``vgg11_bn``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path

import torch
from monai.networks.layers.factories import Conv, Norm, Pool
from torch import nn

from gohscore.errors import GohscoreError

log = logging.getLogger("gohscore")

# Channel multipliers of VGG11 ("A"); "M" is a 2x max pooling.
# Feature map kept before the head, per dimension: torchvision's 7 x 7 in 2D (25088 = 512 * 7 * 7
# inputs to the head at width 64) and the paper crop's 6 x 8 x 8 in 3D (192 x 256 x 256 / 32).
# A global average would make the output nearly blind to *where* a structure lies in the input,
# which is what the level network regresses.
DEFAULT_POOL: dict[int, tuple[int, ...]] = {2: (7, 7), 3: (6, 8, 8)}
VGG11_PLAN: tuple[int | str, ...] = (1, "M", 2, "M", 4, 4, "M", 8, 8, "M", 8, 8, "M")


def vgg11_channels(width: int, last_block: int = 8) -> list[int]:
    """The eight convolution widths of VGG11 with base ``width``; the last block has ``last_block * width``.

    Standard VGG11 (``last_block=8``): 64 -> 64, 128, 256, 256, 512, 512, 512, 512. The paper's
    level network doubles the last block (``last_block=16``): 8 -> 8, 16, 32, 32, 64, 64, 128, 128.
    """
    mults = [m for m in VGG11_PLAN if m != "M"]
    mults[-2:] = [last_block, last_block]
    return [width * int(m) for m in mults]


class VGG11(nn.Module):
    """VGG11 with BatchNorm: conv features, adaptive average pooling to a small grid, a three-layer head."""

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_features: int,
        width: int = 64,
        head_features: int = 1024,
        dropout: float = 0.5,
        channels: Sequence[int] | None = None,
        pool_size: Sequence[int] | None = None,
    ) -> None:
        """Build the layers; see :func:`vgg11` for the arguments."""
        super().__init__()
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}")
        widths = list(channels) if channels is not None else vgg11_channels(width)
        if len(widths) != 8 or min(widths) < 1:
            raise ValueError(f"channels must be eight positive widths, got {widths}")
        if head_features < 1 or in_channels < 1 or out_features < 1:
            raise ValueError("head_features, in_channels and out_features must be positive")
        conv_widths = iter(widths)
        conv_t, norm_t = Conv[Conv.CONV, spatial_dims], Norm[Norm.BATCH, spatial_dims]
        # ceil_mode keeps a size of 1 at 1 (and an odd size n at (n + 1) / 2), so any input works.
        pool_t = Pool[Pool.MAX, spatial_dims]
        layers: list[nn.Module] = []
        channels = in_channels
        for item in VGG11_PLAN:
            if item == "M":
                layers.append(pool_t(kernel_size=2, stride=2, ceil_mode=True))
                continue
            out = next(conv_widths)
            layers += [conv_t(channels, out, kernel_size=3, padding=1), norm_t(out), nn.ReLU(inplace=True)]
            channels = out
        # Same module indices as torchvision's vgg11_bn, so its feature weights load by name.
        self.features = nn.Sequential(*layers)
        pool = tuple(int(s) for s in (pool_size if pool_size is not None else DEFAULT_POOL[spatial_dims]))
        if len(pool) != spatial_dims or min(pool) < 1:
            raise ValueError(f"pool_size must be {spatial_dims} positive sizes, got {pool}")
        self.avgpool = Pool[Pool.ADAPTIVEAVG, spatial_dims](pool)
        self.classifier = nn.Sequential(
            nn.Linear(channels * math.prod(pool), head_features),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(head_features, head_features),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(head_features, out_features),
        )
        self.spatial_dims = spatial_dims
        self._init_weights()

    def _init_weights(self) -> None:
        """He initialisation for convolutions, small normal weights for the head (as torchvision does)."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d | nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d | nn.BatchNorm3d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(batch, in_channels, *spatial)`` to ``(batch, out_features)``."""
        return self.forward_from(x, 0)

    def forward_from(self, x: torch.Tensor, start: int) -> torch.Tensor:
        """The rest of the network from feature layer ``start`` on, ``x`` being that layer's input.

        ``forward_from(features[:k](x), k) == forward(x)``; heat maps use it to run only the layers
        after their target layer with gradients.
        """
        x = self.avgpool(self.features[start:](x))
        # the head runs in fp32 even under autocast: bf16 would quantise a level's position by up
        # to about 0.2 slice (8 bits of mantissa), and the head costs little next to the features
        with torch.autocast(device_type=x.device.type, enabled=False):
            return self.classifier(torch.flatten(x, 1).float())


def load_pretrained(model: VGG11, path: Path) -> list[str]:
    """Copy the weights of a local state-dict file whose names and shapes match; return the loaded keys.

    Works with our own checkpoints and with torchvision's ``vgg11_bn`` layout (``features.*``).
    A first convolution with a different number of input channels keeps its fresh initialisation;
    the head is loaded only where the shapes agree.
    """
    path = Path(path)
    if not path.is_file():
        raise GohscoreError(
            f"{path}: pretrained weights file not found; set 'pretrained' to a local file or null"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file is the user's to fix
        raise GohscoreError(
            f"{path}: not a readable PyTorch state dict ({err}); give a .pt/.pth state dict"
        ) from err
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise GohscoreError(f"{path}: expected a state dict (name -> tensor); got {type(state).__name__}")
    own = model.state_dict()
    loaded = {k: v for k, v in state.items() if k in own and tuple(v.shape) == tuple(own[k].shape)}
    if not any(k.startswith("features.") and k.endswith(".weight") for k in loaded):
        raise GohscoreError(
            f"{path}: no feature weights match this VGG11 (first width {model.features[0].out_channels}); "
            "give weights of a VGG11 with the same width and dimension"
        )
    own.update(loaded)
    model.load_state_dict(own)
    skipped = sorted(set(own) - set(loaded))
    log.info(
        "pretrained %s: loaded %d tensors, kept %d fresh (%s)",
        path.name,
        len(loaded),
        len(skipped),
        ", ".join(skipped[:4]) + (" ..." if len(skipped) > 4 else ""),
    )
    return sorted(loaded)


def vgg11(
    spatial_dims: int,
    in_channels: int,
    out_features: int,
    width: int = 64,
    head_features: int = 1024,
    dropout: float = 0.5,
    pretrained: Path | None = None,
    channels: Sequence[int] | None = None,
    pool_size: Sequence[int] | None = None,
) -> nn.Module:
    """A VGG11-BN regressor for ``spatial_dims`` 2 or 3 with base ``width`` and a ``head_features`` head.

    ``channels`` (eight widths) overrides ``width``; ``pool_size`` is the feature grid fed to the head
    (default :data:`DEFAULT_POOL`; ``[1, 1]`` is a global average); ``pretrained`` is a local state-dict file.

    >>> net = vgg11(3, 1, 5, channels=vgg11_channels(8, last_block=16))  # the paper's level network
    >>> net(torch.zeros(2, 1, 20, 29, 31)).shape
    torch.Size([2, 5])
    """
    model = VGG11(spatial_dims, in_channels, out_features, width, head_features, dropout, channels, pool_size)
    if pretrained is not None:
        load_pretrained(model, Path(pretrained))
    return model
