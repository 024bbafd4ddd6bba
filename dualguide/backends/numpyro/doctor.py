"""NumPyro side of :mod:`dualguide.doctor`: run a program with chosen latent values, batched."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from numpyro import handlers
from numpyro.distributions.transforms import biject_to

from ...trace import base_distribution, unsamplable

base_dist = base_distribution  # re-exported for dualguide.doctor


def in_support(d):
    """A deterministic value inside ``d``'s support (the image of 0 under its bijection)."""
    t = biject_to(d.support)
    shape = tuple(d.batch_shape) + tuple(d.event_shape)
    return t(jnp.zeros(t.inverse_shape(shape)))


def with_values(fn, values: dict, fill: str):
    """``fn`` with its (unobserved) sample sites named in ``values`` set to those values.

    ``fill``: ``"none"``; ``"unsamplable"`` (sites whose distribution cannot be
    sampled get an in-support value); ``"missing"`` (every site not in ``values``
    gets one).  Returns ``(wrapped, filled)``; ``filled`` lists the filled names
    once the wrapped program has run.
    """
    filled: list[str] = []

    def sub(msg):
        if msg["type"] != "sample" or msg.get("is_observed"):
            return None
        name = msg["name"]
        if name in values:
            return values[name]
        if fill == "missing" or (fill == "unsamplable" and unsamplable(msg["fn"])):
            filled.append(name)
            return in_support(msg["fn"])
        return None

    return handlers.substitute(fn, substitute_fn=sub), filled


def batched_eval(fn, args, kwargs, values: dict, shapes: dict, out_names, n: int, nest: int):
    """Run ``fn`` at ``n`` points at once (``jax.vmap``).

    ``values``: name -> numpy array of shape ``(n, *site shape)``.  Returns the
    log density of each sample site (factors and Delta sites included) summed
    over its elements, name -> ``(n,)``, and the values of ``out_names``, each
    ``(n, *site shape)``.
    """
    del shapes, nest  # vmap needs neither

    def one(vals):
        tr = handlers.trace(handlers.seed(handlers.substitute(fn, data=vals), 0)).get_trace(
            *args, **kwargs
        )
        lps = {
            k: jnp.sum(s["fn"].log_prob(s["value"])) for k, s in tr.items() if s["type"] == "sample"
        }
        return lps, {k: tr[k]["value"] for k in out_names}

    vals = {k: jnp.asarray(v) for k, v in values.items()}
    lps, outs = jax.jit(jax.vmap(one))(vals)
    return {k: np.asarray(v) for k, v in lps.items()}, {k: np.asarray(v) for k, v in outs.items()}


def batched_draws(fn, args, kwargs, names, shapes, n: int, nest: int, seed: int):
    """``n`` independent runs of ``fn`` at once: name -> values ``(n, *site shape)``."""
    del shapes, nest

    def one(key):
        tr = handlers.trace(handlers.seed(fn, key)).get_trace(*args, **kwargs)
        return {k: tr[k]["value"] for k in names}

    keys = jax.random.split(jax.random.PRNGKey(seed), n)
    return {k: np.asarray(v) for k, v in jax.jit(jax.vmap(one))(keys).items()}
