"""draw_level_weights: the global MRAE's level weights as bars in the picture's corner."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mrae.apps.draw import LEVEL_COLORS, draw_level_weights


def colour_counts(image: torch.Tensor) -> list[int]:
    """Pixels of each level colour in a uint8 [3, H, W] image."""
    pixels = image.permute(1, 2, 0).numpy()
    return [int(np.all(pixels == colour, axis=-1).sum()) for colour in LEVEL_COLORS]


def test_bar_areas_follow_the_weights_in_the_bottom_right_corner():
    image = torch.zeros(3, 300, 512, dtype=torch.uint8)
    drawn = draw_level_weights(image, torch.tensor([0.6, 0.3, 0.1]))
    assert drawn.shape == (3, 300, 512) and drawn.dtype == torch.uint8
    c1, c2, c3 = colour_counts(drawn)
    assert c1 == pytest.approx(2 * c2, rel=0.1) and c2 == pytest.approx(3 * c3, rel=0.15)
    changed = drawn.sum(0).nonzero()
    assert changed[:, 0].min() > 150 and changed[:, 1].min() > 350  # only the corner is drawn on
    # The bars stand left to right in the order C1, C2, C3.
    columns = [np.all(drawn.permute(1, 2, 0).numpy() == c, axis=-1).nonzero()[1].mean() for c in LEVEL_COLORS]
    assert columns == sorted(columns)


def test_a_zero_weight_has_no_bar_and_labels_are_written():
    drawn = draw_level_weights(torch.zeros(3, 200, 200), [1.0, 0.0, 0.0])
    c1, c2, c3 = colour_counts(drawn)
    assert c1 > 0 and c2 == 0 and c3 == 0
    white = drawn.permute(1, 2, 0).numpy().min(axis=-1) > 200
    assert white.sum() > 20  # the names and values, in white
    with pytest.raises(ValueError, match="2 weights for 3"):
        draw_level_weights(torch.zeros(3, 50, 50), [0.5, 0.5])
