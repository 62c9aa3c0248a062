"""read_image: every kind of picture a user has becomes RGB in [0, 1], pixel for pixel."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mrae.data.images import read_image
from mrae.errors import DataError

H, W = 6, 40
RAMP16 = (np.arange(H * W, dtype=np.uint32).reshape(H, W) * 270).astype(np.uint16)  # 0..64530


def write_png16(path: Path, array: np.ndarray) -> Path:
    """A 16-bit PNG (gray [H, W] or RGB [H, W, 3]) written by hand: Pillow cannot write 16-bit RGB."""
    data = np.asarray(array, dtype=">u2")
    height, width = data.shape[:2]
    color_type = 2 if data.ndim == 3 else 0
    raw = b"".join(b"\x00" + data[y].tobytes() for y in range(height))

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 16, color_type, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )
    return path


def write_tiff(path: Path, array: np.ndarray) -> Path:
    """An uncompressed little-endian RGB TIFF of [H, W, C] uint8/uint16 samples, C >= 3 (the
    samples after the third declared as unspecified extra samples), written by hand."""
    data = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
    height, width, bands = data.shape
    pixels = data.tobytes()
    bits = data.dtype.itemsize * 8
    # tag -> (TIFF type: 3 SHORT, 4 LONG; values)
    tags = {
        256: (4, [width]), 257: (4, [height]), 258: (3, [bits] * bands), 259: (3, [1]),
        262: (3, [2]), 273: (4, [0]), 277: (3, [bands]), 278: (4, [height]),
        279: (4, [len(pixels)]), 284: (3, [1]),
    }
    if bands > 3:
        tags[338] = (3, [0] * (bands - 3))
    start = 8 + 2 + 12 * len(tags) + 4  # after the header and the one directory
    entries, blobs = [], b""
    for tag, (kind, values) in sorted(tags.items()):
        body = struct.pack("<" + ("H" if kind == 3 else "I") * len(values), *values)
        if len(body) > 4:  # stored after the directory, the entry holds its offset
            entries.append((tag, kind, len(values), struct.pack("<I", start + len(blobs))))
            blobs += body
        else:
            entries.append((tag, kind, len(values), body.ljust(4, b"\x00")))
    pixel_offset = start + len(blobs)
    directory = b"".join(
        struct.pack("<HHI", tag, kind, count)
        + (struct.pack("<I", pixel_offset) if tag == 273 else value)
        for tag, kind, count, value in entries
    )
    path.write_bytes(
        b"II*\x00" + struct.pack("<IH", 8, len(entries)) + directory + b"\x00" * 4 + blobs + pixels
    )
    return path


def hwc(tensor: torch.Tensor) -> np.ndarray:
    assert tensor.dtype == torch.float32 and tensor.shape[0] == 3
    return tensor.permute(1, 2, 0).numpy()


def same_8bit(image: np.ndarray, values: np.ndarray) -> bool:
    """``image`` (float in [0, 1]) is ``values`` (0..255) / 255, up to float rounding."""
    return image.shape == values.shape and np.allclose(image, values / 255.0, rtol=0, atol=1e-6)


def rgb8(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (H, W, 3), dtype=np.uint8)


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tif", ".webp"])
def test_8bit_rgb_is_value_over_255(tmp_path, suffix):
    pixels = rgb8()
    path = tmp_path / f"a{suffix}"
    Image.fromarray(pixels).save(path, **({"lossless": True} if suffix == ".webp" else {}))
    assert same_8bit(hwc(read_image(path)), pixels)


@pytest.mark.parametrize("kind", ["png", "tiff"])
def test_16bit_grayscale_ramp_is_scaled_not_saturated(tmp_path, kind):
    path = tmp_path / f"ramp.{kind}"
    if kind == "png":
        write_png16(path, RAMP16)
    else:
        Image.fromarray(RAMP16).save(path)  # Pillow writes I;16 TIFF
    image = hwc(read_image(path))
    expected = RAMP16.astype(np.float32) / 65535
    for channel in range(3):
        assert np.allclose(image[..., channel], expected, atol=1e-6)
    assert image.max() < 0.99 and np.all(np.diff(image[..., 0].ravel()) > 0)  # still a ramp


def test_16bit_rgb_png_keeps_channels_and_scales_by_256(tmp_path):
    rgb = np.stack([RAMP16, RAMP16 // 2, 65535 - RAMP16], axis=-1)
    image = hwc(read_image(write_png16(tmp_path / "rgb16.png", rgb)))
    assert same_8bit(image, rgb >> 8)
    assert image[..., 0].max() < 0.99 and image[..., 2].min() > 0.01  # neither end saturated


@pytest.mark.parametrize(("bands", "dtype"), [(4, np.uint8), (6, np.uint8), (4, np.uint16)])
def test_multiband_tiff_uses_the_first_three_bands(tmp_path, bands, dtype):
    rng = np.random.default_rng(bands)
    samples = rng.integers(0, np.iinfo(dtype).max, (H, W, bands), dtype=dtype, endpoint=True)
    image = hwc(read_image(write_tiff(tmp_path / "multi.tif", samples)))
    first3 = samples[..., :3] if dtype == np.uint8 else samples[..., :3] >> 8
    assert same_8bit(image, first3)


@pytest.mark.parametrize(("bands", "dtype"), [(8, np.uint8), (5, np.uint16)])
def test_tiff_that_pillow_cannot_decode_is_a_one_line_error(tmp_path, bands, dtype):
    path = write_tiff(tmp_path / "many_bands.tif", np.zeros((H, W, bands), dtype=dtype))
    with pytest.raises(DataError, match=r"many_bands\.tif.*first three bands") as error:
        read_image(path)
    assert "\n" not in str(error.value)


def test_palette_with_a_transparent_entry(tmp_path):
    palette = [255, 0, 0, 0, 255, 0, 10, 20, 30] + [0] * (256 * 3 - 9)
    indices = np.tile(np.arange(3, dtype=np.uint8), (H, W // 3 + 1))[:, :W]
    picture = Image.fromarray(indices, mode="P")
    picture.putpalette(palette)
    picture.save(tmp_path / "p.png")
    picture.save(tmp_path / "p_transparent.png", transparency=2)
    colours = np.array(palette[:9]).reshape(3, 3)
    assert same_8bit(hwc(read_image(tmp_path / "p.png")), colours[indices])
    colours[2] = 0  # the transparent entry composited over black
    assert same_8bit(hwc(read_image(tmp_path / "p_transparent.png")), colours[indices])


def test_grayscale_and_1bit_fill_all_three_channels(tmp_path):
    gray = rgb8()[..., 0]
    Image.fromarray(gray).save(tmp_path / "l.png")
    image = hwc(read_image(tmp_path / "l.png"))
    assert all(same_8bit(image[..., c], gray) for c in range(3))
    bits = gray > 127
    Image.fromarray(bits).convert("1").save(tmp_path / "one.png")
    image = hwc(read_image(tmp_path / "one.png"))
    assert all(np.array_equal(image[..., c], bits.astype(np.float32)) for c in range(3))


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_alpha_is_composited_over_black(tmp_path, mode):
    colour = rgb8(1) if mode == "RGBA" else np.repeat(rgb8(1)[..., :1], 3, axis=-1)
    alpha = np.random.default_rng(2).integers(0, 256, (H, W, 1), dtype=np.uint8)
    alpha[0, 0] = 0  # fully transparent: black whatever is stored
    alpha[0, 1] = 255  # opaque: the colour as stored
    stored = np.concatenate([colour if mode == "RGBA" else colour[..., :1], alpha], axis=-1)
    Image.fromarray(stored, mode=mode).save(tmp_path / "alpha.png")
    image = hwc(read_image(tmp_path / "alpha.png"))
    expected = np.round(colour.astype(np.float64) * alpha / 255) / 255
    assert np.allclose(image, expected, atol=1e-6)
    assert np.all(image[0, 0] == 0) and np.allclose(image[0, 1], colour[0, 1] / 255)


def test_cmyk_becomes_rgb(tmp_path):
    cmyk = np.zeros((H, W, 4), dtype=np.uint8)
    cmyk[:, : W // 2, 0] = 255  # cyan
    cmyk[:, W // 2 :, 3] = 255  # black
    Image.fromarray(cmyk, mode="CMYK").save(tmp_path / "cmyk.tif")
    image = hwc(read_image(tmp_path / "cmyk.tif"))
    assert np.array_equal(image[0, 0], [0, 1, 1]) and np.array_equal(image[0, -1], [0, 0, 0])


def test_float_tiff_as_is_in_unit_range_else_by_its_own_range(tmp_path):
    unit = np.linspace(0, 1, H * W, dtype=np.float32).reshape(H, W)
    Image.fromarray(unit).save(tmp_path / "unit.tif")
    assert np.array_equal(hwc(read_image(tmp_path / "unit.tif"))[..., 1], unit)
    wide = unit * 3000 - 500
    Image.fromarray(wide).save(tmp_path / "wide.tif")
    assert np.allclose(hwc(read_image(tmp_path / "wide.tif"))[..., 1], unit, atol=1e-6)


def test_exif_orientation_is_applied(tmp_path):
    picture = Image.fromarray(rgb8())
    exif = picture.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    picture.save(tmp_path / "rotated.jpg", exif=exif)
    assert read_image(tmp_path / "rotated.jpg").shape == (3, W, H)


@pytest.mark.parametrize("case", ["missing", "garbage", "truncated", "folder"])
def test_unreadable_files_are_one_line_errors_naming_the_file(tmp_path, case):
    path = tmp_path / "bad.png"
    if case == "garbage":
        path.write_bytes(b"this is not an image")
    elif case == "truncated":
        Image.fromarray(rgb8()).save(tmp_path / "full.png")
        data = (tmp_path / "full.png").read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif case == "folder":
        path.mkdir()
    with pytest.raises(DataError) as error:
        read_image(path)
    message = str(error.value)
    assert message.startswith(str(path)) and "\n" not in message


@pytest.mark.parametrize("side", [12, 20])  # 144 px: Pillow warns; 400 px: Pillow refuses
def test_decompression_bomb_is_a_one_line_error(tmp_path, monkeypatch, side):
    Image.fromarray(np.zeros((side, side, 3), np.uint8)).save(tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(DataError, match=r"big\.png.*decompression-bomb limit of 100 pixels"):
        read_image(tmp_path / "big.png")
