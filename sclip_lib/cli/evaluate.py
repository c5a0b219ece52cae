"""``sclip evaluate``: the command-line face of :func:`sclip_lib.evaluate`.

sclip evaluate --benchmark voc21 --limit 100 --attention sclip --device cuda
sclip evaluate --benchmark voc21,voc20 --benchmark ade20k --source ade20k=/data/ADEChallengeData2016
torchrun --nproc-per-node 4 -m sclip_lib.cli evaluate --benchmark all   # sharded, rank 0 writes
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..evaluation import PAPER_ORDER, PROTOCOLS, get_benchmark
from .options import (
    TEMPLATES_HELP,
    add_model_args,
    add_run_args,
    chosen_templates,
    fail,
    nonnegative_int,
    positive_int,
    pretrained_arg,
    resolve_device,
)

__all__ = ["add_parser", "run"]


def add_parser(subparsers) -> None:
    """Add the ``evaluate`` subcommand to an ``argparse`` subparsers object."""
    p = subparsers.add_parser(
        "evaluate",
        help="evaluate on the paper's benchmarks and report mIoU",
        description="Evaluate a training-free segmenter on the paper's benchmarks (mIoU as in its tables). "
        "Prints a table, and writes one JSON + CSV per benchmark and summary.csv into --out.",
    )
    p.add_argument(
        "--benchmark",
        "-b",
        action="append",
        required=True,
        help=f"benchmark name(s), repeatable or comma separated; 'all' for {', '.join(PAPER_ORDER)}",
    )
    p.add_argument("--limit", type=positive_int, default=None, help="evaluate the first N images of each split only")
    p.add_argument(
        "--protocol",
        default="sclip",
        choices=tuple(PROTOCOLS),
        help="whose evaluation protocol: settings, class files, templates (default: sclip). A "
        "method's published number is shown only beside a run under its own protocol",
    )
    add_model_args(p)
    add_run_args(p, TEMPLATES_HELP + "; the maskclip protocol has 85")
    p.add_argument(
        "--source",
        action="append",
        default=[],
        metavar="[NAME=]PATH",
        help="a local copy instead of the hub: PATH (one benchmark) or NAME=PATH, repeatable",
    )
    p.add_argument("--out", default="results", type=Path, help="results folder (default: results/)")
    p.add_argument("--workers", type=nonnegative_int, default=2, help="image decoding threads (default 2; 0: none)")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted run from the progress it saved in --out (same arguments)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a finished result of the same settings in --out (never replaced otherwise)",
    )
    p.add_argument(
        "--skip-bad",
        action="store_true",
        help="leave out unreadable or out-of-range samples (listed in the results file) instead of stopping",
    )


def run(args: argparse.Namespace) -> int:
    """Run ``sclip evaluate``; returns the exit status (0 ok, 2 bad input or data)."""
    from ..attention import get_attention
    from ..evaluation import BenchmarkSourceError, get_protocol
    from ..evaluation.loop import SMOKE_WARNING, evaluate, format_table, summary_rows, write_summary
    from ..files import check_output_folder

    try:
        # unknown names, bad devices and unwritable folders fail here, before the model loads
        names = list(dict.fromkeys(get_benchmark(n).name for n in _benchmark_names(args.benchmark)))
        sources = _sources(args.source, names)
        get_attention(args.attention)
        protocol = get_protocol(args.protocol)
        for name in names:  # a protocol that does not cover a benchmark fails here, before the model loads
            protocol.settings_for(get_benchmark(name))
        device = str(resolve_device(args.device))  # a plain string, as results record it
        chosen = chosen_templates(args.templates)
        check_output_folder(args.out)
    except (KeyError, ValueError) as e:
        return fail(e)

    from ..evaluation import distributed
    from ..models import WeightsError, load_clip

    overrides = {} if chosen is None else {"templates": chosen}
    if args.pamr:
        overrides["pamr"] = True
    if args.batch_size is not None:
        overrides["batch_size"] = args.batch_size
    if args.final_blocks is not None:
        overrides["final_blocks"] = args.final_blocks
    try:
        shard = distributed.context()  # under torchrun: join the other processes before loading anything
        device = distributed.local_device(device)  # "cuda": this process's own GPU
        model = load_clip(args.model, pretrained_arg(args), allow_untrained=args.allow_untrained, device=device)
        results = []
        for name in names:
            result = evaluate(
                args.attention,
                name,
                model=model,
                limit=args.limit,
                source=sources.get(name),
                device=device,
                out=args.out,
                workers=args.workers,
                resume=args.resume,
                skip_bad=args.skip_bad,
                protocol=args.protocol,
                overwrite=args.overwrite,
                **overrides,
            )
            results.append(result)
            if not shard.is_main:  # every process returns the same result; rank 0 prints and writes it
                continue
            print(
                f"{name} ({result.protocol or 'custom'} protocol): mIoU {result.miou:.2f} on "
                f"{result.num_images} images -> {args.out / result.stem()}.json"
            )
            for bad in result.skipped:
                print(f"  skipped {bad['name']}: {bad['error']}", file=sys.stderr)
    except (
        KeyError,
        ValueError,
        TypeError,
        BenchmarkSourceError,
        WeightsError,
        OSError,
        distributed.DistributedError,
    ) as e:
        return fail(e)
    except KeyboardInterrupt as e:
        fail(e, "interrupted")
        return 130
    if not shard.is_main:
        return 0
    print()
    print(format_table(summary_rows(results)))
    print(f"\nsummary: {write_summary(results, args.out)}")
    if any(r.untrained for r in results):
        print(f"\nWARNING: {SMOKE_WARNING}", file=sys.stderr)
    return 0


def _benchmark_names(values: list[str]) -> list[str]:
    names = [n.strip().lower() for v in values for n in v.split(",") if n.strip()]
    if "all" in names:
        for name in names:  # 'all,voc22': the typo is still an error, not dropped in silence
            if name != "all":
                get_benchmark(name)
        return list(PAPER_ORDER)
    if not names:
        raise ValueError("no benchmark given: --benchmark voc21 (or a comma list, or 'all')")
    return names


def _sources(values: list[str], names: list[str]) -> dict[str, str]:
    sources = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep:
            if len(names) != 1:
                raise ValueError(f"--source {value}: with several benchmarks write --source NAME=PATH")
            name, path = names[0], value
        name = get_benchmark(name).name
        if name not in names:
            raise ValueError(f"--source {value}: {name!r} is not among the benchmarks to evaluate ({', '.join(names)})")
        sources[name] = path
    return sources
