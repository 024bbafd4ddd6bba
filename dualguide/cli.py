"""The ``dualguide`` command line. Each subcommand lives in its own module under ``dualguide/_cli``."""

from __future__ import annotations

import argparse
import importlib
import sys

#: subcommand -> module in dualguide._cli defining add_parser(subparsers) and run(args) -> int
SUBCOMMANDS = ("crosscheck", "check", "export", "port")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="dualguide",
        description="One variational guide, native on NumPyro and Pyro.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command")
    runners = {}
    for name in SUBCOMMANDS:
        try:
            mod = importlib.import_module(f"dualguide._cli.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"dualguide._cli.{name}":
                raise
            continue
        mod.add_parser(sub)
        runners[name] = mod.run
    args = parser.parse_args(argv)
    if args.version:
        from . import __version__

        print(__version__)
        return 0
    if not args.command:
        parser.print_help()
        return 2
    return int(runners[args.command](args) or 0)


if __name__ == "__main__":
    sys.exit(main())
