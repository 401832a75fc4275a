"""``python -m fastact regions``: count (and draw) the linear regions of a network.

    python -m fastact regions --widths 2,16,16,16 --activation relu --seed 0 --out regions.png
    python -m fastact regions --depth-sweep --units 24 --out sweep.png
    python -m fastact regions --sawtooth 3 --out fold.png

Without ``--out`` only the counts are printed (no matplotlib needed).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np


def _ints(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def _box(text: str):
    try:
        v = [float(s) for s in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected XMIN,XMAX,YMIN,YMAX, got {text!r}") from None
    if len(v) != 4:
        raise argparse.ArgumentTypeError(f"expected XMIN,XMAX,YMIN,YMAX, got {text!r}")
    return ((v[0], v[1]), (v[2], v[3]))


def _param(text: str) -> tuple[str, float]:
    name, sep, value = text.partition("=")
    try:
        if not sep:
            raise ValueError
        return name.strip(), float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Count (and draw) the linear regions of a piecewise-linear network:\nexact counts, "
        "by splitting the input box into convex polygons layer by layer."
    )
    parser.epilog = "examples:\n" + "\n".join(
        line.strip() for line in __doc__.splitlines() if line.startswith("    python")
    )
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "--widths",
        type=_ints,
        default="2,16,16,16",
        help="input and hidden widths of a random network, e.g. 2,16,16,16 (a linear "
        "output follows); the input must be 2 (default: %(default)s)",
    )
    parser.add_argument(
        "--activation",
        default="relu",
        help="a piecewise-linear table entry (default: %(default)s)",
    )
    parser.add_argument(
        "--param",
        type=_param,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="activation parameter, repeatable (e.g. --param negative_slope=0.1)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the random network (default: %(default)s)"
    )
    parser.add_argument(
        "--box",
        type=_box,
        default=None,
        metavar="XMIN,XMAX,YMIN,YMAX",
        help="input box, written --box=-2,2,-2,2 (the default; -4,4,-4,4 for the sweep's "
        "random networks)",
    )
    parser.add_argument(
        "--max-regions",
        type=int,
        default=200_000,
        help="fail above this count (default: %(default)s)",
    )
    parser.add_argument("--out", default=None, help="write a PNG picture here (needs matplotlib)")
    parser.add_argument("--json", action="store_true", help="print the counts as JSON")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--depth-sweep",
        action="store_true",
        help="exact counts vs depth at a fixed number of units, with the known bounds",
    )
    mode.add_argument(
        "--sawtooth",
        type=int,
        metavar="DEPTH",
        default=None,
        help="the folded p mod 1 network of this depth on the unit square",
    )
    parser.add_argument(
        "--units",
        type=int,
        default=24,
        help="total hidden units, with --depth-sweep (default: %(default)s)",
    )
    parser.add_argument(
        "--seeds",
        type=int,
        default=3,
        help="random networks per depth, with --depth-sweep (default: %(default)s)",
    )
    parser.add_argument(
        "--teeth",
        type=int,
        default=2,
        help="folds per layer and axis, with --sawtooth (default: %(default)s)",
    )


def _emit(args, payload: dict, text: str) -> None:
    print(json.dumps(payload) if args.json else text)


def run(args: argparse.Namespace) -> int:
    try:
        if args.depth_sweep:
            return _sweep(args)
        if args.sawtooth is not None:
            return _sawtooth(args)
        return _regions(args)
    except (ValueError, TypeError, ImportError) as exc:  # RegionLimitError is a ValueError
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _activation(args):
    params = dict(args.param)
    return (args.activation, params) if params else args.activation


def _regions(args) -> int:
    from . import count_2d, random_network, upper_bound

    if args.widths[0] != 2:
        raise ValueError(
            f"--widths must start with 2 (a two-input network), got {args.widths}; "
            "use fastact.regions.count_1d for other inputs"
        )
    if len(args.widths) < 2:
        raise ValueError("--widths needs at least one hidden layer")
    box = args.box or ((-2.0, 2.0), (-2.0, 2.0))
    net = random_network(args.widths, _activation(args), seed=args.seed)
    name = net.activations[0].describe()
    arch = "-".join(map(str, args.widths))
    if args.out:
        from .plot import _mpl

        _mpl()  # fail before counting when matplotlib is missing
    t = time.perf_counter()
    regions = count_2d(net, box, max_regions=args.max_regions)
    dt = time.perf_counter() - t
    if args.out:
        from .plot import save_regions

        title = f"{arch} {name} network (seed {args.seed}): {regions.count:,} linear regions"
        save_regions(regions, args.out, title=title)
    bound = upper_bound(net)
    (x0, x1), (y0, y1) = box
    _emit(
        args,
        {
            "widths": args.widths,
            "activation": name,
            "seed": args.seed,
            "box": [[x0, x1], [y0, y1]],
            "regions": regions.count,
            "upper_bound": bound,
            "seconds": round(dt, 4),
            "out": args.out,
        },
        f"{arch} {name} (seed {args.seed}) in [{x0:g}, {x1:g}] x [{y0:g}, {y1:g}]: "
        f"{regions.count:,} linear regions (upper bound for the architecture {bound:,}), "
        f"counted in {dt:.2f} s" + (f"; picture: {args.out}" if args.out else ""),
    )
    return 0


def _sweep(args) -> int:
    from .plot import depth_sweep

    if args.units < 2:
        raise ValueError(f"--units must be >= 2, got {args.units}")
    if args.seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {args.seeds}")
    box = args.box or ((-4.0, 4.0), (-4.0, 4.0))
    t = time.perf_counter()
    points = depth_sweep(
        args.units,
        activation=_activation(args),
        seeds=range(args.seeds),
        box=box,
        max_regions=args.max_regions,
    )
    if not points:
        raise ValueError(f"--units {args.units} has no divisor giving an even width")
    if args.out:
        from .plot import plot_depth_sweep

        plot_depth_sweep(points, args.out, units=args.units, label=args.activation)
    dt = time.perf_counter() - t
    rows = [
        {
            "depth": p.depth,
            "width": p.width,
            "random": list(p.random_counts),
            "construction": p.construction,
            "lower_bound": p.lower,
            "upper_bound": p.upper,
        }
        for p in points
    ]
    lines = [
        f"{args.units} hidden units, 2 inputs ({args.activation} random networks in the box, "
        "folding construction in the unit square):",
        f"{'depth':>5} {'width':>5} {'random (median)':>16} {'construction':>13} "
        f"{'lower bound':>12} {'upper bound':>12}",
    ]
    for p in points:
        lines.append(
            f"{p.depth:>5} {p.width:>5} {int(np.median(p.random_counts)):>16,} "
            f"{p.construction:>13,} {p.lower:>12,} {p.upper:>12,}"
        )
    lines.append(f"{dt:.1f} s" + (f"; picture: {args.out}" if args.out else ""))
    _emit(args, {"units": args.units, "sweep": rows, "seconds": round(dt, 2)}, "\n".join(lines))
    return 0


def _sawtooth(args) -> int:
    from . import count_2d, sawtooth_network

    depth, teeth = args.sawtooth, args.teeth
    if depth < 1 or teeth < 1:
        raise ValueError(f"--sawtooth and --teeth must be >= 1, got {depth} and {teeth}")
    expected = teeth ** (2 * depth)
    if expected > args.max_regions:
        raise ValueError(
            f"the folded map of depth {depth} with {teeth} teeth has {expected:,} regions, "
            f"more than --max-regions {args.max_regions:,}"
        )
    t = time.perf_counter()
    if args.out:
        from .plot import plot_folding

        regions = plot_folding(depth, args.out, teeth=teeth)
    else:
        regions = count_2d(sawtooth_network(depth, teeth=teeth, dims=2), ((0.0, 1.0), (0.0, 1.0)))
    dt = time.perf_counter() - t
    _emit(
        args,
        {"depth": depth, "teeth": teeth, "regions": regions.count, "seconds": round(dt, 4)},
        f"folded p mod 1, depth {depth}, {teeth} teeth per layer and axis: "
        f"{regions.count:,} linear regions in the unit square (= {teeth}^(2*{depth})), "
        f"{dt:.2f} s" + (f"; picture: {args.out}" if args.out else ""),
    )
    return 0
