"""MeanIoU against hand-computed examples."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sclip_lib import MeanIoU


def test_one_image_by_hand():
    target = torch.tensor([[0, 0, 1, 1], [0, 0, 1, 255]])
    pred = torch.tensor([[0, 1, 1, 1], [0, 0, 0, 2]])
    m = MeanIoU(num_classes=3)
    m.update(pred, target)
    r = m.compute()
    # ignoring the 255 pixel: class 0: I=3, P=4, G=4 -> 3/5; class 1: I=2, P=3, G=3 -> 2/4; class 2: absent
    assert r.num_pixels == 7
    assert r.iou[0] == pytest.approx(60.0) and r.iou[1] == pytest.approx(50.0) and math.isnan(r.iou[2])
    assert r.miou == pytest.approx(55.0)


def test_dataset_level_accumulation_is_not_a_per_image_mean():
    m = MeanIoU(num_classes=2)
    # image A: large, class 1 perfect (I=P=G=8); class 0 absent everywhere in A
    m.update(np.ones((2, 4), dtype=np.int64), np.ones((2, 4), dtype=np.int64))
    # image B: small, 2 pixels of class 1 predicted as 0
    m.update(np.array([[0, 0]]), np.array([[1, 1]]))
    r = m.compute()
    # dataset: class 0: I=0, P=2, G=0 -> 0; class 1: I=8, P=8, G=10 -> 0.8; mIoU 40
    assert r.iou == pytest.approx([0.0, 80.0])
    assert r.miou == pytest.approx(40.0)
    # the per-image average would be ((100) + (0 + 0) / 2) / 2 = 50: different on purpose
    assert r.miou != pytest.approx(50.0)


def test_class_predicted_but_never_present_counts_as_zero_and_absent_class_is_left_out():
    m = MeanIoU(num_classes=4, class_names=["bg", "cat", "dog", "cow"])
    m.update(torch.tensor([0, 2, 1]), torch.tensor([0, 1, 1]))
    r = m.compute()
    assert r.iou[2] == 0.0 and math.isnan(r.iou[3])
    assert r.miou == pytest.approx((100 + 50 + 0) / 3)
    assert list(r.per_class()) == ["bg", "cat", "dog", "cow"]


def test_reset_and_everything_ignored():
    m = MeanIoU(num_classes=2)
    m.update(torch.tensor([1]), torch.tensor([255]))
    assert math.isnan(m.compute().miou) and m.compute().num_pixels == 0
    m.update(torch.tensor([1]), torch.tensor([1]))
    m.reset()
    assert m.compute().num_pixels == 0


def test_bad_input():
    m = MeanIoU(num_classes=3)
    with pytest.raises(ValueError, match="differ in shape"):
        m.update(torch.zeros(2, 2, dtype=torch.long), torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="outside 0..2"):
        m.update(torch.tensor([0]), torch.tensor([7]))
    with pytest.raises(ValueError, match="integer"):
        m.update(torch.zeros(2), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError):
        MeanIoU(num_classes=2, class_names=["a"])
