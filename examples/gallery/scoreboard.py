"""The gallery's parity scoreboard: port, cross-check and compare every gallery model.

Each model lives in ``examples/gallery/<name>/`` as two native programs written by us,
``numpyro_model.py`` and ``pyro_model.py``, with a module-level ``SETTINGS`` dict (steps,
particles, lr; optionally lr_decay, see :func:`optimizer`) that both use and a ``run(seed)``
function holding the file's own SVI loop.
Per model this script

1. runs :func:`dualguide.porting.port.port` on each native version (ported automatically?
   verified by tracing? which constructs blocked it -- the port's error lines);
2. runs :func:`dualguide.crosscheck` on the neutral program ported from NumPyro (or from Pyro
   when only that one ports) with the model's ``SETTINGS`` (the verdict, steps/s per backend);
3. runs both native originals in their own frameworks (same settings) and
   compares their fitted params with dualguide's fit of the ported program on the same backend
   at the same settings and seed (NumPyro original vs dualguide on NumPyro, Pyro original vs
   dualguide on Pyro; :func:`own_fit`), each within the original's own seed spread; a
   network by what it reports that can be compared (:func:`comparable`), a problem with an
   exact answer against that answer instead (:data:`EXACT`, :func:`compare_exact`);
4. the same port + a short crosscheck at the CI settings (:data:`CI`), whose statuses
   ``tests/test_gallery.py`` holds the gallery to (``examples/gallery/expected.json``).

It writes ``docs/gallery.md`` (the scoreboard), ``docs/gallery/<name>.md`` (a page per model
with its crosscheck plot and the neutral program) and ``examples/gallery/expected.json``::

    python examples/gallery/scoreboard.py                  # full settings (CPU-heavy)
    python examples/gallery/scoreboard.py --reduced        # a quick look (1/10 of the steps)
    python examples/gallery/scoreboard.py --models coin,linreg_hand

The library never imports this file.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
DOCS = ROOT / "docs"
EXPECTED = HERE / "expected.json"
FILES = {"numpyro": "numpyro_model.py", "pyro": "pyro_model.py"}
#: the CI's reduced settings: enough to run every check once, not to converge
CI = {"steps": 60, "particles": 2, "elbo_particles": 200}
#: native original vs dualguide on the same backend: |a - b| <= ABS + REL |b| + SPREAD_K s
#: per param element.  ABS + REL |b| is the floor for converged runs (two SVI runs with
#: different random streams; the models' full SETTINGS converge to well within it).  s is the
#: original's own spread: the sd (ddof 1) of that element over the native original run with
#: seeds 0 .. NATIVE_SEEDS - 1 at the same settings.  dualguide on Pyro draws its particle
#: noise (and its init) in its own program, so its fit is one more draw from that spread;
#: the difference of two independent draws has sd sqrt(2) s, and SPREAD_K allows 4 of those.
#: At --reduced settings (1/10 of the steps) the fits have not settled and s is what says how
#: far apart two honest runs land; at full settings s shrinks and the floor dominates.
ABS, REL = 0.05, 0.05
NATIVE_SEEDS = 4
SPREAD_K = 4 * 2**0.5
#: a model whose params are a network's weights (a flow guide: they differ from fit to fit with
#: the random init) is compared by its posterior instead: the native ``run()`` returns
#: ``"posterior": {site: {"mean", "sd"}}`` of its fitted guide's draws (its own seed's draws),
#: and each latent's mean and sd is compared as a param is (:func:`comparable`), with the
#: original's seed spread of that summary; dualguide's summary is from POST_DRAWS draws (its
#: Monte-Carlo error, sd / 63, is well inside the floor ABS + REL |value|)
POST_DRAWS = 4000
#: a network model whose native ``run()`` returns ``"loss": {"mean", "sd"}`` (a VAE: its
#: weights are not identifiable) is compared by its final loss, the mean of the last 10% of
#: the steps, again with the original's seed spread; its relative floor is LOSS_REL (a loss
#: of ~200 nats: 5% would hide a broken likelihood term)
LOSS_REL = 0.02
#: problems with an exact answer, and why the originals are not the reference there: their
#: rows compare dualguide's fit with the exact KL optimum of the guide, found by quadrature
#: (``dg.crosscheck.quadrature_reference``), instead of with the originals, whose fitted params
#: the row still shows.  The limit is the floor ABS + REL |value| alone: the exact answer has
#: no spread, and a fit that has not settled near it (a wide seed spread) has not matched it,
#: however wide its spread; the row reports dualguide's own seed spread (seeds 0 ..
#: NATIVE_SEEDS - 1 on that backend) so that the reader sees how settled the fit is.
#: Values: per backend, why that backend's original is not the reference.
EXACT = {
    "rotated_mixture": {
        "numpyro": "one reference serves both backends, and the Pyro original does not reach "
        "the optimum (torch's MixtureSameFamily has no rsample: its Trace_ELBO takes a "
        "score-function gradient for u1)",
        "pyro": "torch's MixtureSameFamily has no rsample, so the Pyro original's "
        "Trace_ELBO takes a score-function gradient for u1 and does not reach the optimum",
    },
}


#: the scoreboard's order (models not listed follow, alphabetically)
ORDER = [
    "coin",
    "linreg_hand",
    "linreg_autodiagonal",
    "logreg_hand",
    "logreg_autonormal",
    "poisson_glm",
    "negbin_glm",
    "eight_schools_centered",
    "eight_schools_noncentered",
    "radon_subsample",
    "seed_gaussian",
    "rotated_mixture",
    "stochastic_volatility",
    "lkj_covariance",
    "ar1",
    "gp_classification",
    "predictive_check",
    "gmm_enum",
    "hmm_markov",
    "topic_model",
    "vae",
    "bnn",
    "neutra_flow",
    "tracegraph_beta",
    "renyi_elbo",
]


def models() -> list[str]:
    """The gallery's model directories, in the scoreboard's order (:data:`ORDER`)."""
    names = [p.name for p in HERE.iterdir() if (p / FILES["numpyro"]).exists()]
    return sorted(names, key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))


def settings(name: str) -> dict:
    """The model's ``SETTINGS`` dict, read from the NumPyro file without importing it."""
    tree = ast.parse((HERE / name / FILES["numpyro"]).read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "SETTINGS" for t in node.targets
        ):
            return dict(ast.literal_eval(node.value))
    raise ValueError(f"{name}: {FILES['numpyro']} has no module-level SETTINGS dict")


def docstring(name: str, fw: str) -> str:
    """The first paragraph of a native file's docstring (what it follows)."""
    tree = ast.parse((HERE / name / FILES[fw]).read_text(encoding="utf-8"))
    doc = ast.get_docstring(tree) or ""
    return " ".join(doc.split("\n\n")[1].split()) if "\n\n" in doc else doc


@dataclass
class PortStatus:
    """One native file through ``port``: "ok" (ported and verified), "unverified" or "error"."""

    status: str = "-"
    lines: list[str] = field(default_factory=list)
    source: str = ""


@dataclass
class ModelResult:
    name: str
    port: dict[str, PortStatus] = field(default_factory=dict)
    crosscheck: str = "-"  # ok / FAILED / error / -
    crosscheck_from: str = ""
    crosscheck_failures: list[str] = field(default_factory=list)
    ci_crosscheck: str = "-"
    steps_per_second: dict[str, float | None] = field(default_factory=dict)
    native: dict[str, dict] = field(default_factory=dict)
    agreement: dict[str, str] = field(default_factory=dict)  # per backend: ok / FAIL (why)
    exact: dict[str, Any] = field(default_factory=dict)  # the exact optimum (:data:`EXACT`)
    plot: str | None = None

    @property
    def headline(self) -> bool:
        """Ported (and verified) from both native versions and cross-checked OK."""
        return all(self.port[f].status == "ok" for f in FILES) and self.crosscheck == "ok"


# -- the steps ------------------------------------------------------------------------------


def _call_name(node: ast.expr) -> str:
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.id if isinstance(node, ast.Name) else ast.unparse(node)


def svi_parts(path: Path) -> tuple[str, str, str]:
    """(model, guide, objective) of the ``SVI(...)`` call in a native file's ``run()``."""
    model, guide, loss = _svi_call(path)
    return model, guide, "Trace_ELBO" if loss is None else _call_name(loss)


def _svi_call(path: Path) -> tuple[str, str, ast.expr | None]:
    """(model, guide, the loss expression or None) of the file's ``SVI(...)`` call."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    assigned = {
        t.id: node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        for t in node.targets
        if isinstance(t, ast.Name)
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _call_name(node.func) == "SVI":
            loss = node.args[3] if len(node.args) > 3 else None
            for kw in node.keywords:
                if kw.arg == "loss":
                    loss = kw.value
            if isinstance(loss, ast.Name) and loss.id in assigned:  # elbo = Trace_ELBO(...)
                loss = assigned[loss.id]
            return _call_name(node.args[0]), _call_name(node.args[1]), loss
    raise ValueError(f"{path}: no SVI(...) call")


#: keyword arguments of a native objective that are the framework's, not the estimator's
_FRAMEWORK_KW = {"num_particles", "vectorize_particles", "max_plate_nesting"}


def objective(name: str, fw: str, particles: int):
    """The neutral loss object for the native file's objective, with ``particles``.

    Its literal options (``RenyiELBO(alpha=0.5)``) are kept; the particle count is the
    gallery's settings; the frameworks' own options (vectorizing) are dualguide's business.
    """
    import dualguide as dg

    _m, _g, loss = _svi_call(HERE / name / FILES[fw])
    kind = "Trace_ELBO" if loss is None else _call_name(loss)
    kw = {}
    if isinstance(loss, ast.Call):
        for k in loss.keywords:
            # TraceEnum_ELBO's max_plate_nesting is the estimator's (its enumeration dims)
            framework_kw = (
                _FRAMEWORK_KW - {"max_plate_nesting"} if kind == "TraceEnum_ELBO" else _FRAMEWORK_KW
            )
            if k.arg and k.arg not in framework_kw:
                kw[k.arg] = ast.literal_eval(k.value)
    return getattr(dg.infer, kind)(num_particles=particles, **kw)


#: objectives the neutral program is fitted with (dg.fit / dg.crosscheck: dg.infer's ELBOs)
NEUTRAL_OBJECTIVES = (
    "Trace_ELBO",
    "TraceMeanField_ELBO",
    "TraceGraph_ELBO",
    "RenyiELBO",
    "TraceEnum_ELBO",
)
#: fits per backend in the scoreboard's crosscheck (``crosscheck(seeds=...)``; a model's
#: ``SETTINGS["seeds"]`` overrides): two fits on one backend differ by their random streams
#: only, so their spread is what the backends' difference is judged against -- at reduced
#: settings as at full ones (Adam's constant step size keeps the params wandering around the
#: optimum however long the fit runs)
SEEDS = 3


def port_one(name: str, fw: str, out: Path) -> tuple[PortStatus, Any]:
    """Port one native file; return its status and the loaded neutral module (or None).

    "ok": ported, verified by tracing, and the ported file defines the model and guide the
    original fits with an objective dualguide fits.  "incomplete": ported, but the port dropped
    the model or guide the original's ``SVI`` uses (e.g. made by a handler or an autoguide with
    no neutral counterpart), or the original's objective is not one dualguide fits -- the
    neutral program is then not the original's program and is not cross-checked.
    """
    from dualguide._files import load_file
    from dualguide.porting.port import PortError, port

    src = HERE / name / FILES[fw]
    try:
        r = port(src, out=out)
    except PortError as e:
        lines = [f"line {ln}: {msg}" for _p, ln, msg in e.problems] or [str(e)]
        return PortStatus("error", lines, e.result.source if e.result else ""), None
    except Exception as e:  # a crash of the porter is a finding too
        return PortStatus("error", [f"{type(e).__name__}: {e}"]), None
    status = "ok" if r.verified else "unverified"
    lines = [] if r.verified else [ln for ln in r.report().splitlines()[1:] if "FAILED" in ln]
    if r.untraced:
        lines.append("not traced: " + ", ".join(r.untraced))
    try:
        mod = load_file(str(out))
    except Exception as e:
        return PortStatus("error", [f"the ported file does not load: {e}"], r.source), None
    model, guide, objective = svi_parts(src)
    dropped = [n for n in (model, guide) if not hasattr(mod, n)]
    if dropped or objective not in NEUTRAL_OBJECTIVES:
        status = "incomplete"
        for n in dropped:
            why = [m for _ln, m in r.notes if m.startswith(f"dropped {n} ")]
            lines.append(why[0] if why else f"the ported file has no {n}")
        if objective not in NEUTRAL_OBJECTIVES:
            lines.append(f"objective {objective}: dropped with the fitting code (no neutral one)")
    mod.GALLERY_MODEL, mod.GALLERY_GUIDE = model, guide
    mod.GALLERY_SOURCE = (name, fw)
    return PortStatus(status, lines, r.source), mod if status != "incomplete" else None


def optimizer(st: dict, steps: int | None = None):
    """The neutral optimizer of a model's settings ``st``, as its native originals build theirs.

    ``Adam(lr)``; with ``st["lr_decay"]`` (the factor the learning rate falls by over the whole
    fit) ``ClippedAdam(lr, lrd)`` with the per-step decay ``lrd = lr_decay ** (1 / steps)``
    (``steps``: the fit's, default ``st["steps"]``), so that a shorter run (--reduced, the CI's)
    decays as far.  Step ``t`` (from 1) uses ``lr * lrd ** t``: Pyro's ``ClippedAdam``
    convention, which a NumPyro original follows with the schedule ``lr * lrd ** (i + 1)``.
    """
    import dualguide as dg

    if "lr_decay" not in st:
        return dg.optim.Adam(lr=st["lr"])
    lrd = float(st["lr_decay"]) ** (1 / (st["steps"] if steps is None else steps))
    return dg.optim.ClippedAdam(lr=st["lr"], lrd=lrd)


def optimizer_text(st: dict) -> str:
    """The optimizer of ``st`` in words, for the model's page."""
    if "lr_decay" not in st:
        return f"Adam(lr={st['lr']})"
    return (
        f"ClippedAdam(lr={st['lr']}, lrd={st['lr_decay']} ** (1 / steps)): the learning rate "
        f"falls by {st['lr_decay']} over the fit"
    )


def run_crosscheck(mod, st: dict, *, ci: bool):
    """``dg.crosscheck`` of a ported module at the model's settings (or the CI's)."""
    import dualguide as dg

    steps = CI["steps"] if ci else st["steps"]
    particles = CI["particles"] if ci else st["particles"]
    return dg.crosscheck(
        getattr(mod, mod.GALLERY_MODEL),
        getattr(mod, mod.GALLERY_GUIDE),
        getattr(mod, "MODEL_ARGS", ()),
        getattr(mod, "MODEL_KWARGS", {}),
        optim=optimizer(st, steps),
        num_steps=steps,
        loss=objective(*mod.GALLERY_SOURCE, particles),
        seeds=1 if ci else st.get("seeds", SEEDS),
        checks=("logdensity", "gradient"),
        reference=None,
        elbo_particles=CI["elbo_particles"] if ci else st.get("elbo_particles", 2000),
        tolerances=None if ci else st.get("tolerances"),
        progress=False,
    )


def ci_verdict(report) -> tuple[str, list[str]]:
    """The CI's verdict on a short crosscheck: both backends fit without error, and the
    deterministic checks (doctor, log-density and gradient parity) pass.  The fitted params
    and ELBOs are not compared: after :data:`CI` steps they differ by the two random streams.
    """
    bad = list(report.errors) + [f"{b}: {r.error}" for b, r in report.runs.items() if r.error]
    bad += [
        f"{c.title}: {c.summary}" for k, c in report.checks.items() if k != "elbo" and c.ok is False
    ]
    return ("ok" if not bad else "FAILED"), bad


def run_native(name: str, fw: str, st: dict, seed: int = 0) -> dict:
    """Run a native original's own SVI loop (its ``run()``) with the settings ``st``.

    It runs in this process (the frameworks are imported once for the whole gallery); the
    file is loaded as a fresh module each time and its ``SETTINGS`` are overridden.
    Returns ``{"params", "steps_per_second", ...}`` or ``{"error": ...}``.
    """
    import importlib.util

    path = HERE / name / FILES[fw]
    try:
        spec = importlib.util.spec_from_file_location(f"gallery_{name}_{fw}", path)
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        mod.SETTINGS.update({k: st[k] for k in ("steps", "particles", "lr", "lr_decay") if k in st})
        return json.loads(json.dumps(mod.run(seed=seed)))
    except BaseException as e:  # the original's own failure is a finding, not a crash
        if isinstance(e, KeyboardInterrupt):
            raise
        msg = str(e).strip().splitlines()
        return {"error": f"{type(e).__name__}: {msg[-1][:300] if msg else ''}"}


def seed_spread(runs: list[dict]) -> dict[str, list]:
    """Per param, the sd (ddof 1) of each element over native runs with different seeds
    (``run_native(..., seed=i)``); params that are not numeric arrays, or that a run lacks,
    are left out (their comparison then has only the fixed floor)."""
    ok = [r["params"] for r in runs if "error" not in r]
    if len(ok) < 2:
        return {}
    out = {}
    for k in ok[0]:
        try:
            arr = np.stack([np.asarray(p[k], np.float64) for p in ok])
        except (KeyError, TypeError, ValueError):
            continue
        out[k] = arr.std(axis=0, ddof=1).tolist()
    return out


def compare(
    native: dict,
    fit_params: dict | None,
    spread: dict | None = None,
    *,
    rel: float = REL,
    spread_k: float = SPREAD_K,
    of: str = "the originals' seed spread",
    what: str = "",
) -> str:
    """``ok (max |diff| x)`` or ``FAIL ...`` for a native original's params vs dualguide's.

    The limit per element is ``ABS + rel |b| + spread_k s`` with ``s`` the original's own
    seed spread (:func:`seed_spread`; 0 where none was measured).  When a spread was measured
    the cell also gives the largest |diff| / limit (``of`` names the spread).  ``what`` (e.g.
    ``"final loss: "``) says what is compared when it is not an original's params (the
    exact optimum: :func:`compare_exact`; a network's summary: :func:`comparable`).
    """
    if "error" in native:
        return "original failed: " + native["error"]
    if fit_params is None:
        return "-"
    spread = spread or {}
    worst, ratio, bad, missing = 0.0, 0.0, [], []
    for k, v in native["params"].items():
        if k not in fit_params:
            missing.append(k)
            continue
        try:
            a = np.asarray(v, np.float64)
            b = np.asarray(fit_params[k], np.float64)
        except (TypeError, ValueError):  # a network's nested params: not compared
            missing.append(k)
            continue
        if a.shape != b.shape:
            bad.append(f"{k} shape {a.shape} vs {b.shape}")
            continue
        d = np.abs(a - b)
        s = np.asarray(spread.get(k, 0.0), np.float64)
        limit = ABS + rel * np.abs(b) + spread_k * (s if s.shape in ((), a.shape) else 0.0)
        worst = max(worst, float(d.max()) if d.size else 0.0)
        ratio = max(ratio, float((d / limit).max()) if d.size else 0.0)
        if np.any(d > limit):
            bad.append(k)
    if missing:
        return "FAIL: params not in dualguide's fit: " + ", ".join(missing[:4])
    of = f", |diff|/limit {ratio:.2f} with {of}" if spread else ""
    if bad:
        return f"FAIL: {what}{', '.join(bad[:4])} differ (max |diff| {worst:.3g}{of})"
    return f"ok ({what}max |diff| {worst:.3g}{of})"


def posterior_summary(mod, params: dict, backend: str, sites: list[str]) -> dict:
    """``{site: {"mean", "sd"}}`` of :data:`POST_DRAWS` draws of the ported program's guide
    at ``params`` on ``backend`` (``dg.infer.Predictive``), as the native files summarize."""
    import dualguide as dg

    draws = dg.infer.Predictive(
        getattr(mod, mod.GALLERY_MODEL),
        guide=getattr(mod, mod.GALLERY_GUIDE),
        num_samples=POST_DRAWS,
        return_sites=sites,
        params=params,
        seed=1,
        backend=backend,
        parallel=True,
    )(*getattr(mod, "MODEL_ARGS", ()), **getattr(mod, "MODEL_KWARGS", {}))
    return {
        k: {"mean": np.mean(v, 0).tolist(), "sd": np.std(v, 0).tolist()} for k, v in draws.items()
    }


def ci_crosscheck(mod, name: str) -> str:
    """ "ok" / "FAILED" / "error": the CI's crosscheck of a ported module (:func:`ci_verdict`)."""
    try:
        return ci_verdict(run_crosscheck(mod, settings(name), ci=True))[0]
    except Exception:
        return "error"


def own_fit(mod, st: dict, backend: str, seed: int = 0):
    """dualguide's fit of the ported program as the native original runs it: the same
    settings, seed (0 unless ``seed``) and each framework's own init (the crosscheck's fits start both backends
    from the canonical backend's autoguide init, which is not the original's), so that the
    comparison with the original measures the port, not two starting points.  A fit that
    stops keeps its last params; one that fails gives None.  Returns the
    :class:`~dualguide.infer.FitResult`."""
    import dualguide as dg

    try:
        r = dg.fit(
            getattr(mod, mod.GALLERY_MODEL),
            getattr(mod, mod.GALLERY_GUIDE),
            backend=backend,
            model_args=getattr(mod, "MODEL_ARGS", ()),
            model_kwargs=getattr(mod, "MODEL_KWARGS", {}),
            optim=optimizer(st),
            num_steps=st["steps"],
            loss=objective(*mod.GALLERY_SOURCE, st["particles"]),
            seed=seed,
            progress=False,
        )
    except dg.errors.FitError as e:
        r = e.result
    except Exception:
        return None
    return r


def run_settings(name: str, *, reduced: bool) -> dict:
    """The model's settings as the scoreboard runs them (--reduced: 1/10 of the steps)."""
    st = settings(name)
    return {**st, "steps": max(st["steps"] // 10, 50)} if reduced else st


def score(name: str, *, reduced: bool, native: bool, workdir: Path) -> ModelResult:
    """Everything about one model (see the module docstring)."""
    st = run_settings(name, reduced=reduced)
    res = ModelResult(name)
    mods: dict[str, Any] = {}
    for fw in FILES:
        res.port[fw], mods[fw] = port_one(name, fw, workdir / f"{name}_{fw}_neutral.py")
    fw = next((f for f in FILES if mods[f] is not None), None)
    report = None
    if fw is not None:
        res.crosscheck_from = fw
        try:
            report = run_crosscheck(mods[fw], st, ci=False)
            res.crosscheck = "ok" if report.ok else "FAILED"
            res.crosscheck_failures = list(report.failures)
            for b, run in report.runs.items():
                res.steps_per_second[b] = run.steps_per_second
            DOCS.joinpath("gallery").mkdir(parents=True, exist_ok=True)
            try:
                report.plot(str(DOCS / "gallery" / f"{name}.png"))
                res.plot = f"{name}.png"
            except Exception as e:
                res.crosscheck_failures.append(f"plot: {e}")
        except Exception as e:
            res.crosscheck = "error"
            res.crosscheck_failures = [f"{type(e).__name__}: {str(e).splitlines()[0][:300]}"]
        res.ci_crosscheck = ci_crosscheck(mods[fw], name)
    if native:
        compare_originals(res, mods.get(fw) if fw else None, st)
    return res


def comparable(native: dict) -> tuple[str, dict]:
    """(label, ``{name: value}``) of what an original's run reports that can be compared:
    its params, or for a network its posterior summary (``"x1 mean"``, ``"x1 sd"``) or its
    final loss (``"loss"``); the label names it in the cell ("" for params)."""
    if "posterior" in native:
        post = native["posterior"]
        return "posterior mean and sd, ", {
            f"{site} {stat}": post[site][stat] for site in sorted(post) for stat in ("mean", "sd")
        }
    if "loss" in native:
        return "final loss, ", {"loss": native["loss"]["mean"]}
    return "", native.get("params", {})


def ours_like(native: dict, mod, own, backend: str) -> dict:
    """dualguide's fit ``own`` of ``mod`` on ``backend``, summarized as :func:`comparable`
    summarizes the original's ``native`` run (its params, posterior summary or final loss)."""
    params = {k: np.asarray(v) for k, v in own.params.items()}
    if "posterior" in native:
        post = posterior_summary(mod, params, backend, sorted(native["posterior"]))
        return comparable({"posterior": post})[1]
    if "loss" in native:
        losses = np.asarray(own.losses, np.float64)
        return {"loss": float(losses[-max(1, len(losses) // 10) :].mean())}
    return params


def exact_optimum(mod) -> dict:
    """``{"params", "elbo"}`` of the exact KL optimum of the ported program's guide
    (``dg.crosscheck.quadrature_reference``), or ``{"error": ...}``."""
    import dualguide as dg

    try:
        r = dg.crosscheck.quadrature_reference(
            getattr(mod, mod.GALLERY_MODEL),
            getattr(mod, mod.GALLERY_GUIDE),
            getattr(mod, "MODEL_ARGS", ()),
            getattr(mod, "MODEL_KWARGS", {}),
        )
    except Exception as e:
        return {"error": f"{type(e).__name__}: {e}"[:300]}
    if r.status != "pass":
        return {"error": f"quadrature {r.status}: {r.summary}"[:300]}
    return {
        "params": {k: np.asarray(v).tolist() for k, v in r.details["params"].items()},
        "elbo": float(r.details["elbo"]),
    }


def _fmt_params(params: dict) -> str:
    return ", ".join(
        f"{k} {np.array2string(np.asarray(v), precision=3)}" for k, v in params.items()
    )


def compare_exact(exact: dict, fits: list, native: dict, why: str) -> str:
    """The cell of a problem with an exact answer (:data:`EXACT`): dualguide's seed-0 fit
    (``fits[0]``; ``fits`` are its fits with seeds 0, 1, ...) against the exact optimum,
    within the floor ABS + REL |value| (no spread allowance, see :data:`EXACT`), with the
    fits' own seed spread for information; then the original's fitted params, shown, not
    judged, with ``why`` it is not the reference."""
    if "error" in exact:
        return f"FAIL: no exact optimum ({exact['error']})"
    if not fits or fits[0] is None:
        return "-"
    verdict = compare(
        exact,
        {k: np.asarray(v) for k, v in fits[0].params.items()},
        what=f"vs the exact optimum {_fmt_params(exact['params'])} by quadrature, ",
    )
    runs = [{"error": "fit failed"} if f is None else {"params": f.params} for f in fits]
    spread = seed_spread(runs)
    if spread:
        verdict += f"; dualguide's own seed spread (sd over seeds 0..{len(fits) - 1}): "
        verdict += _fmt_params(spread)
    orig = f"failed: {native['error']}" if "error" in native else _fmt_params(native["params"])
    why = f"the problem has an exact answer; {why}"
    return f"{verdict}; the original (shown, not the reference: {why}): {orig}"


def compare_originals(res: ModelResult, mod, st: dict) -> None:
    """Run both native originals (seed 0, and more seeds for their spread) and dualguide's own
    fit of the ported module ``mod`` on each backend; fill ``res.native`` and ``res.agreement``.

    A problem with an exact answer (:data:`EXACT`) is judged against it instead
    (:func:`compare_exact`; ``res.exact`` holds it); a network by what it reports that can be
    compared (:func:`comparable`)."""
    name = res.name
    if name in EXACT and mod is not None:
        res.exact = exact_optimum(mod)
    for b in FILES:
        res.native[b] = run_native(name, b, st)
        own = own_fit(mod, st, b) if mod is not None else None
        if res.exact and own is not None:
            fits = [own] + [own_fit(mod, st, b, seed=i) for i in range(1, NATIVE_SEEDS)]
            res.agreement[b] = compare_exact(res.exact, fits, res.native[b], EXACT[name][b])
            continue
        label, native = comparable(res.native[b])
        if "error" in res.native[b] or own is None:
            res.agreement[b] = compare(res.native[b], None)
            continue
        try:
            ours = ours_like(res.native[b], mod, own, b)
        except Exception as e:
            res.agreement[b] = f"FAIL: {label}{type(e).__name__}: {e}"[:300]
            continue
        # against the original's own seed spread (see SPREAD_K)
        runs = [res.native[b]] + [run_native(name, b, st, seed=i) for i in range(1, NATIVE_SEEDS)]
        res.native[b]["seed_spread"] = seed_spread(
            [r if "error" in r else {"params": comparable(r)[1]} for r in runs]
        )
        rel = LOSS_REL if "loss" in native else REL
        spread = res.native[b]["seed_spread"]
        res.agreement[b] = compare({"params": native}, ours, spread, rel=rel, what=label)


# -- writing --------------------------------------------------------------------------------


def _sps(x: float | None) -> str:
    return "-" if x is None else f"{x:,.0f}"


def _yes(p: PortStatus) -> str:
    return {
        "ok": "yes",
        "unverified": "unverified",
        "incomplete": "**incomplete**",
        "error": "**no**",
    }.get(p.status, "-")


def _agreement(r: ModelResult, b: str) -> str:
    """The agreement cell: the comparison, or why there is none."""
    got = r.agreement.get(b)
    if got is None:
        return "not run"
    nat = r.native.get(b, {})
    if got == "-" and nat and "error" not in nat:
        return "original ran; no dualguide fit to compare"
    return got


def missing_text(r: ModelResult) -> str:
    out = []
    for fw in FILES:
        for ln in r.port[fw].lines[:3]:
            out.append(f"{fw}: {ln}")
        if len(r.port[fw].lines) > 3:
            out.append(f"{fw}: ... {len(r.port[fw].lines) - 3} more")
    if r.crosscheck in ("FAILED", "error"):
        out += [f"crosscheck: {f}" for f in r.crosscheck_failures[:2]]
    return "; ".join(out).replace("|", "\\|").replace("\n", " ") or "-"


def headline(results: list[ModelResult]) -> str:
    n = sum(r.headline for r in results)
    return f"{n} of {len(results)} models port and cross-check on both backends"


def write_scoreboard(results: list[ModelResult], *, reduced: bool, native: bool) -> str:
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    lines = [
        "# The gallery: parity scoreboard",
        "",
        "Generated by `python examples/gallery/scoreboard.py`"
        + (" --reduced (1/10 of each model's steps)" if reduced else " (full settings)")
        + f" on {when}; do not edit by hand.",
        "",
        f"**{headline(results)}.**",
        "",
        "Each model is written twice by us, natively in NumPyro and natively in Pyro "
        "(`examples/gallery/<name>/`). *Ported* = `dualguide.porting.port.port` rewrote the "
        "native file to the neutral API and its verification (tracing on both backends, site by "
        "site against the original) passed. *Crosscheck* = `dg.crosscheck` of the ported "
        "neutral program with the original's objective (fits on both backends, each "
        f"{SEEDS} times with different seeds so that the params are judged against the "
        "same-backend seed spread; log-density and gradient parity; ELBO). "
        "*Agrees with originals* = each native original, run in its own framework with the same "
        "settings and seed, against dualguide's own fit of the port on that backend "
        f"(|diff| <= {ABS} + {REL} |value| + {SPREAD_K:.2f} s per param element, see *The "
        "agreement limit* below). A network's weights differ from init to init, so a network "
        "guide (a flow) is compared by each latent's posterior mean and sd (the original's "
        f"from its own draws, dualguide's from {POST_DRAWS} guide draws) and a network model "
        "(a VAE) by its final loss, the mean of the last 10% of the steps (relative floor "
        f"{LOSS_REL}), each with the same limit and the original's seed spread of that "
        "number; the cell says so. "
        "A problem with an exact answer (" + ", ".join(sorted(EXACT)) + ") is compared with "
        "it instead: the exact KL optimum of the guide by quadrature "
        "(`dg.crosscheck.quadrature_reference`), |diff| <= "
        f"{ABS} + {REL} |value| with no spread allowance (a fit that has not settled near the "
        "exact answer has not matched it); the cell gives dualguide's own seed spread over "
        f"seeds 0..{NATIVE_SEEDS - 1} on that backend for information, and "
        "still shows the original's fitted params and why they are not the reference. "
        "Steps/s: dualguide's fit loop on each "
        "backend (native originals in parentheses).",
        "",
        "*The agreement limit.* A fixed |diff| <= "
        f"{ABS} + {REL} |value| is meant for converged runs at full settings; --reduced runs "
        "1/10 of the steps, where two honest fits of one program with different random streams "
        "have not settled (dualguide on Pyro draws its particle noise and its init in its own "
        "program, so its fit never shares the original's stream). So each param element's "
        f"limit adds {SPREAD_K:.2f} s, where s is that element's sd (ddof 1) over the native "
        f"original run with seeds 0..{NATIVE_SEEDS - 1} at the same settings -- the original's "
        "own seed spread, measured in the same run. If dualguide's fit is one more draw from "
        "that spread, its difference from the seed-0 original has sd sqrt(2) s, and the limit "
        "allows 4 of those. A row that fails it differs by more than the original differs from "
        "itself. The cell gives the largest |diff| and the largest |diff| / limit. On NumPyro "
        "dualguide's fit shares the original's random stream, so |diff| is ~0 there.",
        "",
        "*CI crosscheck* = the short crosscheck `tests/test_gallery.py` runs "
        f"({CI['steps']} steps, {CI['particles']} particles): both backends fit and the "
        "log-density and gradient parity checks pass.",
        "",
        "| model | ported from NumPyro | ported from Pyro | crosscheck | CI crosscheck | agrees "
        "with NumPyro original | agrees with Pyro original | steps/s NumPyro | steps/s Pyro | "
        "missing |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        sps = []
        for b in FILES:
            nat = r.native.get(b, {}).get("steps_per_second")
            sps.append(_sps(r.steps_per_second.get(b)) + (f" ({_sps(nat)})" if nat else ""))
        agree = [_agreement(r, b).replace("|", "\\|") for b in FILES]
        lines.append(
            f"| [{r.name}](gallery/{r.name}.md) | {_yes(r.port['numpyro'])} | "
            f"{_yes(r.port['pyro'])} | {r.crosscheck} | {r.ci_crosscheck} | {agree[0]} | "
            f"{agree[1]} | "
            f"{sps[0]} | {sps[1]} | {missing_text(r)} |"
        )
    lines += ["", "Regenerate at full settings: `python examples/gallery/scoreboard.py`.", ""]
    text = "\n".join(lines)
    (DOCS / "gallery.md").write_text(text, encoding="utf-8")
    return text


def write_page(r: ModelResult) -> None:
    st = settings(r.name)
    lines = [
        f"# Gallery: {r.name}",
        "",
        f"NumPyro version: {docstring(r.name, 'numpyro')}",
        "",
        f"Pyro version: {docstring(r.name, 'pyro')}",
        "",
        f"Settings: {st['steps']} steps, {st['particles']} particles, {optimizer_text(st)}.",
        "",
        "| | NumPyro file | Pyro file |",
        "|---|---|---|",
        f"| ported | {_yes(r.port['numpyro'])} | {_yes(r.port['pyro'])} |",
        "| original agrees with dualguide | "
        + " | ".join(_agreement(r, b).replace("|", "\\|") for b in FILES)
        + " |",
        "",
        f"Crosscheck (of the program ported from {r.crosscheck_from or '-'}): **{r.crosscheck}**",
    ]
    lines += [f"- {f}" for f in r.crosscheck_failures]
    for fw in FILES:
        if r.port[fw].lines:
            lines += ["", f"What the port of `{FILES[fw]}` reported:", ""]
            lines += [f"- {ln}" for ln in r.port[fw].lines]
    if r.plot:
        lines += ["", f"![crosscheck plot]({r.plot})"]
    fw = r.crosscheck_from or "numpyro"
    if r.port[fw].source:
        lines += ["", f"The neutral program (ported from `{FILES[fw]}`):", "", "```python"]
        lines += [r.port[fw].source.rstrip(), "```"]
    lines.append("")
    (DOCS / "gallery" / f"{r.name}.md").write_text("\n".join(lines), encoding="utf-8")


def expected_of(results: list[ModelResult]) -> dict:
    """The statuses CI holds the gallery to (see tests/test_gallery.py)."""
    return {
        r.name: {
            "port_numpyro": r.port["numpyro"].status,
            "port_pyro": r.port["pyro"].status,
            "ci_crosscheck": r.ci_crosscheck,
            "ci_crosscheck_from": r.crosscheck_from,
        }
        for r in results
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reduced", action="store_true", help="1/10 of each model's steps")
    p.add_argument("--models", default="", help="comma-separated subset (default: all)")
    p.add_argument("--no-native", action="store_true", help="skip the native originals")
    p.add_argument(
        "--rewrite", action="store_true", help="only rewrite the pages from the stored results"
    )
    p.add_argument(
        "--ci-only", action="store_true", help="only the ports and the CI crosscheck (as CI)"
    )
    p.add_argument(
        "--originals-only",
        action="store_true",
        help="keep the stored crosscheck; port and (re)run only the comparison with the originals",
    )
    a = p.parse_args(argv)
    names = [n for n in a.models.split(",") if n] or models()
    DOCS.joinpath("gallery").mkdir(parents=True, exist_ok=True)
    results_file = DOCS / "gallery" / "results.json"
    stored = json.loads(results_file.read_text()) if results_file.exists() else {}
    if a.ci_only:  # what tests/test_gallery.py runs: the ports and the CI crosscheck
        with tempfile.TemporaryDirectory() as d:
            for n in names:
                r = _from_dict(stored[n]) if n in stored else ModelResult(n)
                mods = {}
                for fw in FILES:
                    r.port[fw], mods[fw] = port_one(n, fw, Path(d) / f"{n}_{fw}_neutral.py")
                fw = next((f for f in FILES if mods[f] is not None), None)
                r.crosscheck_from = fw or ""
                r.ci_crosscheck = "-" if fw is None else ci_crosscheck(mods[fw], n)
                stored[n] = asdict(r)
                print(f"{n:<26} ci {r.ci_crosscheck}", flush=True)
                finish(stored, [n], reduced=a.reduced, native=not a.no_native)
        return 0
    if a.originals_only:  # the ports and the comparison with the originals; crosscheck kept
        with tempfile.TemporaryDirectory() as d:
            for n in names:
                t0 = time.perf_counter()
                r = _from_dict(stored[n]) if n in stored else ModelResult(n)
                mods = {}
                for fw in FILES:
                    r.port[fw], mods[fw] = port_one(n, fw, Path(d) / f"{n}_{fw}_neutral.py")
                fw = r.crosscheck_from if mods.get(r.crosscheck_from) is not None else None
                fw = fw or next((f for f in FILES if mods[f] is not None), None)
                compare_originals(r, mods[fw] if fw else None, run_settings(n, reduced=a.reduced))
                stored[n] = asdict(r)
                write_page(r)
                finish(stored, [n], reduced=a.reduced, native=True)
                print(f"{n:<24} {r.agreement}  ({time.perf_counter() - t0:.0f} s)", flush=True)
        return 0
    if a.rewrite:
        for n in names:
            if n in stored:
                write_page(_from_dict(stored[n]))
        finish(stored, [], reduced=a.reduced, native=not a.no_native)
        return 0
    with tempfile.TemporaryDirectory() as d:
        for n in names:
            t0 = time.perf_counter()
            try:
                r = score(n, reduced=a.reduced, native=not a.no_native, workdir=Path(d))
            except Exception:
                traceback.print_exc()
                continue
            stored[n] = asdict(r)
            write_page(r)
            finish(stored, [n], reduced=a.reduced, native=not a.no_native)
            print(
                f"{n:<24} numpyro {r.port['numpyro'].status:<10} pyro "
                f"{r.port['pyro'].status:<10} crosscheck {r.crosscheck:<7} "
                f"ci {r.ci_crosscheck:<7} {r.agreement}  ({time.perf_counter() - t0:.0f} s)",
                flush=True,
            )
    print(headline([_from_dict(stored[n]) for n in models() if n in stored]))
    return 0


def finish(stored: dict, done: list[str], *, reduced: bool, native: bool) -> None:
    """Write results.json, the scoreboard, expected.json (for ``done``) and the README line.

    Called after every model, so an interrupted run keeps what it finished; the scoreboard
    lists every model whose results are stored (a subset run updates its rows)."""
    (DOCS / "gallery" / "results.json").write_text(
        json.dumps(stored, indent=1, default=str), encoding="utf-8"
    )
    results = [_from_dict(stored[n]) for n in models() if n in stored]
    write_scoreboard(results, reduced=reduced, native=native)
    old = json.loads(EXPECTED.read_text()) if EXPECTED.exists() else {}
    old.update(expected_of([r for r in results if r.name in done]))
    EXPECTED.write_text(json.dumps(old, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    update_readme(headline(results))


def update_readme(figure: str) -> None:
    """Rewrite the README's gallery line (the one that starts with ``Gallery:``)."""
    readme = ROOT / "README.md"
    lines = readme.read_text(encoding="utf-8").splitlines(keepends=True)
    for i, ln in enumerate(lines):
        if ln.startswith("Gallery: "):
            lines[i] = f"Gallery: {figure} (the scoreboard: [docs/gallery.md](docs/gallery.md)).\n"
    readme.write_text("".join(lines), encoding="utf-8")


def _from_dict(d: dict) -> ModelResult:
    d = dict(d)
    d["port"] = {k: PortStatus(**v) for k, v in d["port"].items()}
    return ModelResult(**d)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONPATH", str(ROOT))
    sys.exit(main())
