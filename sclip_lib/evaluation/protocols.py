"""Evaluation protocols: each method's own settings, class files and inference mode, as data.

Every method of the family was published with its own protocol (resize, windows, logit scale,
thresholds, class names, PAMR, precision). A published number is only comparable with a run under the
protocol that produced it, so :meth:`Benchmark.segmenter` takes ``protocol=`` and the summary tables
show a method's published number only beside a run under that method's own protocol.

Sources (read from the authors' repositories; file paths are given with each value):

- ``sclip``: wangf3014/SCLIP, ``configs/cfg_*.py`` and ``clip_segmentor.py`` (the registry's defaults).
- ``clearclip``: mc-lan/ClearCLIP, ``configs/cfg_*.py``, ``configs/cls_*.txt`` and ``clearclip_segmentor.py``.
- ``naclip``: sinahmr/NACLIP, ``configs/cfg_*.py``, ``naclip.py`` and ``eval.py``/``test_all.sh`` (PAMR on).
- ``resclip``: yvhangyang/ResCLIP, ``configs/cfg_*.py``, ``resclip_segmentor.py``, ``test_all.sh`` and the
  README's result tables (per-benchmark RCS/SFR weights in ``Protocol.modifiers``).
- ``maskclip``: chongzhou96/MaskCLIP, ``configs/maskclip/maskclip_vit16_*.py``,
  ``configs/_base_/datasets/*.py``, ``configs/_base_/models/maskclip_vit16.py`` and
  ``tools/maskclip_utils/prompt_engineering.py``.

Each protocol names the commit of its authors' repository its values were read at (``Protocol.commit``).
What each protocol still does differently from that code is written once, in :data:`DIFFERENCES`: each
protocol's ``differences`` and the README's "Faithfulness" lists (:func:`differences_markdown`, written by
``scripts/readme_differences.py`` and checked by ``tests/test_protocols.py``) are both made from it.
"""

from __future__ import annotations

import difflib
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES

from ..attention import AttentionVariant, get_attention
from ..segmenter import Settings
from .published import ALL, Published, published

__all__ = [
    "Protocol",
    "Published",
    "PROTOCOLS",
    "get_protocol",
    "UnknownProtocolError",
    "MASKCLIP_TEMPLATES",
    "DIFFERENCES",
    "differences_markdown",
]

# MaskCLIP's 85 prompt templates (tools/maskclip_utils/prompt_engineering.py, ``prompt_templates``): the
# 80 OpenAI ImageNet templates plus five scene templates, which are added here.
MASKCLIP_TEMPLATES = tuple(OPENAI_IMAGENET_TEMPLATES) + tuple(
    (lambda c, t=t: t.format(c))
    for t in (
        "there is a {} in the scene.",
        "there is the {} in the scene.",
        "this is a {} in the scene.",
        "this is the {} in the scene.",
        "this is one {} in the scene.",
    )
)

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # MaskCLIP's img_norm_cfg: mean=[123.675, 116.28, 103.53] / 255
IMAGENET_STD = (0.229, 0.224, 0.225)  # std=[58.395, 57.12, 57.375] / 255


class UnknownProtocolError(KeyError):
    """No protocol by that name, or a protocol that does not cover a benchmark; the message says what does."""

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class Protocol:
    """One method's evaluation protocol.

    ``settings`` maps a benchmark to its :class:`Settings` (``None``: the benchmark's own settings, i.e.
    SCLIP's); ``class_files`` maps a benchmark to a packaged class file replacing the default one;
    the published numbers under it are in :mod:`sclip_lib.evaluation.published` (:meth:`numbers`).
    """

    name: str
    method: str  # the attention variant whose paper defines the protocol
    title: str
    source: str  # "owner/repository files..."
    settings: Mapping[str, Settings | None]
    class_files: Mapping[str, str] = field(default_factory=dict)
    templates: tuple | None = None  # None: the 80 OpenAI ImageNet templates
    precision: str | None = None  # None: fp16 on CUDA, fp32 elsewhere
    differences: tuple[str, ...] = ()  # from DIFFERENCES, true of the authors' code at ``commit``
    commit: str = ""  # the commit of the authors' repository the values and differences were read at
    # benchmark -> modifier -> keyword arguments, for protocols of plug-ins with per-benchmark weights
    # (ResCLIP: {"rcs": {"weights": ...}, "sfr": {"weights": ..., "temp_thd": ...}})
    modifiers: Mapping[str, Mapping[str, Mapping]] = field(default_factory=dict)

    @property
    def repository(self) -> str:
        """The authors' GitHub repository, ``owner/name``."""
        return self.source.split()[0]

    @property
    def benchmarks(self) -> tuple[str, ...]:
        return tuple(self.settings)

    def covers(self, benchmark: str) -> bool:
        return benchmark in self.settings

    def settings_for(self, benchmark) -> Settings:
        """The :class:`Settings` of ``benchmark`` (a :class:`Benchmark`) under this protocol."""
        if benchmark.name not in self.settings:
            raise UnknownProtocolError(
                f"protocol {self.name!r} has no settings for {benchmark.name!r}: the {self.title} covers "
                f"{', '.join(self.benchmarks)}; use protocol='sclip' for the others"
            )
        own = self.settings[benchmark.name]
        return benchmark.settings if own is None else own

    def numbers(self, benchmark, method: str | None = None) -> tuple[Published | None, Published | None]:
        """The (paper, released-code) mIoU of ``method`` (default: the protocol's own) on ``benchmark``
        under this protocol, None where unpublished."""
        method = self.method if method is None else method
        return published(self.name, method, benchmark.name), published(self.name, method, benchmark.name, "released")

    def attention_for(self, benchmark, attention: str | AttentionVariant) -> str | AttentionVariant:
        """``attention`` with this protocol's weights for ``benchmark``'s modifiers (names only; a variant
        object keeps its own)."""
        params = self.modifiers.get(benchmark.name)
        if not params or not isinstance(attention, str) or "+" not in attention:
            return attention
        return get_attention(attention, params)

    def class_file(self, benchmark) -> str:
        return self.class_files.get(benchmark.name) or benchmark.class_file or f"{benchmark.name}.txt"

    def segmenter_options(self) -> dict:
        """Keyword arguments for :class:`Segmenter` beyond settings and classes."""
        options = {}
        if self.templates is not None:
            options["templates"] = self.templates
        if self.precision is not None:
            options["precision"] = self.precision
        return options

    def describe(self) -> dict:
        return {"name": self.name, "method": self.method, "title": self.title, "source": self.source}


def _derive(base: Settings, **per_benchmark: dict) -> dict[str, Settings]:
    return {name: replace(base, **fields) for name, fields in per_benchmark.items()}


# Where this project still differs from the authors' code, each written once: (the protocols it is true
# of, one README bullet in Markdown). Every sentence is about the authors' code at the protocol's commit.
_EVERY = ("sclip", "clearclip", "naclip", "maskclip", "resclip")
_FP16_WEIGHTS = ("sclip", "clearclip", "naclip", "resclip")  # the repositories that cast weights to fp16
_SCLIP_CODE = ("sclip", "naclip", "resclip")  # SCLIP and the two built on its code (clip/, pamr.py, class files)
DIFFERENCES: tuple[tuple[tuple[str, ...], str], ...] = (
    (
        _EVERY,
        "Images are resized as float tensors (PyTorch bilinear, no antialias); the authors' pipelines "
        "resize the uint8 image with OpenCV's `INTER_LINEAR` (mmcv's `Resize`).",
    ),
    (
        _EVERY,
        "Text embeddings come from the installed open_clip's tokenizer and text tower (fp16 autocast on "
        "CUDA), the prompts of several names encoded together and, where the text tower allows it, cut "
        "after the longest prompt of each batch (its causal mask makes the cut padding irrelevant). SCLIP, "
        "NACLIP and ResCLIP encode them with their copy of OpenAI's `clip` package (`clip/`: "
        "`clip.tokenize`, `encode_text`, one name's 80 prompts at a time); ClearCLIP with its own copy of "
        "open_clip (`open_clip/`: `tokenizer.tokenize`, `create_model('ViT-B/16', pretrained='openai', "
        "precision='fp16')`); MaskCLIP precomputed them with OpenAI's `clip` package "
        "(`tools/maskclip_utils/prompt_engineering.py`) and loads the saved files. Their text towers run "
        "with the weights cast to fp16 on CUDA.",
    ),
    (
        _EVERY,
        "The positional embedding is resized whenever the patch grid differs from the model's; the authors' "
        "code resizes it only when the token count differs (`if x.shape[1] != "
        "self.positional_embedding.shape[0]`; MaskCLIP: `if x_len != pos_len`), so a non-square grid with "
        "the native count, e.g. 7x28 patches, would keep the unresized embedding there. The rule itself is "
        "the authors' (bicubic, `scale_factor=(g+0.1)/G`, `interpolate_pos_encoding`; MaskCLIP: an explicit "
        "size, `resize_pos_embed`), and, as there, the embedding stays fp32, is resized in fp32 and only "
        "then cast to the activations' dtype.",
    ),
    (
        _FP16_WEIGHTS,
        "fp16 on CUDA is autocast over fp32 weights: matmuls run in fp16, the last block's attention "
        "softmax and the patch-text logits in fp32. The authors convert the weights to fp16 "
        "(`convert_weights` in `clip/model.py`; ClearCLIP: `create_model(..., precision='fp16')`), so their "
        "activations, attention and patch-text logits are fp16 (their LayerNorm computes in fp32). SCLIP, "
        "NACLIP and ResCLIP merge the windows into an fp32 canvas, as here.",
    ),
    (
        _SCLIP_CODE,
        "COCO-Object: the authors' class file (`configs/cls_coco_object.txt`, the same in SCLIP, NACLIP and "
        'ResCLIP) lists "bed" both among the background words and as class 60; with that duplicate the '
        'argmax tie always goes to background, so class "bed" can never win. The project\'s list drops "bed" '
        "from the background words (`sclip_lib/evaluation/registry.py`).",
    ),
    (
        _SCLIP_CODE,
        "PAMR is the project's own code of the formulation in the authors' `pamr.py` (the local deviation "
        "over the 3x3 windows of all dilations together, the CLIP-normalised resized image upsampled as its "
        "guide; on the final logits, its output cast to fp16 before the softmax under fp16). It is off in "
        "the SCLIP protocol (as in SCLIP's configs), on in the NACLIP protocol (`pamr_steps=10`, NACLIP's "
        "default) and in ResCLIP's first pass. Where PAMR raises a `RuntimeError` (e.g. out of memory), "
        'NACLIP and ResCLIP\'s first pass go on without it; here it always runs. `pamr_image="original"` '
        "(the original image in [0, 1], sharper edges) is an option, not the default.",
    ),
    (
        ("naclip", "resclip"),
        "NACLIP and ResCLIP renormalise the class probabilities they store after the synonym max "
        "(`seg_probs /= seg_probs.sum(0, keepdim=True)`, after the argmax and `prob_thd`, so labels are "
        "unaffected); `Segmenter.probabilities()` here is not renormalised.",
    ),
    (
        ("clearclip",),
        "Windows whose side is not a multiple of the patch size are zero-padded (centred) there and cropped "
        "after; here the patch conv drops the trailing pixels and the logits are stretched over the window. "
        "This only happens where a resized image side is shorter than the 448 crop.",
    ),
    (
        ("clearclip",),
        "ClearCLIP also casts its input to half (`inputs.half()` in `predict`), so under fp16 it merges the "
        "windows in an fp16 canvas; here the canvas is fp32.",
    ),
    (
        ("clearclip",),
        'Class names are split on ", " here and on "," there (the same names after CLIP\'s whitespace cleaning).',
    ),
    (
        ("clearclip",),
        "The repository's `configs/base_config.py` ships `model_type='vanilla'`; the protocol runs the "
        "method the paper describes (`model_type='ClearCLIP'`: q-q attention, no residual, no FFN).",
    ),
    (
        ("naclip",),
        "NACLIP adds its Gaussian neighbourhood bias in the activations' dtype (fp16 under fp16: `addition "
        "... .to(x.dtype)`); here the bias is fp32.",
    ),
    (
        ("maskclip",),
        "`maskclip` is MaskCLIP's own last block (identity attention, residual and FFN kept around the "
        "value path: `v = out_proj(v_proj(ln_1(x))) + x`, then `v + ffn(ln_2(v))`). ClearCLIP's "
        "residual-free re-implementation is `maskclip_no_residual`.",
    ),
    (
        ("maskclip",),
        "MaskCLIP runs an mmcv port of the OpenAI weights in fp32 whose config "
        "(`configs/_base_/models/maskclip_vit16.py`) uses exact GELU and LayerNorm eps 1e-6, where the "
        "weights were trained with QuickGELU and eps 1e-5; here open_clip's model with its own activations "
        "(fp16 autocast on CUDA).",
    ),
    (
        ("maskclip",),
        "The protocol covers the benchmarks MaskCLIP evaluated with ViT-B/16 (VOC20, Context59, COCO-Stuff, "
        "Cityscapes); key smoothing and prompt denoising (off in those configs) are not implemented.",
    ),
    (
        ("resclip",),
        "`use_rcs` / `use_sfr` are honoured here; the authors' `resclip_segmentor.py` stores them as "
        "one-element tuples (`self.use_rcs=use_rcs,`), which are always true, so their code runs both "
        "modules whatever the flags say. The one-module rows of the book's ablation have no counterpart "
        "there.",
    ),
    (
        ("resclip",),
        "ResCLIP casts SFR's affinity to fp16 in every precision (`attn_sfr = attn_sfr.to(torch.float16)` "
        "in `custom_attn`, `clip/model.py`) before blending it into the logits; here it stays fp32.",
    ),
    (
        ("resclip",),
        "SFR's first pass refines each window's logits with the project's PAMR (the authors' formulation, "
        "as above) and runs in fp32 after the encoder; under fp16 ResCLIP's `create_logit_temp` computes "
        "its patch logits and their softmax in fp16 (PAMR in between in fp32) and `create_patch_matrix` "
        "applies `temp_thd` to those fp16 probabilities. On a GPU the windows of an image go through the "
        "first pass together (in chunks of bounded memory), on a CPU one by one (same result).",
    ),
)


def _differences_of(protocol: str) -> tuple[str, ...]:
    return tuple(text for names, text in DIFFERENCES if protocol in names)


_SCLIP = Protocol(
    name="sclip",
    method="sclip",
    title="SCLIP protocol",
    source="wangf3014/SCLIP configs/cfg_*.py, clip_segmentor.py",
    settings={name: None for name in ALL},  # the registry's own settings (registry.py)
    differences=_differences_of("sclip"),
    commit="b56bd3014b9e8a3ee3450bcfc53700a67d627b7a",
)

# ClearCLIP: clearclip_segmentor.py defaults slide_crop=448, slide_stride=224, logit_scale=50; every
# configs/cfg_*.py resizes to scale=(2048, 448); prob_thd from cfg_voc21 (0.5), cfg_context60 (0.15),
# cfg_coco_object (0.4); cfg_city_scapes sets slide_crop=224 (stride stays 224). No PAMR, no area_thd.
_CLEAR_BASE = Settings(short_side=448, crop=448, stride=224, logit_scale=50.0)
_CLEARCLIP = Protocol(
    name="clearclip",
    method="clearclip",
    title="ClearCLIP protocol",
    source="mc-lan/ClearCLIP configs/cfg_*.py, configs/cls_*.txt, clearclip_segmentor.py",
    settings=_derive(
        _CLEAR_BASE,
        voc21={"prob_thd": 0.5},
        context60={"prob_thd": 0.15},
        coco_object={"prob_thd": 0.4},
        voc20={},
        context59={},
        coco_stuff={},
        cityscapes={"crop": 224},
        ade20k={},
    ),
    class_files={
        "voc21": "clearclip/voc21.txt",
        "voc20": "clearclip/voc20.txt",
        "coco_object": "clearclip/coco_object.txt",
    },
    precision="fp16",  # create_model(..., precision='fp16') and inputs.half() (on CUDA; fp32 on a CPU)
    differences=_differences_of("clearclip"),
    commit="ad68a404d55d48d27330b93554eb64a234ff717f",
)

# NACLIP: naclip.py defaults logit_scale=40, slide 224/112, pamr_steps=10, pamr_stride=(8, 16), no
# area_thd; eval.py '--pamr on' (the README's main results); cfg_voc21/cfg_voc20 set slide_crop=0
# (whole image); prob_thd 0.1 in cfg_voc21, cfg_context60, cfg_coco_object; cfg_coco_stuff164k
# resizes to (2048, 336); cfg_city_scapes to (2048, 560).
_NA_BASE = Settings(short_side=336, logit_scale=40.0, pamr=True)
_NACLIP = Protocol(
    name="naclip",
    method="naclip",
    title="NACLIP protocol",
    source="sinahmr/NACLIP configs/cfg_*.py, naclip.py, eval.py, test_all.sh",
    settings=_derive(
        _NA_BASE,
        voc21={"prob_thd": 0.1, "inference": "whole"},
        context60={"prob_thd": 0.1},
        coco_object={"prob_thd": 0.1},
        voc20={"inference": "whole"},
        context59={},
        coco_stuff={},
        cityscapes={"short_side": 560},
        ade20k={},
    ),
    differences=_differences_of("naclip"),
    commit="0cac3a651f753b11315ea799cfbfabf79da1bd76",
)

# MaskCLIP (ViT-B/16, annotation-free): configs/_base_/models/maskclip_vit16.py test_cfg mode='whole';
# configs/_base_/datasets/pascal_voc12_aug_20.py and coco-stuff164k.py resize to img_scale (2048, 512),
# pascal_context_59.py to (520, 520), configs/maskclip/maskclip_vit16_1024x512_cityscapes.py to
# (1024, 512), all keep_ratio; ImageNet mean/std; pos_embed resized to an explicit size
# (resize_pos_embed); argmax of the cosine logits, no thresholds. The argmax ignores the logit scale;
# 100 (the scale of MaskClipHead.refine_output) only shapes Segmenter.probabilities().
_MASK_BASE = Settings(
    short_side=512,
    long_side=2048,
    inference="whole",
    logit_scale=100.0,
    pos_resize="size",
    mean=IMAGENET_MEAN,
    std=IMAGENET_STD,
)
_MASKCLIP = Protocol(
    name="maskclip",
    method="maskclip",
    title="MaskCLIP protocol",
    source="chongzhou96/MaskCLIP configs/maskclip/maskclip_vit16_*.py, configs/_base_/, "
    "tools/maskclip_utils/prompt_engineering.py",
    settings=_derive(
        _MASK_BASE,
        voc20={},
        context59={"short_side": 520, "long_side": 520},
        coco_stuff={},
        cityscapes={"short_side": 512, "long_side": 1024},
    ),
    class_files={n: f"maskclip/{n}.txt" for n in ("voc20", "context59", "coco_stuff", "cityscapes")},
    templates=MASKCLIP_TEMPLATES,
    differences=_differences_of("maskclip"),
    commit="245d31f809be9c1938f8f30561b6bf9ed033d746",
)

# ResCLIP (ViT-B/16): resclip_segmentor.py defaults logit_scale=40, slide 224/112, no area_thd, no PAMR on
# the output; every configs/cfg_*.py resizes to (2048, 336) (cfg_city_scapes: 560), cfg_voc21 and cfg_voc20
# set slide_crop=0 (whole image); prob_thd 0.1 in cfg_voc21, cfg_context60, cfg_coco_object. Each config
# sets its own temp_thd, attn_rcs_weights and attn_sfr_weights (below); delete_same_entity=True in all.
_RES_BASE = Settings(short_side=336, crop=224, stride=112, logit_scale=40.0)
_RES = {  # benchmark: (prob_thd, temp_thd, (tau, lambda) RCS, (tau, lambda) SFR, whole image, short side)
    "voc21": (0.1, 0.50, (2.0, 0.3), (2.2, 0.7), True, 336),
    "context60": (0.1, 0.30, (2.0, 0.3), (1.8, 0.7), False, 336),
    "coco_object": (0.1, 0.11, (2.0, 0.4), (1.8, 0.7), False, 336),
    "voc20": (0.0, 0.10, (2.0, 0.6), (2.1, 0.6), True, 336),
    "context59": (0.0, 0.25, (2.0, 0.4), (1.8, 0.7), False, 336),
    "coco_stuff": (0.0, 0.11, (2.0, 0.4), (1.8, 0.7), False, 336),
    "cityscapes": (0.0, 0.10, (2.0, 0.2), (2.1, 0.6), False, 560),
    "ade20k": (0.0, 0.25, (2.0, 0.3), (2.1, 0.7), False, 336),
}
_RESCLIP = Protocol(
    name="resclip",
    method="naclip+rcs+sfr",  # the paper's main method (test_all.sh: `wo_resi resclip`)
    title="ResCLIP protocol",
    source="yvhangyang/ResCLIP configs/cfg_*.py, resclip_segmentor.py, test_all.sh, README",
    settings={
        name: replace(_RES_BASE, prob_thd=prob, short_side=short, inference="whole" if whole else "slide")
        for name, (prob, _, _, _, whole, short) in _RES.items()
    },
    modifiers={
        name: {"rcs": {"weights": rcs}, "sfr": {"weights": sfr, "temp_thd": temp}}
        for name, (_, temp, rcs, sfr, _, _) in _RES.items()
    },
    differences=_differences_of("resclip"),
    commit="0e085f7f52f06098b383599e9653cd28cc665a8c",
)

PROTOCOLS: dict[str, Protocol] = {p.name: p for p in (_SCLIP, _CLEARCLIP, _NACLIP, _MASKCLIP, _RESCLIP)}


def differences_markdown(width: int = 105) -> str:
    """The README's "what still differs" lists, from :data:`DIFFERENCES`: the commits read, then one list
    per set of protocols (every protocol first), in the order the table first names each set; lines wrapped
    at ``width``."""

    def method(name: str) -> str:
        return PROTOCOLS[name].title.removesuffix(" protocol")

    def join(words: list[str]) -> str:
        return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]

    def wrap(text: str, first: str = "", rest: str = "") -> list[str]:
        return textwrap.wrap(
            text, width, initial_indent=first, subsequent_indent=rest, break_long_words=False, break_on_hyphens=False
        )

    commits = [f"{method(p.name)} `{p.repository}` at `{p.commit[:7]}`" for p in PROTOCOLS.values()]
    lines = wrap(f"Read from the authors' code at these commits (`Protocol.commit`): {join(commits)}.")
    groups: dict[tuple[str, ...], list[str]] = {}
    for names, text in DIFFERENCES:
        groups.setdefault(tuple(n for n in PROTOCOLS if n in names), []).append(text)
    for names, texts in groups.items():
        heading = "Every protocol" if len(names) == len(PROTOCOLS) else join([method(n) for n in names])
        if len(names) == 1:
            heading += f" (`{PROTOCOLS[names[0]].repository}`)"
        lines += ["", f"{heading}:", ""] + [line for text in texts for line in wrap(text, "- ", "  ")]
    return "\n".join(lines) + "\n"


def get_protocol(name: str | Protocol) -> Protocol:
    """The protocol ``name``; an :class:`UnknownProtocolError` (a ``KeyError``) lists the valid names."""
    if isinstance(name, Protocol):
        return name
    key = str(name).strip().lower()
    if key not in PROTOCOLS:
        close = difflib.get_close_matches(key, PROTOCOLS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise UnknownProtocolError(f"unknown protocol {name!r}.{hint} Valid protocols: {', '.join(PROTOCOLS)}")
    return PROTOCOLS[key]
