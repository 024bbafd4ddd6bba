"""``dualguide crosscheck FILE``: fit FILE's model and guide on NumPyro and on Pyro, compare.

Prints a side-by-side table (rich on a terminal, plain text when piped, JSON with ``--json``)
with a progress bar per backend on a terminal.  Exit status: 0 when every verdict passed,
1 when one failed (or a backend errored), 2 when the file or the arguments could not be used.
"""

from __future__ import annotations

import copy
import json
import sys

from ..errors import DualGuideError, SpecError

MODEL_NAMES = ("model",)
GUIDE_NAMES = ("guide",)

#: FIT_SETTINGS keys crosscheck takes (others are ignored with a note)
_FIT_KEYS = (
    "optim",
    "num_steps",
    "num_particles",
    "seed",
    "init_params",
    "on_nonfinite",
    "jit",
    "loss",
)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "crosscheck",
        help="fit a model and guide on NumPyro and Pyro and prove the two agree",
        description=(
            "Fit FILE's neutral model and guide on both backends with the same settings and "
            "print, side by side, the fitted params with a tolerance verdict, each backend's "
            "many-particle ELBO with its standard error, wall time and steps/s, and the "
            "checks: log-density parity, gradient parity, optionally lockstep SVI from common "
            "noise, and an independent reference (quadrature optimum or NUTS). Fit settings "
            "come from FILE's FIT_SETTINGS when it defines them (options override them), model "
            "arguments from MODEL_ARGS / MODEL_KWARGS. FILE is imported and its top-level code runs "
            '(its `if __name__ == "__main__":` block does not): use it on files you trust. Exit status 1 when a verdict fails, 2 '
            "when FILE cannot be used."
        ),
    )
    p.add_argument("file", help="Python file with a neutral model and guide")
    p.add_argument("--model", default=None, help="model function name (default: model)")
    p.add_argument("--guide", default=None, help="guide function name (default: guide)")
    p.add_argument(
        "--model-args",
        default=None,
        metavar="JSON",
        help="model arguments as a JSON list (default: FILE's MODEL_ARGS)",
    )
    p.add_argument(
        "--steps", type=int, default=None, help="SVI steps (default: FIT_SETTINGS or 2000)"
    )
    p.add_argument(
        "--particles",
        type=int,
        default=None,
        help="ELBO particles per step (default: FIT_SETTINGS or 8)",
    )
    p.add_argument(
        "--lr",
        type=float,
        default=None,
        help="learning rate of Adam (replaces FIT_SETTINGS' optimizer)",
    )
    p.add_argument("--seed", type=int, default=None, help="seed (default: FIT_SETTINGS or 0)")
    p.add_argument(
        "--loss",
        default=None,
        help="the fits' ELBO by name, e.g. TraceMeanField_ELBO (default: FIT_SETTINGS' loss "
        "or Trace_ELBO)",
    )
    p.add_argument(
        "--elbo-particles",
        type=int,
        default=10_000,
        help="draws of the final ELBO estimate (default 10000)",
    )
    p.add_argument(
        "--seeds",
        type=int,
        default=1,
        help="fits per backend (seeds SEED, SEED+1, ...): their spread widens the limits "
        "(default 1)",
    )
    p.add_argument(
        "--max-memory-mb",
        type=float,
        default=1024.0,
        help="memory budget of one vectorized piece of the ELBO estimate (default 1024)",
    )
    p.add_argument(
        "--tol",
        action="append",
        default=[],
        metavar="[PARAM=]ABS",
        help="absolute tolerance between the two fits, for all params or one "
        "(repeat); default abs 0.02 + rel 0.05",
    )
    p.add_argument(
        "--lockstep",
        action="store_true",
        help="also run both backends in lockstep from common noise",
    )
    p.add_argument(
        "--checks",
        default=None,
        metavar="LIST",
        help="comma-separated checks to run before the fits: logdensity, gradient, "
        "lockstep, all or none (default: logdensity,gradient)",
    )
    p.add_argument(
        "--reference",
        default="auto",
        choices=["auto", "none", "quadrature", "nuts", "all"],
        help="independent reference (default auto: quadrature for 1-2 base numbers, "
        "else NUTS for small models)",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument(
        "--plot",
        default=None,
        metavar="OUT.png",
        help="draw loss curves (and 2-D guide densities vs the target) to OUT.png",
    )
    p.add_argument(
        "--rich",
        dest="rich",
        action="store_true",
        default=None,
        help="force the rich table (default: on a terminal)",
    )
    p.add_argument("--plain", dest="rich", action="store_false", help="force the plain-text table")


def _tolerances(items: list[str]):
    if not items:
        return None
    out: dict = {}
    for it in items:
        name, _, val = it.rpartition("=")
        try:
            v = float(val)
        except ValueError:
            raise SpecError(f"--tol {it!r}: expected ABS or PARAM=ABS with a number") from None
        out[name or "*"] = v
    return out


def _checks(args, all_checks, default) -> tuple:
    if args.checks is None:
        checks = tuple(default)
    elif args.checks.strip() in ("none", ""):
        checks = ()
    elif args.checks.strip() == "all":
        checks = tuple(all_checks)
    else:
        checks = tuple(c.strip() for c in args.checks.split(",") if c.strip())
        bad = [c for c in checks if c not in all_checks]
        if bad:
            raise SpecError(
                f"--checks: unknown check(s) {', '.join(bad)}; choose from "
                f"{', '.join(all_checks)}, all or none"
            )
    if args.lockstep and "lockstep" not in checks:
        checks += ("lockstep",)
    return checks


def _settings(mod, args) -> dict:
    import dualguide as dg

    fs = getattr(mod, "FIT_SETTINGS", None) or {}
    if not isinstance(fs, dict):
        raise SpecError(f"{args.file}: FIT_SETTINGS must be a dict of fit keywords")
    settings = {k: v for k, v in fs.items() if k in _FIT_KEYS}
    ignored = sorted(set(fs) - set(_FIT_KEYS))
    if ignored:
        print(
            f"dualguide crosscheck: FIT_SETTINGS keys ignored: {', '.join(ignored)}",
            file=sys.stderr,
        )
    if args.steps is not None:
        settings["num_steps"] = args.steps
    if args.loss is not None:
        settings["loss"] = args.loss
    if args.particles is not None:
        settings["num_particles"] = args.particles
        loss = settings.get("loss")
        if loss is not None and not isinstance(loss, str):  # a loss object brings its own
            loss = copy.copy(loss)
            loss.num_particles = args.particles
            settings["loss"] = loss
    if args.seed is not None:
        settings["seed"] = args.seed
    if args.lr is not None:
        settings["optim"] = dg.optim.Adam(lr=args.lr)
    return settings


def run(args) -> int:
    from ..crosscheck import crosscheck
    from ..crosscheck.core import ALL_CHECKS, DEFAULT_CHECKS
    from . import find_callable, load_file

    try:
        mod = load_file(args.file)
        model = find_callable(mod, args.file, args.model, MODEL_NAMES, "model")
        guide = find_callable(mod, args.file, args.guide, GUIDE_NAMES, "guide")
        if args.model_args is not None:
            try:
                model_args = tuple(json.loads(args.model_args))
            except (ValueError, TypeError):
                raise SpecError(f"--model-args {args.model_args!r}: expected a JSON list") from None
        else:
            model_args = tuple(getattr(mod, "MODEL_ARGS", ()) or ())
        model_kwargs = dict(getattr(mod, "MODEL_KWARGS", {}) or {})
        settings = _settings(mod, args)
        report = crosscheck(
            model,
            guide,
            model_args,
            model_kwargs,
            tolerances=_tolerances(args.tol),
            elbo_particles=args.elbo_particles,
            seeds=args.seeds,
            max_memory_mb=args.max_memory_mb,
            checks=_checks(args, ALL_CHECKS, DEFAULT_CHECKS),
            reference=None if args.reference == "none" else args.reference,
            progress=None,
            **settings,
        )
        plot_path = report.plot(args.plot) if args.plot else None
    except DualGuideError as e:
        print(f"dualguide crosscheck: error: {e}", file=sys.stderr)
        return 2
    if args.json:
        d = report.to_dict()
        if plot_path:
            d["plot"] = plot_path
        print(json.dumps(d, indent=2))
    else:
        report.print(rich=args.rich)
        if plot_path:
            print(f"plot written to {plot_path}")
    return 0 if report.ok else 1
