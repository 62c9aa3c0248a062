"""A torchvision ResNet split into the three levels the extractors read, plus conv5_x for the box head.

    C1 = layer1 (conv2_x), stride 4      C2 = layer2 (conv3_x), stride 8
    C3 = layer3 (conv4_x), stride 16     layer4 (conv5_x) is not a level: the `c4` box head runs it
                                         on each RoI crop (Faster R-CNN ResNet's "C4 head").

Batch norm follows torchvision's detection rule: frozen (FrozenBatchNorm2d) when the ResNet starts
from trained weights, whose statistics are then kept; ordinary, learned BatchNorm2d when it starts
from scratch, since the frozen statistics of a random network would normalise nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor, nn
from torchvision import models
from torchvision.ops.misc import FrozenBatchNorm2d

from mrae.choices import BACKBONE_NAMES, NORM_CHOICES
from mrae.errors import ConfigError
from mrae.modeling.shapes import LEVEL_STRIDES, ShapeSpec

# name -> (torchvision builder, torchvision weights enum)
RESNET_DEPTHS: dict[str, tuple[Callable[..., models.ResNet], type[models.WeightsEnum]]] = {
    "resnet18": (models.resnet18, models.ResNet18_Weights),
    "resnet34": (models.resnet34, models.ResNet34_Weights),
    "resnet50": (models.resnet50, models.ResNet50_Weights),
    "resnet101": (models.resnet101, models.ResNet101_Weights),
}
assert tuple(RESNET_DEPTHS) == BACKBONE_NAMES  # the config checks names against mrae.choices

LEVELS = ("c1", "c2", "c3")
assert tuple(LEVEL_STRIDES) == LEVELS

# torchvision's order: `trainable_layers=k` trains the last k of these (0 freezes all, 5 trains all).
_STAGES = ("layer4", "layer3", "layer2", "layer1", "conv1")


def _check_choice(name: str, value: object, choices) -> None:
    if value not in choices:
        valid = ", ".join(repr(c) for c in choices)
        raise ConfigError(f"{name}={value!r} is not valid; choose one of: {valid}")


def _load_state_dict_file(path: Path) -> dict[str, Tensor]:
    if not path.is_file():
        if path.exists():  # a FIFO, a device, a folder: said what it is, never opened
            from mrae.inputs import CHECKPOINT_LIMIT, check_regular

            check_regular(path, CHECKPOINT_LIMIT, what="weights file", error=ConfigError)
        raise ConfigError(
            f"pretrained={str(path)!r}: no such weights file; give a torchvision ResNet state dict "
            "(.pth), 'imagenet', or null"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a corrupt / foreign file
        raise ConfigError(
            f"pretrained={str(path)!r}: cannot read it as a PyTorch state dict ({type(exc).__name__}); "
            "give a file written by torch.save(resnet.state_dict(), path)"
        ) from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ConfigError(
            f"pretrained={str(path)!r}: the file holds no state dict of tensors; "
            "give a file written by torch.save(resnet.state_dict(), path)"
        )
    return state


class ResNetLevels(nn.Module):
    """ResNet-18/34/50/101 cut into the levels C1..C3; conv5_x kept as `layer4`.

    Args:
        depth: one of RESNET_DEPTHS ("resnet18", "resnet34", "resnet50", "resnet101").
        pretrained: None (random init), "imagenet" (torchvision's IMAGENET1K_V1 weights, which
            downloads once into torch's cache) or the path of a local file holding a torchvision
            ResNet `state_dict()` (the `fc.*` keys may be absent).
        trainable_layers: how many stages train, counted from the top as torchvision does
            (0: none, 1: layer4, 2: +layer3, 3: +layer2, 4: +layer1, 5: +stem conv1); None:
            torchvision's default, 3 with trained weights and all 5 from scratch (a random stem
            left frozen would never learn).
        norm: "auto" (torchvision's rule: frozen batch norm with trained weights, learned batch
            norm from scratch) or "groupnorm" (32 groups, from scratch only: GroupNorm does not
            depend on the batch, which batch norm with 2 images per step does).
        weights_later: True when trained weights are loaded afterwards from a checkpoint of a
            model built with this ``pretrained``: builds the structure ``pretrained`` gives (frozen
            batch norm, its trainable layers) without reading or downloading the weights.

    forward(x: Tensor[N, 3, H, W]) -> dict {"c1": [N, channels["c1"], ceil(H/4), ...],
    "c2": stride 8, "c3": stride 16}. `layer4` is not run by forward: it is the `c4` box head's.

    Attributes:
        channels: dict level -> width, e.g. resnet50 {"c1": 256, "c2": 512, "c3": 1024}.
        layer4: conv5_x (input width = channels["c3"], stride 2); the detector may move it
            into its box head and set this attribute to None.
        layer4_channels: the width conv5_x outputs (512 for resnet18/34, 2048 for 50/101).
    """

    def __init__(
        self,
        depth: str = "resnet50",
        pretrained: str | Path | None = None,
        trainable_layers: int | None = None,
        norm: str = "auto",
        weights_later: bool = False,
    ) -> None:
        super().__init__()
        _check_choice("backbone", depth, tuple(RESNET_DEPTHS))
        _check_choice("norm", norm, NORM_CHOICES)
        if trainable_layers is not None and (isinstance(trainable_layers, bool)
                                             or trainable_layers not in range(6)):
            raise ConfigError(
                f"trainable_layers={trainable_layers!r} is not valid; choose an integer 0..5 "
                "(the number of ResNet stages that train, counted from conv5_x down)"
            )
        builder, weights_enum = RESNET_DEPTHS[depth]
        weights = None
        state = None
        if weights_later:
            pass  # the structure of trained weights below; the weights come from a checkpoint
        elif pretrained == "imagenet":
            weights = weights_enum.IMAGENET1K_V1
        elif pretrained is not None:
            if not isinstance(pretrained, str | Path):
                raise ConfigError(
                    f"pretrained={pretrained!r} is not valid; choose null, 'imagenet' or the path "
                    "of a local ResNet state dict file"
                )
            state = _load_state_dict_file(Path(pretrained))
        trained = weights is not None or state is not None or (weights_later and pretrained is not None)
        if norm == "groupnorm" and trained:
            raise ConfigError(
                "norm='groupnorm' trains from scratch: trained weights carry batch-norm statistics; "
                "set pretrained=null or norm='auto'"
            )
        if norm == "groupnorm":
            norm_layer: Callable[[int], nn.Module] = _group_norm
        else:
            norm_layer = FrozenBatchNorm2d if trained else nn.BatchNorm2d
        try:
            net = builder(weights=weights, norm_layer=norm_layer)
        except OSError as error:  # urllib's URLError included: no network, a proxy, a full disk
            raise ConfigError(
                f"pretrained='imagenet': torchvision could not download {weights.url if weights else 'the weights'} "
                f"({error}); connect to the internet once (the file is cached in $TORCH_HOME), or set "
                "model.pretrained to 'synthetic' or a local state-dict file"
            ) from None
        if state is not None:
            state = {k: v for k, v in state.items() if not k.startswith("fc.")}
            try:
                missing, unexpected = net.load_state_dict(state, strict=False)
            except RuntimeError:  # shape mismatches: weights of another depth
                raise ConfigError(
                    f"pretrained={str(pretrained)!r}: the tensor shapes do not fit {depth}; "
                    f"give weights of a torchvision {depth}"
                ) from None
            missing = [k for k in missing if not k.startswith("fc.")]
            if missing or unexpected:
                bad = (missing or unexpected)[:3]
                what = "misses" if missing else "has unexpected"
                raise ConfigError(
                    f"pretrained={str(pretrained)!r}: the state dict {what} keys {bad} for {depth}; "
                    f"give weights of a torchvision {depth}"
                )

        self.depth = depth
        self.conv1, self.bn1, self.relu, self.maxpool = net.conv1, net.bn1, net.relu, net.maxpool
        self.layer1, self.layer2, self.layer3 = net.layer1, net.layer2, net.layer3
        self.layer4: nn.Sequential | None = net.layer4
        self.channels = {
            level: _stage_width(stage)
            for level, stage in zip(LEVELS, (net.layer1, net.layer2, net.layer3), strict=True)
        }
        self.layer4_channels = _stage_width(net.layer4)

        if trainable_layers is None:  # torchvision's rule: 3 with trained weights, all from scratch
            trainable_layers = 3 if trained else 5
        self.trainable_layers = trainable_layers
        trainable = set(_STAGES[:trainable_layers])
        for name, param in net.named_parameters():
            if name.startswith("fc."):
                continue
            stage = name.split(".")[0]
            param.requires_grad_(("conv1" if stage == "bn1" else stage) in trainable)

    def output_shape(self) -> dict[str, ShapeSpec]:
        """The levels forward returns: {"c1": ShapeSpec(channels["c1"], 4), "c2": .., 8, "c3": .., 16}."""
        return {level: ShapeSpec(self.channels[level], LEVEL_STRIDES[level]) for level in LEVELS}

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        c1 = self.layer1(x)
        c2 = self.layer2(c1)
        c3 = self.layer3(c2)
        return {"c1": c1, "c2": c2, "c3": c3}


def _group_norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(32, channels), channels)


def _stage_width(stage: nn.Sequential) -> int:
    """Output channels of a ResNet stage (its last block's last conv)."""
    block = stage[-1]
    last_conv = block.conv3 if hasattr(block, "conv3") else block.conv2
    return last_conv.out_channels
