"""What both subcommands share, declared once: the model options, argument types, templates, ``fail``."""

from __future__ import annotations

import argparse
import sys

__all__ = [
    "Parser",
    "add_model_args",
    "add_run_args",
    "chosen_templates",
    "fail",
    "nonnegative_int",
    "positive_int",
    "pretrained_arg",
    "resolve_device",
    "templates_arg",
]


class Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one ``error:`` line (exit 2) like every other CLI failure."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


def fail(error: BaseException | str, message: str | None = None) -> int:
    """Print one ``error: ...`` line (then the notes the error carries, e.g. where progress was saved);
    return exit status 2."""
    print(f"error: {message or error}", file=sys.stderr)
    for note in getattr(error, "__notes__", ()):
        print(f"  {note}", file=sys.stderr)
    return 2


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

    from ..devices import check_device

    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return check_device(name, "--device", only_cpu_cuda=True)


TEMPLATE_NAMES = ("protocol", "openai", "one")
ONE_TEMPLATE = ("a photo of a {}.",)
TEMPLATES_HELP = (
    "prompt templates: 'protocol' (default: the protocol's own; SCLIP's are the 80 OpenAI ImageNet "
    "templates), 'openai' (those 80), 'one' ('a photo of a {}.') or N, the first N of the 80 "
    "(faster on CPU)"
)


def templates_arg(text: str) -> str | int:
    """argparse type of ``--templates``: ``protocol``, ``openai``, ``one``, or N, the first N of the 80
    OpenAI ImageNet templates."""
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
    from ..text import OPENAI_IMAGENET_TEMPLATES

    if choice == "protocol":
        return None
    if choice == "one":
        return ONE_TEMPLATE
    if choice == "openai":
        return tuple(OPENAI_IMAGENET_TEMPLATES)
    if choice > len(OPENAI_IMAGENET_TEMPLATES):
        raise ValueError(f"--templates {choice}: there are {len(OPENAI_IMAGENET_TEMPLATES)} templates; use 1..80")
    return tuple(OPENAI_IMAGENET_TEMPLATES[:choice])


def attention_help() -> str:
    """``--attention``'s help, from the registry: every base variant and modifier registered now."""
    from ..attention import list_attentions, list_modifiers

    return (
        f"attention variant in the last block(s) (default sclip): {', '.join(list_attentions())}; with "
        f"modifiers joined by '+' ({', '.join(list_modifiers())}), e.g. naclip+rcs+sfr for ResCLIP"
    )


def add_model_args(p: argparse.ArgumentParser) -> None:
    """The model and how it runs: the same options, defaults and meaning in ``segment`` and ``evaluate``."""
    p.add_argument("--model", default="ViT-B-16", help="open_clip model name (default ViT-B-16)")
    p.add_argument(
        "--pretrained", default=None, help="open_clip pretrained tag or a local checkpoint file (default openai)"
    )
    p.add_argument(
        "--allow-untrained",
        action="store_true",
        help="smoke test with random weights when --pretrained is not given (output not meaningful)",
    )
    p.add_argument("--attention", default="sclip", help=attention_help())
    p.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda when available)")


def add_run_args(p: argparse.ArgumentParser, templates_help: str = TEMPLATES_HELP) -> None:
    """The pipeline options both subcommands take (None: the setting of the benchmark or the protocol)."""
    p.add_argument("--pamr", action="store_true", help="refine with PAMR (10 iterations, dilations 8 and 16)")
    p.add_argument("--batch-size", type=positive_int, default=None, help="windows per encoder call (default 16)")
    p.add_argument(
        "--final-blocks",
        type=positive_int,
        default=None,
        help="apply the attention variant to the last N blocks (default 1, the papers' setting)",
    )
    p.add_argument("--templates", type=templates_arg, default="protocol", help=templates_help)


def pretrained_arg(args: argparse.Namespace) -> str | None:
    """The weights asked for: an explicit --pretrained always wins over --allow-untrained."""
    if args.pretrained is not None:
        return args.pretrained
    return None if args.allow_untrained else "openai"
