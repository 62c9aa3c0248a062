"""One image reader for training, evaluation and prediction: :func:`read_image`.

Every picture becomes a FloatTensor [3, H, W] of RGB in [0, 1], EXIF orientation applied, read with
Pillow. What each kind of file becomes:

- 8-bit RGB (JPEG, PNG, BMP, WebP, TIFF): value / 255, exactly as before this module existed;
- grayscale ``L`` and 1-bit ``1``: the gray value in all three channels (1-bit: 0 or 1);
- palette ``P``: the palette's colours (its transparent entry, if any, as alpha below);
- ``CMYK``, ``YCbCr``, ``LAB``, ``HSV``: Pillow's conversion to RGB (CMYK without an ICC profile);
- with an alpha channel (``RGBA``, ``LA``, ``PA``, a PNG ``tRNS`` entry): composited over
  **black**, i.e. each colour multiplied by alpha / 255, so fully transparent pixels are black
  whatever colour the file stores under them;
- 16-bit grayscale (PNG or TIFF, Pillow's ``I;16`` modes): **scaled by the type's range**,
  value / 65535, never clipped. The mapping is the same for every image of a dataset (no
  per-image stretch); data that uses only 12 of the 16 bits therefore looks dark (at most
  4095 / 65535 = 0.06): stretch such files before training if that matters;
- 16-bit RGB (PNG or TIFF): Pillow keeps the high byte of each sample, value // 256, then / 255:
  the same 65535 -> 1 scaling as 16-bit grayscale, at 8-bit precision;
- multi-band TIFF: **the first three bands** are used as R, G, B, the others ignored (what
  Pillow decodes: an RGB TIFF with up to three extra samples at 8 bits or one at 16 bits, e.g.
  RGB + near infrared); an extra sample the file declares as alpha is treated as alpha (below);
  a layout Pillow cannot decode (more bands, several bands without RGB photometric, float RGB)
  is a one-line :class:`~mrae.errors.DataError` that says so;
- 32-bit integer ``I``: value / 65535 when every value lies in 0..65535 (16-bit data that a
  decoder widened), otherwise scaled by the image's own range, (v - min) / (max - min);
- 32-bit float ``F`` (a float TIFF): as is when every finite value lies in [0, 1], otherwise
  scaled by the image's own range; NaN and infinite values become 0.

A file that is missing, unreadable or truncated, and an image above Pillow's decompression-bomb
limit (``PIL.Image.MAX_IMAGE_PIXELS``, 89.5 million pixels by default: its warning is treated as
the error too), raises a one-line :class:`~mrae.errors.DataError` naming the file.
"""

from __future__ import annotations

import warnings
from os import PathLike
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torchvision.transforms.v2 import functional as F

from mrae.errors import DataError
from mrae.inputs import IMAGE_LIMIT, check_regular

# EXIF tag 0x0112 is the orientation.
_ORIENTATION = 0x0112

#: Pillow modes of 16-bit grayscale.
_GRAY16 = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})
#: Modes with an alpha channel (``La``, ``RGBa``: premultiplied).
_ALPHA = frozenset({"LA", "La", "PA", "RGBA", "RGBa"})
#: Modes Pillow converts to RGB itself (8 bits per channel).
_RGB_CONVERTIBLE = frozenset({"1", "L", "P", "RGB", "RGBX", "CMYK", "YCbCr", "LAB", "HSV"})


def read_image(path: str | PathLike[str]) -> torch.Tensor:
    """The image file at ``path`` as FloatTensor [3, H, W], RGB in [0, 1], EXIF orientation applied.

    See the module docstring for how each kind of file (16-bit, palette, alpha, CMYK, multi-band
    TIFF, float) is mapped. Raises DataError (one line, naming the file) when the file is
    missing, unreadable, truncated, in a layout Pillow cannot decode, or above Pillow's
    decompression-bomb limit.
    """
    path = Path(path)
    if path.exists() and not path.is_file():  # a FIFO would block Pillow, a device fill the memory
        check_regular(path, IMAGE_LIMIT, what="image file")
    try:
        with warnings.catch_warnings():
            # Pillow only warns between 1x and 2x its limit; treat both as a refusal.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as raw:
                raw.load()
                picture = ImageOps.exif_transpose(raw)
        return to_rgb_tensor(picture)
    except FileNotFoundError:
        raise DataError(f"{path}: no such image file; check the path") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder, not an image file") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        limit = Image.MAX_IMAGE_PIXELS
        raise DataError(
            f"{path}: the image is larger than Pillow's decompression-bomb limit of {limit:,} "
            "pixels (PIL.Image.MAX_IMAGE_PIXELS); cut it into tiles or downscale it"
        ) from None
    except UnidentifiedImageError:
        hint = (
            "a TIFF layout Pillow cannot decode: more than 6 bands at 8 bits or 4 at 16 bits, "
            "several bands without RGB photometric, or float RGB?; write its first three bands "
            "as 8- or 16-bit RGB"
            if path.suffix.lower() in {".tif", ".tiff"}
            else "not an image format Pillow reads, or a damaged file"
        )
        raise DataError(f"{path}: cannot read the image ({hint})") from None
    except (OSError, SyntaxError, ValueError, MemoryError) as error:
        message = " ".join(str(error).split()) or type(error).__name__
        raise DataError(f"{path}: cannot read the image ({message})") from None


def to_rgb_tensor(picture: Image.Image) -> torch.Tensor:
    """A decoded Pillow image as FloatTensor [3, H, W], RGB in [0, 1] (mapping: module docstring).

    Raises ValueError for a mode that has no mapping to RGB.
    """
    mode = picture.mode
    if mode in _GRAY16:
        gray = np.asarray(picture).astype(np.float32) / 65535.0
        return _gray_tensor(gray)
    if mode == "I":
        values = np.asarray(picture).astype(np.float64)
        if values.size and values.min() >= 0 and values.max() <= 65535:
            return _gray_tensor((values / 65535.0).astype(np.float32))
        return _gray_tensor(_own_range(values))
    if mode == "F":
        values = np.asarray(picture).astype(np.float64)
        values[~np.isfinite(values)] = 0.0
        if values.size and (values.min() < 0 or values.max() > 1):
            values = _own_range(values)
        return _gray_tensor(values.astype(np.float32))

    if mode in _ALPHA or "transparency" in picture.info:
        rgba = np.asarray(picture.convert("RGBA"))
        alpha = rgba[..., 3:].astype(np.uint16)
        # Composite over black: round(colour * alpha / 255), in integers.
        rgb = ((rgba[..., :3].astype(np.uint16) * alpha + 127) // 255).astype(np.uint8)
    elif mode in _RGB_CONVERTIBLE:
        rgb = np.array(picture.convert("RGB"))  # a writable copy for torch
    else:
        raise ValueError(f"image mode {mode!r} has no RGB mapping")
    # 8-bit: the same float values as torchvision's uint8 -> float conversion gives.
    tensor = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).contiguous()
    return F.to_dtype(tensor, torch.float32, scale=True)


def exif_orientation(path: str | PathLike[str]) -> int:
    """The EXIF orientation (1..8) of an image file; 1 when it has none or cannot be read."""
    try:
        with Image.open(path) as raw:
            return int(raw.getexif().get(_ORIENTATION, 1))
    except (OSError, SyntaxError, ValueError, TypeError):
        return 1


def _own_range(values: np.ndarray) -> np.ndarray:
    """``(v - min) / (max - min)`` as float32; a constant image becomes 0."""
    lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    if hi <= lo:
        return np.zeros(values.shape, dtype=np.float32)
    return ((values - lo) / (hi - lo)).astype(np.float32)


def _gray_tensor(gray: np.ndarray) -> torch.Tensor:
    """float32 [H, W] in [0, 1] -> FloatTensor [3, H, W] (the gray value in every channel)."""
    return torch.from_numpy(np.ascontiguousarray(gray)).unsqueeze(0).repeat(3, 1, 1)
