"""Every argument the CLI can check is checked before the model loads, with a message in the user's words;
and nothing fails after the compute (more than 256 classes make a 16-bit label PNG)."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
from PIL import Image

import sclip_lib as sl
from sclip_lib.cli import evaluate as evaluate_cli
from sclip_lib.cli import main
from tests import test_reliability_cli
from tests.test_evaluate import cli
from tests.test_reliability_cli import FAST, one_error_line

# the fixtures of test_reliability_cli, shared by name (pytest finds fixtures among a module's attributes)
photo, no_model, fast_model = test_reliability_cli.photo, test_reliability_cli.no_model, test_reliability_cli.fast_model


def exit_code(argv) -> int:
    try:
        return main(argv)
    except SystemExit as stop:  # argparse's own exit
        return stop.code


# -- case 5: many classes ------------------------------------------------------------------------
def test_more_than_256_classes_make_a_16_bit_label_png(photo, tmp_path, capsys, fast_model):
    classes = "; ".join(f"thing{i}" for i in range(300))
    out, over = tmp_path / "c300.png", tmp_path / "c300-overlay.png"
    argv = [
        "segment",
        str(photo),
        "--classes",
        classes,
        "--background",
        "none",
        "--out",
        str(out),
        "--overlay",
        str(over),
        *FAST,
    ]
    assert main(argv) == 0
    printed = capsys.readouterr()
    assert "error" not in printed.err
    saved = Image.open(out)
    labels = np.asarray(saved)
    assert saved.mode == "I;16" and labels.shape == (40, 50) and labels.max() < 300
    shares = {line.split()[1]: float(line.split("%")[0]) for line in printed.out.splitlines() if "%" in line}
    assert shares == {f"thing{v}": pytest.approx(100 * (labels == v).mean(), abs=0.01) for v in np.unique(labels)}
    assert Image.open(over).size == (50, 40)


def test_a_few_classes_still_make_a_palette_png(photo, tmp_path, fast_model):
    out = tmp_path / "mask.png"
    assert main(["segment", str(photo), "--classes", "cat; dog", "--out", str(out), *FAST]) == 0
    assert Image.open(out).mode == "P"


# -- case 6: checks that ran only after the model loaded ------------------------------------------
@pytest.mark.parametrize("classes", [";", "; ;", "cat;;dog", "cat, ;dog"])
def test_empty_classes_fail_before_the_model(photo, capsys, no_model, classes):
    assert main(["segment", str(photo), "--classes", classes, *FAST]) == 2
    line = one_error_line(capsys)
    assert "--classes" in line and "empty name" in line


def test_a_file_name_longer_than_the_file_system_allows(photo, tmp_path, capsys, no_model):
    long = tmp_path / ("m" * 300 + ".png")
    assert main(["segment", str(photo), "--classes", "cat", "--out", str(long), *FAST]) == 2
    line = one_error_line(capsys)
    assert "304 bytes long" in line and "shorter name" in line and "unexpected" not in line


def test_a_name_that_fits_only_without_the_temporary_suffix_is_written(photo, tmp_path, fast_model):
    out = tmp_path / ("m" * 251 + ".png")  # 255 bytes: the limit; the temporary file must not exceed it
    assert main(["segment", str(photo), "--classes", "cat", "--out", str(out), *FAST]) == 0
    assert np.asarray(Image.open(out)).shape == (40, 50)


@pytest.mark.parametrize(
    "flag, value, words",
    [
        ("--prob-thd", "1.0000001", "--prob-thd must lie in [0, 1], got 1.0000001"),
        ("--logit-scale", "0", "--logit-scale must be"),
        ("--area-thd", "-0.5", "--area-thd must"),
    ],
)
def test_settings_out_of_range_fail_before_the_model(photo, capsys, no_model, flag, value, words):
    assert main(["segment", str(photo), "--classes", "cat", flag, value, *FAST]) == 2
    assert words in one_error_line(capsys)


def test_thresholds_without_a_background_fail_before_the_model(photo, capsys, no_model):
    assert main(["segment", str(photo), "--classes", "cat", "--background", "none", "--prob-thd", "0.2", *FAST]) == 2
    assert "background" in one_error_line(capsys)


# -- case 8: smaller ------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["", "  "])
def test_empty_background_says_what_to_write(photo, capsys, no_model, value):
    assert main(["segment", str(photo), "--classes", "cat", "--background", value, *FAST]) == 2
    line = one_error_line(capsys)
    assert "--background" in line and "'none'" in line and "'stuff'" in line and "class ''" not in line


@pytest.mark.parametrize("flag", ["--out", "--overlay"])
def test_an_output_with_a_trailing_slash_is_refused(photo, tmp_path, capsys, no_model, flag):
    assert main(["segment", str(photo), "--classes", "cat", flag, f"{tmp_path}/imgs.png/", *FAST]) == 2
    assert "ends with '/'" in one_error_line(capsys)
    assert not (tmp_path / "imgs.png").exists()


@pytest.mark.parametrize("value", ["all,voc22", "voc22,all"])
def test_a_typo_beside_all_is_an_error(tmp_path, capsys, monkeypatch, value):
    monkeypatch.setattr("sclip_lib.models.load_clip", lambda *a, **k: pytest.fail("the model must not load"))
    args = cli(["evaluate", "-b", value, "--allow-untrained", "--device", "cpu", "--out", str(tmp_path / "r")])
    assert evaluate_cli.run(args) == 2
    assert "voc22" in capsys.readouterr().err


@pytest.mark.parametrize("value, count", [("one", 1), ("openai", 80), ("protocol", 80), ("3", 3)])
def test_templates_mean_the_same_in_segment(photo, tmp_path, monkeypatch, vit_b32, value, count):
    seen = []
    monkeypatch.setattr(sl, "load_clip", lambda *a, **k: vit_b32)
    monkeypatch.setattr(sl.Segmenter, "predict", lambda self, image: seen.append(self.templates) or _zeros(image))
    args = [a for a in FAST if a not in ("--templates", "1")]
    assert main(["segment", str(photo), "--classes", "cat", "--templates", value, *args]) == 0
    assert seen[0] == expected_templates(value, count)


def expected_templates(value: str, count: int) -> tuple:
    return ("a photo of a {}.",) if value == "one" else tuple(sl.OPENAI_IMAGENET_TEMPLATES[:count])


def _zeros(image):
    import torch

    return torch.zeros(image.height, image.width, dtype=torch.long)


@pytest.mark.parametrize("value, count", [("one", 1), ("openai", 80), ("3", 3)])
def test_templates_mean_the_same_in_evaluate(tmp_path, monkeypatch, vit_b16, value, count):
    seen = {}
    module = importlib.import_module("sclip_lib.evaluation.loop")

    def fake_evaluate(attention, name, **kw):
        seen.update(kw)
        raise KeyboardInterrupt  # enough: the arguments it was given

    monkeypatch.setattr(module, "evaluate", fake_evaluate)
    monkeypatch.setattr("sclip_lib.models.load_clip", lambda *a, **k: vit_b16)
    args = cli(
        [
            "evaluate",
            "-b",
            "voc21",
            "--allow-untrained",
            "--device",
            "cpu",
            "--templates",
            value,
            "--out",
            str(tmp_path / "r"),
        ]
    )
    assert evaluate_cli.run(args) == 130
    assert tuple(seen["templates"]) == expected_templates(value, count)


@pytest.mark.parametrize("command", ["segment", "evaluate"])
@pytest.mark.parametrize("value", ["0", "81", "many"])
def test_template_values_refused_alike_in_both_commands(photo, tmp_path, capsys, no_model, monkeypatch, command, value):
    monkeypatch.setattr("sclip_lib.models.load_clip", lambda *a, **k: pytest.fail("the model must not load"))
    if command == "segment":
        argv = ["segment", str(photo), "--classes", "cat", "--device", "cpu", "--templates", value]
    else:
        argv = ["evaluate", "-b", "voc21", "--device", "cpu", "--out", str(tmp_path / "r"), "--templates", value]
    assert exit_code(argv) == 2
    line = one_error_line(capsys)
    assert "--templates" in line and ("1..80" in line if value != "many" else "protocol, openai, one" in line)
