"""Real mode against the local hub (sclip_lib/testing/hub.py): the hub's protocol as huggingface_hub reads it,
open_clip's download of the 'openai' weights, every hub benchmark streamed by `datasets`, the hub's error
codes reaching the user as clear errors, and `sclip evaluate` end to end. Nothing here is mocked: the
libraries' own download and streaming code runs against HTTP on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import urllib.error
import urllib.request
from pathlib import Path

import datasets
import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from huggingface_hub import HfApi, get_hf_file_metadata, hf_hub_download, hf_hub_url, try_to_load_from_cache
from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError
from PIL import Image
from safetensors.torch import load_file

import sclip_lib as sl
from sclip_lib.evaluation import BENCHMARKS, BenchmarkSourceError
from sclip_lib.testing.hub import revision_folder
from sclip_lib.testing.hub_repos import weights_repo
from tests.conftest import HUB_ROWS

HUB_BENCHMARKS = [b.name for b in BENCHMARKS.values() if b.hub is not None]
ADE = "zhoubolei/scene_parse_150"
COCO = "GATE-engine/COCOStuff164K"
VOC = "nateraw/pascal-voc-2012"


def served(hub, kind: str, repo: str, path: str, revision: str = "main") -> Path:
    return hub.files.root / kind / repo / revision_folder(revision) / path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def http(url: str, method: str = "GET", headers: dict | None = None):
    """(status, headers, body) without following redirects."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    req = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.build_opener(NoRedirect).open(req) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


# -- the protocol --------------------------------------------------------------------------------------
def test_resolve_headers_small_file_and_lfs_redirect(local_hub):
    readme = served(local_hub, "datasets", VOC, "README.md")
    meta = get_hf_file_metadata(hf_hub_url(VOC, "README.md", repo_type="dataset"))
    data = readme.read_bytes()
    assert meta.etag == hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()  # git's blob id
    assert meta.size == len(data) and len(meta.commit_hash) == 40
    assert meta.location == hf_hub_url(VOC, "README.md", repo_type="dataset")  # served directly

    repo, filename = weights_repo("ViT-B-16")
    weights = served(local_hub, "models", repo, filename)
    meta = get_hf_file_metadata(hf_hub_url(repo, filename))
    assert meta.etag == sha256(weights) and meta.size == weights.stat().st_size  # X-Linked-Etag / -Size
    assert meta.location == f"{local_hub.cdn_url}/blobs/{meta.etag}"  # the CDN redirect, another origin

    status, headers, body = http(meta.location, headers={"Range": "bytes=10-19"})
    assert status == 206 and body == weights.read_bytes()[10:20]
    assert headers["Content-Range"] == f"bytes 10-19/{weights.stat().st_size}"


def test_error_codes_are_the_hubs(local_hub):
    status, headers, body = http(f"{local_hub.url}/datasets/nobody/nothing/resolve/main/README.md", "HEAD")
    assert status == 401 and headers["X-Error-Code"] == "RepoNotFound"
    status, headers, body = http(f"{local_hub.url}/api/datasets/{VOC}/revision/v9")
    assert status == 404 and headers["X-Error-Code"] == "RevisionNotFound"
    assert json.loads(body) == {"error": "Invalid rev id: v9"}
    status, headers, body = http(f"{local_hub.url}/datasets/{VOC}/resolve/main/nope.txt")
    assert status == 404 and headers["X-Error-Code"] == "EntryNotFound" and len(headers["X-Repo-Commit"]) == 40
    # ... and huggingface_hub turns them into its own exceptions
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("nobody/nothing", "README.md", repo_type="dataset")
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download(VOC, "README.md", repo_type="dataset", revision="v9")
    with pytest.raises(EntryNotFoundError):
        hf_hub_download(VOC, "nope.txt", repo_type="dataset")


def test_revision_tree_and_paths_info(local_hub):
    api = HfApi()
    rev = "refs/convert/parquet"
    info = api.dataset_info(ADE, revision=rev)
    folder = local_hub.files.root / "datasets" / ADE / revision_folder(rev)
    on_disk = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert sorted(s.rfilename for s in info.siblings) == on_disk and len(info.sha) == 40
    assert api.dataset_info(ADE, revision=info.sha).sha == info.sha  # a commit hash resolves to itself
    assert api.dataset_info(ADE).sha != info.sha  # main is another branch

    files = {
        e.path for e in api.list_repo_tree(ADE, repo_type="dataset", revision=rev, recursive=True) if hasattr(e, "lfs")
    }
    assert files == set(on_disk)
    top = {e.path for e in api.list_repo_tree(ADE, repo_type="dataset", revision=rev)}
    assert top == {".gitattributes", "scene_parsing", "instance_segmentation"}
    parquet = "scene_parsing/validation/0000.parquet"
    (entry,) = api.get_paths_info(ADE, [parquet, "no/such/file"], repo_type="dataset", revision=rev)
    assert entry.path == parquet and entry.lfs.sha256 == sha256(folder / parquet)


# -- weights through open_clip ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["ViT-B-32", "ViT-B-16"])
def test_load_clip_openai_downloads_through_open_clip(local_hub, name, vit_b32, vit_b16):
    model = sl.load_clip(name, "openai")
    info = sl.weights_info(model)
    assert info.source == "hub" and not info.untrained and info.quick_gelu and info.pretrained == "openai"
    assert any(type(m).__name__ == "QuickGELU" for m in model.modules())

    repo, _ = weights_repo(name)
    files = list((local_hub.files.root / "models" / repo / "main").iterdir())
    assert len(files) == 1  # ViT-B-32: only the .bin, so open_clip's safetensors try met a 404 first
    served_state = load_file(str(files[0])) if files[0].suffix == ".safetensors" else torch.load(files[0])
    state = model.state_dict()
    assert set(served_state) <= set(state)
    assert all(torch.equal(state[k], served_state[k]) for k in served_state)
    untrained = {"ViT-B-32": vit_b32, "ViT-B-16": vit_b16}[name]
    assert not torch.equal(model.visual.conv1.weight, untrained.visual.conv1.weight)

    cached = try_to_load_from_cache(repo, files[0].name)  # the download landed in the test's HF_HOME
    assert isinstance(cached, str) and cached.startswith(os.environ["HF_HOME"])


def test_build_book_finds_the_weights_on_the_endpoint(local_hub):
    from scripts.build_book import weights_available

    where = weights_available("ViT-B-16")
    assert where is not None and (where.startswith(os.environ["HF_HOME"]) or local_hub.url in where)


def test_build_book_offline_and_empty_cache_finds_nothing(offline, monkeypatch, tmp_path):
    from scripts.build_book import weights_available

    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path))
    assert weights_available("ViT-B-16") is None


# -- benchmarks through datasets --------------------------------------------------------------------------
def served_rows(hub, bench) -> list[tuple[bytes, bytes]]:
    """The (image, mask) bytes of the split as served, read with pyarrow (not with `datasets`)."""
    folder = hub.files.root / "datasets" / bench.hub.repo / revision_folder(bench.hub.revision or "main")
    rows = []
    for path in sorted(folder.glob(bench.hub.data_files)):
        table = pq.read_table(path).to_pydict()
        rows += [(i["bytes"], m["bytes"]) for i, m in zip(table[bench.hub.image_column], table[bench.hub.mask_column])]
    return rows


def decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


@pytest.mark.parametrize("name", HUB_BENCHMARKS)
def test_load_benchmark_streams_every_hub_benchmark(local_hub, name):
    bench = BENCHMARKS[name]
    data = sl.load_benchmark(name, limit=3)
    samples = list(data)
    assert len(data) == len(samples) == 3
    assert data.source["kind"] == "hub" and data.source["repo"] == bench.hub.repo
    expected = served_rows(local_hub, bench)
    assert len(expected) == HUB_ROWS
    for sample, (image, mask) in zip(samples, expected[:3]):  # the first rows, in stored order, converted
        assert np.array_equal(sample.image, np.asarray(Image.open(io.BytesIO(image)).convert("RGB")))
        assert np.array_equal(sample.mask, bench.label_map(decode(mask)))


def test_hub_voc_rows_are_the_real_samples(local_hub):
    from tests.conftest import shared_data

    root = shared_data("voc2012")
    first = next(iter(sl.load_benchmark("voc21", limit=1)))
    assert np.array_equal(first.mask, decode((root / "0_label.png").read_bytes()))  # palette indices, not colours


def test_registry_calls_avoid_what_the_converted_repos_break(local_hub):
    """What `datasets` does with the hub's parquet-converted repos, and why load_benchmark passes data_files."""
    with pytest.raises(ValueError, match="BuilderConfig 'scene_parsing' not found"):  # no config metadata there
        datasets.load_dataset(ADE, "scene_parsing", revision="refs/convert/parquet", split="validation", streaming=True)
    with pytest.raises(ValueError, match="Bad split: val"):  # the folder 'val' is read as split 'validation'
        datasets.load_dataset(COCO, revision="refs/convert/parquet", split="val", streaming=True)
    inferred = datasets.load_dataset(ADE, revision="refs/convert/parquet", split="validation", streaming=True)
    assert len(list(inferred)) > HUB_ROWS  # the instance_segmentation config's rows came along
    with pytest.raises(RuntimeError, match="Dataset scripts are no longer supported"):  # hence the converted revision
        datasets.load_dataset(ADE, split="validation", streaming=True)


def with_hub(name: str, **changes):
    bench = BENCHMARKS[name]
    return dataclasses.replace(bench, hub=dataclasses.replace(bench.hub, **changes))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"repo": "nateraw/no-such-voc"}, "'nateraw/no-such-voc' doesn't exist on the Hub"),
        ({"revision": "v0-missing"}, "Revision 'v0-missing' doesn't exist"),
        ({"data_files": "data/test-*.parquet"}, "data/test-\\*.parquet"),
    ],
)
def test_missing_repo_revision_or_files_say_what_to_do(local_hub, changes, message):
    with pytest.raises(BenchmarkSourceError, match=message) as err:
        sl.load_benchmark(with_hub("voc21", **changes), limit=1)
    assert "source='/path/to/local/copy'" in str(err.value)


def test_missing_column_is_named(local_hub):
    with pytest.raises(
        BenchmarkSourceError, match=r"has columns \['image', 'mask'\], expected 'image' \(image\) and 'label'"
    ):
        sl.load_benchmark(with_hub("voc21", mask_column="label"), limit=1)


# -- the command line ----------------------------------------------------------------------------------
def test_sclip_evaluate_end_to_end(local_hub, tmp_path, capsys):
    from sclip_lib.cli import main

    out = tmp_path / "results"
    code = main(
        [
            "evaluate",
            "--benchmark",
            "voc21,ade20k",
            "--limit",
            "3",
            "--model",
            "ViT-B-32",
            "--templates",
            "one",
            "--device",
            "cpu",
            "--out",
            str(out),
            "--workers",
            "0",
        ]
    )
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert "VOC21" in printed.out and "ADE" in printed.out and "SMOKE" not in printed.out + printed.err
    for name in ("voc21", "ade20k"):
        (result,) = out.glob(f"{name}_sclip_ViT-B-32-openai_limit3_*.json")
        saved = json.loads(result.read_text())
        assert saved["untrained"] is False and saved["num_images"] == 3
        assert saved["data"]["kind"] == "hub" and saved["data"]["repo"] == BENCHMARKS[name].hub.repo
        assert result.with_suffix(".csv").is_file()
    assert (out / "summary.csv").read_text().count("\n") == 3
