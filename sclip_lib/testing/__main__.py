"""``python -m sclip_lib.testing``: build the local hub's repos and serve them on 127.0.0.1."""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path

from .hub import LocalHub, hub_env
from .hub_repos import build_hub


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sclip_lib.testing",
        description="Serve a local Hugging Face hub on 127.0.0.1 with seeded random CLIP weights and benchmark "
        "repos in the hub's layouts, so real mode (sclip evaluate, the book) runs offline. Untrained weights "
        "and placeholder images: the code paths are real, the numbers are not.",
    )
    parser.add_argument("--root", default="sclip-local-hub", help="folder of the repos (built there if missing)")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--rows", type=int, default=8, help="rows per benchmark split when building (default 8)")
    parser.add_argument(
        "--models",
        default="ViT-B-16,ViT-B-32",
        help="open_clip models whose 'openai' weights to build (comma separated)",
    )
    parser.add_argument("--small-images", action="store_true", help="small synthetic images (quick builds)")
    parser.add_argument("--no-build", action="store_true", help="serve --root as it is")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    root = Path(args.root).resolve()
    if not args.no_build:
        print(f"building repos in {root} ...", flush=True)
        build_hub(root, models=[m for m in args.models.split(",") if m], rows=args.rows, small_images=args.small_images)
    elif not root.is_dir():
        print(f"error: --root {root} is not a folder; drop --no-build to build the repos there", file=sys.stderr)
        return 2
    hub = LocalHub(root, port=args.port, verbose=args.verbose).start()
    env = hub_env(hub.url, root.parent / f"{root.name}-cache")
    print(f"local hub serving {root} at {hub.url} (Ctrl-C stops it). In another shell:", flush=True)
    print("export " + " ".join(f"{k}={v}" for k, v in env.items()), flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        hub.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
