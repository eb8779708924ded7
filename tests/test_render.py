import numpy as np
import pytest
import torch

from swarmcnn.explain import Explanation
from swarmcnn.render import CELL, GAP, explanation_image, features_image

pytest.importorskip("matplotlib", reason="the heat colours need the explain extra (matplotlib)")


def _explanation(heatmap: torch.Tensor) -> Explanation:
    return Explanation("a", 0.9, "a", 0.9, "gradcam", heatmap)


def test_features_are_one_cell_each_with_zero_as_mid_grey():
    weight = torch.zeros(16, 1, 3, 3)
    weight[0, 0, 0, 0] = 1.0  # feature 0: one bright corner, the rest 0
    weight[1, 0, 0, 0] = -2.0  # feature 1: one dark corner, scaled on its own
    picture = np.asarray(features_image(weight, columns=8))
    cell = CELL // 2 // 3 * 3  # 3x3 enlarged by whole pixels
    assert picture.shape[:2] == (2 * cell + 2 * GAP, 8 * cell + 7 * 2 * GAP)
    assert tuple(picture[0, 0]) == (255, 255, 255) and tuple(picture[cell - 1, cell - 1]) == (128, 128, 128)
    second = cell + 2 * GAP
    assert tuple(picture[0, second]) == (0, 0, 0)


def test_video_features_show_their_time_slices_side_by_side():
    picture = features_image(torch.randn(4, 1, 3, 3, 3), columns=4)
    cell = CELL // 2 // 3 * 3
    assert picture.size == (4 * (3 * cell + 2) + 3 * 2 * GAP, cell)


def test_colour_features_keep_their_colours():
    weight = torch.zeros(1, 3, 3, 3)
    weight[0, 0] = 1.0  # red channel only
    pixel = np.asarray(features_image(weight))[0, 0]
    assert pixel[0] == 255 and pixel[1] == pixel[2] == 128


def test_an_image_sits_beside_its_map_and_the_heat_shows_where_the_map_is_high():
    x = torch.zeros(1, 8, 8, dtype=torch.uint8)
    heat = torch.zeros(8, 8)
    heat[0, 0] = 1.0
    picture = np.asarray(explanation_image(x, _explanation(heat), "title"))
    scale = CELL // 8
    assert picture.shape[1] == 2 * 8 * scale + GAP
    top = picture.shape[0] - 8 * scale  # below the caption
    hot, cold = picture[top, 8 * scale + GAP], picture[-1, -1]
    assert hot.astype(int).sum() > cold.astype(int).sum() + 200  # inferno's bright end over black


def test_a_video_shows_its_frames_above_their_maps():
    x = torch.randint(0, 256, (1, 4, 16, 16), dtype=torch.uint8)
    picture = explanation_image(x, _explanation(torch.rand(4, 16, 16)), "clip")
    scale = CELL // 16
    assert picture.width == 4 * 16 * scale + 3 * GAP
    assert picture.height >= 2 * 16 * scale + GAP
