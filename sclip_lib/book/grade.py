"""Checkers for the book's exercises: right or wrong, and why, without giving the answer away.

    from sclip_lib import grade
    grade.check("ex-clip-softmax", 0.5)      # a Verdict: shows "not yet: ..." with the reason
    grade.confirm("ex-clip-softmax", answer)  # the solutions: raises AssertionError when the answer is wrong

``check`` never raises on a wrong answer (a student's notebook runs top to bottom); ``...`` (the starter
cells' placeholder) is "no answer yet". Each checker computes the expected answer itself, from the
exercise's own numbers or from the library, and its reasons name the likely mistake (a missing exponential,
the CLS token counted, a softmax over the wrong axis), never the expected value.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass

import torch

__all__ = ["Verdict", "check", "confirm", "CHECKERS"]


@dataclass(frozen=True)
class Verdict:
    """The outcome of a check: ``ok`` and a reason that never states the expected answer."""

    label: str
    ok: bool
    reason: str

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        return f"{self.label}: {'right' if self.ok else 'not yet'}: {self.reason}"

    def _repr_markdown_(self) -> str:
        return f"{'✅ **right**' if self.ok else '❌ **not yet**'} ({self.label}): {self.reason}"

    __repr__ = __str__


CHECKERS: dict[str, Callable[[object], Verdict]] = {}


def _checker(label: str):
    def wrap(fn: Callable[[object], tuple[bool, str]]):
        CHECKERS[label] = lambda answer: Verdict(label, *fn(answer))
        return fn

    return wrap


def check(label: str, answer) -> Verdict:
    """Check ``answer`` to exercise ``label``; a wrong or missing answer is a Verdict, not an exception."""
    if label not in CHECKERS:
        raise KeyError(f"no checker for {label!r}; the exercises with one: {', '.join(sorted(CHECKERS))}")
    if answer is Ellipsis:
        return Verdict(label, False, "no answer yet: replace `...` with your answer and run the cell again")
    try:
        return CHECKERS[label](answer)
    except Exception as error:  # a student's function that crashes is a wrong answer with a reason
        return Verdict(label, False, f"checking the answer raised {type(error).__name__}: {error}")


def confirm(label: str, answer) -> Verdict:
    """``check``, raising ``AssertionError`` when the answer is wrong: the book's solutions call it, so a
    solution that stops passing its checker fails the build."""
    verdict = check(label, answer)
    if not verdict:
        raise AssertionError(str(verdict))
    return verdict


# -- helpers ------------------------------------------------------------------------------------------
def _number(answer) -> float:
    """One number: a Python or NumPy number, or a one-element tensor (a bool is not a number here)."""
    one_element = isinstance(answer, torch.Tensor) and answer.numel() == 1
    if isinstance(answer, bool) or not (isinstance(answer, numbers.Real) or one_element):
        raise TypeError(f"give one number, got {type(answer).__name__}")
    return float(answer)


def _close(answer, expected: float, traps: dict[str, float], tol: float = 2e-3) -> tuple[bool, str]:
    """A number within ``tol`` of ``expected``; ``traps`` maps the reason of a known mistake to its value."""
    value = _number(answer)
    if math.isclose(value, expected, rel_tol=tol, abs_tol=tol):
        return True, "that is the value"
    for reason, wrong in traps.items():
        if math.isclose(value, wrong, rel_tol=tol, abs_tol=tol):
            return False, reason
    return False, f"{'too large' if value > expected else 'too small'}; redo the computation step by step"


def _sequence(answer, expected: list[float], traps: dict[str, list[float]], tol: float = 2e-3) -> tuple[bool, str]:
    values = torch.as_tensor(answer, dtype=torch.float64).flatten()
    want = torch.tensor(expected, dtype=torch.float64)
    if values.numel() != want.numel():
        return False, f"give {want.numel()} numbers, one per token (got {values.numel()})"
    if torch.allclose(values, want, atol=tol, rtol=tol):
        return True, "every entry matches"
    for reason, wrong in traps.items():
        if torch.allclose(values, torch.tensor(wrong, dtype=torch.float64), atol=tol, rtol=tol):
            return False, reason
    bad = [i for i in range(want.numel()) if not math.isclose(values[i], want[i], rel_tol=tol, abs_tol=tol)]
    return (
        False,
        f"entries {bad} are off; the row should sum to {float(want.sum()):g} (yours: {float(values.sum()):.4g})",
    )


def _function(fn, reference, inputs, traps: dict[str, Callable], what: str) -> tuple[bool, str]:
    """Compare a student's function with ``reference`` on random ``inputs``; ``traps`` name known mistakes."""
    if not callable(fn):
        raise TypeError(f"give the function itself ({what}), not {type(fn).__name__}")
    got, want = fn(*inputs), reference(*inputs)
    if got is None:
        return False, "the function returns nothing yet: finish it and `return` the result"
    got = torch.as_tensor(got)
    if tuple(got.shape) != tuple(want.shape):
        return False, f"the result has shape {tuple(got.shape)}; {what} should keep the inputs' layout"
    if torch.allclose(got.double(), want.double(), atol=1e-4, rtol=1e-4):
        return True, f"matches the reference on random inputs of shape {tuple(inputs[0].shape)}"
    for reason, trap in traps.items():
        if torch.allclose(got.double(), trap(*inputs).double(), atol=1e-4, rtol=1e-4):
            return False, reason
    return False, "the values differ from the reference on random inputs; test it on a tiny example by hand"


def _random(*shape, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# -- chapter 2: CLIP ----------------------------------------------------------------------------------
@_checker("ex-clip-softmax")
def _clip_softmax(answer):
    # image (0.6, 0.8), texts (1, 0) and (0, 1), logit scale 10: P(text 2)
    cos = torch.tensor([0.6, 0.8], dtype=torch.float64)
    return _close(
        answer,
        float((10 * cos).softmax(0)[1]),
        {
            "that is the cosine share 0.8 / (0.6 + 0.8): the softmax exponentiates the scaled cosines first": 0.8 / 1.4,
            "the logit scale is 10 here, not 1: multiply the cosines by it before the softmax": float(
                cos.softmax(0)[1]
            ),
            "that is the probability of the other text": float((10 * cos).softmax(0)[0]),
        },
    )


def _zero_shot(image_emb, text_emb, scale):
    return (
        scale * torch.nn.functional.normalize(image_emb, dim=-1) @ torch.nn.functional.normalize(text_emb, dim=-1).T
    ).softmax(-1)


@_checker("ex-clip-zero-shot")
def _clip_zero_shot(fn):
    inputs = (_random(4, 8), _random(5, 8, seed=1) * 3, 50.0)
    norm = torch.nn.functional.normalize
    return _function(
        fn,
        _zero_shot,
        inputs,
        {
            "the embeddings are not L2-normalised: CLIP compares unit vectors (cosines)": lambda i, t, s: (
                s * i @ t.T
            ).softmax(-1),
            "the softmax runs over images: each image's probabilities over the classes must sum to 1": lambda i, t, s: (
                s * norm(i, dim=-1) @ norm(t, dim=-1).T
            ).softmax(0),
            "the logit scale is missing: multiply the cosines by `scale` before the softmax": lambda i, t, s: (
                norm(i, dim=-1) @ norm(t, dim=-1).T
            ).softmax(-1),
        },
        "zero_shot(image_emb, text_emb, scale) -> (images, classes)",
    )


# -- chapter 3: why CLIP fails ------------------------------------------------------------------------
@_checker("ex-patch-tokens")
def _patch_tokens(answer):
    try:
        b16, b32 = (int(a) for a in answer)
    except (TypeError, ValueError):
        return False, "give two whole numbers: (tokens of ViT-B/16, tokens of ViT-B/32)"
    if (b16, b32) == (196, 49):
        return True, "both counts are right"
    if (b16, b32) == (197, 50):
        return False, "the question asks for patch tokens: leave the CLS token out"
    if b16 == 14 or b32 == 7:
        return False, "that is the patches along one side; the grid is square"
    return False, "count the patches of a 224 x 224 image: (side / patch size) per row, times the rows" + (
        "; ViT-B/16 is right" if b16 == 196 else "; ViT-B/32 is right" if b32 == 49 else ""
    )


def _patch_maps(patch, text, grid):
    norm = torch.nn.functional.normalize
    h, w = grid
    return (norm(text, dim=-1) @ norm(patch, dim=-1).T).reshape(len(text), h, w)


@_checker("ex-patch-maps")
def _patch_maps_check(fn):
    inputs = (_random(6 * 4, 8) * 2, _random(3, 8, seed=1), (6, 4))
    norm = torch.nn.functional.normalize
    return _function(
        fn,
        _patch_maps,
        inputs,
        {
            "the values are dot products, not cosines: normalise patches and texts first": lambda p, t, g: (
                t @ p.T
            ).reshape(len(t), *g),
            "rows and columns are swapped: the tokens run row by row, so reshape to (classes, rows, cols)": lambda p, t, g: (
                (norm(t, dim=-1) @ norm(p, dim=-1).T).reshape(len(t), g[1], g[0]).transpose(1, 2)
            ),
        },
        "patch_text_maps(patch_emb, text_emb, grid) -> (classes, rows, cols)",
    )


# -- chapter 4: CSA -----------------------------------------------------------------------------------
@_checker("ex-csa-row")
def _csa_row(answer):
    qq, kk = torch.tensor([2.0, 0.0], dtype=torch.float64), torch.tensor([0.0, 0.0], dtype=torch.float64)
    want = (qq.softmax(0) + kk.softmax(0)).tolist()
    return _sequence(
        answer,
        want,
        {
            "that row sums to 1: CSA adds the two softmaxes, it does not average them": [x / 2 for x in want],
            "that is the q-q softmax alone: add the k-k softmax": qq.softmax(0).tolist(),
            "the scores were added before one softmax: CSA takes each softmax first, then adds": (qq + kk)
            .softmax(0)
            .tolist(),
        },
    )


def _csa(q, k, scale):
    return (scale * q @ q.transpose(-2, -1)).softmax(-1) + (scale * k @ k.transpose(-2, -1)).softmax(-1)


@_checker("ex-csa-matrix")
def _csa_matrix(fn):
    inputs = (_random(2, 7, 8), _random(2, 7, 8, seed=1), 8**-0.5)
    return _function(
        fn,
        _csa,
        inputs,
        {
            "that is vanilla attention, softmax(s q k^T): CSA correlates q with q and k with k": lambda q, k, s: (
                s * q @ k.transpose(-2, -1)
            ).softmax(-1),
            "the rows sum to 1: CSA adds the two softmaxes without dividing by 2": lambda q, k, s: _csa(q, k, s) / 2,
            "the scale is missing: multiply the scores by `scale` before each softmax": lambda q, k, s: _csa(q, k, 1.0),
            "the softmax runs over the wrong axis: each query's row (the last axis) must sum to 1 per term": lambda q, k, s: (
                (s * q @ q.transpose(-2, -1)).softmax(-2) + (s * k @ k.transpose(-2, -1)).softmax(-2)
            ),
        },
        "csa_weights(q, k, scale) -> (..., tokens, tokens)",
    )


@_checker("ex-self-peak")
def _self_peak(answer):
    share = _number(answer)
    if not 0 <= share <= 1:
        return False, "give a fraction between 0 and 1 (rows whose largest entry is on the diagonal / rows)"
    if share == 1.0:
        return True, "with equal norms z_i . z_i = |z|^2 >= z_i . z_j (Cauchy-Schwarz), so every row peaks at itself"
    return False, (
        "with equal norms every row must peak on the diagonal: are the rows of Z normalised before "
        "the scores, and is the argmax taken along each row?"
    )


# -- chapter 5: implementation ------------------------------------------------------------------------
@_checker("ex-resized-size")
def _resized_size(answer):
    from ..images import resized_size

    want = resized_size(480, 640, 336)
    got = tuple(int(a) for a in answer)
    if got == want:
        return True, "the short side is 336 and the aspect ratio is kept"
    if got == want[::-1]:
        return False, "height and width are swapped: give (height, width)"
    if 336 not in got:
        return False, "the short side of the result should be the target short side"
    return False, "the aspect ratio changed: scale both sides by the same factor"


@_checker("ex-window-count")
def _window_count(answer):
    from ..windows import sliding_windows

    want = len(sliding_windows(336, 448, 224, 112))
    return _close(
        answer,
        want,
        {
            "that counts non-overlapping windows only; the stride (112) is half the crop, so windows overlap": 2,
            "one window too many per axis: the last window is snapped back to the border, not padded": 3 * 4,
        },
        tol=0,
    )


@_checker("ex-kk-variant")
def _kk_variant(variant):
    from ..attention import AttentionContext, get_attention

    variant = get_attention(variant)
    if not variant.keep_residual:
        return False, "register it with keep_residual=True: the exercise keeps the residual and the MLP"
    q, k, v = _random(1, 2, 5, 4), _random(1, 2, 5, 4, seed=1), _random(1, 2, 5, 4, seed=2)
    ctx = AttentionContext(scale=0.5, grid=(2, 2))
    want = (k @ k.transpose(-2, -1) * 0.5).softmax(-1) @ v
    got = variant.fn(q, k, v, ctx)
    if torch.allclose(got, want, atol=1e-5):
        return True, "softmax(s k k^T) v, with the residual and MLP kept"
    if torch.allclose(got, (q @ q.transpose(-2, -1) * 0.5).softmax(-1) @ v, atol=1e-5):
        return False, "that correlates the queries; this variant uses the keys only"
    if torch.allclose(got, (k @ k.transpose(-2, -1)).softmax(-1) @ v, atol=1e-5):
        return False, "the scale is missing: multiply the scores by ctx.scale"
    return False, "its output differs from softmax(s k k^T) v on random q, k, v"


# -- chapter 6: the demo ------------------------------------------------------------------------------
@_checker("ex-class-count")
def _class_count(answer):
    from ..text import parse_classes

    spec = "cat; sofa, couch, settee; remote control, remote; floor"
    names = parse_classes(spec)
    return _close(
        answer,
        len(names),
        {
            "that counts names, not classes: synonyms after commas belong to the same class": len(names.queries),
            "that counts the separators: n classes have n - 1 semicolons": len(names) - 1,
        },
        tol=0,
    )


@_checker("ex-background-index")
def _background_index(answer):
    # Segmenter(model, ["cat", "sofa"], background=sl.STUFF_BACKGROUND): the index of "sofa" in the mask
    return _close(
        answer,
        2,
        {
            "the background becomes class 0, so every class moves up by one": 1,
            "indices start at 0: the background is 0, cat is 1": 3,
        },
        tol=0,
    )


# -- chapter 7: evaluation ----------------------------------------------------------------------------
EX_IOU_PRED = [[0, 1, 1], [0, 1, 1]]
EX_IOU_TARGET = [[1, 1, 1], [0, 0, 1]]
EX_IGNORE_PRED = [[1, 1, 0, 0], [1, 1, 0, 0]]
EX_IGNORE_TARGET = [[1, 255, 0, 0], [1, 255, 255, 1]]


def _iou_of_class_1(pred, target, ignore: int | None = None) -> float:
    from ..evaluation.metrics import MeanIoU

    metric = MeanIoU(2, ignore_index=255 if ignore is None else ignore)
    metric.update(torch.tensor(pred), torch.tensor(target))
    return metric.compute().iou[1] / 100


@_checker("ex-iou-by-hand")
def _iou_by_hand(answer):
    p, t = torch.tensor(EX_IOU_PRED), torch.tensor(EX_IOU_TARGET)
    inter, pred, true = float(((p == 1) & (t == 1)).sum()), float((p == 1).sum()), float((t == 1).sum())
    return _close(
        answer,
        _iou_of_class_1(EX_IOU_PRED, EX_IOU_TARGET),
        {
            "that is the Dice score 2I/(P+G), not the IoU I/(P+G-I)": 2 * inter / (pred + true),
            "that is pixel accuracy over all pixels, not the IoU of class 1": float((p == t).float().mean()),
            "give the IoU as a fraction (0 to 1), not a percentage": 100 * _iou_of_class_1(EX_IOU_PRED, EX_IOU_TARGET),
        },
    )


@_checker("ex-iou-ignore")
def _iou_ignore(answer):
    t = torch.tensor(EX_IGNORE_TARGET)
    counted = _iou_of_class_1(EX_IGNORE_PRED, torch.where(t == 255, 0, t).tolist(), ignore=-1)
    return _close(
        answer,
        _iou_of_class_1(EX_IGNORE_PRED, EX_IGNORE_TARGET),
        {
            "the ignored pixels (255) were scored as background: leave them out of P, G and I alike": counted,
            "give the IoU as a fraction (0 to 1), not a percentage": 100
            * _iou_of_class_1(EX_IGNORE_PRED, EX_IGNORE_TARGET),
        },
    )


# -- chapter 8: the family ----------------------------------------------------------------------------
@_checker("ex-no-residual")
def _no_residual(answer):
    from ..attention import ATTENTIONS

    builtin = ["vanilla", "maskclip", "maskclip_no_residual", "sclip", "clearclip", "naclip"]
    want = {n for n in builtin if not ATTENTIONS[n].keep_residual}
    if isinstance(answer, str):
        return False, "give a collection of names, e.g. a set of strings"
    got = set(answer)
    unknown = got - set(builtin)
    if unknown:
        return False, f"{sorted(unknown)} are not among the six built-in variants"
    if got == want:
        return True, "exactly the variants whose last block drops the residual and the MLP"
    if got < want:
        return False, f"{len(want - got)} missing: look at every variant's keep_residual"
    return False, f"{len(got - want)} of these keep the residual: look at every variant's keep_residual"


def _clearclip(q, k, v, scale):
    return (scale * q @ q.transpose(-2, -1)).softmax(-1) @ v


@_checker("ex-clearclip-attention")
def _clearclip_check(fn):
    inputs = (_random(2, 6, 4), _random(2, 6, 4, seed=1), _random(2, 6, 4, seed=2), 0.5)
    return _function(
        fn,
        _clearclip,
        inputs,
        {
            "that is SCLIP's CSA: ClearCLIP keeps only the q-q term": lambda q, k, v, s: (
                ((s * q @ q.transpose(-2, -1)).softmax(-1) + (s * k @ k.transpose(-2, -1)).softmax(-1)) @ v
            ),
            "that is vanilla attention, softmax(s q k^T) v": lambda q, k, v, s: (
                (s * q @ k.transpose(-2, -1)).softmax(-1) @ v
            ),
            "that correlates the keys (NACLIP's score, without its neighbourhood); ClearCLIP correlates the queries": lambda q, k, v, s: (
                (s * k @ k.transpose(-2, -1)).softmax(-1) @ v
            ),
        },
        "clearclip_attention(q, k, v, scale) -> (..., tokens, dim)",
    )


# -- chapter 8b: after SCLIP --------------------------------------------------------------------------
@_checker("ex-rcs-mix")
def _rcs_mix(answer):
    a, r, tau, lam = torch.tensor([0.2, 0.8]), torch.tensor([0.6, 0.4]), 1.0, 0.25
    want = (tau * (1 - lam) * a + tau * lam * r).tolist()
    return _sequence(
        answer,
        want,
        {
            "lambda weighs the earlier blocks' attention R, and 1 - lambda the base's own": (
                tau * lam * a + tau * (1 - lam) * r
            ).tolist(),
            "that is the plain average of the two rows: weigh them by 1 - lambda and lambda": ((a + r) / 2).tolist(),
        },
    )


@_checker("ex-resclip-name")
def _resclip_name(answer):
    from ..attention import get_attention

    if not isinstance(answer, str):
        return False, "give the attention name as one string"
    variant = get_attention(answer)  # an unknown name raises with the list of names; check() reports it
    mods = {"rcs_weights" in variant.params, "sfr_weights" in variant.params}
    base = answer.split("+")[0].strip()
    if base != "clearclip":
        return False, f"the base is {base!r}; the exercise asks for ClearCLIP"
    if mods != {True}:
        return False, "both modules must be on: RCS and SFR"
    return True, "ClearCLIP with both of ResCLIP's modules"
