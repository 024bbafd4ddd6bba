"""Generate ``docs/support_matrix.md``: every Pyro and NumPyro distribution and transform with
its dualguide status, from the table (``_table.DISTRIBUTIONS``, ``_table.TRANSFORMS``), the
known differences (``_dist_cases.DIFFERENCES``) and a probe of each row on both backends;
and every neutral op with its NumPyro and Pyro names (``_table.OPS``, each checked to exist).

Run ``python -m dualguide._support_matrix`` to rewrite the file; ``--check`` exits 1 when
the file is out of date (``tests/test_support_matrix.py`` runs the same comparison).
Needs both frameworks installed.  Nothing in the library imports this module.
"""

from __future__ import annotations

import inspect
import sys
import warnings
from pathlib import Path
from typing import Any

from . import _table

DOC = Path(__file__).resolve().parents[1] / "docs" / "support_matrix.md"

#: why a class that both frameworks have is not a dualguide row
BOTH_BUT_NOT_A_ROW = {
    "Unit": "use `dg.factor(name, log_factor)` (the neutral primitive built on it)",
    "TruncatedPolyaGamma": "different constructors (Pyro: `prototype`; NumPyro: `batch_shape`)",
    "Distribution": "base class; subclass `dist.Distribution` for a user-defined distribution",
    "TorchDistribution": "base class; subclass `dist.Distribution` for a user-defined distribution",
    "ExponentialFamily": "base class",
    # transforms
    "Transform": "base class",
    "AbsTransform": "not a bijection: NumPyro has no inverse for it",
    "LowerCholeskyTransform": "different domains: NumPyro maps a vector of n(n+1)/2 reals, "
    "torch an n x n matrix",
    "SoftplusLowerCholeskyTransform": "torch's has no log_abs_det_jacobian",
    "CatTransform": "not yet in dualguide",
}
#: one-framework classes that dualguide still serves another way
ONE_SIDED = {
    "LKJCorrCholesky": "deprecated Pyro alias of `LKJCholesky`",
    "TanhTransform": "dualguide builds it on NumPyro: `dist.transforms.TanhTransform`",
    "Permute": "`dist.transforms.Permute` (NumPyro's `PermuteTransform`)",
    "PermuteTransform": "`dist.transforms.Permute` (Pyro's `Permute`)",
}


#: functions both array libraries have (the array API standard's or numpy's names) that are
#: not neutral ops, and why
NOT_OPS = {
    "nonzero": "a shape that depends on the data: JAX cannot compile it (use `ops.where`)",
    "unique": "a shape that depends on the data: JAX cannot compile it",
    "where(condition)": "one-argument `where` (indices) has a data-dependent shape",
    "max(x, dim) (torch)": "torch returns `(values, indices)`; `ops.max` is `torch.amax`, "
    "`ops.argmax` the indices",
    "matrix_transpose": "not a row yet: `ops.swapaxes(x, -1, -2)`",
    "tile / repeat": "not rows yet: `ops.broadcast_to` and `ops.concatenate` cover most uses",
}


#: what ``dualguide export`` / ``dualguide port`` do not carry, and why; every other row of the
#: distribution, transform and op tables is carried both ways (tests/test_port_table_carry.py,
#: tests/test_ops_parity.py), and so are enumeration and user-defined distributions
PORT_GAPS = {
    "dg.infer_discrete(temperature=1)": "not exported to NumPyro: NumPyro's infer_discrete takes "
    "its rng_key when it is built (dualguide draws one per call); temperature=0 is exported",
    "ops.prod over a tuple of axes": "not exported to torch (torch.prod takes one dim): reduce "
    "one axis at a time",
    "ops.transpose(x) without axes": "not exported to torch: give the axes",
    "ops.linspace(..., endpoint=False)": "not exported to torch (torch.linspace has no endpoint)",
    "ops.<reduction>(x, keepdims=True) over all axes": "not exported to torch: give axis=",
}


def render_port() -> list[str]:
    """The export/port section: what the two tools do not carry."""
    lines = [
        "",
        "## Export and port",
        "",
        "`dualguide export` writes every row above as the framework's own code and "
        "`dualguide port` reads it back (tests/test_port_table_carry.py runs each exported "
        "distribution and transform natively against dualguide; tests/test_ops_parity.py each "
        "op), as it does user-defined distributions (`dist.Distribution` subclasses) and "
        "enumeration (`config_enumerate`, `markov`, `Vindex`, `infer_discrete`, "
        "`TraceEnum_ELBO`), except:",
        "",
        "| construct | why |",
        "|---|---|",
    ]
    lines += [f"| `{k}` | {v} |" for k, v in PORT_GAPS.items()]
    return lines


def _native_exists(spelling: str) -> bool:
    """Whether a table spelling (``jnp.sort``, ``torch.Tensor.to``) names a real function."""
    import importlib

    head, _, rest = spelling.partition(".")
    mod_name = _table.NATIVE_MODULE_ALIASES.get(head, head)
    parts = rest.split(".")
    for i in range(len(parts), -1, -1):  # the longest importable module prefix
        try:
            obj: Any = importlib.import_module(".".join([mod_name, *parts[:i]]))
        except ImportError:
            continue
        for p in parts[i:]:
            obj = getattr(obj, p, None)
            if obj is None:
                return False
        return callable(obj)
    return False


def render_ops() -> list[str]:
    """The ops section: each neutral op with both frameworks' names."""
    lines = [
        "",
        "## Ops",
        "",
        "`dualguide.ops.<name>` dispatches on its array argument; the export writes the native "
        "call of each column and `dualguide port` reads it back (the same row of `OPS` in "
        "`_table.py`).  Every row matches numpy on both backends, compares gradients across "
        "them, exports natively and ports back (`tests/test_ops_parity.py`, in float32 and "
        "float64); the signatures and the notes on single ops are in [ops.md](ops.md).",
        "",
        "| dualguide | NumPyro | Pyro |",
        "|---|---|---|",
    ]
    for name, (n, p) in _table.OPS.items():
        cols = [f"`{c}`" if _native_exists(c) else f"`{c}` MISSING NATIVE" for c in (n, p)]
        lines.append(f"| `ops.{name}` | {cols[0]} | {cols[1]} |")
    lines += ["", "### Not ops", "", "| function | why |", "|---|---|"]
    lines += [f"| `{k}` | {v} |" for k, v in NOT_OPS.items()]
    return lines


def _classes(mod, base) -> set[str]:
    out = set()
    for n in dir(mod):
        if n.startswith("_"):
            continue
        o = getattr(mod, n)
        if (inspect.isclass(o) and issubclass(o, base)) or (
            inspect.isfunction(o) and n[0].isupper()
        ):
            out.add(n)
    return out


def _probe(name: str) -> str:
    """Notes on one row from its case: rsample and the methods only one framework has."""
    import dualguide as dg
    from dualguide import _dist_cases
    from dualguide import distributions as dist

    case = _dist_cases.DIST_CASES[name]
    have: dict[str, set[str]] = {}
    rs = {}
    for b in _table.BACKENDS:
        with dg.use_backend(b), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            args, kwargs = case.make()
            d = getattr(dist, name)(*args, **kwargs)
            x = dg.ops.asarray(case.points)
            rs[b] = bool(d.has_rsample) and _table.DISTRIBUTIONS[name].samplable
            ok = set()
            for meth, call in (
                ("mean", lambda d, x: d.mean),
                ("variance", lambda d, x: d.variance),
                ("entropy", lambda d, x: d.entropy()),
                ("cdf", lambda d, x: d.cdf(x)),
                ("icdf", lambda d, x: d.icdf(dg.ops.full(tuple(x.shape), 0.3))),
                ("enumerate_support", lambda d, x: d.enumerate_support(False)),
            ):
                try:
                    call(d, x)
                    ok.add(meth)
                except Exception:
                    pass
            have[b] = ok
    notes = []
    if rs["numpyro"] and rs["pyro"]:
        notes.append("rsample")
    both = have["numpyro"] & have["pyro"]
    if both:
        notes.append(", ".join(sorted(both)))
    for b, other in (("numpyro", "pyro"), ("pyro", "numpyro")):
        only = have[b] - have[other]
        if only:
            notes.append(f"{', '.join(sorted(only))}: {b} only")
    diff = _dist_cases.DIFFERENCES.get(name)
    if diff:
        notes.append(f"**differs**: {diff[1]}")
    return "; ".join(notes)


def render() -> str:
    """The support matrix as Markdown (probes every row on both backends)."""
    from ._state import feature

    # the frameworks' classes come from each backend's dists feature: like every tool, this
    # module imports no framework itself
    n_version, n_mods = feature("numpyro", "dists").catalog()
    p_version, p_mods = feature("pyro", "dists").catalog()
    nds, pds = _classes(*n_mods["distributions"]), _classes(*p_mods["distributions"])
    nts, pts = _classes(*n_mods["transforms"]), _classes(*p_mods["transforms"])
    lines = [
        "# Support matrix: distributions, transforms and ops",
        "",
        "Generated by `python -m dualguide._support_matrix` from `dualguide/_table.py` "
        f"(Pyro {p_version}, NumPyro {n_version}); do not edit by hand. "
        "`tests/test_support_matrix.py` fails when it is out of date.",
        "",
        "A dualguide name is written once and renders to the framework class of each column. "
        "Every row passes the parity tests of `tests/test_dist_parity.py` on both backends "
        "(log_prob, support, biject_to, moments against samples, rsample gradients, and the "
        "methods listed where both frameworks have them), except the differences marked "
        "**differs**, which dualguide keeps as each framework has them.",
        "",
        "## Distributions",
        "",
        "| dualguide | NumPyro | Pyro | notes |",
        "|---|---|---|---|",
    ]
    served_n, served_p = set(), set()
    for name, spec in _table.DISTRIBUTIONS.items():
        split = sorted(n for n in nds if n != spec.numpyro and n.startswith(spec.numpyro))
        split = [n for n in split if n[len(spec.numpyro) :] in ("Probs", "Logits")]
        served_n.update([spec.numpyro, *split])
        served_p.add(spec.pyro)
        ncol = " / ".join(f"`{n}`" for n in [spec.numpyro, *split])
        lines.append(f"| `dist.{name}` | {ncol} | `{spec.pyro}` | {_probe(name)} |")
    lines += [
        "",
        "### Not in dualguide",
        "",
        "| class | NumPyro | Pyro | why |",
        "|---|---|---|---|",
    ]
    for n in sorted((nds | pds) - served_n - served_p):
        inn, inp = n in nds, n in pds
        if inn and inp:
            why = BOTH_BUT_NOT_A_ROW.get(n, "MISSING REASON")
        else:
            why = ONE_SIDED.get(n, f"only in {'NumPyro' if inn else 'Pyro'}")
        lines.append(f"| `{n}` | {'yes' if inn else '-'} | {'yes' if inp else '-'} | {why} |")
    lines += [
        "",
        "## Transforms",
        "",
        "Neutral transforms are `dist.transforms.<Pyro name>(...)`; "
        "`dist.TransformedDistribution(base, [transforms])` and `dist.biject_to(constraint)` "
        "take them.  Each row's forward map, inverse and log|det J| agree on both backends.",
        "",
        "| dualguide | NumPyro | Pyro |",
        "|---|---|---|",
    ]
    t_n, t_p = set(), set()
    for name, tspec in _table.TRANSFORMS.items():
        t_n.add(tspec.numpyro or "")
        t_p.add(tspec.pyro or "")
        ncol = f"`{tspec.numpyro}`" if tspec.numpyro else "(dualguide's own)"
        lines.append(f"| `dist.transforms.{name}` | {ncol} | `{tspec.pyro}` |")
    lines += [
        "",
        "### Not in dualguide",
        "",
        "| class | NumPyro | Pyro | why |",
        "|---|---|---|---|",
    ]
    for n in sorted((nts | pts) - t_n - t_p):
        inn, inp = n in nts, n in pts
        if inn and inp:
            why = BOTH_BUT_NOT_A_ROW.get(n, "MISSING REASON")
        else:
            why = ONE_SIDED.get(n, f"only in {'NumPyro' if inn else 'Pyro'}")
        lines.append(f"| `{n}` | {'yes' if inn else '-'} | {'yes' if inp else '-'} | {why} |")
    lines += render_ops()
    lines += render_port()
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write the matrix (or with ``--check``, return 1 if the file differs)."""
    argv = sys.argv[1:] if argv is None else argv
    text = render()
    if "--check" in argv:
        current = DOC.read_text() if DOC.exists() else ""
        if current != text:
            print(f"{DOC} is out of date: run python -m dualguide._support_matrix")
            return 1
        return 0
    DOC.write_text(text)
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
