"""The scenes of the synthetic small-object benchmark: shapes, background and drawing.

:func:`render_scene` draws one image and its boxes; :mod:`mrae.data.synth` writes a dataset of
them (`mrae synth`). The scenes were designed once, from the points below, and are kept fixed;
they are never tuned to favour one feature extractor.

Design
------
Classes (6) differ in *shape* only: ``disc, square, triangle, plus, ring, star``. Every class
draws its colour, size, rotation and stretch from the same distributions, so nothing but the
outline tells them apart. At 4..10 px a star, a disc, a ring and a square are a few anti-aliased
pixels each and look alike; at 20..32 px the corners, arms and the ring's hole are clear.
That is the regime the paper is about: fine, high-resolution features decide the class.

Sizes: ``s = sqrt(w * h)`` of the tight box is drawn with ``log2(s) ~ Triangular(2, 3.6, 5)``,
i.e. 4..32 px with the mode at 12 px (about 21% below 8 px, 68% at 8..20 px, 11% at 20..32 px).
A ``medium_fraction`` share of the objects is instead log-uniform in 32..64 px. Each shape is
rotated uniformly and stretched along the image axes by a factor in [1/1.5, 1.5], so box aspect
ratios h/w spread over about 0.6..1.6.

Layout: 3..15 labelled objects per image, boxes at least 2 px apart (no overlap), fully inside
the image; 2..10 unlabelled distractors from the same size and colour distributions but of shapes
that belong to no class (short thick bars, open arcs, half-discs, chevrons, irregular lumpy blobs),
placed off the labelled boxes and drawn beneath them. ``object_factor`` multiplies both ranges
(``mrae synth --large``); sizes in px stay the same.

Background: a smooth colour field (a 2..6 x 3..8 random grid upsampled bicubically) plus
mid-frequency luminance texture (random grid at 1/6..1/12 of the size, upsampled) plus 3..15
long thin lines in random colours. Per image: a blur of all shapes (their alpha masks are
box-blurred with a radius of 0..0.8 px; blurring the whole image would cost 3 ms) and Gaussian
luminance noise (sigma 2..8 of 255).

Contrast rule: an object's luminance differs from the mean of the background under it by
40..110 (of 255), brighter or darker at random, with a random chroma. So objects are always
visible at their size against the local background, as distractors are, but neither the colour
nor the contrast says anything about the class.

Rendering: every shape is a polygon (a disc is a 48-gon; a ring is a disc with a polygonal hole)
filled at 4x supersampling in a patch around the object and box-downscaled to an alpha mask,
i.e. anti-aliased; the box is the exact extent of the polygon, rounded to 1/100 px.

Determinism: image ``i`` of split ``split`` uses ``numpy.random.default_rng((seed, split_id, i))``
only, so an image does not depend on the number of workers or the order they run in.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter

CLASSES: tuple[str, ...] = ("disc", "square", "triangle", "plus", "ring", "star")
DISTRACTORS: tuple[str, ...] = ("bar", "arc", "half_disc", "chevron", "blob")
SPLITS: dict[str, int] = {"train": 0, "val": 1}  # split name -> id mixed into each image's seed
# The id of the images that the proxy pretraining (:mod:`mrae.data.crops`) cuts its crops from: no
# dataset split uses it, so whatever the seeds, those images are never training or val images.
PRETRAIN_SPLIT_ID = 2

SUPERSAMPLE = 4
MIN_OBJECTS, MAX_OBJECTS = 3, 15
MIN_DISTRACTORS, MAX_DISTRACTORS = 2, 10
MAX_STRETCH = 1.5
GAP = 2.0  # px between labelled boxes

Polygon = tuple[np.ndarray, int]  # (vertices (N, 2) in unit coordinates, fill 255 or 0 for a hole)


# ----------------------------------------------------------------------------- shapes


def _circle(n: int = 48, radius: float = 1.0) -> np.ndarray:
    t = np.linspace(0.0, 2.0 * math.pi, n, endpoint=False)
    return radius * np.stack([np.cos(t), np.sin(t)], axis=1)


def _star(points: int, inner: float) -> np.ndarray:
    t = np.linspace(0.0, 2.0 * math.pi, 2 * points, endpoint=False) - math.pi / 2
    r = np.where(np.arange(2 * points) % 2 == 0, 1.0, inner)
    return np.stack([r * np.cos(t), r * np.sin(t)], axis=1)


def _plus(arm: float) -> np.ndarray:
    a = arm / 2
    return np.array(
        [(-a, -1), (a, -1), (a, -a), (1, -a), (1, a), (a, a),
         (a, 1), (-a, 1), (-a, a), (-1, a), (-1, -a), (-a, -a)],
        dtype=np.float64,
    )  # fmt: skip


def _arc(start: float, span: float, inner: float, n: int = 24) -> np.ndarray:
    t = start + np.linspace(0.0, span, n)
    outer = np.stack([np.cos(t), np.sin(t)], axis=1)
    return np.concatenate([outer, inner * outer[::-1]], axis=0)


def _class_polygons(kind: str, rng: np.random.Generator) -> list[Polygon]:
    """Unit-size outline(s) of a labelled class; later polygons with fill 0 cut holes."""
    if kind == "disc":
        return [(_circle(), 255)]
    if kind == "square":
        return [(np.array([(-1, -1), (1, -1), (1, 1), (-1, 1)], dtype=np.float64), 255)]
    if kind == "triangle":
        t = -math.pi / 2 + np.arange(3) * 2 * math.pi / 3
        return [(np.stack([np.cos(t), np.sin(t)], axis=1), 255)]
    if kind == "plus":
        return [(_plus(rng.uniform(0.36, 0.5)), 255)]
    if kind == "ring":
        return [(_circle(), 255), (_circle(radius=rng.uniform(0.5, 0.62)), 0)]
    if kind == "star":
        return [(_star(5, rng.uniform(0.38, 0.48)), 255)]
    raise ValueError(kind)


def _distractor_polygons(kind: str, rng: np.random.Generator) -> list[Polygon]:
    """Unit-size outline of an unlabelled shape that is none of the classes."""
    if kind == "bar":  # elongated: aspect 4..7, far from any class after a 1.5x stretch
        half = 1.0 / rng.uniform(4.0, 7.0)
        return [(np.array([(-1, -half), (1, -half), (1, half), (-1, half)]), 255)]
    if kind == "arc":  # an open band: 100..200 degrees of a ring
        span = math.radians(rng.uniform(100.0, 200.0))
        return [(_arc(rng.uniform(0, 2 * math.pi), span, rng.uniform(0.5, 0.7)), 255)]
    if kind == "half_disc":
        t = np.linspace(0.0, math.pi, 25)
        return [(np.stack([np.cos(t), np.sin(t)], axis=1), 255)]
    if kind == "chevron":  # a V of two thick strokes
        w = rng.uniform(0.25, 0.4)
        return [(np.array([(-1, -1), (-1 + w, -1), (0, 1 - 2 * w), (1 - w, -1), (1, -1), (0, 1)]), 255)]
    if kind == "blob":  # lumpy: radius modulated by harmonics 2 and 3
        t = np.linspace(0.0, 2 * math.pi, 48, endpoint=False)
        r = 1.0
        for k in (2, 3):
            r = r + rng.uniform(0.2, 0.35) * np.cos(k * t + rng.uniform(0, 2 * math.pi))
        return [(np.stack([r * np.cos(t), r * np.sin(t)], axis=1), 255)]
    raise ValueError(kind)


def _sample_size(rng: np.random.Generator, medium_fraction: float) -> float:
    """sqrt(w*h) of the box, in pixels."""
    if rng.random() < medium_fraction:
        return float(2.0 ** rng.uniform(5.0, 6.0))
    return float(2.0 ** rng.triangular(2.0, 3.6, 5.0))


def _place_shape(polys: list[Polygon], size: float, rng: np.random.Generator) -> list[Polygon]:
    """Rotate, stretch along the axes and scale so that the tight box has sqrt(w*h) == size."""
    angle = rng.uniform(0.0, 2.0 * math.pi)
    c, s = math.cos(angle), math.sin(angle)
    stretch = math.exp(rng.uniform(-math.log(MAX_STRETCH), math.log(MAX_STRETCH)))
    m = np.array([[c, -s], [s, c]]).T * np.array([math.sqrt(stretch), 1.0 / math.sqrt(stretch)])
    placed = [(v @ m, fill) for v, fill in polys]
    outer = placed[0][0]  # holes lie inside the first polygon
    w, h = np.ptp(outer, axis=0)
    scale = size / math.sqrt(w * h)
    centre = (outer.min(axis=0) + outer.max(axis=0)) / 2
    return [((v - centre) * scale, fill) for v, fill in placed]


# ----------------------------------------------------------------------------- drawing


def _background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """Writable uint8 (H, W, 3): colour field + thin lines + luminance texture."""
    gh, gw = int(rng.integers(2, 7)), int(rng.integers(3, 9))
    lo, hi = sorted(rng.uniform(20.0, 235.0, size=2))
    field = rng.uniform(lo, hi, size=(gh, gw, 3)).astype(np.uint8)
    image = Image.fromarray(field).resize((width, height), Image.BICUBIC)
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(3, 16))):
        x0, x1 = rng.uniform(-50, width + 50, size=2)
        y0, y1 = rng.uniform(-50, height + 50, size=2)
        colour = tuple(int(v) for v in rng.integers(0, 256, size=3))
        draw.line([(x0, y0), (x1, y1)], fill=colour, width=int(rng.integers(1, 3)))
    cell = rng.uniform(6.0, 12.0)
    th, tw = max(2, round(height / cell)), max(2, round(width / cell))
    amplitude = rng.uniform(0.08, 0.25)
    texture = 128.0 + rng.uniform(-127.5, 127.5, size=(th, tw)) * amplitude
    texture = Image.fromarray(texture.astype(np.uint8)).resize((width, height), Image.BILINEAR)
    image = ImageChops.add(image, Image.merge("RGB", (texture,) * 3), offset=-128)
    return np.array(image)


def _noise_table(sigma: float) -> list[int]:
    """Lookup table: a uniform byte -> 128 + a Gaussian quantile of std `sigma`."""
    normal = NormalDist(128.0, sigma)
    return [min(255, max(0, round(normal.inv_cdf((k + 0.5) / 256)))) for k in range(256)]


def _add_noise(canvas: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """Gaussian luminance noise of std 2..8 (of 255)."""
    image = Image.fromarray(canvas)
    noise = Image.fromarray(rng.integers(0, 256, size=canvas.shape[:2], dtype=np.uint8))
    noise = noise.point(_noise_table(float(rng.uniform(2.0, 8.0))))
    return ImageChops.add(image, Image.merge("RGB", (noise,) * 3), offset=-128)


_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _object_colour(rng: np.random.Generator, under: np.ndarray) -> np.ndarray:
    """RGB whose luminance differs from the mean luminance of `under` (K, 3) by 40..110."""
    bg = float(under.reshape(-1, 3).mean(axis=0) @ _LUMA)
    contrast = rng.uniform(40.0, 110.0)
    sign = 1.0 if rng.random() < 0.5 else -1.0
    if not 0.0 <= bg + sign * contrast <= 255.0:
        sign = -sign
    target = float(np.clip(bg + sign * contrast, 0.0, 255.0))
    chroma = rng.uniform(-70.0, 70.0, size=3).astype(np.float32)
    chroma -= chroma @ _LUMA  # keep the luminance
    return np.clip(target + chroma, 0.0, 255.0)


def _draw(canvas: np.ndarray, polys: list[Polygon], cx: float, cy: float, colour: np.ndarray,
          blur: float) -> None:
    """Alpha-composite anti-aliased polygons centred at (cx, cy) into uint8 canvas (H, W, 3),
    their alpha mask box-blurred with radius `blur` px."""
    outer = polys[0][0]
    x0 = max(0, math.floor(cx + outer[:, 0].min()) - 2)
    y0 = max(0, math.floor(cy + outer[:, 1].min()) - 2)
    x1 = min(canvas.shape[1], math.ceil(cx + outer[:, 0].max()) + 2)
    y1 = min(canvas.shape[0], math.ceil(cy + outer[:, 1].max()) + 2)
    ss = SUPERSAMPLE
    mask = Image.new("L", ((x1 - x0) * ss, (y1 - y0) * ss), 0)
    draw = ImageDraw.Draw(mask)
    # PIL fills a polygon's boundary pixels too, i.e. one supersampled pixel too many across;
    # shrinking by that pixel about the box centre makes the coverage unbiased
    lo, hi = outer.min(axis=0), outer.max(axis=0)
    mid, shrink = (lo + hi) / 2, 1.0 - 1.0 / ((hi - lo) * ss)
    for v, fill in polys:
        # continuous coordinate u -> supersampled pixel-centre coordinate u * ss - 0.5
        pts = (((v - mid) * shrink + mid + (cx - x0, cy - y0)) * ss - 0.5).ravel().tolist()
        draw.polygon(pts, fill=fill)
    mask = mask.reduce(ss).filter(ImageFilter.BoxBlur(blur))
    alpha = np.asarray(mask, dtype=np.float32)[..., None] * (1.0 / 255.0)
    region = canvas[y0:y1, x0:x1].astype(np.float32)
    region += (colour - region) * alpha
    canvas[y0:y1, x0:x1] = np.rint(region)


def _free(box: tuple[float, float, float, float], boxes: list, gap: float) -> bool:
    x0, y0, x1, y1 = box
    return all(x0 >= b[2] + gap or b[0] >= x1 + gap or y0 >= b[3] + gap or b[1] >= y1 + gap
               for b in boxes)  # fmt: skip


def _position(rng, polys, width, height, taken, gap, tries=40):
    """Centre (cx, cy) and box (x0, y0, x1, y1) inside the image and `gap` px off `taken`."""
    outer = polys[0][0]
    lo, hi = outer.min(axis=0), outer.max(axis=0)
    for _ in range(tries):
        cx = rng.uniform(1.0 - lo[0], width - 1.0 - hi[0])
        cy = rng.uniform(1.0 - lo[1], height - 1.0 - hi[1])
        box = (cx + lo[0], cy + lo[1], cx + hi[0], cy + hi[1])
        if _free(box, taken, gap):
            return cx, cy, box
    return None


def render(seed: int, split: str, index: int, width: int = 512, height: int = 300,
           medium_fraction: float = 0.1, object_factor: int = 1,
           ) -> tuple[Image.Image, list[tuple[int, list[float]]]]:
    """Draw one image; returns (RGB image, [(category id 1..6, [x, y, w, h]), ...])."""
    image, annotations, _ = render_scene(seed, SPLITS[split], index, width, height, medium_fraction,
                                         object_factor)
    return image, annotations


def render_scene(
    seed: int, split_id: int, index: int, width: int = 512, height: int = 300,
    medium_fraction: float = 0.1, object_factor: int = 1,
) -> tuple[Image.Image, list[tuple[int, list[float]]], list[list[float]]]:
    """Draw one image of split id ``split_id`` (:data:`SPLITS` or :data:`PRETRAIN_SPLIT_ID`).

    ``object_factor`` multiplies the range of the number of objects and distractors (1: 3..15
    and 2..10); sizes in px are the same whatever the image size.

    Returns (RGB image, labelled objects [(category id 1..6, [x, y, w, h]), ...], the unlabelled
    distractors' boxes [[x, y, w, h], ...]). :func:`render` is this without the distractors.
    """
    rng = np.random.default_rng((seed, split_id, index))
    canvas = _background(rng, width, height)
    blur = float(rng.uniform(0.0, 0.8))

    objects = []  # (label, polys, cx, cy, box)
    taken: list[tuple[float, float, float, float]] = []
    for _ in range(int(rng.integers(MIN_OBJECTS * object_factor, MAX_OBJECTS * object_factor + 1))):
        label = int(rng.integers(len(CLASSES)))
        polys = _place_shape(_class_polygons(CLASSES[label], rng), _sample_size(rng, medium_fraction), rng)
        where = _position(rng, polys, width, height, taken, GAP)
        if where is not None:
            taken.append(where[2])
            objects.append((label, polys, *where))

    distractors: list[list[float]] = []
    for _ in range(int(rng.integers(MIN_DISTRACTORS * object_factor, MAX_DISTRACTORS * object_factor + 1))):
        kind = DISTRACTORS[int(rng.integers(len(DISTRACTORS)))]
        polys = _place_shape(_distractor_polygons(kind, rng), _sample_size(rng, medium_fraction), rng)
        where = _position(rng, polys, width, height, taken, 1.0)
        if where is not None:
            cx, cy, (x0, y0, x1, y1) = where
            under = canvas[int(y0):int(y1) + 1, int(x0):int(x1) + 1]
            _draw(canvas, polys, cx, cy, _object_colour(rng, under), blur)
            distractors.append([round(float(v), 2) for v in (x0, y0, x1 - x0, y1 - y0)])

    annotations = []
    for label, polys, cx, cy, (x0, y0, x1, y1) in objects:
        under = canvas[int(y0):int(y1) + 1, int(x0):int(x1) + 1]
        _draw(canvas, polys, cx, cy, _object_colour(rng, under), blur)
        box = [round(float(v), 2) for v in (x0, y0, x1 - x0, y1 - y0)]
        annotations.append((label + 1, box))

    return _add_noise(canvas, rng), annotations, distractors
