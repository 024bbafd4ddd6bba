"""NumPyro side of :mod:`dualguide.nn`: the layers' kernels as jax functions, and native
networks (stax pairs through ``numpyro.module``).

A neutral network on NumPyro is a plain jax function of its weights, which are
``numpyro.param`` sites (registered by :func:`dualguide.nn.module`); no flax or equinox is
needed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpyro

from ...errors import SpecError
from ...nn import check_features as _check_features


def linear(x: Any, weight: Any, bias: Any) -> Any:
    """``x @ weight.T + bias`` (what ``torch.nn.functional.linear`` computes)."""
    _check_features(int(x.shape[-1]), tuple(int(d) for d in weight.shape))
    y = jnp.matmul(x, jnp.swapaxes(weight, -1, -2))
    return y if bias is None else y + bias


_ACTS: dict[str, Callable[..., Any]] = {
    "relu": lambda x: jax.nn.relu(x),
    "leaky_relu": lambda x, negative_slope=0.01: jax.nn.leaky_relu(x, negative_slope),
    "elu": lambda x, alpha=1.0: jax.nn.elu(x, alpha),
    "softplus": lambda x: jax.nn.softplus(x),
    "tanh": lambda x: jnp.tanh(x),
    "sigmoid": lambda x: jax.nn.sigmoid(x),
    "exp": lambda x: jnp.exp(x),
    "identity": lambda x: x,
    "softmax": lambda x, dim=-1: jax.nn.softmax(x, axis=dim),
    "log_softmax": lambda x, dim=-1: jax.nn.log_softmax(x, axis=dim),
}


def activation(kind: str, x: Any, **kwargs: Any) -> Any:
    """The activation ``kind`` (one of ``dualguide.nn.ACTIVATIONS``) applied to ``x``."""
    return _ACTS[kind](x, **kwargs)


def init_key() -> None:
    """Draw (and drop) one PRNG key, as ``numpyro.module`` does to initialize a stax network,
    so that a program with ``dg.nn.stax`` layers draws its latents from the same key stream
    as the NumPyro original (outside a seed handler: nothing)."""
    numpyro.prng_key()


def native_module(name: str, net: Any, input_shape: Any) -> Any:
    """A user's native network on NumPyro: a stax ``(init_fn, apply_fn)`` pair, initialized as
    ``numpyro.module(name, net, input_shape)`` does, but with one ``numpyro.param`` per array
    (``f"{name}.{i}.{j}"`` by position in stax's nested params, not one pytree param
    ``name$params``), so that fit results and traces stay plain arrays.  Returns the apply
    function bound to the params."""
    if isinstance(net, tuple) and len(net) == 2 and all(callable(f) for f in net):
        if input_shape is None:
            raise SpecError(
                f"nn.module({name!r}): a stax network needs input_shape= (numpyro.module's "
                "third argument), e.g. dg.nn.module(name, net, input_shape=(batch, features))"
            )
        init_fn, apply_fn = net
        key = numpyro.prng_key()
        if key is None:
            key = jax.random.PRNGKey(0)
        _, init = init_fn(key, tuple(input_shape))
        flat, tree = jax.tree_util.tree_flatten_with_path(init)
        values = []
        for path, leaf in flat:
            sub = ".".join(str(getattr(k, "idx", getattr(k, "key", k))) for k in path)
            values.append(numpyro.param(f"{name}.{sub}", leaf))
        params = jax.tree_util.tree_unflatten(tree, values)
        return lambda *args, **kwargs: apply_fn(params, *args, **kwargs)
    mod = type(net).__module__.split(".", 1)[0]
    if mod == "torch":
        raise SpecError(
            f"nn.module({name!r}): a torch.nn.Module runs only on the pyro backend; build the "
            "network with dualguide.nn (nn.Linear, nn.MLP, nn.Module) to run it on both"
        )
    raise SpecError(
        f"nn.module({name!r}): expected a dualguide.nn module (or, on NumPyro only, a stax "
        f"(init_fn, apply_fn) pair), got {type(net).__name__}"
    )
