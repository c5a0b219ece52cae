"""Evaluation protocols: each method's settings as its authors' configs give them, class files, tables.

The expected values are typed here from the authors' repositories (paths beside each), not read from
the library, so a changed protocol fails a test.
"""

from __future__ import annotations

import math
import re

import pytest

import sclip_lib as sl
from sclip_lib.attention import is_attention
from sclip_lib.evaluation import PROTOCOLS, UnknownProtocolError, get_protocol
from sclip_lib.evaluation.loop import EvalResult, summary_rows
from sclip_lib.evaluation.protocols import DIFFERENCES
from sclip_lib.evaluation.published import PUBLISHED, published

ALL = ["voc21", "context60", "coco_object", "voc20", "context59", "coco_stuff", "cityscapes", "ade20k"]


def settings(protocol: str, bench: str) -> sl.Settings:
    return get_protocol(protocol).settings_for(sl.BENCHMARKS[bench])


def test_the_protocols_exist_and_name_their_method():
    assert set(PROTOCOLS) == {"sclip", "clearclip", "naclip", "maskclip", "resclip"}
    for name, proto in PROTOCOLS.items():
        # ResCLIP's main method is a base with its two modules (test_resclip.py checks its protocol)
        assert proto.method == ("naclip+rcs+sfr" if name == "resclip" else name)
        assert is_attention(proto.method) and proto.source


@pytest.mark.parametrize("bench", ALL)
def test_sclip_protocol_is_the_registry(bench):
    assert settings("sclip", bench) == sl.BENCHMARKS[bench].settings


# mc-lan/ClearCLIP: clearclip_segmentor.py (slide_crop=448, slide_stride=224, logit_scale=50),
# configs/cfg_*.py (Resize scale=(2048, 448); prob_thd voc21 0.5, context60 0.15, coco_object 0.4;
# city_scapes slide_crop=224)
CLEARCLIP_PROB_THD = {"voc21": 0.5, "context60": 0.15, "coco_object": 0.4}


@pytest.mark.parametrize("bench", ALL)
def test_clearclip_settings(bench):
    s = settings("clearclip", bench)
    crop = 224 if bench == "cityscapes" else 448
    assert (s.short_side, s.long_side, s.crop, s.stride, s.logit_scale) == (448, 2048, crop, 224, 50)
    assert (s.prob_thd, s.area_thd, s.pamr, s.inference) == (CLEARCLIP_PROB_THD.get(bench, 0.0), None, False, "slide")
    assert get_protocol("clearclip").precision == "fp16"


def test_clearclip_class_files_use_the_word_background_and_single_names(vit_b16):
    seg = sl.BENCHMARKS["voc21"].segmenter(vit_b16, "clearclip", protocol="clearclip")
    assert seg.classes.synonyms[0] == ("background",)
    assert seg.classes.synonyms[15] == ("person",) and seg.classes.synonyms[20] == ("tvmonitor",)
    assert seg.num_classes == 21 and seg.precision == "fp16" and seg.settings.prob_thd == 0.5
    voc20 = sl.BENCHMARKS["voc20"].segmenter(vit_b16, "clearclip", protocol="clearclip")
    assert voc20.classes.synonyms[14] == ("person",) and voc20.classes.synonyms[19] == ("tvmonitor",)
    obj = sl.BENCHMARKS["coco_object"].segmenter(vit_b16, "clearclip", protocol="clearclip")
    assert tuple(obj.classes.synonyms[:2]) == (("background",), ("person",)) and obj.num_classes == 81
    # Context60 already names its background "background": ClearCLIP and SCLIP share that file
    c60 = sl.BENCHMARKS["context60"].segmenter(vit_b16, "clearclip", protocol="clearclip")
    assert c60.classes.synonyms[0] == ("background",)


# sinahmr/NACLIP: naclip.py (logit_scale=40, slide 224/112, pamr_steps=10, pamr_stride=(8, 16), no
# area_thd), eval.py/test_all.sh ('--pamr on' for the main results), configs/cfg_voc21.py and
# cfg_voc20.py (slide_crop=0), prob_thd 0.1 in cfg_voc21/context60/coco_object,
# cfg_coco_stuff164k.py Resize (2048, 336), cfg_city_scapes.py (2048, 560)
@pytest.mark.parametrize("bench", ALL)
def test_naclip_settings(bench):
    s = settings("naclip", bench)
    short = {"cityscapes": 560}.get(bench, 336)
    assert (s.short_side, s.crop, s.stride, s.logit_scale, s.area_thd) == (short, 224, 112, 40, None)
    assert (s.pamr, s.pamr_iterations, s.pamr_dilations, s.pamr_image) == (True, 10, (8, 16), "network")
    assert s.inference == ("whole" if bench in ("voc21", "voc20") else "slide")
    assert s.prob_thd == (0.1 if bench in ("voc21", "context60", "coco_object") else 0.0)
    assert s.pos_resize == "scale_factor"


# chongzhou96/MaskCLIP: configs/_base_/models/maskclip_vit16.py (test_cfg mode='whole'),
# configs/_base_/datasets/{pascal_voc12_aug_20,coco-stuff164k}.py img_scale (2048, 512),
# pascal_context_59.py (520, 520), maskclip_vit16_1024x512_cityscapes.py (1024, 512); ImageNet mean/std
@pytest.mark.parametrize(
    "bench,short,long",
    [("voc20", 512, 2048), ("context59", 520, 520), ("coco_stuff", 512, 2048), ("cityscapes", 512, 1024)],
)
def test_maskclip_settings(bench, short, long):
    s = settings("maskclip", bench)
    assert (s.short_side, s.long_side, s.inference, s.pos_resize) == (short, long, "whole", "size")
    assert s.mean == pytest.approx((123.675 / 255, 116.28 / 255, 103.53 / 255))
    assert s.std == pytest.approx((58.395 / 255, 57.12 / 255, 57.375 / 255))
    assert (s.prob_thd, s.area_thd, s.pamr) == (0.0, None, False)


def test_maskclip_templates_and_names(vit_b16):
    templates = get_protocol("maskclip").templates
    assert len(templates) == 85  # prompt_engineering.py: prompt_templates
    texts = [t("cat") for t in templates]
    assert (
        texts[0] == "a bad photo of a cat." and texts[-1] == "this is one cat in the scene." and len(set(texts)) == 85
    )
    seg = sl.BENCHMARKS["voc20"].segmenter(vit_b16, "maskclip", protocol="maskclip")
    assert seg.classes.synonyms[0] == ("airplane",) and seg.classes.synonyms[19] == ("tv monitor",)
    assert seg.stages.mean == get_protocol("maskclip").settings["voc20"].mean and seg.encoder.pos_resize == "size"


def test_maskclip_protocol_covers_only_what_maskclip_evaluated(vit_b16):
    with pytest.raises(UnknownProtocolError, match="voc20, context59, coco_stuff, cityscapes"):
        sl.BENCHMARKS["voc21"].segmenter(vit_b16, "maskclip", protocol="maskclip")


def test_unknown_protocol_lists_the_valid_ones(vit_b16):
    with pytest.raises(KeyError, match="Did you mean 'naclip'.*sclip, clearclip, naclip, maskclip"):
        sl.BENCHMARKS["voc21"].segmenter(vit_b16, "sclip", protocol="nacilp")


def test_an_override_that_changes_the_numbers_leaves_the_protocol(vit_b16):
    bench = sl.BENCHMARKS["voc21"]
    assert bench.segmenter(vit_b16, "naclip", protocol="naclip").protocol == "naclip"
    assert bench.segmenter(vit_b16, "naclip", protocol="naclip", batch_size=2, pamr=True).protocol == "naclip"
    assert bench.segmenter(vit_b16, "naclip", protocol="naclip", pamr=False).protocol is None
    assert bench.segmenter(vit_b16, "sclip", templates=("a photo of a {}.",)).protocol is None


def result(benchmark, attention, protocol, paper, released):
    return EvalResult(
        benchmark=benchmark,
        title="",
        miou=50.0,
        iou=[50.0],
        class_names=["x"],
        num_images=1,
        num_pixels=1,
        seconds_per_image=1.0,
        text_seconds=0.0,
        total_seconds=1.0,
        settings={"attention": attention, "protocol": protocol},
        data={},
        paper_miou=paper,
        released_miou=released,
        untrained=False,
        protocol=protocol,
    )


def test_published_numbers_only_under_the_methods_own_protocol(vit_b16):
    from sclip_lib.evaluation.loop import _published

    voc21 = sl.BENCHMARKS["voc21"]
    own = _published(voc21.segmenter(vit_b16, "naclip", protocol="naclip"), voc21)
    # NACLIP's protocol runs PAMR on: its README's 64.07 (PAMR on) is shown, not the paper's 58.9 (PAMR off)
    assert (own["paper_miou"], own["released_miou"], own["protocol"]) == (None, 64.07, "naclip")
    assert "paper:" not in own["published_source"]
    assert sl.PROTOCOLS["naclip"].numbers(voc21)[0].pamr is False
    assert "sinahmr/NACLIP README" in own["published_source"]
    other = _published(voc21.segmenter(vit_b16, "naclip", protocol="sclip"), voc21)
    assert other["paper_miou"] is None and other["released_miou"] is None and other["protocol"] == "sclip"
    sclip = _published(voc21.segmenter(vit_b16, "sclip"), voc21)
    assert (sclip["paper_miou"], sclip["released_miou"]) == (59.1, 59.63)
    c59 = sl.BENCHMARKS["context59"]
    mask = _published(c59.segmenter(vit_b16, "maskclip", protocol="maskclip"), c59)
    assert (mask["paper_miou"], mask["released_miou"]) == (21.7, None)  # MaskCLIP README, ViT-B/16


def test_summary_rows_name_the_protocol_and_leave_other_protocols_blank():
    rows = summary_rows(
        [
            result("voc21", "naclip", "naclip", 58.9, 64.07),
            result("voc21", "naclip", "sclip", None, None),
            result("voc20", "sclip", None, None, None),
        ]
    )
    assert [r["protocol"] for r in rows] == ["naclip", "sclip", "custom"]
    assert (rows[0]["paper"], rows[0]["released code"]) == (58.9, 64.07)
    assert rows[1]["paper"] is None and rows[2]["paper"] is None
    # results files of the same method under two protocols do not overwrite each other
    assert re.fullmatch(
        r"voc21_naclip_unknown_naclip_[0-9a-f]{8}", result("voc21", "naclip", "naclip", None, None).stem()
    )
    assert re.fullmatch(r"voc21_naclip_unknown_[0-9a-f]{8}", result("voc21", "naclip", "sclip", None, None).stem())


def test_released_numbers_are_the_authors_readmes():
    # wangf3014/SCLIP README "Results"; sinahmr/NACLIP README "Results" (PAMR on)
    sclip = [sl.BENCHMARKS[b].released_miou for b in ALL]
    assert sclip == [59.63, 31.74, 33.52, 81.54, 34.46, 22.77, 32.34, 16.45]
    naclip = {b: published("naclip", "naclip", b, "released") for b in ALL}
    assert [naclip[b].miou for b in ALL] == [64.07, 34.99, 36.19, 83.03, 38.35, 25.69, 38.27, 19.05]
    assert math.isclose(sum(naclip[b].miou for b in ALL) / 8, 42.46, abs_tol=0.01)  # the README's average
    # one table holds every number: each protocol's numbers() and each benchmark's SCLIP numbers read it
    for b in ALL:
        bench = sl.BENCHMARKS[b]
        paper, released = get_protocol("naclip").numbers(bench)
        assert released is naclip[b] and paper is published("naclip", "naclip", b)
        assert bench.paper_miou == published("sclip", "sclip", b).miou
    assert len({(p, m, k, b) for p, m, k, b in PUBLISHED}) == len(PUBLISHED)
    assert {p for p, _, _, _ in PUBLISHED} == set(PROTOCOLS)
    with pytest.raises(ValueError, match="kind"):
        published("naclip", "naclip", "voc21", "readme")


# -- what still differs from the authors' code ---------------------------------------------------------
def test_readme_lists_exactly_the_protocols_differences():
    """The README's "what still differs" lists are generated from DIFFERENCES, as every protocol's
    ``differences`` is, so the two cannot drift apart."""
    from scripts import readme_differences

    _, body, _ = readme_differences.split(readme_differences.README.read_text(encoding="utf-8"))
    assert body == readme_differences.generated(), "run `python scripts/readme_differences.py`"
    flat = " ".join(body.split())
    for proto in PROTOCOLS.values():
        assert proto.differences and all(" ".join(d.split()) in flat for d in proto.differences), proto.name
        assert f"`{proto.repository}` at `{proto.commit[:7]}`" in flat


def test_readme_without_the_markers_is_a_clear_error():
    from scripts import readme_differences

    with pytest.raises(SystemExit, match="README.md must hold the lines"):
        readme_differences.split("## Faithfulness\n\nno markers here\n")
    with pytest.raises(SystemExit, match="in that order"):
        readme_differences.split(f"{readme_differences.END}\n{readme_differences.BEGIN}\n")


def test_each_protocol_holds_the_differences_that_name_it_and_cites_a_commit():
    for names, text in DIFFERENCES:
        assert names and set(names) <= set(PROTOCOLS) and text.strip(), text
    for name, proto in PROTOCOLS.items():
        assert proto.differences == tuple(text for names, text in DIFFERENCES if name in names), name
        assert re.fullmatch(r"[0-9a-f]{40}", proto.commit), name
        assert proto.source.startswith(proto.repository + " ") and proto.repository.count("/") == 1


def test_the_coco_object_bed_change_is_listed_wherever_the_project_file_is_used():
    """The project's COCO-Object background drops "bed" (test_benchmark_registry): every protocol that
    scores COCO-Object with that file says so (SCLIP, NACLIP, ResCLIP); ClearCLIP has its own file."""
    bench = sl.BENCHMARKS["coco_object"]
    for name, proto in PROTOCOLS.items():
        uses_project_file = proto.covers("coco_object") and proto.class_file(bench) == get_protocol("sclip").class_file(
            bench
        )
        assert any('"bed"' in d for d in proto.differences) == uses_project_file, name
    assert {n for n, p in PROTOCOLS.items() if any('"bed"' in d for d in p.differences)} == {
        "sclip",
        "naclip",
        "resclip",
    }


@pytest.mark.parametrize(
    "name,phrase",
    [
        ("naclip", "renormalise the class probabilities"),
        ("resclip", "renormalise the class probabilities"),
        ("resclip", "casts SFR's affinity to fp16 in every precision"),
        ("naclip", "Gaussian neighbourhood bias"),
        ("clearclip", "its own copy of open_clip"),
        ("maskclip", "mmcv port of the OpenAI weights in fp32"),
    ],
)
def test_differences_read_from_the_authors_code_are_listed(name, phrase):
    assert any(phrase in d for d in get_protocol(name).differences)


def test_only_the_repositories_that_cast_weights_to_fp16_list_it():
    # MaskCLIP runs in fp32 (no fp16 key in its configs); the other four convert the weights to fp16
    cast = {n for n, p in PROTOCOLS.items() if any(d.startswith("fp16 on CUDA is autocast") for d in p.differences)}
    assert cast == {"sclip", "clearclip", "naclip", "resclip"}
