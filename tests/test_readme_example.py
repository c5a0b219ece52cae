"""The README's library example ("The library in one screen"), run as written against the local hub.

The block is found by a rule that survives edits around it: the ```python block right after the marker line
``<!-- readme-example -->`` if the README has one, else the first ```python block of the first ``##`` section
whose heading says "library". The code is executed unchanged; only the names it leaves to the reader are
given, in the namespace it runs in (documented in ``reader_names``):

- ``image``: COCO val2017 image 39769 (two cats on a couch, two remotes: the example's own three classes),
  a real sample from ../shared/data (the test skips with a reason where that folder is absent);
- ``classes``: the example's own three class names, for its second Segmenter;
- ``target``: that image's ground truth in the example's class indices (cat 0, couch 1, remote 2, the rest
  255 = ignore), from the sample's COCO-Object mask.

One cost is cut, and it changes no call: each class name's text embedding is encoded from the first of its
prompt templates instead of all of them (``one_template``). The example's 80 templates per name make 4,640
prompts (VOC's classes and the stuff background, plus the example's own), about 45 s on one CPU thread, for
embeddings whose values nothing here checks; their shape and every call around them stay as written.

``load_clip("ViT-B-16", pretrained="openai")`` downloads through open_clip from the local hub (seeded random
weights, sclip_lib/testing/hub.py), and ``load_benchmark`` / ``evaluate`` stream its VOC repo, so every call runs
its real code path. It runs in a temporary working folder, where the example's ``out="results/"`` lands.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import HUB_ROWS, shared_data

README = Path(__file__).resolve().parents[1] / "README.md"
MARKER = "<!-- readme-example -->"
EXAMPLE_CLASSES = ["cat", "sofa, couch", "remote control"]  # the example's first Segmenter
# COCO-Object ids (COCO's 80 thing classes in their standard order, 0 = stuff) of the example's classes, in order
COCO_OBJECT_IDS = (16, 58, 66)  # cat, couch, remote


def example_block(text: str) -> tuple[int, str]:
    """(first line number, code) of the README's library example; a clear failure where none is found."""
    lines = text.splitlines()
    start = next((i + 1 for i, line in enumerate(lines) if line.strip() == MARKER), None)
    if start is None:
        start = next(
            (i + 1 for i, line in enumerate(lines) if line.startswith("## ") and "library" in line.lower()), None
        )
    if start is None:
        pytest.fail(
            f"README.md has no library example: put the line {MARKER} right above its ```python block, "
            "or keep a '## ' heading that says 'library' with the example as its first ```python block"
        )
    for i in range(start, len(lines)):
        if lines[i].startswith("## "):
            break  # the section ended without a Python block
        if lines[i].strip() == "```python":
            end = next((j for j in range(i + 1, len(lines)) if lines[j].strip() == "```"), None)
            if end is None:
                pytest.fail(f"README.md line {i + 1}: the library example's ```python block is never closed")
            return i + 2, "\n".join(lines[i + 1 : end]) + "\n"
    pytest.fail(
        f"README.md: no ```python block after line {start} ({lines[start - 1]!r}): "
        f"the library example must follow {MARKER} or its '## ... library ...' heading"
    )


def reader_names() -> dict:
    """The names the example uses without defining (see the module docstring)."""
    coco = shared_data("coco")
    image = Image.open(coco / "000000039769.png").convert("RGB")
    objects = np.array(Image.open(coco / "000000039769_cocoobject81_APPROX_from_panoptic.png"))
    target = np.full(objects.shape, 255, dtype=np.int64)
    for index, coco_id in enumerate(COCO_OBJECT_IDS):
        target[objects == coco_id] = index
    assert (target != 255).any() and target.shape == (image.height, image.width)
    return {"image": image, "classes": list(EXAMPLE_CLASSES), "target": target}


def one_template(monkeypatch) -> list[int]:
    """Segmenters encode their class names with the first prompt template only; returns the calls' name counts."""
    import sclip_lib.stages as stages_module

    if not hasattr(stages_module, "text_embeddings"):
        pytest.fail(
            "sclip_lib.stages no longer calls text_embeddings by that name: point one_template at the "
            "function that Segmenter now calls to encode its class names"
        )
    real, calls = stages_module.text_embeddings, []

    def first_template(model, queries, templates, *args, **kwargs):
        calls.append(len(queries))
        return real(model, queries, tuple(templates)[:1], *args, **kwargs)

    monkeypatch.setattr(stages_module, "text_embeddings", first_template)
    return calls


def test_example_block_is_found_by_marker_or_heading():
    assert example_block("intro\n## Use the library\ntext\n```python\nx = 1\n```\n") == (5, "x = 1\n")
    marked = f"## Other\n```python\nno = 1\n```\n{MARKER}\n```python\nyes = 1\n```\n"
    assert example_block(marked) == (7, "yes = 1\n")
    with pytest.raises(pytest.fail.Exception, match="no library example"):
        example_block("## Command line\n```python\nx = 1\n```\n")
    with pytest.raises(pytest.fail.Exception, match="no ```python block"):
        example_block("## The library\n```bash\nls\n```\n## Next\n```python\nx = 1\n```\n")


def test_readme_library_example_runs(local_hub, tmp_path, monkeypatch):
    first_line, code = example_block(README.read_text())
    names = reader_names()
    encoded = one_template(monkeypatch)
    image, target = names["image"], names["target"]
    monkeypatch.chdir(tmp_path)
    ns = {"__name__": "readme_example", **names}
    # padded so that a traceback names the README's own line numbers
    exec(compile("\n" * (first_line - 1) + code, str(README), "exec"), ns)

    # probabilities and mask of the first Segmenter, at the input's size
    probs, mask = ns["probs"], ns["mask"]
    h, w = image.height, image.width
    assert probs.shape == (len(EXAMPLE_CLASSES), h, w) and probs.is_floating_point()
    assert torch.isfinite(probs).all() and probs.min() >= 0 and probs.max() <= 1
    assert mask.shape == (h, w) and mask.dtype == torch.int64
    assert 0 <= int(mask.min()) and int(mask.max()) < len(EXAMPLE_CLASSES)
    assert encoded, "the Segmenters did not encode their class names through one_template: the cost cut missed"
    # the metric scored this mask against the real ground truth: its mIoU, computed here with numpy (random
    # weights: the value itself means nothing)
    scored = ns["metric"].compute()
    valid = target != 255
    pred, truth = mask.numpy()[valid], target[valid]
    ious = [
        ((pred == c) & (truth == c)).sum() / ((pred == c) | (truth == c)).sum()
        for c in range(21)
        if ((pred == c) | (truth == c)).any()
    ]
    assert scored.num_pixels == valid.sum()
    assert math.isclose(scored.miou, 100 * float(np.mean(ious)), rel_tol=1e-9)
    # the benchmark loader and both evaluations ran on the hub's VOC rows (fewer than the example's limit)
    assert len(ns["data"]) == 100  # the example's limit (the hub's card declares VOC's 1,449 validation images)
    result = ns["result"]  # the last call: NACLIP under its own protocol
    assert result.benchmark == "voc21" and result.protocol == "naclip" and result.num_images == HUB_ROWS
    assert len(result.class_names) == 21 and 0.0 <= result.miou <= 100.0
    saved = sorted(Path("results").glob("voc21_sclip_*.json"))  # the first evaluation's out="results/"
    assert len(saved) == 1, sorted(Path("results").iterdir())
    assert json.loads(saved[0].read_text())["num_images"] == HUB_ROWS
