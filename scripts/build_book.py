"""`make book`: decide the mode, build the book (every notebook executed, warnings are errors), check the site.

Then, from the same executed notebooks (the jupyter cache), the student edition (no solutions, into
_build/student/_build/html) and the PDF (scripts/book_pdf.py). `--edition student` builds the student edition
only, `--pdf` the PDF only (both in the mode decided as above, from the cache when `make book` filled it).

Mode: $SCLIP_BOOK_MODE (real | smoke) when set. Unset: real when the pretrained ViT-B/16 weights can
be had (in $SCLIP_CHECKPOINT_DIR, open_clip's Hugging Face cache, or on the hub endpoint, $HF_ENDPOINT),
else smoke, said loudly. The mode is recorded in _build/book-mode.txt for the site check
(tests/test_book_site.py).

Settings for CI:
- SCLIP_BOOK_IMAGES=N: benchmark images per evaluation in every chapter (default: each chapter's own
  count), and SCLIP_BOOK_TEMPLATES=N: at most N prompt templates per class name (default: the mode's, 80 in
  real mode); both stated in the log and in the site's footer.
- SCLIP_BOOK_EXECUTION_CACHE=keep: keep _build/.jupyter_cache from earlier builds, so chapters whose code
  did not change are not executed again (the Pages workflow persists that folder, keyed on every input).
- SCLIP_BOOK_HUB=local: start the local Hugging Face hub (sclip_lib/testing/hub.py) with seeded random
  weights and the benchmark repos built under _build/local-hub, and build against it. Real mode's code
  paths then run offline; its numbers are not meaningful, and the footer says so.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "_build"
# Real benchmark samples beside the repository (never committed): the chapters' CI builds and the local hub use
# them where present, through $SCLIP_SAMPLES_DIR (the installed package never looks outside itself).
SAMPLES = ROOT.parent / "shared" / "data" / "benchmark-samples"
MATHJAX = ROOT / "node_modules" / "mathjax" / "es5" / "tex-mml-chtml.js"  # the site's own copy (_config.yml says why)
# after the build: the pages in Chromium with the network cut, and every page's assets bundled
SITE_TESTS = ["tests/test_book_site.py", "tests/test_book_student.py", "tests/test_book_assets.py"]
IMAGES_ENV = "SCLIP_BOOK_IMAGES"
HUB_ENV = "SCLIP_BOOK_HUB"
CACHE_ENV = "SCLIP_BOOK_EXECUTION_CACHE"
LOCAL_HUB_MODELS = ("ViT-B-16", "ViT-B-32", "ViT-L-14")  # every model a chapter loads
FULL_ROWS = 100  # rows per split on the local hub when the chapters' own counts are used (their largest)


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
        from huggingface_hub import get_hf_file_metadata, hf_hub_url, try_to_load_from_cache

        repo = hf.rstrip("/")
        names = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
        for name in names:
            path = try_to_load_from_cache(repo, name)
            if isinstance(path, str) and os.path.isfile(path):
                return path
        for name in names:  # not cached: can the endpoint serve them? (a HEAD request; nothing is downloaded)
            try:
                get_hf_file_metadata(hf_hub_url(repo, name), timeout=10)
            except Exception:  # offline, unreachable, not there
                continue
            return hf_hub_url(repo, name)
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


def ensure_chromium() -> Path | None:
    """The site check needs a Chromium-family browser: find one, or install Debian's when we may (root, apt-get)."""
    from sclip_lib.testing.browser import find_chromium

    found = find_chromium()
    if found is not None or shutil.which("apt-get") is None or os.geteuid() != 0:
        return found
    print("installing chromium for the site check (apt-get install chromium)", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], env=env, check=False)
    subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], env=env, check=False)
    return find_chromium()


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


def image_counts() -> str:
    """SCLIP_BOOK_IMAGES, checked: a positive number of images, or '' for each chapter's own counts."""
    value = os.environ.get(IMAGES_ENV, "").strip()
    if value and (not value.isdigit() or int(value) < 1):
        sys.exit(f"{IMAGES_ENV}={value!r}: give a positive number of images, or unset it for the chapters' counts")
    templates = os.environ.get("SCLIP_BOOK_TEMPLATES", "").strip()
    print(
        f"benchmark image counts: {f'{IMAGES_ENV}={value} per evaluation' if value else 'each chapter’s own (full)'}"
        f"; prompt templates: {f'at most SCLIP_BOOK_TEMPLATES={templates}' if templates else 'the mode’s own'}",
        flush=True,
    )
    return value


def start_local_hub(images: str):
    """The local hub for SCLIP_BOOK_HUB=local: repos built once under _build/local-hub, a fresh HF_HOME.

    The endpoint is set before this process imports huggingface_hub (it reads HF_ENDPOINT once), so
    hub.py is loaded from its file: importing sclip_lib would import huggingface_hub first."""
    spec = importlib.util.spec_from_file_location("sclip_local_hub", ROOT / "sclip_lib" / "testing" / "hub.py")
    hub_module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hub_module)
    home = BUILD / "local-hub-cache"
    shutil.rmtree(home, ignore_errors=True)  # every build downloads through the hub, as a fresh machine does
    sock = hub_module.reserve_endpoint(home)

    from sclip_lib.testing.hub_repos import build_hub

    rows = max(int(images or FULL_ROWS), 3)  # chapter 7's qualitative grid shows 3 images
    root = build_hub(BUILD / "local-hub", models=LOCAL_HUB_MODELS, rows=rows, small_images=False)
    hub = hub_module.LocalHub(root, sock=sock).start()
    print(
        f"local hub at {hub.url}: seeded random weights for {', '.join(LOCAL_HUB_MODELS)} and every benchmark repo "
        f"({rows} rows each) from {root}; real mode's code paths, numbers NOT meaningful",
        flush=True,
    )
    return hub


def main() -> int:
    start = time.perf_counter()
    if SAMPLES.is_dir():
        os.environ.setdefault("SCLIP_SAMPLES_DIR", str(SAMPLES))
    student_only, pdf_only = sys.argv[1:] == ["--edition", "student"], sys.argv[1:] == ["--pdf"]
    if sys.argv[1:] and not (student_only or pdf_only):
        sys.exit(f"usage: {sys.argv[0]} [--edition student | --pdf]")
    if not MATHJAX.exists():
        print(
            f"error: the bundled MathJax is missing ({MATHJAX.relative_to(ROOT)}): run `make book`, "
            "which installs it with `npm ci`",
            flush=True,
        )
        return 2
    images = image_counts()
    hub = start_local_hub(images) if os.environ.get(HUB_ENV, "").strip().lower() == "local" else None
    try:
        return build(start, images, hub, student_only, pdf_only)
    finally:
        if hub is not None:
            hub.stop()


def build(start: float, images: str, hub, student_only: bool, pdf_only: bool) -> int:
    mode = decide_mode()
    env = {**os.environ, "SCLIP_BOOK_MODE": mode, "SCLIP_BOOK_BUILD": "1", IMAGES_ENV: images}
    if hub is not None:
        env[HUB_ENV] = "local"
    check = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "notebooks.py"), "--check"], cwd=ROOT
    )  # book/*.md = notebooks/*.ipynb
    if check.returncode:
        return check.returncode
    BUILD.mkdir(exist_ok=True)
    (BUILD / "book-mode.txt").write_text(mode + "\n")
    (BUILD / "book-images.txt").write_text(images + "\n")
    if student_only:
        return timed("student-build", lambda: build_student(env))
    if pdf_only:
        return timed("pdf-build", lambda: build_pdf(env))
    if os.environ.get(CACHE_ENV, "").strip().lower() == "keep":
        print(
            f"{CACHE_ENV}=keep: chapters whose code is unchanged since the cached run are not executed again",
            flush=True,
        )
    else:
        shutil.rmtree(BUILD / ".jupyter_cache", ignore_errors=True)  # every chapter runs on every `make book`
        shutil.rmtree(BUILD / "explorer-data", ignore_errors=True)  # the explorers' files those runs stage
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [
        str(jb),
        "build",
        str(ROOT),
        "--all",
        "--warningiserror",
        "--builder",
        "html",
    ]  # --all: every chapter runs, every time
    print("$", " ".join(cmd), flush=True)
    if subprocess.run(cmd, cwd=ROOT, env=env).returncode:
        print("book build FAILED", flush=True)
        return 1
    built = time.perf_counter() - start
    (BUILD / "book-build-seconds.txt").write_text(f"{built:.0f}\n")
    print(
        f"book built in {mode} mode in {built / 60:.1f} min ({IMAGES_ENV}={images or 'unset: full counts'})", flush=True
    )
    if timed("student-build", lambda: build_student(env)):
        return 1
    if timed("pdf-build", lambda: build_pdf(env)):
        return 1
    if os.environ.get("SCLIP_BOOK_SKIP_SITE_CHECK") == "1":
        return 0
    browser = ensure_chromium()
    if browser is None:
        from sclip_lib.testing.browser import missing_message

        bar = "!" * 100
        print(
            f"{bar}\nTHE SITE WAS NOT CHECKED: {missing_message()}.\nThe pages were built but not opened in a "
            f"browser: math, explorers and offline assets are unverified.\n{bar}",
            flush=True,
        )
    else:
        env = {**env, "SCLIP_CHROMIUM": str(browser)}
        print(f"site check in {browser}", flush=True)
    test = subprocess.run([sys.executable, "-m", "pytest", "-q", *SITE_TESTS], cwd=ROOT, env=env)
    return test.returncode


if __name__ == "__main__":
    sys.exit(main())
