"""The exercises' checkers (sclip_lib/book/grade.py): a right answer passes, wrong ones fail with a reason that does
not give the answer away, and a missing answer or a crashing function is a verdict, not an exception."""

from __future__ import annotations

import pytest
import torch

from sclip_lib.attention import AttentionVariant
from sclip_lib.book import grade

norm = torch.nn.functional.normalize


def _variant(fn, keep_residual=True):
    return AttentionVariant("test", fn, keep_residual)


# label -> (a right answer, the expected answer's text that no reason may contain, wrong answers)
CASES = {
    "ex-clip-softmax": (0.8808, "0.88", [0.5714, 0.5498, 0.1192, 0.7, 1.0]),
    "ex-clip-zero-shot": (
        lambda i, t, s: (s * norm(i, dim=-1) @ norm(t, dim=-1).T).softmax(-1),
        None,
        [
            lambda i, t, s: (s * i @ t.T).softmax(-1),
            lambda i, t, s: (s * norm(i, dim=-1) @ norm(t, dim=-1).T).softmax(0),
            lambda i, t, s: norm(i, dim=-1) @ norm(t, dim=-1).T,
            lambda i, t, s: (s * norm(i, dim=-1) @ norm(t, dim=-1).T).softmax(-1).T,
        ],
    ),
    "ex-patch-tokens": ((196, 49), "196", [(197, 50), (14, 7), (196, 50), (256, 49), "196"]),
    "ex-patch-maps": (
        lambda p, t, g: (norm(t, dim=-1) @ norm(p, dim=-1).T).reshape(len(t), *g),
        None,
        [
            lambda p, t, g: (t @ p.T).reshape(len(t), *g),
            lambda p, t, g: (norm(t, dim=-1) @ norm(p, dim=-1).T).reshape(len(t), g[1], g[0]).transpose(1, 2),
            lambda p, t, g: norm(t, dim=-1) @ norm(p, dim=-1).T,
        ],
    ),
    "ex-csa-row": ([1.3808, 0.6192], "1.38", [[0.6904, 0.3096], [0.8808, 0.1192], [1.0, 1.0], [1.3808]]),
    "ex-csa-matrix": (
        lambda q, k, s: (s * q @ q.transpose(-2, -1)).softmax(-1) + (s * k @ k.transpose(-2, -1)).softmax(-1),
        None,
        [
            lambda q, k, s: (s * q @ k.transpose(-2, -1)).softmax(-1),
            lambda q, k, s: ((s * q @ q.transpose(-2, -1)).softmax(-1) + (s * k @ k.transpose(-2, -1)).softmax(-1)) / 2,
            lambda q, k, s: (q @ q.transpose(-2, -1)).softmax(-1) + (k @ k.transpose(-2, -1)).softmax(-1),
            lambda q, k, s: 1 / 0,
        ],
    ),
    "ex-self-peak": (1.0, None, [0.9, 0.5, 1.5]),
    "ex-resized-size": ((336, 448), "448", [(448, 336), (480, 640), (336, 336)]),
    "ex-window-count": (6, None, [2, 12, 5]),
    "ex-kk-variant": (
        _variant(lambda q, k, v, c: (k @ k.transpose(-2, -1) * c.scale).softmax(-1) @ v),
        None,
        [
            _variant(lambda q, k, v, c: (k @ k.transpose(-2, -1) * c.scale).softmax(-1) @ v, keep_residual=False),
            _variant(lambda q, k, v, c: (q @ q.transpose(-2, -1) * c.scale).softmax(-1) @ v),
            _variant(lambda q, k, v, c: (k @ k.transpose(-2, -1)).softmax(-1) @ v),
        ],
    ),
    "ex-class-count": (4, None, [8, 3, 2]),
    "ex-background-index": (2, None, [1, 3, 0]),
    "ex-iou-by-hand": (0.6, "0.6", [0.75, 4 / 6, 60.0, 0.2]),
    "ex-iou-ignore": (2 / 3, "0.667", [0.4, 200 / 3, 0.9]),
    "ex-no-residual": (
        {"maskclip_no_residual", "clearclip", "naclip"},
        "naclip",
        [{"clearclip", "naclip"}, {"maskclip_no_residual", "clearclip", "naclip", "sclip"}, {"resclip"}, "clearclip"],
    ),
    "ex-clearclip-attention": (
        lambda q, k, v, s: (s * q @ q.transpose(-2, -1)).softmax(-1) @ v,
        None,
        [
            lambda q, k, v, s: (s * q @ k.transpose(-2, -1)).softmax(-1) @ v,
            lambda q, k, v, s: (s * k @ k.transpose(-2, -1)).softmax(-1) @ v,
            lambda q, k, v, s: (
                ((s * q @ q.transpose(-2, -1)).softmax(-1) + (s * k @ k.transpose(-2, -1)).softmax(-1)) @ v
            ),
        ],
    ),
    "ex-rcs-mix": ([0.3, 0.7], "0.3", [[0.5, 0.5], [0.4, 0.6], [0.45, 0.55]]),
    "ex-resclip-name": (
        "clearclip+rcs+sfr",
        "clearclip+rcs+sfr",
        ["clearclip+rcs", "sclip+rcs+sfr", "clearclip+xyz", 3],
    ),
}


def test_every_checker_has_cases():
    assert set(CASES) == set(grade.CHECKERS)


@pytest.mark.parametrize("label", sorted(CASES))
def test_right_answer_passes(label):
    right = CASES[label][0]
    verdict = grade.check(label, right)
    assert verdict.ok, verdict
    assert grade.confirm(label, right).ok


@pytest.mark.parametrize("label", sorted(CASES))
def test_wrong_answers_fail_with_a_reason_that_keeps_the_answer(label):
    _, secret, wrongs = CASES[label]
    for wrong in wrongs:
        verdict = grade.check(label, wrong)
        assert not verdict.ok, (label, wrong)
        assert len(verdict.reason) > 15, verdict
        if secret is not None:
            assert secret not in verdict.reason, f"{label}: the reason gives the answer away: {verdict.reason}"
        with pytest.raises(AssertionError, match=label):
            grade.confirm(label, wrong)


def test_known_mistakes_get_their_own_reason():
    assert "CLS" in grade.check("ex-patch-tokens", (197, 50)).reason
    assert "Dice" in grade.check("ex-iou-by-hand", 0.75).reason
    assert "average" in grade.check("ex-csa-row", [0.6904, 0.3096]).reason
    assert "vanilla" in grade.check("ex-csa-matrix", CASES["ex-csa-matrix"][2][0]).reason
    assert "raised ZeroDivisionError" in grade.check("ex-csa-matrix", CASES["ex-csa-matrix"][2][3]).reason


def test_numbers_of_any_kind_and_non_numbers():
    import numpy as np

    assert grade.check("ex-window-count", np.int64(6)) and grade.check("ex-window-count", torch.tensor(6))
    assert grade.check("ex-self-peak", np.float32(1.0))
    for wrong in [True, "6", [6]]:
        verdict = grade.check("ex-window-count", wrong)
        assert not verdict and "give one number" in verdict.reason, verdict


def test_unfinished_function_is_a_verdict():
    def unfinished(image_emb, text_emb, scale): ...

    verdict = grade.check("ex-clip-zero-shot", unfinished)
    assert not verdict and "returns nothing yet" in verdict.reason


def test_missing_answer_and_unknown_exercise():
    verdict = grade.check("ex-clip-softmax", ...)
    assert not verdict and "no answer yet" in verdict.reason
    with pytest.raises(KeyError, match="ex-clip-softmax"):
        grade.check("ex-nope", 1)
    assert "right" in grade.check("ex-window-count", 6)._repr_markdown_()
