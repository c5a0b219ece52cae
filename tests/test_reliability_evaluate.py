"""`evaluate` never loses work: outputs checked first, progress saved as it goes, `resume` ends with the
same mIoU, bad samples skipped on request and listed, the summary rebuilt from every result file."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from PIL import Image

import sclip_lib as sl
from sclip_lib.cli import evaluate as evaluate_cli
from sclip_lib.evaluation.loop import EvalResult, summary_rows, write_summary
from sclip_lib.stages import Stages
from tests.test_benchmark_loading import generated_voc, hub_copy, save
from tests.test_evaluate import FAST, cli

STEM = "voc21_sclip_ViT-B-16-untrained"  # + "_<hash of the settings, data and model>"


def partial(out):
    """The one progress file in ``out``."""
    (path,) = out.glob(f"{STEM}_*.partial.json")
    return path


def finished(out):
    """The one result JSON in ``out``."""
    (path,) = (p for p in out.glob(f"{STEM}_*.json") if not p.name.endswith(".partial.json"))
    return path


@pytest.fixture
def voc5(tmp_path):
    images, masks, _ = generated_voc(np.random.default_rng(3), n=5, size=(32, 32))
    return hub_copy(tmp_path / "voc", "voc21", images, masks)


def quick_predict(self, image):
    """A stand-in for the model (this file tests the bookkeeping): labels 0..19 from the red channel."""
    return torch.from_numpy(np.asarray(image)[..., 0].astype(np.int64) // 13)


def one_at_a_time(seg, items, image, *, errors=(), **_):
    """``predict_many`` without the packing: each image through ``seg.predict``, which the tests replace."""
    for item in items:
        picture = image(item)
        if picture is None:
            yield item, None
            continue
        try:
            yield item, seg.predict(picture)
        except errors as err:
            yield item, err


@pytest.fixture(autouse=True)
def _quick(monkeypatch):
    monkeypatch.setattr(sl.Segmenter, "predict", quick_predict)
    monkeypatch.setattr(sl.Segmenter, "predict_many", one_at_a_time)  # the model stand-in sits in predict


def run(model, source, out, **kw):
    return sl.evaluate("sclip", "voc21", model=model, source=source, out=out, progress=False, workers=0, **FAST, **kw)


def umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_killed_run_resumes_to_the_identical_miou(vit_b16, voc5, tmp_path, monkeypatch):
    full = run(vit_b16, voc5, tmp_path / "full")
    out = tmp_path / "out"
    calls = []
    predict = sl.Segmenter.predict

    def dies_at_the_third_image(self, image):
        calls.append(1)
        if len(calls) == 3:
            saved = json.loads(partial(out).read_text())
            assert saved["images"] == 2  # already on disk: a SIGKILL here would keep images 1-2
            raise KeyboardInterrupt
        return predict(self, image)

    monkeypatch.setattr(sl.Segmenter, "predict", dies_at_the_third_image)
    with pytest.raises(KeyboardInterrupt) as info:
        run(vit_b16, voc5, out, save_every=1)
    assert "resume" in info.value.__notes__[0]
    assert [p.name for p in out.iterdir()] == [partial(out).name]

    monkeypatch.setattr(sl.Segmenter, "predict", predict)
    with pytest.raises(ValueError, match="resume=True"):  # a fresh run would throw the progress away
        run(vit_b16, voc5, out)
    calls.clear()
    monkeypatch.setattr(sl.Segmenter, "predict", lambda self, image: calls.append(1) or predict(self, image))
    resumed = run(vit_b16, voc5, out, resume=True)
    assert len(calls) == 3  # images 3, 4, 5 only
    assert (resumed.miou, resumed.num_images, resumed.num_pixels) == (full.miou, 5, full.num_pixels)
    assert json.dumps(resumed.iou) == json.dumps(full.iou)
    assert resumed.per_image == full.per_image and resumed.interval == full.interval  # the sums survive a resume
    assert not list(out.glob("*.partial.json")) and finished(out).exists()


def test_resume_refuses_other_settings(vit_b16, voc5, tmp_path, monkeypatch):
    out = tmp_path / "out"
    monkeypatch.setattr(sl.Segmenter, "predict", lambda self, image: (_ for _ in ()).throw(KeyboardInterrupt))
    out.mkdir()
    (out / f"{STEM}_0badc0de.partial.json").write_text(json.dumps({"format": 1, "key": {"settings": "other"}}))
    with pytest.raises(ValueError, match="other settings"):
        run(vit_b16, voc5, out, resume=True)


def voc_layout_with_bad_rows(root, rng, *, rows=5, bad_image=2, bad_mask=3, bad_value=99):
    """``rows`` rows (default: rows 1-2 fine, row 3 a corrupt JPEG, row 4 a mask with label 99, row 5 fine);
    ``bad_image`` and ``bad_mask`` are 0-based row indices."""
    ids = [f"2007_00000{i}" for i in range(1, rows + 1)]
    for i, n in enumerate(ids):
        save(root / "JPEGImages" / f"{n}.jpg", Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)))
        label = bad_value if i == bad_mask else i + 1
        save(root / "SegmentationClass" / f"{n}.png", Image.fromarray(np.full((32, 32), label, np.uint8)))
    (root / "JPEGImages" / f"{ids[bad_image]}.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (root / "ImageSets" / "Segmentation").mkdir(parents=True)
    (root / "ImageSets" / "Segmentation" / "val.txt").write_text("\n".join(ids) + "\n")
    return ids


def test_skip_bad_records_and_skips_bad_samples(vit_b16, tmp_path):
    ids = voc_layout_with_bad_rows(tmp_path / "voc", np.random.default_rng(4))
    out = tmp_path / "out"
    with pytest.raises(OSError, match="cannot identify image") as info:  # off by default: the bad row stops the run
        run(vit_b16, tmp_path / "voc", out)
    assert "skip_bad=True (--skip-bad)" in info.value.__notes__[0]
    assert json.loads(partial(out).read_text())["images"] == 2
    partial(out).unlink()
    r = run(vit_b16, tmp_path / "voc", out, skip_bad=True)
    assert r.num_images == 3 and [s["name"] for s in r.skipped] == [ids[2], ids[3]]
    assert "UnidentifiedImageError" in r.skipped[0]["error"] and "99" in r.skipped[1]["error"]
    saved = json.loads(finished(out).read_text())
    assert [s["name"] for s in saved["skipped"]] == [ids[2], ids[3]]
    assert EvalResult.load(finished(out)).skipped == r.skipped
    assert "2 skipped" in summary_rows([r])[0]["note"]


def test_out_that_cannot_hold_results_fails_before_any_compute(vit_b16, voc5, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(Stages, "text_features", lambda self: pytest.fail("no compute before the check"))
    taken = tmp_path / "results.txt"
    taken.write_text("my notes")
    with pytest.raises(ValueError, match="is a file, not a folder"):
        run(vit_b16, voc5, taken)
    monkeypatch.setattr("sclip_lib.models.load_clip", lambda *a, **k: pytest.fail("the model must not load"))
    args = cli(["evaluate", "-b", "voc21", "--allow-untrained", "--source", str(voc5), "--out", str(taken)])
    assert evaluate_cli.run(args) == 2 and "is a file, not a folder" in capsys.readouterr().err
    args = cli(["evaluate", "-b", "voc21", "--allow-untrained", "--device", "gpu", "--out", str(tmp_path / "r")])
    assert evaluate_cli.run(args) == 2 and "--device 'gpu'" in capsys.readouterr().err
    assert taken.read_text() == "my notes"


def test_summary_is_rebuilt_from_every_result_in_the_folder(vit_b16, voc5, tmp_path, monkeypatch):
    """Two runs into one folder (one after the other, or at once): the summary lists both."""
    monkeypatch.setattr("sclip_lib.models.load_clip", lambda *a, **k: vit_b16)
    out = tmp_path / "res"
    for name in ("voc21", "voc20"):
        args = cli(
            [
                "evaluate",
                "-b",
                name,
                "--limit",
                "1",
                "--allow-untrained",
                "--templates",
                "one",
                "--device",
                "cpu",
                "--source",
                str(voc5),
                "--out",
                str(out),
                "--workers",
                "0",
            ]
        )
        assert evaluate_cli.run(args) == 0
    summary = (out / "summary.csv").read_text().splitlines()
    assert sorted(line.split(",")[0] for line in summary[1:]) == ["VOC20", "VOC21"]
    mode = 0o666 & ~umask()
    assert all(p.stat().st_mode & 0o777 == mode for p in out.iterdir())  # not mkstemp's 0600
    first = EvalResult.load(next(out.glob("voc21_*.json")))
    write_summary([first], out)  # what the first of two concurrent runs writes last
    assert len((out / "summary.csv").read_text().splitlines()) == 3


def test_sigterm_saves_progress_and_exits_130(vit_b16, voc5, tmp_path, monkeypatch, capsys):
    import signal

    from sclip_lib.cli import main

    monkeypatch.setattr("sclip_lib.models.load_clip", lambda *a, **k: vit_b16)
    calls = []

    def terminated_at_the_second_image(self, image):
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGTERM)  # what `kill PID` or a job scheduler sends
        return quick_predict(self, image)

    monkeypatch.setattr(sl.Segmenter, "predict", terminated_at_the_second_image)
    out = tmp_path / "res"
    argv = [
        "evaluate",
        "-b",
        "voc21",
        "--allow-untrained",
        "--templates",
        "one",
        "--device",
        "cpu",
        "--source",
        str(voc5),
        "--out",
        str(out),
        "--workers",
        "0",
    ]
    before = signal.getsignal(signal.SIGTERM)
    assert main(argv) == 130
    assert signal.getsignal(signal.SIGTERM) == before  # restored
    err = capsys.readouterr().err
    assert "error: interrupted" in err and "--resume" in err and "Traceback" not in err
    assert json.loads(partial(out).read_text())["images"] >= 1
    monkeypatch.setattr(sl.Segmenter, "predict", quick_predict)
    assert main([*argv, "--resume"]) == 0
    assert EvalResult.load(finished(out)).num_images == 5
