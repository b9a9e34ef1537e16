"""The ``dta`` command: ``dta models | train | measure | bench | report | compare``.

Each subcommand is a thin layer over the package API; heavy imports happen
inside the command so ``dta --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys


def _cmd_models(args: argparse.Namespace) -> int:
    import pandas as pd

    from .attention import get_attention, list_attention
    from .models import create_model

    rows = []
    for name in list_attention():
        net = create_model(args.model, attention=name, T=args.T, num_classes=args.num_classes,
                           in_channels=args.in_channels, width=args.width)
        cls = get_attention(name)
        rows.append({
            "method": name,
            "placement": cls.placement,
            "params": sum(p.numel() for p in net.parameters()),
            "attention_params": sum(p.numel() for p in net.attention.parameters()),
            "code": cls.code,
        })
    table = pd.DataFrame(rows)
    print(f"{args.model}, width={args.width}, T={args.T}, {args.num_classes} classes, "
          f"{args.in_channels} input channels")
    print(table.to_markdown(index=False, intfmt=","))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dta",
        description="dta-bench: what spiking-neural-network attention really costs and buys.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("models", help="build every attention method on a backbone; print parameters")
    p.add_argument("--model", default="ms_resnet18", help="backbone name (default: ms_resnet18)")
    p.add_argument("--T", type=int, default=6, help="time steps (default: 6)")
    p.add_argument("--width", type=int, default=64, help="stem width (default: 64)")
    p.add_argument("--num-classes", type=int, default=10, help="classes (default: 10)")
    p.add_argument("--in-channels", type=int, default=3, help="input channels (default: 3)")
    p.set_defaults(func=_cmd_models)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (KeyError, ValueError, FileNotFoundError) as err:
        # User errors (unknown names, bad shapes, missing data) get one clear line.
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"dta {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
