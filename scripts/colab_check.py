"""The Colab path, run the way Colab runs it: a fresh environment, the package from a git URL, chapters top to bottom.

1. A new virtual environment (in the temporary folder, removed afterwards) gets a current pip and the locked torch
   and torchvision (from this machine's wheels where it has them), as Colab comes with both: nothing else of
   the project is in it.
2. Colab copies (notebooks/*.ipynb as committed at HEAD) are executed top to bottom with nbclient, on a kernel
   of that environment, from a folder outside the repository and with PYTHONPATH unset. Their first cell, the
   set-up cell, installs ``sclip_lib[book] @ git+<url>`` itself, with the URL pointed at this repository at
   the same commit (``git+file://<repository>@<HEAD>``), as GitHub would serve both.

So a dependency missing from pyproject.toml, a data file missing from the package, or a set-up cell (or
chapter) that only works inside the repository fails here. The chapters run in smoke mode with
SCLIP_BOOK_IMAGES=2 (nothing downloaded at run time). PIP_CONSTRAINT=requirements-lock.txt keeps the
versions pip picks the locked ones, so the check is reproducible; it adds no package.

    python scripts/colab_check.py                        # notebooks/02_clip.ipynb and notebooks/student/07_evaluation.ipynb
    python scripts/colab_check.py 05_implementation student/04_csa
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = Path(tempfile.gettempdir()) / "sclip-colab-check"  # outside the repository
DEFAULT = ["02_clip", "student/07_evaluation"]
KERNEL = "sclip-colab-check"


def log(message: str) -> None:
    print(f"[colab-check] {message}", flush=True)


def locked(name: str) -> str:
    """``name==version`` from requirements-lock.txt."""
    match = re.search(rf"^{re.escape(name)}==(\S+)", (ROOT / "requirements-lock.txt").read_text(), re.M | re.I)
    if not match:
        raise SystemExit(f"error: {name} is not in requirements-lock.txt")
    return f"{name}=={match.group(1)}"


def run(cmd: list[str], **kw) -> None:
    log("$ " + " ".join(cmd))
    subprocess.run(cmd, check=True, **kw)


def fresh_venv(env: dict) -> Path:
    """A new environment with the locked torch/torchvision (Colab's own torch) and a kernel; nothing else."""
    venv = WORK / "venv"
    run([sys.executable, "-m", "venv", str(venv)])
    python = venv / "bin" / "python"
    # Colab's pip is recent; a venv's bundled one can be too old to parse "name[extra] @ git+file:///path"
    run([str(python), "-m", "pip", "install", "-q", "--upgrade", "pip"], env=env)
    run(
        [str(python), "-m", "pip", "install", "-q", locked("torch"), locked("torchvision"), locked("ipykernel")],
        env=env,
    )
    spec = WORK / "jupyter" / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "fresh venv (Colab check)",
                "language": "python",
            }
        )
    )
    return python


def colab_copy(name: str, url: str, commit: str = "HEAD") -> nbformat.NotebookNode:  # noqa: F821
    """A Colab copy as committed at ``commit``, with its set-up cell's repository URL replaced by ``url``."""
    import nbformat

    sys.path.insert(0, str(ROOT / "scripts"))
    import notebooks

    path = f"notebooks/{name}.ipynb"
    shown = subprocess.run(["git", "show", f"{commit}:{path}"], cwd=ROOT, capture_output=True, text=True)
    if shown.returncode:
        raise SystemExit(f"error: no Colab copy {path} in commit {commit}")
    nb = nbformat.reads(shown.stdout, as_version=4)
    setup = next(c for c in nb.cells if c.cell_type == "code")
    wanted = f"git+{notebooks.repository_url()}"
    if wanted not in setup.source:
        raise SystemExit(f"error: {path}'s set-up cell does not install from {wanted}: run `make notebooks`")
    setup.source = setup.source.replace(wanted, url)
    nb.metadata["kernelspec"] = {"name": KERNEL, "display_name": KERNEL, "language": "python"}
    return nb


def execute(nb, cwd: Path) -> None:
    from nbclient import NotebookClient

    NotebookClient(nb, timeout=1800, kernel_name=KERNEL, resources={"metadata": {"path": str(cwd)}}).execute()


def main(argv: list[str]) -> int:
    names = argv or DEFAULT
    start = time.perf_counter()
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True, text=True
    ).stdout
    log(
        f"fresh venv + pip install from git+file://{ROOT}@{head[:10]} (HEAD"
        f"{'; uncommitted changes are NOT part of it' if dirty else ''}) + {', '.join(names)} top to bottom in smoke mode"
    )
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env.update(
        {
            "PIP_CONSTRAINT": str(ROOT / "requirements-lock.txt"),
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "SCLIP_BOOK_MODE": "smoke",
            "SCLIP_BOOK_IMAGES": "2",
            "JUPYTER_PATH": str(WORK / "jupyter"),
            "MPLBACKEND": "Agg",
            "HF_HUB_OFFLINE": "1",
        }
    )
    env.pop("SCLIP_BOOK_BUILD", None)
    env.pop("SCLIP_BOOK_HUB", None)
    try:
        return check(names, env, start, head)
    finally:
        shutil.rmtree(WORK / "venv", ignore_errors=True)  # several GB, pass or fail


def check(names: list[str], env: dict, start: float, commit: str) -> int:
    fresh_venv(env)
    installed = time.perf_counter()
    log(f"fresh venv with torch ready in {installed - start:.0f} s")
    cwd = WORK / "colab"  # outside the repository: nothing of it is importable from here
    cwd.mkdir()
    os.environ.clear()
    os.environ.update(env)  # the kernel inherits this process's environment
    timings = []
    for name in names:
        t = time.perf_counter()
        try:
            # the copy and the package from one commit, as GitHub would serve both
            execute(colab_copy(name, f"git+file://{ROOT}@{commit}", commit), cwd)
        except Exception as error:  # nbclient's CellExecutionError holds the cell and its traceback
            log(f"FAILED: notebooks/{name}.ipynb on a fresh install:\n{error}")
            return 1
        timings.append(f"{name} {time.perf_counter() - t:.0f} s")
        log(f"ok: notebooks/{name}.ipynb ran top to bottom ({timings[-1]})")
    total = time.perf_counter() - start
    log(
        f"passed in {total / 60:.1f} min (venv and torch {installed - start:.0f} s; {'; '.join(timings)}, the first "
        "including the set-up cell's pip install)"
    )
    (ROOT / "_build").mkdir(exist_ok=True)
    (ROOT / "_build" / "colab-check-seconds.txt").write_text(f"{total:.0f}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
