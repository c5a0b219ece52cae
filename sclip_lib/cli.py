"""The ``sclip`` command: ``sclip segment`` for one image, ``sclip evaluate`` for benchmarks."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

__all__ = ["main", "positive_int", "resolve_device", "pretrained_arg"]

SMOKE_BANNER = "*** SMOKE MODE: untrained weights, the mask is NOT meaningful ***"


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one ``error:`` line (exit 2) like every other CLI failure."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be at least 1")
    return value


def nonnegative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    value = int(text) if text.lstrip("-").isdigit() else None
    if value is None or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a whole number >= 0")
    return value


def resolve_device(name: str | None):
    """A ``torch.device`` the machine has; a ``ValueError`` saying which ones it has otherwise."""
    import torch

    from .devices import check_device

    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return check_device(name, "--device", only_cpu_cuda=True)


TEMPLATE_NAMES = ("protocol", "openai", "one")
ONE_TEMPLATE = ("a photo of a {}.",)


def templates_arg(text: str) -> str | int:
    """argparse type of ``--templates`` (one meaning in ``segment`` and ``evaluate``): ``protocol``,
    ``openai``, ``one``, or N, the first N of the 80 OpenAI ImageNet templates."""
    value = text.strip().lower()
    if value in TEMPLATE_NAMES:
        return value
    try:
        count = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a template choice: use protocol, openai, one, or a count N (the first N of the 80)"
        ) from None
    if count < 1:
        raise argparse.ArgumentTypeError(f"{text}: a count of templates must be 1..80")
    return count


def chosen_templates(choice: str | int) -> tuple | None:
    """The templates ``--templates`` names; None for ``protocol`` (the protocol's own). A ``ValueError``
    for a count beyond the 80 templates."""
    from .text import OPENAI_IMAGENET_TEMPLATES

    if choice == "protocol":
        return None
    if choice == "one":
        return ONE_TEMPLATE
    if choice == "openai":
        return tuple(OPENAI_IMAGENET_TEMPLATES)
    if choice > len(OPENAI_IMAGENET_TEMPLATES):
        raise ValueError(f"--templates {choice}: there are {len(OPENAI_IMAGENET_TEMPLATES)} templates; use 1..80")
    return tuple(OPENAI_IMAGENET_TEMPLATES[:choice])


TEMPLATES_HELP = ("prompt templates: 'protocol' (default: the protocol's own; SCLIP's are the 80 OpenAI ImageNet "
                  "templates), 'openai' (those 80), 'one' ('a photo of a {}.') or N, the first N of the 80 "
                  "(faster on CPU)")  # fmt: skip


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="ViT-B-16", help="open_clip model name (default ViT-B-16)")
    p.add_argument("--pretrained", default=None, help="pretrained tag or checkpoint path (default openai)")
    p.add_argument("--allow-untrained", action="store_true",
                   help="smoke test with random weights when --pretrained is not given (output not meaningful)")
    p.add_argument("--attention", default="sclip", help="attention variant (sclip, vanilla, maskclip, maskclip_no_residual, clearclip, naclip; ResCLIP: e.g. naclip+rcs+sfr)")
    p.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda when available)")
    p.add_argument("--batch-size", type=positive_int, default=16, help="windows per encoder call")


def pretrained_arg(args) -> str | None:
    """The weights asked for: an explicit --pretrained always wins over --allow-untrained."""
    if args.pretrained is not None:
        return args.pretrained
    return None if args.allow_untrained else "openai"


def _add_segment_parser(sub) -> None:
    p = sub.add_parser("segment", help="segment one image into the classes you name")
    p.add_argument("image", type=Path)
    p.add_argument("--classes", required=True, help='classes separated by ";", synonyms by ",": "cat; sofa, couch"')
    # kept as typed (a Path would drop a trailing '/'), checked by check_output_file
    p.add_argument("--out", default=None, help="label PNG to write (pixel value = class index; palette up to 256 "
                   "classes, 16-bit grey beyond)")  # fmt: skip
    p.add_argument("--overlay", default=None, help="overlay image to write (.png, .jpg, .webp)")
    p.add_argument("--overwrite", action="store_true", help="replace --out/--overlay files that exist already")
    _add_model_args(p)
    p.add_argument("--background", default="stuff", help='background class names; "stuff" = the paper\'s 26 stuff words, "none" = no background')
    p.add_argument("--logit-scale", type=float, default=50.0)
    p.add_argument("--prob-thd", type=float, default=None, help="default 0.1 with a background, else 0")
    p.add_argument("--area-thd", type=float, default=None)
    p.add_argument("--short-side", type=positive_int, default=336)
    p.add_argument("--pamr", action="store_true", help="refine with PAMR (10 iterations, dilations 8 and 16)")
    p.add_argument("--final-blocks", type=positive_int, default=1,
                   help="apply the attention variant to the last N blocks (default 1, the papers' setting)")
    p.add_argument("--templates", type=templates_arg, default="protocol", help=TEMPLATES_HELP)
    p.add_argument("--max-pixels", type=nonnegative_int, default=None,
                   help="allow images up to this many pixels (Pillow's decompression-bomb guard; 0: no limit)")


_OVERLAY_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")


def _read_image(path: Path, max_pixels: int | None):
    """The image, upright (EXIF), fully decoded; a ``ValueError`` with the fix when it cannot be read."""
    from PIL import Image, UnidentifiedImageError

    from .images import upright

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


def _segment(args) -> int:
    import torch

    import sclip_lib as sl
    from sclip_lib import viz
    from sclip_lib.files import OutputExistsError, check_output_file
    from sclip_lib.segmenter import Settings

    # everything that can be checked without the model is checked first: paths, classes, settings, device
    try:
        templates = chosen_templates(args.templates) or sl.OPENAI_IMAGENET_TEMPLATES  # SCLIP's protocol: the 80
        outputs = {}
        if args.out is not None:
            outputs["--out"] = check_output_file(args.out, "--out", suffixes=(".png",), inputs=(args.image,), overwrite=args.overwrite)
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
        settings = _settings(Settings, args, prob_thd)
        if background is None and (args.prob_thd or args.area_thd is not None):
            raise ValueError("--prob-thd and --area-thd send pixels to the background class, and --background "
                             "none gives none: drop them, or name a background (e.g. --background stuff)")  # fmt: skip
        sl.ATTENTIONS[args.attention]  # an unknown name or modifier fails here, before the model loads
        device = resolve_device(args.device)
        image = _read_image(args.image, args.max_pixels)
        if args.overlay is not None:
            viz.check_overlay_size(image.height, image.width)
    except (ValueError, KeyError, TypeError) as err:
        return _fail(err)
    try:
        model = sl.load_clip(args.model, pretrained_arg(args), allow_untrained=args.allow_untrained, device=device)
        seg = sl.Segmenter(model, classes.classes, args.attention, background=background, device=device,
                           templates=templates, settings=settings)  # fmt: skip
        seg.check_image_size(image.height, image.width)
    except (sl.WeightsError, ValueError, KeyError, TypeError) as err:
        hint = "(to try the pipeline without weights: add --allow-untrained; the mask is then meaningless)"
        return _fail(f"{err}\n{hint}" if isinstance(err, sl.WeightsError) else err)
    if seg.untrained:
        print(SMOKE_BANNER, file=sys.stderr)
    try:
        mask = seg.predict(image)
    except ValueError as err:
        return _fail(err)
    areas = torch.bincount(mask.flatten(), minlength=seg.num_classes).float() / mask.numel()
    for name, share in zip(seg.labels, areas.tolist()):
        if share > 0:
            print(f"{share * 100:6.2f}%  {name}")
    # exclusive: a file another run created since the check is never replaced without --overwrite
    exclusive = not args.overwrite
    try:
        if args.out is not None:
            viz.save_atomic(viz.colorize(mask.numpy(), seg.num_classes), outputs["--out"], exclusive=exclusive)
        if args.overlay is not None:
            over = viz.overlay(image, mask.numpy(), seg.labels)
            viz.save_atomic(viz.stamp_smoke(over) if seg.untrained else over, outputs["--overlay"], exclusive=exclusive)
    except OutputExistsError as err:
        return _fail(err)
    if seg.untrained:
        print(SMOKE_BANNER, file=sys.stderr)
    return 0


_SETTING_FLAGS = ("logit_scale", "prob_thd", "area_thd", "short_side", "batch_size")


def _settings(settings_type, args, prob_thd: float):
    """The Segmenter settings of the command line, checked now; errors name the options as typed."""
    try:
        return settings_type(logit_scale=args.logit_scale, prob_thd=prob_thd, area_thd=args.area_thd,
                             short_side=args.short_side, pamr=args.pamr, batch_size=args.batch_size,
                             final_blocks=args.final_blocks)  # fmt: skip
    except ValueError as err:
        message = str(err)
        for name in _SETTING_FLAGS:
            message = message.replace(name, "--" + name.replace("_", "-"))
        raise ValueError(message) from None


def _background(text: str) -> str | None:
    """The background class ``--background`` names: None for ``none``, the paper's stuff words for ``stuff``."""
    import sclip_lib as sl

    if not text.strip():
        raise ValueError("--background '' is empty: name the background classes, or use 'stuff' (the paper's "
                         "26 stuff words, the default) or 'none' (no background class)")  # fmt: skip
    return {"none": None, "stuff": sl.STUFF_BACKGROUND}.get(text.strip().lower(), text)


def _classes(text: str, background: str | None):
    """The parsed ``--classes`` (checked with the background: a name in both is an error too)."""
    import sclip_lib as sl

    try:
        classes = sl.parse_classes(text)
        if background is not None:
            sl.parse_classes([background, *classes.classes])
    except ValueError as err:
        raise ValueError(f"--classes {text!r}: {err}") from None
    return classes


def _fail(error) -> int:
    """Print the one-line ``error: ...`` (the message's own lines follow it) and return exit status 2."""
    print(f"error: {error}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    """Run ``sclip``; returns the exit status: 0 done, 2 bad input (one ``error:`` line), 130 interrupted."""
    parser = _Parser(prog="sclip", description="Training-free open-vocabulary segmentation (SCLIP).")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_segment_parser(sub)
    try:
        from . import evaluate_cli
    except ImportError:  # the evaluation half is optional
        evaluate_cli = None
    if evaluate_cli is not None:
        evaluate_cli.add_parser(sub)
    args = parser.parse_args(argv)
    previous = _sigterm_as_interrupt()
    try:
        if args.command == "segment":
            return _segment(args)
        return evaluate_cli.run(args)
    except KeyboardInterrupt:
        print("error: interrupted; outputs are written atomically, so no file was left half-written", file=sys.stderr)
        return 130
    except MemoryError:
        return _fail("out of memory: use a smaller image, fewer classes or --batch-size 1")
    except Exception as err:  # a bug: still one line, the traceback on request
        if os.environ.get("SCLIP_DEBUG"):
            raise
        return _fail(f"{type(err).__name__}: {err} (unexpected; SCLIP_DEBUG=1 shows the traceback, please report it)")
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _sigterm_as_interrupt():
    """Let SIGTERM unwind like Ctrl-C, so evaluation progress is saved; returns the old handler."""

    def handler(signum, frame):
        raise KeyboardInterrupt

    try:
        return signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        return None


if __name__ == "__main__":
    sys.exit(main())
