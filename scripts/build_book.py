"""`make book`: decide the mode, build the book (every notebook executed, warnings are errors), check the site.

Then, from the same executed notebooks (the jupyter cache), the student edition (no solutions, into
_build/student/_build/html) and the PDF (scripts/book_pdf.py). `--edition student` builds the student edition
only, `--pdf` the PDF only (both in the mode decided as above, from the cache when `make book` filled it).

Mode: $SCLIP_BOOK_MODE (real | smoke) when set. Unset: real when the pretrained ViT-B/16 weights can
be found (in $SCLIP_CHECKPOINT_DIR or open_clip's Hugging Face cache), else smoke, said loudly.
The mode is recorded in _build/book-mode.txt for the site check (tests/test_book_site.py).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "_build"
CHROMIUM = Path("/usr/bin/chromium")
MATHJAX = ROOT / "node_modules" / "mathjax" / "es5" / "tex-mml-chtml.js"  # the site's own copy (_config.yml says why)
# after the build: the pages in Chromium with the network cut, and every page's assets bundled
SITE_TESTS = ["tests/test_book_site.py", "tests/test_book_student.py", "tests/test_book_assets.py"]


def weights_available(model: str = "ViT-B-16", tag: str = "openai") -> str | None:
    """Where the pretrained weights are, or None. Looks only on this machine; downloads nothing."""
    import open_clip

    from sclip_lib.models import find_local_checkpoint

    try:
        local = find_local_checkpoint(model, tag)
    except Exception:
        local = None
    if local is not None:
        return str(local)
    hf = open_clip.get_pretrained_cfg(model, tag).get("hf_hub", "")
    if hf:
        from huggingface_hub import try_to_load_from_cache

        repo = hf.rstrip("/")
        for name in ("open_clip_model.safetensors", "open_clip_pytorch_model.bin"):
            path = try_to_load_from_cache(repo, name)
            if isinstance(path, str) and os.path.isfile(path):
                return path
    return None


def decide_mode() -> str:
    mode = os.environ.get("SCLIP_BOOK_MODE", "").strip().lower()
    if mode:
        if mode not in ("real", "smoke"):
            sys.exit(f"SCLIP_BOOK_MODE={mode!r}: use real or smoke")
        print(f"building the book in {mode.upper()} mode (SCLIP_BOOK_MODE={mode})", flush=True)
        return mode
    where = weights_available()
    if where:
        print(f"building the book in REAL mode: pretrained ViT-B/16 weights found at {where}", flush=True)
        return "real"
    bar = "=" * 100
    print(
        f"{bar}\nbuilding in SMOKE mode: no pretrained weights (set SCLIP_CHECKPOINT_DIR, or run once with internet "
        f"and SCLIP_BOOK_MODE=real).\nEvery chapter runs on UNTRAINED weights and local images: the site's numbers "
        f"are NOT meaningful, and every page says so.\n{bar}",
        flush=True,
    )
    return "smoke"


def ensure_chromium() -> None:
    """The site check needs Debian's chromium: install it when missing and we may (root, apt-get)."""
    if CHROMIUM.exists() or shutil.which("apt-get") is None or os.geteuid() != 0:
        return
    print("installing chromium for the site check (apt-get install chromium)", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], env=env, check=False)
    subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], env=env, check=False)


def build_student(env: dict) -> int:
    """The student edition: SCLIP_BOOK_EDITION=student makes book/_ext/edition.py remove every solution."""
    jb = Path(sys.executable).with_name("jupyter-book")
    out = BUILD / "student"
    cmd = [str(jb), "build", str(ROOT), "--all", "--warningiserror", "--builder", "html", "--path-output", str(out)]
    print("$ SCLIP_BOOK_EDITION=student", " ".join(cmd), flush=True)
    return subprocess.run(cmd, cwd=ROOT, env={**env, "SCLIP_BOOK_EDITION": "student"}).returncode


def build_pdf(env: dict) -> int:
    """The PDF, built and checked by scripts/book_pdf.py."""
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "book_pdf.py")], cwd=ROOT, env=env).returncode


def timed(name: str, step) -> int:
    """Run one build step, record its seconds in _build/NAME-seconds.txt and say how long it took."""
    start = time.perf_counter()
    code = step()
    seconds = time.perf_counter() - start
    (BUILD / f"{name}-seconds.txt").write_text(f"{seconds:.0f}\n")
    print(f"{name}: {'ok' if code == 0 else 'FAILED'} in {seconds / 60:.1f} min", flush=True)
    return code


def main() -> int:
    start = time.perf_counter()
    student_only, pdf_only = sys.argv[1:] == ["--edition", "student"], sys.argv[1:] == ["--pdf"]
    if sys.argv[1:] and not (student_only or pdf_only):
        sys.exit(f"usage: {sys.argv[0]} [--edition student | --pdf]")
    mode = decide_mode()
    env = {**os.environ, "SCLIP_BOOK_MODE": mode, "SCLIP_BOOK_BUILD": "1"}
    if not MATHJAX.exists():
        print(f"error: the bundled MathJax is missing ({MATHJAX.relative_to(ROOT)}): run `make book`, "
              "which installs it with `npm ci`", flush=True)
        return 2
    check = subprocess.run([sys.executable, str(ROOT / "scripts" / "notebooks.py"), "--check"], cwd=ROOT)  # book/*.md = notebooks/*.ipynb
    if check.returncode:
        return check.returncode
    BUILD.mkdir(exist_ok=True)
    (BUILD / "book-mode.txt").write_text(mode + "\n")
    if student_only:
        return timed("student-build", lambda: build_student(env))
    if pdf_only:
        return timed("pdf-build", lambda: build_pdf(env))
    shutil.rmtree(BUILD / ".jupyter_cache", ignore_errors=True)  # every chapter runs on every `make book`
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(jb), "build", str(ROOT), "--all", "--warningiserror", "--builder", "html"]  # --all: every chapter runs, every time
    print("$", " ".join(cmd), flush=True)
    if subprocess.run(cmd, cwd=ROOT, env=env).returncode:
        print("book build FAILED", flush=True)
        return 1
    built = time.perf_counter() - start
    (BUILD / "book-build-seconds.txt").write_text(f"{built:.0f}\n")
    print(f"book built in {mode} mode in {built / 60:.1f} min", flush=True)
    if timed("student-build", lambda: build_student(env)):
        return 1
    if timed("pdf-build", lambda: build_pdf(env)):
        return 1
    if os.environ.get("SCLIP_BOOK_SKIP_SITE_CHECK") == "1":
        return 0
    ensure_chromium()
    test = subprocess.run([sys.executable, "-m", "pytest", "-q", *SITE_TESTS], cwd=ROOT, env=env)
    return test.returncode


if __name__ == "__main__":
    sys.exit(main())
