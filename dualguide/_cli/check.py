"""``dualguide check FILE``: run the guide doctor on a file's model and guide.

Exit status: 0 when no check found an error (warnings allowed), 1 when one did,
2 when the file or the arguments could not be used.
"""

from __future__ import annotations

import json
import sys

from ..errors import DualGuideError

MODEL_NAMES = ("model",)
GUIDE_NAMES = ("guide",)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "check",
        help="find the mistakes that make a guide fit wrong (dualguide.check)",
        description=(
            "Trace FILE's guide and model and report, per site, what would make a fit fail or "
            "come out wrong (a deterministic() site for a model latent, a param-free sampler "
            "'shaped' by a guide factor, ImproperUniform in a guide, support and shape "
            "mismatches, a guide density that does not integrate to 1, ...) and the fix. "
            "Model arguments come from FILE's MODEL_ARGS / MODEL_KWARGS, if it defines them. "
            'FILE is imported and its top-level code runs (its `if __name__ == "__main__":` block '
            "does not): use it on files you trust. "
            "Exit status 1 when there is an error, 2 when FILE cannot be used."
        ),
    )
    p.add_argument("file", help="Python file with a neutral model and guide")
    p.add_argument("--model", default=None, help="model function name (default: model)")
    p.add_argument("--guide", default=None, help="guide function name (default: guide)")
    p.add_argument(
        "--backend",
        "-b",
        default="both",
        choices=["numpyro", "pyro", "both"],
        help="backend(s) to trace on (default: both installed ones)",
    )
    p.add_argument(
        "--level",
        default="full",
        choices=["cheap", "full"],
        help="cheap: what fit runs first; full (default): also param dependence, transforms "
        "and the quadrature of the guide's density",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the traces (default 0)")
    p.add_argument("--json", action="store_true", help="print the reports as JSON")


def run(args) -> int:
    from .. import _state
    from ..doctor import check
    from . import find_callable, load_file

    try:
        mod = load_file(args.file)
        model = find_callable(mod, args.file, args.model, MODEL_NAMES, "model")
        guide = find_callable(mod, args.file, args.guide, GUIDE_NAMES, "guide")
        if args.backend == "both":
            backends = _state.available_backends()
            if not backends:
                _state.default_name()  # raises the "install a backend" error
        else:
            backends = [args.backend]
        model_args = tuple(getattr(mod, "MODEL_ARGS", ()) or ())
        model_kwargs = dict(getattr(mod, "MODEL_KWARGS", {}) or {})
        reports = [
            check(
                model,
                guide,
                backend=b,
                model_args=model_args,
                model_kwargs=model_kwargs,
                seed=args.seed,
                level=args.level,
            )
            for b in backends
        ]
    except DualGuideError as e:
        print(f"dualguide check: {e}", file=sys.stderr)
        return 2
    if args.json:
        out = {
            "file": args.file,
            "model": _name(model),
            "guide": _name(guide),
            "ok": all(r.ok for r in reports),
            "reports": [r.to_dict() for r in reports],
        }
        print(json.dumps(out, indent=2))
    else:
        print(f"{args.file}: model {_name(model)!r}, guide {_name(guide)!r}")
        for r in reports:
            print()
            print(r)
    return 0 if all(r.ok for r in reports) else 1


def _name(fn) -> str:
    return getattr(getattr(fn, "neutral", fn), "__name__", repr(fn))
