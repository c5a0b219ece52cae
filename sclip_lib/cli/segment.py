"""``sclip segment``: one image, the classes you name, a label PNG and an overlay."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .options import (
    add_model_args,
    add_run_args,
    chosen_templates,
    fail,
    nonnegative_int,
    positive_int,
    pretrained_arg,
    resolve_device,
)

__all__ = ["SMOKE_BANNER", "add_parser", "run"]

SMOKE_BANNER = "*** SMOKE MODE: untrained weights, the mask is NOT meaningful ***"
_OVERLAY_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
_SETTING_FLAGS = ("logit_scale", "prob_thd", "area_thd", "short_side", "batch_size", "final_blocks")


def add_parser(subparsers) -> None:
    """Add the ``segment`` subcommand to an ``argparse`` subparsers object."""
    p = subparsers.add_parser("segment", help="segment one image into the classes you name")
    p.add_argument("image", type=Path)
    p.add_argument("--classes", required=True, help='classes separated by ";", synonyms by ",": "cat; sofa, couch"')
    # kept as typed (a Path would drop a trailing '/'), checked by check_output_file
    p.add_argument(
        "--out",
        default=None,
        help="label PNG to write (pixel value = class index; palette up to 256 classes, 16-bit grey beyond)",
    )
    p.add_argument("--overlay", default=None, help="overlay image to write (.png, .jpg, .webp)")
    p.add_argument("--overwrite", action="store_true", help="replace --out/--overlay files that exist already")
    add_model_args(p)
    add_run_args(p)
    p.add_argument(
        "--background",
        default="stuff",
        help='background class names; "stuff" = the paper\'s 26 stuff words, "none" = no background',
    )
    p.add_argument("--logit-scale", type=float, default=50.0)
    p.add_argument("--prob-thd", type=float, default=None, help="default 0.1 with a background, else 0")
    p.add_argument("--area-thd", type=float, default=None)
    p.add_argument("--short-side", type=positive_int, default=336)
    p.add_argument(
        "--max-pixels",
        type=nonnegative_int,
        default=None,
        help="allow images up to this many pixels (Pillow's decompression-bomb guard; 0: no limit)",
    )


def run(args: argparse.Namespace) -> int:
    """Run ``sclip segment``; returns the exit status (0 ok, 2 bad input)."""
    import torch

    from .. import viz
    from ..attention import get_attention
    from ..files import OutputExistsError, check_output_file
    from ..models import WeightsError, load_clip
    from ..segmenter import Segmenter
    from ..text import OPENAI_IMAGENET_TEMPLATES

    # everything that can be checked without the model is checked first: paths, classes, settings, device
    try:
        templates = chosen_templates(args.templates) or OPENAI_IMAGENET_TEMPLATES  # SCLIP's protocol: the 80
        outputs = {}
        if args.out is not None:
            outputs["--out"] = check_output_file(
                args.out, "--out", suffixes=(".png",), inputs=(args.image,), overwrite=args.overwrite
            )
        if args.overlay is not None:
            outputs["--overlay"] = check_output_file(
                args.overlay, "--overlay", suffixes=_OVERLAY_SUFFIXES, inputs=(args.image,), overwrite=args.overwrite
            )
        if len(outputs) == 2 and outputs["--out"].resolve() == outputs["--overlay"].resolve():
            raise ValueError("--out and --overlay name the same file: give them different names")
        background = _background(args.background)
        classes = _classes(args.classes, background)
        if len(classes) + bool(background) > viz.MAX_LABELS:
            raise ValueError(f"--classes: {len(classes)} classes; a label PNG holds at most {viz.MAX_LABELS}")
        prob_thd = args.prob_thd if args.prob_thd is not None else (0.1 if background else 0.0)
        settings = _settings(args, prob_thd)
        if background is None and (args.prob_thd or args.area_thd is not None):
            raise ValueError(
                "--prob-thd and --area-thd send pixels to the background class, and --background "
                "none gives none: drop them, or name a background (e.g. --background stuff)"
            )
        get_attention(args.attention)  # an unknown name or modifier fails here, before the model loads
        device = resolve_device(args.device)
        image = _read_image(args.image, args.max_pixels)
        if args.overlay is not None:
            viz.check_overlay_size(image.height, image.width)
    except (ValueError, KeyError, TypeError) as err:
        return fail(err)
    try:
        model = load_clip(args.model, pretrained_arg(args), allow_untrained=args.allow_untrained, device=device)
        seg = Segmenter(
            model,
            classes.synonyms,
            args.attention,
            background=background,
            device=device,
            templates=templates,
            settings=settings,
        )
        seg.stages.check_image_size(image.height, image.width)
    except (WeightsError, ValueError, KeyError, TypeError) as err:
        hint = "(to try the pipeline without weights: add --allow-untrained; the mask is then meaningless)"
        return fail(f"{err}\n{hint}" if isinstance(err, WeightsError) else err)
    if seg.untrained:
        print(SMOKE_BANNER, file=sys.stderr)
    try:
        mask = seg.predict(image)
    except ValueError as err:
        return fail(err)
    areas = torch.bincount(mask.flatten(), minlength=seg.num_classes).float() / mask.numel()
    for name, share in zip(seg.classes.names, areas.tolist()):
        if share > 0:
            print(f"{share * 100:6.2f}%  {name}")
    # exclusive: a file another run created since the check is never replaced without --overwrite
    exclusive = not args.overwrite
    try:
        if args.out is not None:
            viz.save_atomic(viz.colorize(mask.numpy(), seg.num_classes), outputs["--out"], exclusive=exclusive)
        if args.overlay is not None:
            over = viz.overlay(image, mask.numpy(), seg.classes.names)
            viz.save_atomic(viz.stamp_smoke(over) if seg.untrained else over, outputs["--overlay"], exclusive=exclusive)
    except OutputExistsError as err:
        return fail(err)
    if seg.untrained:
        print(SMOKE_BANNER, file=sys.stderr)
    return 0


def _read_image(path: Path, max_pixels: int | None):
    """The image, upright (EXIF), fully decoded; a ``ValueError`` with the fix when it cannot be read."""
    from PIL import Image, UnidentifiedImageError

    from ..images import upright

    limit = Image.MAX_IMAGE_PIXELS
    if max_pixels is not None:
        Image.MAX_IMAGE_PIXELS = max_pixels or None
    try:
        image = Image.open(path)
        image.load()
        return upright(image)
    except Image.DecompressionBombError as err:
        raise ValueError(
            f"image {path} is larger than Pillow's safety limit ({err}). If you trust the file, pass "
            "--max-pixels N (0: no limit); it needs about 20 bytes per pixel to segment"
        ) from None
    except (FileNotFoundError, UnidentifiedImageError, OSError) as err:
        raise ValueError(f"cannot read image {path}: {err}") from None
    finally:
        Image.MAX_IMAGE_PIXELS = limit


def _settings(args: argparse.Namespace, prob_thd: float):
    """The Segmenter settings of the command line, checked now; errors name the options as typed."""
    from ..segmenter import Settings

    given = {name: getattr(args, name) for name in ("batch_size", "final_blocks") if getattr(args, name) is not None}
    try:
        return Settings(
            logit_scale=args.logit_scale,
            prob_thd=prob_thd,
            area_thd=args.area_thd,
            short_side=args.short_side,
            pamr=args.pamr,
            **given,
        )
    except ValueError as err:
        message = str(err)
        for name in _SETTING_FLAGS:
            message = message.replace(name, "--" + name.replace("_", "-"))
        raise ValueError(message) from None


def _background(text: str) -> str | None:
    """The background class ``--background`` names: None for ``none``, the paper's stuff words for ``stuff``."""
    from ..text import STUFF_BACKGROUND

    if not text.strip():
        raise ValueError(
            "--background '' is empty: name the background classes, or use 'stuff' (the paper's "
            "26 stuff words, the default) or 'none' (no background class)"
        )
    return {"none": None, "stuff": STUFF_BACKGROUND}.get(text.strip().lower(), text)


def _classes(text: str, background: str | None):
    """The parsed ``--classes`` (checked with the background: a name in both is an error too)."""
    from ..text import parse_classes

    try:
        classes = parse_classes(text)
        if background is not None:
            parse_classes([background, *classes.synonyms])
    except ValueError as err:
        raise ValueError(f"--classes {text!r}: {err}") from None
    return classes
