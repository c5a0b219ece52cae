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


# -- bootstrap confidence interval over images --------------------------------------------------
from sclip_lib.evaluation.metrics import bootstrap_miou  # noqa: E402


def test_per_image_sums_add_up_to_the_dataset_sums():
    rng = np.random.default_rng(3)
    m = MeanIoU(num_classes=4)
    for _ in range(5):
        m.update(rng.integers(0, 4, (6, 7)), np.where(rng.random((6, 7)) < 0.1, 255, rng.integers(0, 4, (6, 7))))
    inter, union = np.zeros(4), np.zeros(4)
    for image in m.per_image:
        for c, a, u in image:
            inter[c] += a
            union[c] += u
    assert len(m.per_image) == 5
    assert inter == pytest.approx(m.intersection.numpy())
    assert union == pytest.approx((m.pred_area + m.target_area - m.intersection).numpy())


def test_identical_images_give_a_zero_width_interval_at_the_point_estimate():
    m = MeanIoU(num_classes=3)
    for _ in range(6):  # every resample is six copies of the same image: the same mIoU every time
        m.update(torch.tensor([0, 1, 1, 2]), torch.tensor([0, 1, 2, 2]))
    low, high = bootstrap_miou(m.per_image, 3, resamples=200)
    assert low == pytest.approx(m.compute().miou) and high == pytest.approx(m.compute().miou)


def test_interval_matches_the_binomial_known_answer():
    # one class, 400 one-pixel images, found on half of them: mIoU = 50, and the resampled mIoU is a
    # binomial proportion: standard error sqrt(0.5 * 0.5 / 400) = 2.5 points, 95% interval 50 +- 4.9
    per_image = [[[0, 1, 1]]] * 200 + [[[0, 0, 1]]] * 200
    low, high = bootstrap_miou(per_image, 1, resamples=4000, seed=1)
    assert low == pytest.approx(50 - 1.96 * 2.5, abs=0.6) and high == pytest.approx(50 + 1.96 * 2.5, abs=0.6)
    narrow = bootstrap_miou(per_image, 1, resamples=4000, level=0.5, seed=1)  # +- 0.674 standard errors
    assert narrow[0] == pytest.approx(50 - 0.674 * 2.5, abs=0.6) and narrow[1] == pytest.approx(
        50 + 0.674 * 2.5, abs=0.6
    )


def test_two_images_enumerated_by_hand():
    # images A (IoU 1) and B (IoU 0) of one class, same union: a resample is AA (100), AB (50) or BB (0)
    # with probabilities 1/4, 1/2, 1/4, so the 10% and 90% quantiles are 0 and 100, the 30-70% ones 50
    per_image = [[[0, 5, 5]], [[0, 0, 5]]]
    assert bootstrap_miou(per_image, 1, resamples=4000, level=0.8) == (0.0, 100.0)
    assert bootstrap_miou(per_image, 1, resamples=4000, level=0.4) == (50.0, 50.0)


def test_class_absent_from_a_resample_is_left_out_as_in_the_metric():
    # image A holds only class 0 (perfect), image B only class 1 (missed): AA -> 100, BB -> 0, AB -> 50
    per_image = [[[0, 4, 4]], [[1, 0, 4]]]
    assert bootstrap_miou(per_image, 2, resamples=4000, level=0.8) == (0.0, 100.0)


def test_bootstrap_is_deterministic_for_a_seed():
    rng = np.random.default_rng(0)
    per_image = [[[c, int(rng.integers(0, 50)), 50] for c in range(3)] for _ in range(30)]
    first = bootstrap_miou(per_image, 3, seed=7)
    assert bootstrap_miou(per_image, 3, seed=7) == first
    assert bootstrap_miou(per_image, 3, seed=8) != first
    assert bootstrap_miou(per_image[::-1], 3, seed=7) == first  # the order of the images does not matter
    assert first[0] < first[1]


def test_bootstrap_bad_input():
    with pytest.raises(ValueError, match="at least one image"):
        bootstrap_miou([], 3)
    with pytest.raises(ValueError, match="level"):
        bootstrap_miou([[[0, 1, 1]]], 1, level=95)
    with pytest.raises(ValueError, match="resamples"):
        bootstrap_miou([[[0, 1, 1]]], 1, resamples=0)
