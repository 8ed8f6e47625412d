"""Reading user masks (separate PNGs, instance ids), orders, and their one-line errors."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from amodal_depth.errors import UserError
from amodal_depth.masks import (
    check_distinct,
    parse_order,
    prepare_masks,
    read_instance_masks,
    read_mask,
    read_masks,
)

W, H = 20, 12


def _write(path: Path, arr: np.ndarray) -> str:
    cv2.imwrite(str(path), arr)
    return str(path)


def test_instance_id_png_gives_one_mask_per_id_in_id_order(tmp_path: Path) -> None:
    ids = np.zeros((H, W), np.uint16)
    ids[:, :5], ids[:, 5:9], ids[:, 15:] = 7, 2, 300  # 16-bit ids, not consecutive
    path = _write(tmp_path / "ids.png", ids)
    masks = read_instance_masks(path, (W, H))
    assert masks.shape == (3, H, W)
    np.testing.assert_array_equal(masks[0], ids == 2)
    np.testing.assert_array_equal(masks[1], ids == 7)
    np.testing.assert_array_equal(masks[2], ids == 300)
    np.testing.assert_array_equal(read_masks([path], (W, H)), masks)  # one file = ids
    with pytest.raises(UserError, match="one channel"):
        read_instance_masks(_write(tmp_path / "rgb.png", np.zeros((H, W, 3), np.uint8)))
    with pytest.raises(UserError, match="no object"):
        read_instance_masks(_write(tmp_path / "zero.png", np.zeros((H, W), np.uint8)))
    with pytest.raises(UserError, match="image is"):
        read_instance_masks(path, (W + 1, H))


def test_separate_masks_threshold_and_warn_when_not_binary(tmp_path: Path, capsys) -> None:
    soft = np.zeros((H, W), np.uint8)
    soft[:, :6], soft[:, 6:10] = 255, 100  # 100 < 127.5: outside
    m = read_mask(_write(tmp_path / "soft.png", soft), (W, H))
    np.testing.assert_array_equal(m, soft > 127)
    assert "not a binary mask" in capsys.readouterr().err
    binary = (soft == 255).astype(np.uint8) * 255
    read_mask(_write(tmp_path / "bin.png", binary))
    assert capsys.readouterr().err == ""
    with pytest.raises(UserError, match="no such mask"):
        read_masks([str(tmp_path / "a.png"), str(tmp_path / "b.png")], (W, H))
    with pytest.raises(UserError, match="give the mask"):
        read_masks([], (W, H))


def test_order_must_be_a_permutation() -> None:
    assert parse_order("2,1,3", 3) == [1, 0, 2]
    assert parse_order("3 1 2", 3) == [2, 0, 1]
    assert parse_order(None, 3) is None
    for bad in ("1,2", "1,1,2", "0,1,2", "1,2,4", "a,b,c"):
        with pytest.raises(UserError, match="order"):
            parse_order(bad, 3)


def test_identical_masks_and_amodal_order() -> None:
    m = np.zeros((3, H, W), bool)
    m[0, :, :5], m[1, :, 4:9], m[2, :, 8:] = True, True, True
    check_distinct(m)
    with pytest.raises(UserError, match="masks 1 and 3 are identical"):
        check_distinct(np.stack([m[0], m[1], m[0]]))
    image = np.zeros((H, W, 3), np.uint8)
    p = prepare_masks(image, m, "amodal")
    np.testing.assert_array_equal(p.amodal, m)
    assert p.order == [0, 1, 2] and p.visible is None and p.info["order_source"] == "as listed"
    p = prepare_masks(image, m, "amodal", order=[2, 0, 1])
    np.testing.assert_array_equal(p.amodal, m[[2, 0, 1]])
    assert p.info["order_source"] == "given"
    with pytest.raises(UserError, match="masks-kind"):
        prepare_masks(image, m, "modal")
