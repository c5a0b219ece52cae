"""The ``sclip`` command: ``sclip segment`` for one image, ``sclip evaluate`` for benchmarks."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["main"]

SMOKE_BANNER = "*** SMOKE MODE: untrained weights, the mask is NOT meaningful ***"


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="ViT-B-16", help="open_clip model name (default ViT-B-16)")
    p.add_argument("--pretrained", default="openai", help="pretrained tag or checkpoint path (default openai)")
    p.add_argument("--allow-untrained", action="store_true", help="smoke test with random weights (output not meaningful)")
    p.add_argument("--attention", default="sclip", help="attention variant (sclip, vanilla, maskclip, clearclip, naclip)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--batch-size", type=int, default=16, help="windows per encoder call")


def _add_segment_parser(sub) -> None:
    p = sub.add_parser("segment", help="segment one image into the classes you name")
    p.add_argument("image", type=Path)
    p.add_argument("--classes", required=True, help='classes separated by ";", synonyms by ",": "cat; sofa, couch"')
    p.add_argument("--out", type=Path, default=None, help="label PNG to write (palette; pixel value = class index)")
    p.add_argument("--overlay", type=Path, default=None, help="overlay PNG to write")
    _add_model_args(p)
    p.add_argument("--background", default="stuff", help='background class names; "stuff" = the paper\'s 26 stuff words, "none" = no background')
    p.add_argument("--logit-scale", type=float, default=50.0)
    p.add_argument("--prob-thd", type=float, default=None, help="default 0.1 with a background, else 0")
    p.add_argument("--area-thd", type=float, default=None)
    p.add_argument("--short-side", type=int, default=336)
    p.add_argument("--pamr", action="store_true", help="refine with PAMR (10 iterations, dilations 8 and 16)")
    p.add_argument("--templates", type=int, default=None, help="use only the first N of the 80 prompt templates (faster on CPU)")


def _segment(args) -> int:
    import torch
    from PIL import Image, UnidentifiedImageError

    import sclip_lib as sl
    from sclip_lib import viz

    try:
        image = Image.open(args.image)
        image.load()
    except (FileNotFoundError, UnidentifiedImageError, OSError) as err:
        print(f"error: cannot read image {args.image}: {err}", file=sys.stderr)
        return 2
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    background = {"none": None, "stuff": sl.STUFF_BACKGROUND}.get(args.background.lower(), args.background)
    prob_thd = args.prob_thd if args.prob_thd is not None else (0.1 if background else 0.0)
    templates = sl.OPENAI_IMAGENET_TEMPLATES[: args.templates] if args.templates else sl.OPENAI_IMAGENET_TEMPLATES
    try:
        pretrained = None if args.allow_untrained else args.pretrained
        model = sl.load_clip(args.model, pretrained, allow_untrained=args.allow_untrained, device=device)
        seg = sl.Segmenter(
            model, args.classes, args.attention, background=background, device=device, templates=templates,
            logit_scale=args.logit_scale, prob_thd=prob_thd, area_thd=args.area_thd, short_side=args.short_side,
            pamr=args.pamr, batch_size=args.batch_size,
        )
    except (sl.WeightsError, ValueError, KeyError, TypeError) as err:
        print(f"error: {err}", file=sys.stderr)
        if isinstance(err, sl.WeightsError):
            print("(to try the pipeline without weights: add --allow-untrained; the mask is then meaningless)", file=sys.stderr)
        return 2
    if seg.untrained:
        print(SMOKE_BANNER, file=sys.stderr)
    mask = seg.predict(image)
    areas = torch.bincount(mask.flatten(), minlength=seg.num_classes).float() / mask.numel()
    for name, share in zip(seg.labels, areas.tolist()):
        if share > 0:
            print(f"{share * 100:6.2f}%  {name}")
    if args.out:
        viz.colorize(mask.numpy()).save(args.out)
    if args.overlay:
        over = viz.overlay(image, mask.numpy(), seg.labels)
        (viz.stamp_smoke(over) if seg.untrained else over).save(args.overlay)
    if seg.untrained:
        print(SMOKE_BANNER, file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sclip", description="Training-free open-vocabulary segmentation (SCLIP).")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_segment_parser(sub)
    try:
        from . import evaluate_cli
    except ImportError:  # the evaluation half is optional
        evaluate_cli = None
    if evaluate_cli is not None:
        evaluate_cli.add_parser(sub)
    args = parser.parse_args(argv)
    if args.command == "segment":
        return _segment(args)
    return evaluate_cli.run(args)


if __name__ == "__main__":
    sys.exit(main())
