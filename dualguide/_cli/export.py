"""``dualguide export FILE --backend numpyro|pyro [-o OUT]``: write the program as plain native code."""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import DualGuideError


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "export",
        help="write a neutral model and guide as a plain NumPyro or plain Pyro module",
        description=(
            "Rewrite the models and guides of FILE (written with dualguide) as a self-contained "
            "module that needs only NumPyro or only Pyro. Running the module fits the guide "
            "with the native SVI and the file's FIT_SETTINGS and prints the params. FILE is imported "
            'and its top-level code runs (its `if __name__ == "__main__":` block does not): use '
            "it on files you trust. Top-level code other than the models and guides (data, "
            "constants, helper functions) is copied into the output."
        ),
    )
    p.add_argument("file", help="Python file with the neutral model(s) and guide(s)")
    p.add_argument(
        "--backend",
        "-b",
        required=True,
        choices=["numpyro", "pyro", "both"],
        help="framework to write; 'both' writes OUT_numpyro.py and OUT_pyro.py",
    )
    p.add_argument(
        "-o",
        "--output",
        default=None,
        help="file to write (default: print to stdout; with --backend both: "
        "FILE's stem + _numpyro.py / _pyro.py next to FILE)",
    )
    p.add_argument("--model", default=None, help="model the __main__ block fits (default: model)")
    p.add_argument("--guide", default=None, help="guide the __main__ block fits (default: guide)")


def run(args) -> int:
    from ..porting.export import export

    backends = ["numpyro", "pyro"] if args.backend == "both" else [args.backend]
    try:
        for b in backends:
            out = args.output
            if args.backend == "both":
                base = Path(out) if out else Path(args.file)
                out = str(base.with_name(f"{base.stem}_{b}.py"))
            text = export(args.file, b, out=out, model=args.model, guide=args.guide)
            if out is None:
                sys.stdout.write(text)
            else:
                print(f"wrote {out} (plain {b}; run: python {out})", file=sys.stderr)
    except DualGuideError as e:
        print(f"dualguide export: {e}", file=sys.stderr)
        return 1
    return 0
