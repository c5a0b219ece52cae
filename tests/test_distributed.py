"""Sharded ``sclip evaluate``: two real processes on the CPU (gloo), set up as torchrun sets them up.

Each rank is ``python -m sclip_lib.cli evaluate`` with torchrun's variables (RANK, WORLD_SIZE,
LOCAL_RANK). The processes meet through a file (``SCLIP_DIST_INIT=file://...``) rather than
MASTER_ADDR/PORT, because torch's TCP store listens on every interface; gloo's own sockets are kept
on the loopback interface. The one-process reference runs here, on the same untrained (seeded)
ViT-B/32 that the CLI loads.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import sclip_lib as sl
from sclip_lib.evaluation import distributed
from tests.conftest import ONE_TEMPLATE, REPO
from tests.test_benchmark_loading import generated_voc, hub_copy

ROWS = 5  # odd: rank 0 takes rows 0, 2, 4 and rank 1 rows 1, 3
CLI = [
    sys.executable,
    "-m",
    "sclip_lib.cli",
    "evaluate",
    "-b",
    "voc21",
    "--limit",
    str(ROWS),
    "--allow-untrained",
    "--model",
    "ViT-B-32",
    "--templates",
    "one",
    "--device",
    "cpu",
    "--workers",
    "0",
    "--batch-size",
    "4",
]


@pytest.fixture(scope="module")
def voc_source(tmp_path_factory):
    images, masks, _ = generated_voc(np.random.default_rng(3), n=ROWS + 2, size=(40, 56))
    return hub_copy(tmp_path_factory.mktemp("voc"), "voc21", images, masks)


def start(rank: int, world: int, argv: list[str], tmp: Path, timeout: float = 60) -> tuple[subprocess.Popen, Path]:
    """One rank of the CLI with torchrun's environment; its stdout and stderr go to files."""
    env = {
        **os.environ,
        "RANK": str(rank),
        "WORLD_SIZE": str(world),
        "LOCAL_RANK": str(rank),
        "LOCAL_WORLD_SIZE": str(world),
        distributed.INIT_ENV: (tmp / "rendezvous").as_uri(),
        distributed.TIMEOUT_ENV: str(timeout),
        "GLOO_SOCKET_IFNAME": "lo",
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": str(REPO),
    }
    log = tmp / f"rank{rank}"
    with open(f"{log}.out", "w") as out, open(f"{log}.err", "w") as err:
        proc = subprocess.Popen(CLI + argv, env=env, stdout=out, stderr=err, cwd=tmp)
    return proc, log


def wait(proc: subprocess.Popen, log: Path, seconds: float, others: tuple[subprocess.Popen, ...] = ()) -> int:
    """The rank's exit status; past ``seconds`` it and ``others`` are killed and the test fails."""
    try:
        return proc.wait(seconds)
    except subprocess.TimeoutExpired:
        for p in (proc, *others):
            p.kill()
        pytest.fail(f"rank did not finish within {seconds} s (a hang): {Path(f'{log}.err').read_text()[-2000:]}")


def test_two_ranks_give_the_one_process_miou_and_only_rank_0_writes(vit_b32, voc_source, tmp_path):
    outs = [tmp_path / "out0", tmp_path / "out1"]  # each rank is told its own folder: rank 1 must write none
    procs = [start(r, 2, ["--source", str(voc_source), "--out", str(outs[r])], tmp_path) for r in range(2)]
    reference = sl.evaluate(
        "sclip",
        "voc21",
        model=vit_b32,
        source=voc_source,
        limit=ROWS,
        progress=False,
        templates=ONE_TEMPLATE,
        batch_size=4,
    )
    everyone = tuple(p for p, _ in procs)
    codes = [wait(p, log, 900, everyone) for p, log in procs]  # generous: a loaded machine is slow, a hang never ends
    errors = [Path(f"{log}.err").read_text() for _, log in procs]
    assert codes == [0, 0], errors

    files = sorted(p.name for p in outs[0].iterdir())
    assert [re.sub("_[0-9a-f]{8}[.]", "_HASH.", f) for f in files] == [
        "summary.csv",
        "voc21_sclip_ViT-B-32-untrained_limit5_HASH.csv",
        "voc21_sclip_ViT-B-32-untrained_limit5_HASH.json",
    ]
    assert not outs[1].exists() or list(outs[1].iterdir()) == []
    printed = [Path(f"{log}.out").read_text() for _, log in procs]
    assert "mIoU" in printed[0] and printed[1] == ""

    sharded = json.loads((outs[0] / files[2]).read_text())
    assert sharded["num_images"] == reference.num_images == ROWS
    assert sharded["num_pixels"] == reference.num_pixels
    assert sharded["miou"] == reference.miou  # identical, not approximately equal
    assert [None if np.isnan(v) else v for v in reference.iou] == sharded["iou"]
    assert sharded["data"]["limit"] == ROWS and "shard" not in sharded["data"]
    # every image's sums come back from its rank, and the interval does not depend on the split
    assert sorted(map(json.dumps, sharded["per_image"])) == sorted(map(json.dumps, reference.per_image))
    assert sharded["interval"] == reference.interval


def test_sharding_takes_every_world_size_th_row_of_the_subset(voc_source):
    data = sl.load_benchmark("voc21", limit=ROWS, source=voc_source, workers=0)
    names = [row[0] for row in data.rows()]
    shards = [distributed.shard_rows(data, distributed.Shard(r, 2)) for r in range(2)]
    assert [[row[0] for row in s.rows()] for s in shards] == [names[0::2], names[1::2]]
    assert [len(s) for s in shards] == [3, 2]
    masks = [s.mask[1, 0] for s in shards[1].samples(0)]  # generated_voc marks row i with i
    assert masks == [1, 3]
    assert distributed.shard_rows(data, distributed.Shard()) is data


def test_a_killed_rank_makes_the_other_fail_clearly_not_hang(voc_source, tmp_path):
    out = tmp_path / "out"
    procs = [start(r, 2, ["--source", str(voc_source), "--out", str(out)], tmp_path, timeout=30) for r in range(2)]
    (victim, _), (survivor, log) = procs[1], procs[0]
    try:
        deadline = time.monotonic() + 900
        while "voc21 · sclip" not in Path(f"{log}.err").read_text():  # rank 0's progress bar: both have joined
            assert survivor.poll() is None and time.monotonic() < deadline, Path(f"{log}.err").read_text()
            time.sleep(0.2)
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        assert wait(survivor, log, 600) == 2  # it finishes its own rows, then finds its peer gone
    finally:
        for p, _ in procs:
            p.kill()
    err = Path(f"{log}.err").read_text()
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "rank 0 of 2" in lines[0] and "another process stopped" in lines[0], err
    assert "Traceback" not in err
    assert not out.exists() or list(out.iterdir()) == []


def test_a_rank_that_never_comes_fails_at_the_timeout(voc_source, tmp_path):
    proc, log = start(0, 2, ["--source", str(voc_source), "--out", str(tmp_path / "out")], tmp_path, timeout=3)
    assert wait(proc, log, 120) == 2
    err = Path(f"{log}.err").read_text()
    assert "error: rank 0 of 2: joining the other processes failed" in err and "within 3 s" in err
    assert distributed.TIMEOUT_ENV in err and "Traceback" not in err


def test_launcher_environment_is_checked(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "2")
    with pytest.raises(distributed.DistributedError, match="RANK=2 does not fit WORLD_SIZE=2"):
        distributed.launched()
    monkeypatch.setenv("RANK", "1")
    assert distributed.launched() == distributed.Shard(1, 2)
    assert distributed.local_device("cpu") == torch.device("cpu")
    monkeypatch.setenv(distributed.TIMEOUT_ENV, "-5")
    with pytest.raises(distributed.DistributedError, match="positive number"):
        distributed.timeout()
    monkeypatch.setenv(distributed.TIMEOUT_ENV, "12.5")
    assert distributed.timeout().total_seconds() == 12.5


def test_a_launch_without_a_meeting_point_says_what_to_set(monkeypatch):
    for name in ("MASTER_ADDR", "MASTER_PORT", distributed.INIT_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(distributed.DistributedError, match="MASTER_ADDR.*torchrun"):
        distributed.context()
    assert not torch.distributed.is_initialized()
