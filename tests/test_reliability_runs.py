"""Nothing lost across runs or at once: result files named by every setting, a finished result never
replaced without `overwrite`, two writers of one file never both succeed, `--skip-bad` from the first row."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
from PIL import Image

import sclip_lib as sl
from sclip_lib import files
from sclip_lib.cli import evaluate as evaluate_cli
from sclip_lib.cli import main
from sclip_lib.evaluation.loop import EvalResult, write_summary
from sclip_lib.stages import Stages
from tests import test_reliability_evaluate
from tests.test_benchmark_loading import save
from tests.test_evaluate import cli
from tests.test_reliability_cli import FAST as SEGMENT_FAST
from tests.test_reliability_cli import one_error_line
from tests.test_reliability_evaluate import _quick, quick_predict, run, voc_layout_with_bad_rows  # noqa: F401 (_quick: autouse)

voc5 = test_reliability_evaluate.voc5  # a fixture, shared by name

TWO_TEMPLATES = ("a photo of a {}.", "a picture of a {}.")


def results_in(out):
    return sorted(p for p in out.glob("*.json") if not p.name.endswith(".partial.json"))


# -- case 1: runs that differ in any setting keep their own files ---------------------------------
@pytest.mark.parametrize("other", [{"templates": TWO_TEMPLATES}, {"batch_size": 3}])
def test_runs_with_other_settings_never_replace_each_other(vit_b16, voc5, tmp_path, other):
    out = tmp_path / "res"
    first = sl.evaluate(
        "sclip",
        "voc21",
        model=vit_b16,
        source=voc5,
        out=out,
        limit=3,
        progress=False,
        workers=0,
        templates=("a photo of a {}.",),
        short_side=224,
    )
    (path,) = results_in(out)
    kept = path.read_bytes()
    second = sl.evaluate(
        "sclip",
        "voc21",
        model=vit_b16,
        source=voc5,
        out=out,
        limit=3,
        progress=False,
        workers=0,
        **{"templates": ("a photo of a {}.",), "short_side": 224, **other},
    )
    assert len(results_in(out)) == 2 and path.read_bytes() == kept  # the first result is untouched
    assert first.stem() != second.stem() and second.stem().startswith("voc21_sclip_ViT-B-16-untrained_limit3_")
    saved = json.loads((out / f"{second.stem()}.json").read_text())
    assert saved["settings_hash"] == second.stem().rsplit("_", 1)[1]  # written inside the file too
    assert EvalResult.load(out / f"{second.stem()}.json").stem() == second.stem()
    rows = (write_summary([], out)).read_text().splitlines()
    assert len(rows) == 3  # header + one row per run


# -- case 3 (and the rerun it implies): a finished result is kept ---------------------------------
def test_a_finished_result_is_never_replaced_without_overwrite(vit_b16, voc5, tmp_path, monkeypatch):
    out = tmp_path / "res"
    done = run(vit_b16, voc5, out)
    path = out / f"{done.stem()}.json"
    kept = path.read_bytes()
    monkeypatch.setattr(Stages, "text_features", lambda self: pytest.fail("refused before any compute"))
    with pytest.raises(ValueError, match="no saved progress .* to continue.*it is kept.*overwrite"):
        run(vit_b16, voc5, out, resume=True)  # --resume with nothing to resume
    with pytest.raises(ValueError, match="finished result of this evaluation.*overwrite"):
        run(vit_b16, voc5, out)  # the same run again
    assert path.read_bytes() == kept and results_in(out) == [path]
    monkeypatch.undo()
    monkeypatch.setattr(sl.Segmenter, "predict", quick_predict)
    again = run(vit_b16, voc5, out, overwrite=True)
    assert again.stem() == done.stem() and EvalResult.load(path).created == again.created


def test_cli_resume_with_nothing_to_resume_keeps_the_result(vit_b16, voc5, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("sclip_lib.models.load_clip", lambda *a, **k: vit_b16)
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
    assert main(argv) == 0
    (path,) = results_in(out)
    kept = path.read_bytes()
    capsys.readouterr()
    assert main([*argv, "--resume"]) == 2
    line = one_error_line(capsys)
    assert "no saved progress" in line and "--overwrite" in line
    assert path.read_bytes() == kept
    assert main([*argv, "--overwrite"]) == 0 and results_in(out) == [path]


# -- case 2: two writers of one output, at once --------------------------------------------------
def test_two_segment_runs_into_one_file_do_not_both_succeed(tmp_path, capsys, monkeypatch, vit_b32):
    """The other run writes --out after this one checked it and before this one is done: this one loses."""
    photo = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)).save(photo)
    out = tmp_path / "same.png"
    monkeypatch.setattr(sl, "load_clip", lambda *a, **k: vit_b32)
    predict = sl.Segmenter.predict

    def other_run_finishes_meanwhile(self, image):
        out.write_bytes(b"the other run's mask")
        return predict(self, image)

    monkeypatch.setattr(sl.Segmenter, "predict", other_run_finishes_meanwhile)
    assert main(["segment", str(photo), "--classes", "cat", "--out", str(out), *SEGMENT_FAST]) == 2
    assert "exists already" in one_error_line(capsys)
    assert out.read_bytes() == b"the other run's mask"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary file left


def test_exclusive_writes_racing_in_threads_have_one_winner(tmp_path):
    path = tmp_path / "result.json"
    start = threading.Barrier(8)
    outcome = {}

    def writer(i):
        start.wait()
        try:
            files.write_atomic(path, f"writer {i}\n", exclusive=True)
            outcome[i] = "won"
        except getattr(files, "OutputExistsError", FileExistsError):
            outcome[i] = "lost"

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [i for i, o in outcome.items() if o == "won"]
    assert len(winners) == 1 and path.read_text() == f"writer {winners[0]}\n"
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]


def test_two_evaluations_finishing_at_once_keep_the_first_result(vit_b16, voc5, tmp_path, monkeypatch):
    out = tmp_path / "res"
    done = run(vit_b16, voc5, tmp_path / "elsewhere")
    path = out / f"{done.stem()}.json"  # the folder is not part of the name
    calls = []

    def the_other_run_saves_meanwhile(self, image):
        if not calls:
            out.mkdir(exist_ok=True)
            for p in results_in(tmp_path / "elsewhere"):
                (out / p.name).write_bytes(p.read_bytes())
        calls.append(1)
        return quick_predict(self, image)

    monkeypatch.setattr(sl.Segmenter, "predict", the_other_run_saves_meanwhile)
    with pytest.raises(getattr(files, "OutputExistsError", FileExistsError), match="exists already"):
        run(vit_b16, voc5, out)
    assert EvalResult.load(path).created == done.created  # the other run's file is what is there


# -- case 4: --skip-bad from the first row, messages in the user's words -------------------------
def voc_layout_bad_first(root, rng):
    """Row 1 an unreadable JPEG, row 2 a mask with value 100, rows 3-4 fine."""
    return voc_layout_with_bad_rows(root, rng, rows=4, bad_image=0, bad_mask=1, bad_value=100)


def test_skip_bad_skips_the_first_rows_too(vit_b16, tmp_path):
    ids = voc_layout_bad_first(tmp_path / "voc", np.random.default_rng(5))
    r = run(vit_b16, tmp_path / "voc", tmp_path / "out", skip_bad=True)
    assert r.num_images == 2 and [s["name"] for s in r.skipped] == ids[:2]
    assert "100" in r.skipped[1]["error"] and "identity" not in r.skipped[1]["error"]


def test_skip_bad_on_the_command_line_skips_row_one(vit_b16, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("sclip_lib.models.load_clip", lambda *a, **k: vit_b16)
    voc_layout_bad_first(tmp_path / "voc", np.random.default_rng(6))
    args = cli(
        [
            "evaluate",
            "-b",
            "voc21",
            "--allow-untrained",
            "--templates",
            "one",
            "--device",
            "cpu",
            "--skip-bad",
            "--source",
            str(tmp_path / "voc"),
            "--out",
            str(tmp_path / "out"),
            "--workers",
            "0",
        ]
    )
    assert evaluate_cli.run(args) == 0
    assert "skipped 2007_000001" in capsys.readouterr().err


def test_bad_mask_message_names_no_internal_conversion(vit_b16, tmp_path):
    voc_layout_bad_first(tmp_path / "voc", np.random.default_rng(7))
    (tmp_path / "voc" / "JPEGImages" / "2007_000001.jpg").unlink()
    save(tmp_path / "voc" / "JPEGImages" / "2007_000001.jpg", Image.new("RGB", (32, 32)))
    with pytest.raises(ValueError) as info:
        run(vit_b16, tmp_path / "voc", tmp_path / "out")
    message = str(info.value)
    assert "mask holds values [100]" in message and "identity" not in message and "voc21" in message


# -- case 6: a damaged progress file --------------------------------------------------------------
@pytest.mark.parametrize(
    "damage",
    [
        lambda s: s.update(intersection=s["intersection"][:3]),
        lambda s: s.update(pred_area=[-1.0] * len(s["pred_area"])),
        lambda s: s.update(images=s["rows"] + 1),
        lambda s: s.pop("target_area"),
    ],
)
def test_a_damaged_progress_file_is_a_clear_error(vit_b16, voc5, tmp_path, monkeypatch, capsys, damage):
    monkeypatch.setattr("sclip_lib.models.load_clip", lambda *a, **k: vit_b16)
    calls = []

    def dies_at_the_third_image(self, image):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return quick_predict(self, image)

    monkeypatch.setattr(sl.Segmenter, "predict", dies_at_the_third_image)
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
    assert main(argv) == 130
    (progress,) = out.glob("*.partial.json")
    saved = json.loads(progress.read_text())
    assert saved["images"] == 2
    damage(saved)
    progress.write_text(json.dumps(saved))
    monkeypatch.setattr(sl.Segmenter, "predict", quick_predict)
    capsys.readouterr()
    assert main([*argv, "--resume"]) == 2
    line = one_error_line(capsys)
    assert "is damaged" in line and "delete it to start over" in line and "unexpected" not in line
