"""The fit script written into an export: ``make_optimizer``, ``fit`` and ``main``.

``main_block`` writes the tail of an exported module: the model data of
``FIT_SETTINGS`` as literals, the neutral optimizer as the native one (with its
learning-rate schedule), a ``fit`` with the native SVI (NumPyro's ``svi.run`` or
an explicit Pyro loop that keeps dualguide's ``on_nonfinite`` rule) and a
command line (``--model``, ``--guide``, ``--steps``, ``--json``...).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import _table
from ..elbo import as_loss
from ..optim import ExponentialDecay, as_optimizer
from ._exporter import Needs
from ._source import ExportError

__all__ = ["main_block", "optimizer_code"]


def _fmt_float(x: float) -> str:
    return repr(float(x))


def optimizer_code(opt, backend: str) -> tuple[str, list[str]]:
    """Native optimizer construction for a neutral Optimizer, and notes on what differs."""
    notes: list[str] = []
    b1, b2 = (float(b) for b in opt.betas)
    lr = opt.lr
    if callable(lr):
        if not isinstance(lr, ExponentialDecay):
            raise ExportError(
                f"the learning-rate schedule {lr!r} cannot be written out; use "
                "dualguide.optim.exponential_decay(lr, rate, steps) or a number"
            )
        base, rate, steps = lr.lr, lr.rate, lr.steps
    else:
        base, rate, steps = float(lr), None, None
    if backend == "numpyro":
        names = _table.NATIVE_OPTIMIZERS[opt.name][0]
        terms = [_fmt_float(base)]
        if rate is not None:
            terms.append(f"{_fmt_float(rate)} ** (i / {_fmt_float(steps)})")
        if opt.lrd != 1.0:
            terms.append(f"{_fmt_float(opt.lrd)} ** (i + 1)")
        step_size = terms[0] if len(terms) == 1 else f"lambda i: {' * '.join(terms)}"
        args = [f"step_size={step_size}", f"b1={b1!r}", f"b2={b2!r}", f"eps={opt.eps!r}"]
        if opt.clip_norm is not None:
            args.append(f"clip_norm={opt.clip_norm!r}")
        return f"{names}(\n        {', '.join(args)}\n    )", notes
    # pyro: torch-style dict of settings
    native = _table.NATIVE_OPTIMIZERS[opt.name][1]
    clip, lrd = opt.clip_norm, opt.lrd
    if rate is not None:
        # lr * rate**(t/steps) * lrd**(t+1) == (lr/g) * (g*lrd)**(t+1) with g = rate**(1/steps):
        # Pyro's ClippedAdam multiplies its lr by lrd before every step
        g = rate ** (1.0 / steps)
        base, lrd = base / g, g * lrd
        native = native.rsplit(".", 1)[0] + ".ClippedAdam"
        notes.append(
            "the exponential learning-rate decay is Pyro's ClippedAdam lrd "
            f"(lr {base:.6g}, lrd {lrd:.8g} per step)"
        )
        if clip is None:
            clip = math.inf
    elif lrd != 1.0 and not native.endswith("ClippedAdam"):  # pragma: no cover - Adam has no lrd
        native = native.rsplit(".", 1)[0] + ".ClippedAdam"
    settings = {"lr": base, "betas": (b1, b2), "eps": opt.eps}
    if native.endswith("ClippedAdam"):
        settings["clip_norm"] = clip
        settings["lrd"] = lrd
        notes.append(
            "Pyro's ClippedAdam adds eps to sqrt(v) before bias correction (dualguide's "
            "Adam after it, as optax/jax do): a difference of order eps"
        )
    items = ", ".join(f"{_py(k)}: {_py(v)}" for k, v in settings.items())
    return f"{native}(\n        {{{items}}}\n    )", notes


def _py(v) -> str:
    if isinstance(v, float) and math.isinf(v):
        return "math.inf"
    if isinstance(v, tuple):
        return "(" + ", ".join(_py(x) for x in v) + ")"
    if isinstance(v, list):
        return "[" + ", ".join(_py(x) for x in v) + "]"
    if v is None:
        return "None"
    if isinstance(v, str):
        return json.dumps(v)
    return repr(v)


def _data_code(value, backend: str, what: str) -> str:
    """A literal for model data (numbers, lists, numpy arrays)."""
    if value is None or isinstance(value, (bool, str)):
        return repr(value)
    if isinstance(value, (int, float)):
        return repr(value)
    try:
        a = np.asarray(value)
    except Exception:  # pragma: no cover
        a = None
    if a is None or a.dtype.kind not in "biuf":
        raise ExportError(
            f"{what}: only numbers and numeric arrays can be written into the export, "
            f"got {type(value).__name__}"
        )
    lit = repr(a.tolist())
    if backend == "numpyro":
        dt = "jnp.float32" if a.dtype.kind == "f" else "jnp.int32"
        return f"jnp.asarray({lit}, dtype={dt})"
    dt = "torch.float32" if a.dtype.kind == "f" else "torch.int64"
    return f"torch.tensor({lit}, dtype={dt})"


# -------------------------------------------------------------------------------------------
# the fit script, piece by piece (the text is the exported code)
# -------------------------------------------------------------------------------------------
#: NumPyro, on_nonfinite="skip": an explicit loop that drops a non-finite step
NUMPYRO_SKIP_LOOP = """    state = svi.init(jax.random.PRNGKey(seed), *model_args, **model_kwargs)
    update = jax.jit(svi.update)
    losses = []
    for _ in range(num_steps):
        new_state, loss = update(state, *model_args, **model_kwargs)
        # dualguide's on_nonfinite="skip": a step whose loss or update is not finite is dropped
        # (its random numbers are used up, as in the dualguide fit)
        leaves = jax.tree_util.tree_leaves(new_state.optim_state)
        if np.isfinite(loss) and all(np.all(np.isfinite(leaf)) for leaf in leaves):
            state = new_state
        else:
            state = state._replace(rng_key=new_state.rng_key)
        losses.append(float(loss))
    params = svi.get_params(state)
    losses = np.asarray(losses)"""

#: NumPyro, on_nonfinite="stop": svi.run, then a non-finite loss is an error
NUMPYRO_RUN_LOOP = """    result = svi.run(
        jax.random.PRNGKey(seed), num_steps, *model_args, progress_bar=False, **model_kwargs
    )
    params, losses = result.params, np.asarray(result.losses)
    bad = np.flatnonzero(~np.isfinite(losses))
    if bad.size:
        raise FloatingPointError(f"step {bad[0]}: the loss is not finite")"""

NUMPYRO_IMPORTS = {"import jax", "import numpyro"}
PYRO_IMPORTS = {
    "import math",
    "import pyro",
    "import pyro.optim",
    "import torch",
    "from pyro import poutine",
}
#: Pyro's ELBOs that have a JIT-compiled twin (``JitTrace_ELBO``...); RenyiELBO has none
PYRO_JIT_ELBOS = {"Trace_ELBO", "TraceMeanField_ELBO", "TraceGraph_ELBO", "TraceEnum_ELBO"}


def elbo_names(fs: FitSettings, backend: str) -> tuple[str, str, str]:
    """(the native ELBO class, its JIT twin or "" (Pyro), its arguments beyond the particles)
    for the settings' neutral loss, from the row of ``_table.ELBOS``."""
    name = _table.ELBOS[fs.loss.name][_table.BACKENDS.index(backend)]
    extra = "".join(f", {k}={_py(v)}" for k, v in fs.loss.options.items())
    jit = "Jit" + name if backend == "pyro" and name in PYRO_JIT_ELBOS else ""
    return name, jit, extra


SCRIPT_IMPORTS = {"import argparse", "import json", "import numpy as np"}


@dataclass
class FitSettings:
    """A file's ``FIT_SETTINGS``, read the way ``dg.fit`` reads them."""

    optim: Any
    steps: int
    particles: int
    seed: int
    skip: bool
    model_args: tuple
    model_kwargs: dict
    #: the neutral ELBO (``FIT_SETTINGS["loss"]``, a ``dg.infer`` object or its name)
    loss: Any = None

    @classmethod
    def read(cls, settings: dict) -> FitSettings:
        loss = as_loss(
            settings.get("loss") or "Trace_ELBO",
            int(settings.get("num_particles", 1)),
            where="export: FIT_SETTINGS",
        )
        return cls(
            loss=loss,
            optim=as_optimizer(settings.get("optim")),
            steps=int(settings.get("num_steps", 2000)),
            particles=loss.num_particles,
            seed=int(settings.get("seed", 0)),
            skip=settings.get("on_nonfinite", "stop") == "skip",
            model_args=tuple(settings.get("model_args", ()) or ()),
            model_kwargs=dict(settings.get("model_kwargs", {}) or {}),
        )


#: the exported module's conversion of the file's own MODEL_ARGS / MODEL_KWARGS
NATIVE_DATA = {
    "numpyro": (
        "jnp.asarray(x, dtype=jnp.float32 if x.dtype.kind == 'f' else jnp.int32)",
        "JAX arrays: floating point as float32, integers and bools as int32",
    ),
    "pyro": (
        "torch.as_tensor(x, dtype=torch.float32 if x.dtype.kind == 'f' else torch.int64)",
        "tensors: floating point as float32, integers and bools as int64",
    ),
}


def data_lines(fs: FitSettings, backend: str, user: list[str] | None = None) -> list[str]:
    """``MODEL_ARGS = (...)`` and ``MODEL_KWARGS = {...}``: the file's own statements
    (``user``, which use its numpy data) converted to native arrays, or else native literals
    of ``FIT_SETTINGS``' model_args and model_kwargs."""
    if user is not None:
        conv, what = NATIVE_DATA[backend]
        lines = list(user)
        if not any(ln.startswith("MODEL_ARGS") for ln in user):
            lines.insert(0, "MODEL_ARGS = ()")
        if not any(ln.startswith("MODEL_KWARGS") for ln in user):
            lines.append("MODEL_KWARGS = {}")
        return [
            *lines,
            "",
            "",
            "def _native_data(args, kwargs):",
            f'    """The model data as {what}."""',
            "",
            "    def conv(x):",
            f"        return {conv} if isinstance(x, (np.ndarray, np.generic)) else x",
            "",
            "    return tuple(conv(a) for a in args), {k: conv(v) for k, v in kwargs.items()}",
            "",
            "",
            "MODEL_ARGS, MODEL_KWARGS = _native_data(MODEL_ARGS, MODEL_KWARGS)",
        ]
    margs, mkw = fs.model_args, fs.model_kwargs
    if not (margs or mkw):
        return ["MODEL_ARGS = ()", "MODEL_KWARGS = {}"]
    items = [
        _data_code(a, backend, f"FIT_SETTINGS['model_args'][{i}]") for i, a in enumerate(margs)
    ]
    kw = ", ".join(
        f"{k!r}: {_data_code(v, backend, f'model_kwargs[{k!r}]')}" for k, v in mkw.items()
    )
    return [
        f"MODEL_ARGS = ({', '.join(items)}{',' if len(items) == 1 else ''})",
        f"MODEL_KWARGS = {{{kw}}}",
    ]


def numpyro_fit(fs: FitSettings, opt_code: str, needs: Needs) -> str:
    """``make_optimizer`` and ``fit`` with NumPyro's SVI."""
    needs.imports |= NUMPYRO_IMPORTS
    elbo, _jit, extra = elbo_names(fs, "numpyro")
    needs.imports.add(f"from numpyro.infer import SVI, {elbo}")
    loop = NUMPYRO_SKIP_LOOP if fs.skip else NUMPYRO_RUN_LOOP
    steps, particles, seed = fs.steps, fs.particles, fs.seed
    return f'''

def make_optimizer():
    """The optimizer of the dualguide fit, as NumPyro's."""
    return {opt_code}


def fit(model, guide, *, num_steps={steps}, num_particles={particles}, seed={seed},
        model_args=MODEL_ARGS, model_kwargs=MODEL_KWARGS):
    """Fit ``guide`` to ``model`` with NumPyro's SVI; return (constrained params, losses)."""
    svi = SVI(model, guide, make_optimizer(), {elbo}(num_particles=num_particles{extra}))
{loop}
    return {{name: np.asarray(value) for name, value in params.items()}}, losses
'''


def pyro_fit(fs: FitSettings, opt_code: str, needs: Needs) -> str:
    """``make_optimizer``, ``_loss_and_grads`` and ``fit`` with an explicit Pyro SVI loop."""
    needs.imports |= PYRO_IMPORTS
    elbo, jit_elbo, extra = elbo_names(fs, "pyro")
    needs.imports.add(f"from pyro.infer import {', '.join(n for n in (jit_elbo, elbo) if n)}")
    make = (
        f"{jit_elbo}(ignore_jit_warnings=True, **elbo_kw) if jit else {elbo}(**elbo_kw)"
        if jit_elbo
        else f"{elbo}(**elbo_kw)"
    )
    on_bad = (
        (
            "optimizer(params)  # the loss is finite: take the step\n"
            '        # dualguide\'s on_nonfinite="skip": a step with a non-finite loss '
            "or gradient is dropped"
        )
        if fs.skip
        else (
            "optimizer(params)\n        else:\n            raise FloatingPointError("
            'f"step {step}: the loss or a gradient is not finite")'
        )
    )
    steps, particles, seed = fs.steps, fs.particles, fs.seed
    return f'''

def make_optimizer():
    """The optimizer of the dualguide fit, as Pyro's."""
    return {opt_code}


def _loss_and_grads(elbo, model, guide, model_args, model_kwargs):
    with poutine.trace(param_only=True) as param_capture:
        loss = elbo.loss_and_grads(model, guide, *model_args, **model_kwargs)
    params = {{site["value"].unconstrained() for site in param_capture.trace.nodes.values()}}
    return loss, params


def fit(model, guide, *, num_steps={steps}, num_particles={particles}, seed={seed}, jit=True,
        model_args=MODEL_ARGS, model_kwargs=MODEL_KWARGS):
    """Fit ``guide`` to ``model`` with Pyro's SVI loop; return (constrained params, losses)."""
    pyro.clear_param_store()
    pyro.set_rng_seed(seed)
    optimizer = make_optimizer()
    # particles one after another: the model never sees a particle dimension (as in NumPyro)
    elbo_kw = dict(num_particles=num_particles, vectorize_particles=False{extra})
    elbo = {make}
    losses = []
    for step in range(num_steps):
        try:
            loss, params = _loss_and_grads(elbo, model, guide, model_args, model_kwargs)
        except Exception:
            if step or not jit:
                raise
            # the program does not trace under torch.jit: fall back to {elbo}
            pyro.clear_param_store()
            pyro.set_rng_seed(seed)
            elbo = {elbo}(**elbo_kw)
            loss, params = _loss_and_grads(elbo, model, guide, model_args, model_kwargs)
        grads = [p.grad for p in params if p.grad is not None]
        if math.isfinite(loss) and all(bool(g.isfinite().all()) for g in grads):
            {on_bad}
        pyro.infer.util.zero_grads(params)
        losses.append(loss)
    store = pyro.get_param_store()
    return {{name: store[name].detach().numpy() for name in store.keys()}}, np.asarray(losses)
'''


def main_function(
    backend: str,
    fs: FitSettings,
    models: list[str],
    guides: list[str],
    model: str | None,
    guide: str,
    needs: Needs,
) -> str:
    """``MODELS_AND_GUIDES``, the command line ``main`` and the ``__main__`` guard."""
    quiet = ""
    if backend == "pyro":
        needs.imports.add("import logging")
        quiet = (
            '    logging.getLogger("pyro").setLevel(logging.WARNING)  '
            '# no "Guessed max_plate_nesting" notes\n'
        )
    steps, particles, seed = fs.steps, fs.particles, fs.seed
    return f"""

#: the functions --model and --guide can name
MODELS_AND_GUIDES = (
    {_py(sorted(models))},
    {_py(sorted(guides))},
)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Fit the exported guide with {backend}'s SVI.")
    parser.add_argument("--model", default={_py(model)}, choices=MODELS_AND_GUIDES[0] or None)
    parser.add_argument("--guide", default={_py(guide)}, choices=MODELS_AND_GUIDES[1])
    parser.add_argument("--steps", type=int, default={steps})
    parser.add_argument("--particles", type=int, default={particles})
    parser.add_argument("--seed", type=int, default={seed})
    parser.add_argument("--json", action="store_true", help="print the params as JSON")
    args = parser.parse_args(argv)
{quiet}    if args.model is None:
        parser.error("this file has no model: import it and call fit(your_model, guide)")
    params, losses = fit(globals()[args.model], globals()[args.guide], num_steps=args.steps,
                         num_particles=args.particles, seed=args.seed)
    if args.json:
        print(json.dumps({{"params": {{k: v.tolist() for k, v in params.items()}},
                          "final_loss": float(np.mean(losses[-max(1, len(losses) // 10):]))}}))
    else:
        for name, value in params.items():
            print(f"{{name}} = {{np.array2string(value, precision=4)}}")


if __name__ == "__main__":
    main()
"""


def main_block(
    backend: str,
    settings: dict,
    models: list[str],
    guides: list[str],
    model: str | None,
    guide: str,
    needs: Needs,
    data: list[str] | None = None,
) -> tuple[str, list[str]]:
    """The ``fit`` function and ``__main__`` block of the exported module, and notes on it.

    ``data``: the file's own ``MODEL_ARGS`` / ``MODEL_KWARGS`` statements, if it has them.
    """
    fs = FitSettings.read(settings)
    opt_code, notes = optimizer_code(fs.optim, backend)
    data = data_lines(fs, backend, data)
    needs.imports |= SCRIPT_IMPORTS
    write_fit = numpyro_fit if backend == "numpyro" else pyro_fit
    fit = write_fit(fs, opt_code, needs)
    main = main_function(backend, fs, models, guides, model, guide, needs)
    return "\n".join(data) + "\n" + fit + main, notes
