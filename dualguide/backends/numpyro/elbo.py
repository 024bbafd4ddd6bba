"""NumPyro's side of :mod:`dualguide.elbo`: ``numpyro.infer.SVI`` with the native estimator of
a row of ``_table.ELBOS``, one jitted ``svi.update`` per step, dualguide's non-finite rules."""

from __future__ import annotations

import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.infer as ni

from ... import _inputs
from ..._progress import Progress
from ..._table import ELBOS
from ...contract import FitOutput
from ...errors import SpecError


def fit(
    backend: Any,
    model: Any,
    guide: Any,
    args: tuple,
    kwargs: dict,
    opt: Any,
    *,
    loss: str,
    options: dict,
    num_steps: int,
    num_particles: int,
    seed: int,
    on_nonfinite: str,
    progress: bool | None,
    jit: bool,
) -> FitOutput:
    """Fit with ``numpyro.infer.<ELBOS[loss][0]>(num_particles, **options)``."""
    t0 = time.perf_counter()
    elbo = getattr(ni, ELBOS[loss][0])(num_particles=num_particles, **options)
    svi = ni.SVI(model, guide, backend.optimizer(opt), elbo)
    state = svi.init(jax.random.PRNGKey(seed), *args, **kwargs)

    def step(state: Any, *a: Any, **k: Any) -> tuple[Any, Any, Any, Any]:
        new, value = svi.update(state, *a, **k)
        grads_ok = jnp.all(
            jnp.asarray(
                [
                    jnp.all(jnp.isfinite(leaf))
                    for leaf in jax.tree_util.tree_leaves(new.optim_state)
                    if jnp.issubdtype(leaf.dtype, jnp.floating)
                ]
                or [True]
            )
        )
        return new, value, jnp.isfinite(value), grads_ok

    update = jax.jit(step) if jit else step
    skip = on_nonfinite == "skip"
    losses = np.full(num_steps, np.nan, dtype=_inputs.float_np())
    skipped: list[int] = []
    stopped_at, what, message, done = None, "", "", 0
    bar = Progress(num_steps, "numpyro", progress)
    try:
        for i in range(num_steps):
            new, value, loss_ok, grads_ok = update(state, *args, **kwargs)
            lv = float(value)
            losses[i] = lv
            ok = bool(loss_ok) and bool(grads_ok)
            if not ok:
                what = "loss" if not bool(loss_ok) else "gradient"
            done = i + 1
            if ok:
                state = new
            elif skip:
                skipped.append(i)
                state = state._replace(rng_key=new.rng_key)
            else:
                stopped_at, done = i, i
                break
            bar.update(1, lv)
    except KeyboardInterrupt:
        message = f"interrupted after {done} steps"
    finally:
        bar.close()
    params = {k: np.asarray(v) for k, v in svi.get_params(state).items()}
    return FitOutput(
        params=params,
        losses=losses[: done + (1 if stopped_at is not None else 0)],
        steps_done=done,
        wall_time=time.perf_counter() - t0,
        elbo=_label(loss, options),
        skipped=skipped,
        stopped_at=stopped_at,
        message=message,
        what=what or "loss",
    )


def _label(loss: str, options: dict) -> str:
    extra = ", ".join(f"{k}={v!r}" for k, v in options.items())
    return ELBOS[loss][0] + (f"({extra})" if extra else "")


def has_rsample_(d: Any, value: bool) -> Any:
    """Pyro's ``has_rsample_`` for a NumPyro distribution: ``False`` empties the instance's
    ``reparametrized_params`` (through Independent / Expanded / Masked wrappers), which is
    what NumPyro's ``has_rsample`` reads; the ELBOs then stop the sample's gradient."""
    if value:
        if not d.has_rsample:
            raise SpecError(
                f"has_rsample_(True): {type(d).__name__} has no reparameterized sampler"
            )
        return d
    inner = d
    while True:
        if "reparametrized_params" in type(inner).__dict__ or hasattr(
            inner, "reparametrized_params"
        ):
            inner.reparametrized_params = []
        nxt = getattr(inner, "base_dist", None)
        if nxt is None:
            break
        inner = nxt
    if d.has_rsample and d.arg_constraints:
        raise SpecError(f"has_rsample_(False): could not switch off rsample for {d!r}")
    return d


# -- the crosscheck's gradient and lockstep checks with a native estimator ----------------------
def _estimator(loss: str, options: dict, num_particles: int) -> Any:
    return getattr(ni, ELBOS[loss][0])(num_particles=num_particles, **options)


def _noisy(guide: Any, noise: dict | None) -> Any:
    """The guide with its continuous sites drawn from ``noise`` (the crosscheck's common
    random numbers), or the guide itself."""
    if not noise:
        return guide
    from .crosscheck import _NoiseSubstitute

    return _NoiseSubstitute(guide, noise)


def grad_draws(
    model: Any,
    guide: Any,
    params: dict,
    loss: str,
    options: dict,
    num_draws: int,
    num_particles: int,
    seed: int,
    args: tuple,
    kwargs: dict,
    noise: dict | None = None,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``num_draws`` independent values and gradients (w.r.t. the constrained ``params``) of
    the native ``<loss>(num_particles, **options)`` estimator: ``(losses, {param: (num_draws,
    ...)})``.  With ``noise`` (``{site: {kind: (num_draws, *site shape)}}``, one particle) draw
    ``i`` sets the guide's continuous sites from ``noise[site][kind][i]``."""
    from .crosscheck import _j, _set_up

    elbo = _estimator(loss, options, num_particles)
    p = _j(params)
    _set_up(guide, p, args, kwargs)

    def loss_fn(p: Any, key: Any, nz: Any) -> Any:
        return elbo.loss(key, p, model, _noisy(guide, nz), *args, **kwargs)

    vg = jax.jit(jax.value_and_grad(loss_fn))
    keys = jax.random.split(jax.random.PRNGKey(seed), num_draws)
    if loss != "TraceEnum_ELBO":  # funsor's enumeration does not vmap: one draw at a time
        jn = (
            None
            if not noise
            else {s: {k: jnp.asarray(v) for k, v in d.items()} for s, d in noise.items()}
        )
        batched = jax.jit(jax.vmap(jax.value_and_grad(loss_fn), in_axes=(None, 0, 0)))
        values, g = batched(p, keys, jn)
        return np.asarray(values, np.float64), {k: np.asarray(v) for k, v in g.items()}
    losses = np.empty(num_draws, dtype=np.float64)
    grads: dict[str, list] = {k: [] for k in p}
    for i in range(num_draws):
        nz = None
        if noise:
            nz = {s: {k: jnp.asarray(v[i]) for k, v in d.items()} for s, d in noise.items()}
        value, g = vg(p, keys[i], nz)
        losses[i] = float(value)
        for k in grads:
            grads[k].append(np.asarray(g[k]))
    return losses, {k: np.stack(v) for k, v in grads.items()}


def lockstep_run(
    model: Any,
    guide: Any,
    u0: dict,
    constraints: dict,
    noise: dict,
    opt: Any,
    args: tuple,
    kwargs: dict,
    loss: str,
    options: dict,
    steps: int,
    num_particles: int,
) -> dict:
    """SVI with the native single-particle ``<loss>`` estimator driven by ``noise[site][kind]``
    (shape (steps, particles, *site shape)): each step's loss is the mean of one native loss per
    particle, each particle's guide drawn from its noise (no noise: the guide draws nothing).
    Starts from the unconstrained ``u0``; NumPyro's own optimizer for ``opt``.  Returns
    ``{"losses": (steps,), "params": {name: (steps + 1, ...)}}`` (unconstrained)."""
    from .crosscheck import B as backend
    from .crosscheck import _bijectors, _j_tree

    bij = _bijectors(constraints)
    optim = backend.optimizer(opt)
    elbo = _estimator(loss, options, 1)
    key = jax.random.PRNGKey(0)
    tnoise = _j_tree(noise)
    num = num_particles

    def loss_fn(u: dict, t: int) -> Any:
        p = {k: bij[k](v) for k, v in u.items()}
        total = 0.0
        for j in range(num):  # unrolled: TraceEnum's funsor engine does not vmap
            nz = {s: {k: v[t, j] for k, v in d.items()} for s, d in tnoise.items()}
            total = total + elbo.loss(key, p, model, _noisy(guide, nz), *args, **kwargs)
        return total / num

    @jax.jit
    def step(state: Any, t: Any) -> tuple[Any, Any]:
        u = optim.get_params(state)
        value, g = jax.value_and_grad(loss_fn)(u, t)
        new = optim.update(g, state)
        return new, (value, optim.get_params(new))

    state = optim.init(_j_tree(u0))
    losses = np.empty(steps, dtype=_inputs.float_np())
    traj: dict[str, list] = {k: [np.asarray(v, _inputs.float_np())] for k, v in u0.items()}
    for t in range(steps):
        state, (value, u) = step(state, jnp.asarray(t))
        losses[t] = float(value)
        for k in traj:
            traj[k].append(np.asarray(u[k]))
    return {"losses": losses, "params": {k: np.stack(v) for k, v in traj.items()}}


def guide_sample_sites(guide: Any, args: tuple, kwargs: dict) -> dict:
    """The rendered ``guide``'s sample sites as :class:`~dualguide.trace.Site` objects without
    values (``dist``, ``is_observed``, ``has_rsample``, ``is_factor``), from one abstract run
    under ``jax.eval_shape``: nothing is computed and nothing is compiled (an eager trace
    compiles one XLA kernel per op and shape, most of a small fit's first call).  Raises
    whatever the abstract run raises (a guide that needs concrete values); the caller then
    traces it eagerly."""
    from numpyro import handlers

    from ...trace import Site, base_distribution

    out: dict = {}

    def run() -> int:
        with handlers.trace() as tr, handlers.seed(rng_seed=0):
            guide(*args, **kwargs)
        for name, s in tr.items():
            if s["type"] != "sample":
                continue
            d = s["fn"]
            dist_name = type(base_distribution(d)).__name__
            out[name] = Site(
                name=name,
                type="sample",
                value=None,
                dist=dist_name,
                is_observed=bool(s.get("is_observed")),
                has_rsample=bool(getattr(d, "has_rsample", False)),
                is_factor=dist_name == "Unit",
            )
        return 0

    from .autoguides import setup_eagerly

    setup_eagerly(guide, args, kwargs)  # set up under eval_shape, it would keep tracers
    jax.eval_shape(run)
    return out


def analytic_kl_sites(
    model: Any, guide: Any, params: dict, args: tuple, kwargs: dict
) -> dict[str, bool]:
    """``{site: whether NumPyro's TraceMeanField_ELBO has an analytic KL(guide || model) for
    it}`` for the model's latent sites the guide samples: the ``kl_divergence`` call NumPyro's
    estimator makes (``numpyro.distributions.kl``), on one run of the guide and the model
    replayed on it with ``params``."""
    from numpyro import handlers
    from numpyro.distributions.kl import kl_divergence

    from .crosscheck import _j

    p = _j(params)
    key = jax.random.PRNGKey(0)
    g = handlers.trace(handlers.substitute(handlers.seed(guide, key), data=p)).get_trace(
        *args, **kwargs
    )
    m = handlers.trace(
        handlers.replay(handlers.substitute(handlers.seed(model, key), data=p), g)
    ).get_trace(*args, **kwargs)
    out: dict[str, bool] = {}
    for name, site in m.items():
        if site["type"] != "sample" or site.get("is_observed") or name not in g:
            continue
        try:
            kl_divergence(g[name]["fn"], site["fn"])
            out[name] = True
        except NotImplementedError:
            out[name] = False
    return out
