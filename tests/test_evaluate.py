"""``evaluate`` end to end on tiny local copies with the untrained ViT-B/16, results files, the CLI."""

from __future__ import annotations

import argparse
import json
import math
import re

import numpy as np
import pytest
import torch
from PIL import Image

import sclip_lib as sl
from sclip_lib.cli import evaluate as evaluate_cli
from sclip_lib.evaluation import LabelError
from sclip_lib.evaluation.loop import SMOKE_WARNING, EvalResult, format_table, summary_rows
from tests.conftest import ONE_TEMPLATE, shared_data
from tests.test_benchmark_loading import generated_voc, hub_copy, rng_image

FAST = {"templates": ONE_TEMPLATE, "short_side": 224}  # one 224 window per square image


@pytest.fixture
def voc_copy(tmp_path):
    images, masks, raws = generated_voc(np.random.default_rng(1), n=3, size=(64, 64))
    return hub_copy(tmp_path / "voc", "voc21", images, masks), raws


def strict_json(path):
    return json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))


def test_end_to_end_voc21_untrained(vit_b16, voc_copy, tmp_path):
    source, raws = voc_copy
    out = tmp_path / "results"
    r = sl.evaluate("sclip", "voc21", model=vit_b16, source=source, limit=2, out=out, progress=False, **FAST)
    assert (r.benchmark, r.num_classes, r.num_images) == ("voc21", 21, 2)
    assert r.num_pixels == sum(int((m != 255).sum()) for m in raws[:2])
    assert len(r.iou) == len(r.class_names) == 21 and r.class_names[15] == "person"
    defined = [v for v in r.iou if not math.isnan(v)]
    assert defined and all(0 <= v <= 100 for v in defined)
    assert r.miou == pytest.approx(sum(defined) / len(defined))
    assert r.untrained and r.warning == SMOKE_WARNING and r.model == "ViT-B-16-untrained"
    assert r.settings["logit_scale"] == 65 and r.settings["area_thd"] == 0.1 and r.settings["short_side"] == 224
    assert r.settings["attention"] == "sclip" and r.data["limit"] == 2 and r.seconds_per_image > 0
    # FAST changes the short side and templates: not SCLIP's protocol, so no published number beside it
    assert r.protocol is None and (r.paper_miou, r.released_miou) == (None, None)

    files = sorted(p.name for p in out.iterdir())
    assert files == [f"{r.stem()}.csv", f"{r.stem()}.json"]  # the hash: of every setting, the data, the model
    assert re.fullmatch(r"voc21_sclip_ViT-B-16-untrained_limit2_[0-9a-f]{8}", r.stem())
    raw = strict_json(out / files[1])
    assert raw["untrained"] is True and raw["warning"].startswith("SMOKE") and raw["num_classes"] == 21
    back = EvalResult.load(out / files[1])
    assert back.miou == r.miou and back.num_pixels == r.num_pixels and back.settings == r.settings
    assert [None if math.isnan(v) else v for v in back.iou] == [None if math.isnan(v) else v for v in r.iou]
    csv_lines = (out / files[0]).read_text().splitlines()
    assert csv_lines[0] == "class,name,iou" and len(csv_lines) == 22
    # the per-image sums travel with the file, so the interval can be recomputed from it alone
    assert len(r.per_image) == 2 and raw["per_image"] == r.per_image
    assert r.interval["seed"] == 0 and r.interval["low"] <= r.interval["high"]
    assert (r.interval["low"], r.interval["high"]) == r.confidence_interval() == back.confidence_interval()
    assert back.interval == r.interval and back.interval_text.startswith("[")


def test_scores_match_an_independent_count_on_a_real_voc_image(vit_b16, tmp_path):
    """The loop scores exactly what predict() gives against the converted ground truth (VOC20 view)."""
    root = shared_data("voc2012")
    image, raw = Image.open(root / "294_image.png"), np.asarray(Image.open(root / "294_label.png"))
    seg = sl.BENCHMARKS["voc20"].segmenter(vit_b16, "sclip", templates=ONE_TEMPLATE, short_side=224)
    data = sl.load_benchmark("voc20", source=hub_copy(tmp_path, "voc20", [image], [Image.open(root / "294_label.png")]))
    r = sl.evaluate(seg, data, progress=False)
    pred = seg.predict(image).numpy()
    gt = np.where((raw == 0) | (raw == 255), 255, raw.astype(int) - 1)
    valid = gt != 255
    for c in range(20):
        inter = int(((pred == c) & (gt == c) & valid).sum())
        union = int((((pred == c) | (gt == c)) & valid).sum())
        assert (math.isnan(r.iou[c]) and union == 0) or r.iou[c] == pytest.approx(100 * inter / union)
    assert r.num_pixels == int(valid.sum())


def test_segmenter_with_the_wrong_classes_is_refused(vit_b16, voc_copy, tmp_path):
    seg = sl.Segmenter(vit_b16, ["cat", "dog"], templates=ONE_TEMPLATE)
    with pytest.raises(ValueError, match="2 classes.*voc21 scores 21"):
        sl.evaluate(seg, "voc21", source=voc_copy[0], out=tmp_path / "out")
    with pytest.raises(ValueError, match="needs model="):
        sl.evaluate("sclip", "voc21", source=voc_copy[0])
    right = sl.BENCHMARKS["voc21"].segmenter(vit_b16, templates=ONE_TEMPLATE)
    with pytest.raises(ValueError, match="carries its own model"):
        sl.evaluate(right, "voc21", source=voc_copy[0], pamr=True)
    assert not (tmp_path / "out").exists()


def test_failure_mid_run_writes_no_result_but_keeps_the_progress(vit_b16, tmp_path):
    rng = np.random.default_rng(2)
    masks = [Image.fromarray(np.full((32, 32), v, np.uint8)) for v in (1, 2, 3, 99)]  # 99: not a VOC label
    source = hub_copy(tmp_path / "voc", "voc21", [rng_image(rng, 32, 32)] * 4, masks)
    out = tmp_path / "results"
    with pytest.raises(LabelError, match="99") as info:
        sl.evaluate("sclip", "voc21", model=vit_b16, source=source, out=out, progress=False, workers=0, **FAST)
    assert [re.sub("_[0-9a-f]{8}[.]", "_HASH.", p.name) for p in out.iterdir()] == [
        "voc21_sclip_ViT-B-16-untrained_HASH.partial.json"
    ]  # no results file
    assert "progress of 3 images saved" in info.value.__notes__[0] and "skip_bad" in info.value.__notes__[0]


def test_summary_rows_in_paper_order(vit_b16, voc_copy, tmp_path):
    r = sl.evaluate("sclip", "voc20", model=vit_b16, source=voc_copy[0], limit=1, progress=False, **FAST)
    r = EvalResult(**{**r.__dict__, "protocol": "sclip", "paper_miou": 80.4})
    ade = EvalResult(**{**r.__dict__, "benchmark": "ade20k", "paper_miou": 16.1})
    rows = summary_rows([ade, r])
    assert [row["benchmark"] for row in rows] == ["VOC20", "ADE"]
    assert rows[0]["paper"] == 80.4 and rows[0]["note"] == "SMOKE (untrained)"
    table = format_table(rows)
    assert table.splitlines()[0].split()[:4] == ["benchmark", "attention", "protocol", "images"] and "80.4" in table
    assert rows[0]["95% CI"] == r.interval_text != ""


def test_older_result_file_without_per_image_sums_loads_and_says_why_it_has_no_interval(vit_b16, voc_copy, tmp_path):
    r = sl.evaluate("sclip", "voc20", model=vit_b16, source=voc_copy[0], limit=2, progress=False, **FAST)
    path = r.to_json(tmp_path / "r.json")
    raw = json.loads(path.read_text())
    del raw["per_image"], raw["interval"]
    path.write_text(json.dumps(raw))
    old = EvalResult.load(path)
    assert old.interval is None and old.interval_text == "" and old.miou == r.miou
    with pytest.raises(ValueError, match="evaluate again"):
        old.confidence_interval()


# -- CLI ----------------------------------------------------------------------------------------
def cli(argv):
    parser = argparse.ArgumentParser(prog="sclip")
    evaluate_cli.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_cli_evaluates_and_writes_the_tables(vit_b16, voc_copy, tmp_path, monkeypatch, capsys):
    calls = []

    def fake_load_clip(name, pretrained, **kw):  # the session model: its text embeddings are cached
        calls.append((name, pretrained, kw))
        return vit_b16

    monkeypatch.setattr("sclip_lib.models.load_clip", fake_load_clip)
    out = tmp_path / "res"
    args = cli(
        [
            "evaluate",
            "--benchmark",
            "voc21,voc20",
            "--limit",
            "1",
            "--allow-untrained",
            "--templates",
            "one",
            "--device",
            "cpu",
            "--source",
            f"voc21={voc_copy[0]}",
            "--source",
            f"voc20={voc_copy[0]}",
            "--out",
            str(out),
            "--workers",
            "0",
        ]
    )
    assert evaluate_cli.run(args) == 0
    assert calls == [("ViT-B-16", None, {"allow_untrained": True, "device": "cpu"})]
    printed = capsys.readouterr()
    assert "VOC21" in printed.out and "VOC20" in printed.out and "custom protocol" in printed.out
    assert "59.1" not in printed.out  # one template is not SCLIP's protocol: no published number beside it
    assert "SMOKE" in printed.err
    names = sorted(p.name for p in out.iterdir())
    assert "summary.csv" in names and any(
        re.fullmatch(r"voc20_sclip_ViT-B-16-untrained_limit1_[0-9a-f]{8}\.json", n) for n in names
    )
    assert len(names) == 5
    summary = (out / "summary.csv").read_text().splitlines()
    assert summary[0].startswith("benchmark,") and [s.split(",")[0] for s in summary[1:]] == ["VOC21", "VOC20"]


def test_cli_bad_input_fails_before_any_work(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("sclip_lib.models.load_clip", lambda *a, **k: pytest.fail("the model must not load"))
    out = tmp_path / "res"
    assert evaluate_cli.run(cli(["evaluate", "-b", "voc21,pascal", "--out", str(out)])) == 2
    err = capsys.readouterr().err
    assert "unknown benchmark 'pascal'" in err and "ade20k" in err
    assert evaluate_cli.run(cli(["evaluate", "-b", "voc21", "-b", "voc20", "--source", "/x", "--out", str(out)])) == 2
    assert "NAME=PATH" in capsys.readouterr().err
    assert evaluate_cli.run(cli(["evaluate", "-b", "voc21", "--protocol", "maskclip", "--out", str(out)])) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: protocol 'maskclip' has no settings for 'voc21'") and "protocol='sclip'" in err
    with pytest.raises(SystemExit):  # argparse lists the protocols
        cli(["evaluate", "-b", "voc21", "--protocol", "tcl"])
    assert "choose from 'sclip', 'clearclip', 'naclip', 'maskclip'" in capsys.readouterr().err
    assert not out.exists()


def test_cli_all_expands_in_paper_order():
    assert evaluate_cli._benchmark_names(["all"]) == list(sl.evaluation.PAPER_ORDER)
    assert cli(["evaluate", "-b", "voc21"]).out.name == "results"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_cuda_runs_in_half_precision(vit_b16, voc_copy):
    r = sl.evaluate("sclip", "voc21", model=vit_b16, source=voc_copy[0], limit=1, device="cuda", progress=False, **FAST)
    assert r.settings["precision"] == "fp16" and r.device.startswith("cuda")
