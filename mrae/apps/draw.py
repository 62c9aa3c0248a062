"""Pictures of what a detector found: boxes with class names and scores, and attention maps.

:func:`draw_detections` draws the boxes with ``torchvision.utils.draw_bounding_boxes`` (one colour
per class, 1 px lines) and writes each label on a filled tag above its box, not inside it, so an
object of a few pixels stays visible; images under 600 px are drawn at 2x (nearest neighbour, so
the pixels stay as the model saw them). :func:`draw_level_weights` adds a bar chart of the level
weights of the global MRAE in the picture's bottom-right corner; :func:`save_attention_figure`
puts the three level-weight maps of the spatial MRAE beside the image with matplotlib.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import torch
from PIL import ImageDraw, ImageFont
from torch import Tensor
from torchvision.transforms.v2 import functional as F
from torchvision.utils import draw_bounding_boxes

from mrae.files import atomic_path, save_figure

#: Images whose longer side is below this are drawn at 2x.
UPSCALE_BELOW = 600

LEVEL_NAMES = ("C1 (stride 4)", "C2 (stride 8)", "C3 (stride 16)")

#: Bar colours of the level-weight chart, C1, C2, C3 (none of them a class colour of tab10/20).
LEVEL_COLORS: tuple[tuple[int, int, int], ...] = ((0, 200, 255), (255, 0, 200), (255, 220, 0))
_PANEL_COLOR = (24, 24, 24)
_FRAME_COLOR = (128, 128, 128)


def class_color(label: int) -> tuple[int, int, int]:
    """An RGB colour for the contiguous class ``label`` (1..C), from matplotlib's tab10/tab20."""
    from matplotlib import colormaps

    cmap = colormaps["tab10"] if label <= 10 else colormaps["tab20"]
    r, g, b, _ = cmap((label - 1) % cmap.N)
    return int(255 * r), int(255 * g), int(255 * b)


def draw_detections(
    image: Tensor,
    boxes: Tensor,
    labels: Sequence[int],
    scores: Sequence[float],
    class_names: Sequence[str],
) -> Tensor:
    """Draw detections on an image.

    Args:
        image: [3, H, W], float in [0, 1] or uint8.
        boxes: [D, 4] xyxy in the image's pixels.
        labels: D contiguous class labels 1..C (``class_names[label - 1]`` names them).
        scores: D scores in [0, 1].
        class_names: the C class names.

    Returns:
        uint8 [3, s*H, s*W] with s = 2 when ``max(H, W) < UPSCALE_BELOW`` else 1.
    """
    if image.is_floating_point():
        image = F.to_dtype(image.clamp(0, 1), torch.uint8, scale=True)
    height, width = image.shape[-2:]
    scale = 2 if max(height, width) < UPSCALE_BELOW else 1
    if scale > 1:
        image = F.resize(
            image, [scale * height, scale * width], interpolation=F.InterpolationMode.NEAREST
        )
    if len(boxes) == 0:
        return image
    texts = [f"{_name(class_names, int(k))} {float(s):.2f}" for k, s in zip(labels, scores, strict=True)]
    colors = [class_color(int(k)) for k in labels]
    boxes = boxes.detach().float().cpu() * scale
    # 1 px lines: on a 2x picture they are half an input pixel, so a 4 px object stays visible.
    line = 1 if scale > 1 else max(1, max(height, width) // 600)
    drawn = draw_bounding_boxes(image, boxes, colors=colors, width=line)
    return _draw_labels(drawn, boxes, texts, colors, size=max(10, min(height, width) * scale // 40))


def _draw_labels(
    image: Tensor, boxes: Tensor, texts: list[str], colors: list[tuple[int, int, int]], size: int
) -> Tensor:
    """Write each text on a filled tag above its box (below it at the top edge), never on it.

    torchvision writes labels inside the box's corner, which hides an object of a few pixels.
    """
    picture = F.to_pil_image(image)
    draw = ImageDraw.Draw(picture)
    path = _font_path()
    font = ImageFont.truetype(path, size) if path else ImageFont.load_default()
    for (x1, y1, _, y2), text, color in zip(boxes.tolist(), texts, colors, strict=True):
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        tag_w, tag_h = right - left + 2, bottom - top + 2
        x = min(max(0.0, x1), max(0.0, picture.width - tag_w))
        y = y1 - tag_h - 1 if y1 - tag_h - 1 >= 0 else min(y2 + 1, picture.height - tag_h)
        draw.rectangle((x, y, x + tag_w, y + tag_h), fill=color)
        draw.text((x + 1 - left, y + 1 - top), text, fill="white", font=font)
    return F.pil_to_tensor(picture)


def draw_level_weights(
    image: Tensor, weights: Tensor | Sequence[float], names: Sequence[str] = ("C1", "C2", "C3")
) -> Tensor:
    """Draw a bar chart of level weights in the image's bottom-right corner.

    Args:
        image: [3, H, W], float in [0, 1] or uint8 (e.g. what :func:`draw_detections` returns).
        weights: [L] level weights in [0, 1] (the global MRAE's softmax over C1, C2, C3).
        names: the L bar labels, written under the bars; each weight is written above its bar.

    Returns:
        uint8 [3, H, W]: the image with an opaque dark panel (about 30% of the shorter side, at
        least 72 px when the image allows) holding one bar per level in :data:`LEVEL_COLORS`,
        whose filled height is ``weight`` times the bar's full height (drawn as a grey frame).
    """
    values = [float(w) for w in (weights.detach().float().cpu().flatten() if torch.is_tensor(weights) else weights)]
    if len(values) != len(names):
        raise ValueError(f"{len(values)} weights for {len(names)} level names")
    if image.is_floating_point():
        image = F.to_dtype(image.clamp(0, 1), torch.uint8, scale=True)
    picture = F.to_pil_image(image.cpu())
    draw = ImageDraw.Draw(picture)
    width, height = picture.size
    side = min(width - 2, height - 2, max(72, min(width, height) * 3 // 10))
    if side < 8:  # nothing readable fits
        return F.pil_to_tensor(picture)
    path = _font_path()
    font_size = max(6, side // 8)
    font = ImageFont.truetype(path, font_size) if path else ImageFont.load_default()
    left, top = width - side - 1, height - side - 1
    draw.rectangle((left, top, left + side - 1, top + side - 1), fill=_PANEL_COLOR)
    text_h = font_size + 2
    bar_top, bar_bottom = top + text_h + 2, top + side - text_h - 3
    slot = side / len(values)
    for i, (value, name) in enumerate(zip(values, names, strict=True)):
        x0 = round(left + i * slot + slot * 0.2)
        x1 = round(left + (i + 1) * slot - slot * 0.2) - 1
        filled = round(min(max(value, 0.0), 1.0) * (bar_bottom - bar_top))
        draw.rectangle((x0 - 1, bar_top - 1, x1 + 1, bar_bottom + 1), outline=_FRAME_COLOR)
        if filled > 0:
            draw.rectangle((x0, bar_bottom - filled + 1, x1, bar_bottom), fill=LEVEL_COLORS[i % 3])
        centre = (x0 + x1) / 2
        draw.text((centre, bar_top - 2), f"{value:.2f}", fill="white", font=font, anchor="md")
        draw.text((centre, bar_bottom + 3), name, fill="white", font=font, anchor="ma")
    return F.pil_to_tensor(picture)


def save_image(image: Tensor, path: str | Path) -> None:
    """Write a uint8 [3, H, W] image (format from the suffix: .jpg quality 95, .png, ...)
    atomically (:func:`mrae.files.atomic_path`: a link at ``path`` is replaced, never written
    through)."""
    from PIL import Image

    picture = F.to_pil_image(image.cpu())
    path = Path(path)
    Image.init()
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"{path}: no image format has the suffix {path.suffix!r}")
    options = {"quality": 95} if fmt == "JPEG" else {}
    with atomic_path(path) as tmp:
        picture.save(tmp, format=fmt, **options)


def save_attention_figure(
    image: Tensor, maps: Tensor, path: str | Path, title: str | None = None
) -> None:
    """Save the image and its three level-weight maps side by side as a PNG.

    Args:
        image: [3, H, W] float in [0, 1] or uint8.
        maps: [3, h, w] per-position level weights in [0, 1] (softmax over the levels) covering
            the whole image at any resolution; shown stretched over it.
        path: output file (.png).
        title: figure title, e.g. the image's file name.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if image.is_floating_point():
        image = F.to_dtype(image.clamp(0, 1), torch.uint8, scale=True)
    picture = image.permute(1, 2, 0).cpu().numpy()
    gray = picture.mean(axis=2)
    height, width = picture.shape[:2]
    extent = (0, width, height, 0)
    fig, axes = plt.subplots(1, 4, figsize=(16, 4.2 * height / max(width, 1) + 0.8), layout="constrained")
    axes[0].imshow(picture, extent=extent)
    axes[0].set_title("image")
    shown = None
    for level, axis in enumerate(axes[1:]):
        weights = maps[level].float().cpu().numpy()
        axis.imshow(gray, cmap="gray", extent=extent)
        shown = axis.imshow(
            weights, cmap="magma", vmin=0.0, vmax=1.0, alpha=0.65, extent=extent, interpolation="bilinear"
        )
        axis.set_title(f"{LEVEL_NAMES[level]}: mean {weights.mean():.2f}")
    for axis in axes:
        axis.set_axis_off()
    fig.colorbar(shown, ax=list(axes[1:]), shrink=0.8, label="level weight")
    if title:
        fig.suptitle(title)
    try:
        save_figure(fig, path, dpi=100)
    finally:
        plt.close(fig)


def _name(class_names: Sequence[str], label: int) -> str:
    return class_names[label - 1] if 1 <= label <= len(class_names) else f"class {label}"


@lru_cache(maxsize=1)
def _font_path() -> str | None:
    """DejaVu Sans from matplotlib's data: a TrueType font, so the label size can be chosen."""
    from matplotlib import font_manager

    try:
        return font_manager.findfont(
            font_manager.FontProperties(family="DejaVu Sans"), fallback_to_default=False
        )
    except ValueError:
        return None
