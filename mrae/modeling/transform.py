"""The detection transform every host uses: torchvision's resize and normalisation, with the
training crops' scale and the ignore regions resized alongside the boxes."""

from __future__ import annotations

from torch import Tensor, nn
from torchvision.models.detection.transform import GeneralizedRCNNTransform, resize_boxes


class ScaleAwareTransform(GeneralizedRCNNTransform):
    """torchvision's detection transform, except that a training target carrying ``"scale"`` (a
    random crop, :class:`mrae.data.augment.AugmentByKey`) is resized by that factor, the one its
    full image would get, instead of being fitted to ``min_size`` / ``max_size``: the objects keep
    the scale of full-image training and of evaluation."""

    def resize(self, image: Tensor, target: dict[str, Tensor] | None = None):
        """torchvision's resize (or the crop's ``"scale"``); a target's ``"ignore_boxes"``
        ([M, 4] xyxy px) are resized as its ``"boxes"`` are."""
        h, w = image.shape[-2:]
        image, target = self._resize(image, target)
        if target is not None and "ignore_boxes" in target:
            target["ignore_boxes"] = resize_boxes(target["ignore_boxes"], (h, w), image.shape[-2:])
        return image, target

    def _resize(self, image: Tensor, target: dict[str, Tensor] | None):
        scale = target.get("scale") if (self.training and target is not None) else None
        if scale is None:
            return super().resize(image, target)
        scale = float(scale)
        if scale != 1.0:
            h, w = image.shape[-2:]
            image = nn.functional.interpolate(
                image[None], scale_factor=scale, mode="bilinear", recompute_scale_factor=True,
                align_corners=False,
            )[0]
            target["boxes"] = resize_boxes(target["boxes"], (h, w), image.shape[-2:])
        return image, target


def build_transform(min_size: int, max_size: int, fixed_size: tuple[int, int] | None) -> ScaleAwareTransform:
    """The transform of every host: ImageNet mean and std, resize to ``min_size``/``max_size``
    (keeping the aspect ratio) or to ``fixed_size`` (height, width)."""
    return ScaleAwareTransform(
        min_size, max_size, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225],
        fixed_size=None if fixed_size is None else (fixed_size[1], fixed_size[0]),  # torchvision: (w, h)
    )
