"""ResCLIP's evaluation protocol per benchmark, and its published numbers, as data.

Source: github.com/yvhangyang/ResCLIP at commit 0e085f7. Settings from ``configs/cfg_<benchmark>.py``
over the defaults of ``ResCLIPSegmentation.__init__`` (``resclip_segmentor.py``): logit scale 40,
sliding 224-pixel windows at stride 112 (VOC21 and VOC20: the whole image, ``slide_crop=0``), no
``area_thd``, no PAMR on the output; the short side is resized to 336 (Cityscapes 560, and COCO-Stuff
336 where SCLIP used 448). Published mIoU: the README's result tables ``figs/main_results_w.png``
(with background: VOC21, Context60, Object) and ``figs/main_results_wo.png`` (VOC20, Context59, Stuff,
Cityscapes, ADE20k), ViT-B/16 rows. The base rows there are each method's own published numbers
(SCLIP's equal this registry's ``paper_miou``); the "+ResCLIP" rows ran with the configs below.

    seg = RESCLIP_PROTOCOL["voc21"].segmenter(model, base="naclip")          # NACLIP + RCS + SFR
    seg = RESCLIP_PROTOCOL["voc21"].segmenter(model, base="sclip", sfr=False)  # SCLIP + RCS only
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..resclip import resclip
from ..segmenter import Segmenter, Settings
from .registry import get_benchmark

__all__ = ["ResCLIPProtocol", "RESCLIP_PROTOCOL", "RESCLIP_BASES"]

RESCLIP_BASES = ("sclip", "clearclip", "naclip")


@dataclass(frozen=True)
class ResCLIPProtocol:
    """One benchmark under ResCLIP's configs: settings, plug-in weights, published mIoU (ViT-B/16)."""

    benchmark: str
    short_side: int
    whole_image: bool
    prob_thd: float
    temp_thd: float
    rcs_weights: tuple[float, float]
    sfr_weights: tuple[float, float]
    published: dict[str, tuple[float, float]]  # base -> (base alone, base + ResCLIP), percent

    @property
    def settings(self) -> Settings:
        # slide_crop=0 (VOC21, VOC20): one pass over the whole resized image
        return Settings(short_side=self.short_side, crop=224, stride=112, logit_scale=40.0, prob_thd=self.prob_thd,
                        inference="whole" if self.whole_image else "slide")  # fmt: skip

    def attention(self, base: str = "naclip", rcs: bool = True, sfr: bool = True):
        """The attention variant: ``base`` with RCS and/or SFR at this benchmark's weights."""
        if base not in RESCLIP_BASES:
            raise ValueError(f"ResCLIP's published bases are {', '.join(RESCLIP_BASES)}; got {base!r}")
        return resclip(base, use_rcs=rcs, use_sfr=sfr, rcs_weights=self.rcs_weights, sfr_weights=self.sfr_weights,
                       temp_thd=self.temp_thd)  # fmt: skip

    def segmenter(self, model, base: str = "naclip", rcs: bool = True, sfr: bool = True, **overrides) -> Segmenter:
        """A :class:`Segmenter` for this benchmark under ResCLIP's protocol (``rcs=sfr=False``: the base alone).

        ``overrides``: :class:`Segmenter` keywords (``device``, ``templates``) or :class:`Settings` fields.
        """
        bench = get_benchmark(self.benchmark)
        settings = replace(self.settings, **{k: overrides.pop(k) for k in list(overrides) if k in Settings.__dataclass_fields__})
        return Segmenter(model, bench.classes, self.attention(base, rcs, sfr), background=bench.background,
                         settings=settings, **overrides)  # fmt: skip


def _p(name, short, whole, prob, temp, rcs, sfr, sclip, clearclip, naclip) -> ResCLIPProtocol:
    return ResCLIPProtocol(name, short, whole, prob, temp, rcs, sfr,
                           {"sclip": sclip, "clearclip": clearclip, "naclip": naclip})  # fmt: skip


# benchmark, short side, whole image, prob_thd, temp_thd, (tau, lambda)_rcs, (tau, lambda)_sfr,
# published (base, +ResCLIP) for SCLIP, ClearCLIP, NACLIP
RESCLIP_PROTOCOL: dict[str, ResCLIPProtocol] = {p.benchmark: p for p in [
    _p("voc21", 336, True, 0.1, 0.50, (2.0, 0.3), (2.2, 0.7), (59.1, 60.7), (51.8, 59.0), (58.9, 61.1)),
    _p("context60", 336, False, 0.1, 0.30, (2.0, 0.3), (1.8, 0.7), (30.4, 32.9), (32.6, 32.9), (32.2, 33.5)),
    _p("coco_object", 336, False, 0.1, 0.11, (2.0, 0.4), (1.8, 0.7), (30.5, 34.3), (33.0, 34.0), (33.2, 35.0)),
    _p("voc20", 336, True, 0.0, 0.10, (2.0, 0.6), (2.1, 0.6), (80.4, 84.6), (80.9, 87.1), (79.7, 86.0)),
    _p("context59", 336, False, 0.0, 0.25, (2.0, 0.4), (1.8, 0.7), (34.2, 35.8), (35.9, 36.4), (35.2, 36.8)),
    _p("coco_stuff", 336, False, 0.0, 0.11, (2.0, 0.4), (1.8, 0.7), (22.4, 23.9), (23.9, 24.3), (23.3, 24.7)),
    _p("cityscapes", 560, False, 0.0, 0.10, (2.0, 0.2), (2.1, 0.6), (32.2, 34.4), (30.0, 34.5), (35.5, 35.9)),
    _p("ade20k", 336, False, 0.0, 0.25, (2.0, 0.3), (2.1, 0.7), (16.1, 17.6), (16.7, 17.8), (17.4, 18.0)),
]}  # fmt: skip
# The README tables' averages, for checking the rows above: base -> (with background, without)
RESCLIP_PUBLISHED_AVERAGES = {
    "sclip": ((40.0, 42.7), (37.1, 39.3)),
    "clearclip": ((39.1, 42.0), (37.5, 40.0)),
    "naclip": ((41.4, 43.2), (38.2, 40.3)),
}
