"""Post-processing on hand-built logits: upsampling, synonym max after softmax, prob_thd, area_thd."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import sclip_lib.postprocess as pp
from sclip_lib.postprocess import class_probabilities, predict_labels, upsample_rows


@pytest.mark.parametrize("src,dst", [((7, 9), (30, 41)), ((21, 28), (336, 500)), ((5, 5), (5, 5)), ((10, 3), (4, 2))])
def test_upsample_rows_equals_torch_bilinear(src, dst):
    x = torch.randn(3, *src)
    full = F.interpolate(x[None], size=dst, mode="bilinear", align_corners=False)[0]
    torch.testing.assert_close(upsample_rows(x, dst), full, atol=1e-5, rtol=1e-5)
    rows = slice(dst[0] // 3, dst[0] // 3 + 2)
    torch.testing.assert_close(upsample_rows(x, dst, rows), full[:, rows], atol=1e-5, rtol=1e-5)


def test_synonyms_take_the_max_after_the_softmax_over_all_queries():
    # queries: 0 "cat", 1 "sofa", 2 "couch"; classes: cat, sofa|couch
    logits = torch.tensor([[1.0], [2.0], [0.5]])
    q2c = torch.tensor([0, 1, 1])
    e = [math.exp(10 * v) for v in (1.0, 2.0, 0.5)]
    expected = torch.tensor([[e[0] / sum(e)], [max(e[1], e[2]) / sum(e)]])
    probs = class_probabilities(logits, q2c, logit_scale=10)
    torch.testing.assert_close(probs, expected)
    # the max is taken after the softmax over ALL queries: the class sums are below 1 with synonyms
    assert probs.sum() < 1


def test_synonym_max_for_unordered_query_lists():
    logits = torch.randn(5, 4, 3)
    q2c = torch.tensor([1, 0, 1, 2, 0])  # names of a class need not be contiguous
    probs = (logits * 7).softmax(0)
    expected = torch.stack([probs[[1, 4]].amax(0), probs[[0, 2]].amax(0), probs[3]])
    torch.testing.assert_close(class_probabilities(logits, q2c, 7), expected)
    ordered = torch.tensor([0, 0, 1, 2, 2])
    expected = torch.stack([probs[:2].amax(0), probs[2], probs[3:].amax(0)])
    torch.testing.assert_close(class_probabilities(logits, ordered, 7), expected)


def test_softmax_then_max_differs_from_max_then_softmax():
    logits = torch.tensor([[0.3], [0.3], [0.3]])  # all alike: "sofa" and "couch" split the mass
    probs = class_probabilities(logits, torch.tensor([0, 1, 1]), logit_scale=1)
    torch.testing.assert_close(probs[:, 0], torch.tensor([1 / 3, 1 / 3]))


def test_prob_thd_sends_uncertain_pixels_to_background():
    # 3 classes, 1x3 image; pixel 0 sure of class 1, pixel 1 undecided, pixel 2 sure of class 2
    logits = torch.tensor([[[0.0, 0.0, 0.0]], [[5.0, 0.1, 0.0]], [[0.0, 0.0, 5.0]]])
    q2c = torch.arange(3)
    labels = predict_labels(logits, (1, 3), q2c, logit_scale=1.0, prob_thd=0.5)
    assert labels.tolist() == [[1, 0, 2]]
    assert predict_labels(logits, (1, 3), q2c, logit_scale=1.0, prob_thd=0.0).tolist() == [[1, 1, 2]]


def test_area_thd_removes_small_foreground_classes():
    # 1x10 image: class 1 wins 8 pixels, class 2 wins 1, background 1; class 3 is second best on 9..
    logits = torch.zeros(4, 1, 10)
    logits[1, 0, :8] = 3.0
    logits[2, 0, 8] = 3.0
    logits[0, 0, 9] = 3.0
    logits[3, 0, 8] = 2.0  # class 3 is the runner-up where class 2 wins
    q2c = torch.arange(4)
    kept = predict_labels(logits, (1, 10), q2c, logit_scale=1.0, area_thd=None)
    assert kept.tolist() == [[1] * 8 + [2, 0]]
    # foreground area = 9 pixels; class 2 has 1 < 0.2 * 9 and is zeroed. Class 3, the runner-up, was
    # predicted nowhere (area 0 < 0.2 * 9), so it is zeroed too, as in the authors' rule: background wins
    cut = predict_labels(logits, (1, 10), q2c, logit_scale=1.0, area_thd=0.2)
    assert cut.tolist() == [[1] * 8 + [0, 0]]
    # area_thd 0.1: 1 > 0.1 * 9, nothing changes
    assert predict_labels(logits, (1, 10), q2c, logit_scale=1.0, area_thd=0.1).tolist() == kept.tolist()


def test_area_thd_then_prob_thd_on_the_zeroed_scores():
    logits = torch.zeros(3, 1, 4)
    logits[1, 0, :3] = 4.0
    logits[2, 0, 3] = 4.0  # class 2: one pixel of four, removed by area_thd 0.5
    labels = predict_labels(logits, (1, 4), torch.arange(3), logit_scale=1.0, prob_thd=0.3, area_thd=0.5)
    # at pixel 3, after zeroing class 2, the best left is background or class 1 with p = 1/(2 + e^4) < 0.3
    assert labels.tolist() == [[1, 1, 1, 0]]


def test_banded_prediction_equals_whole_image(monkeypatch):
    logits = torch.randn(6, 13, 17)
    q2c = torch.tensor([0, 1, 1, 2, 3, 3])
    whole = predict_labels(logits, (101, 77), q2c, 40.0, 0.2, 0.1)
    monkeypatch.setattr(pp, "_BAND_ELEMENTS", 6 * 77 * 3)  # three rows per band
    banded = predict_labels(logits, (101, 77), q2c, 40.0, 0.2, 0.1)
    assert torch.equal(whole, banded)
    full = F.interpolate(logits[None], size=(101, 77), mode="bilinear", align_corners=False)[0]
    direct = class_probabilities(full, q2c, 40.0).argmax(0)
    agree = (predict_labels(logits, (101, 77), q2c, 40.0) == direct).float().mean()
    assert agree > 0.999  # only float ties may differ
