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
