"""``dualguide port FILE [-o OUT]``: rewrite a plain NumPyro or Pyro guide against dualguide."""

from __future__ import annotations

import sys

from ..errors import DualGuideError


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "port",
        help="rewrite a guide (and model) written in plain NumPyro or Pyro into dualguide",
        description=(
            "Rewrite FILE, written against NumPyro or Pyro, into dualguide's neutral API, then "
            "verify it by tracing every ported function on both backends (and comparing it with "
            "the original, site by site). Constructs with no neutral counterpart are listed "
            "with their line numbers and the command exits with status 1 (also when verification "
            "fails, or when the model or guide the original fits was dropped: a partial port). "
            "Verification imports and "
            'runs FILE and the ported code (their `if __name__ == "__main__":` blocks do not '
            "run): use it on files you trust; with --no-verify FILE is only parsed, nothing in it "
            "runs. Top-level code that is not a model or guide is copied into the output."
        ),
    )
    p.add_argument("file", help="Python file with a NumPyro or Pyro guide (and model)")
    p.add_argument(
        "-o",
        "--output",
        default=None,
        help="file to write the neutral code to (default: print it to stdout)",
    )
    p.add_argument(
        "--no-verify",
        action="store_true",
        help="only parse and rewrite FILE: do not import or run it, and do not trace the "
        "ported functions on both backends (the output then says it is unverified)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the verification traces")


def run(args) -> int:
    from ..porting.port import PortError, port

    try:
        result = port(args.file, out=args.output, verify=not args.no_verify, seed=args.seed)
    except PortError as e:
        print(f"dualguide port: {e}", file=sys.stderr)
        return 1
    except DualGuideError as e:
        print(f"dualguide port: {e}", file=sys.stderr)
        return 1
    if args.output is None:
        sys.stdout.write(result.source)
    else:
        print(f"wrote {args.output}", file=sys.stderr)
    print(result.report(), file=sys.stderr)
    if result.dropped:  # a partial port: what the original fits is not in it
        return 1
    return 0 if (args.no_verify or result.verified) else 1
