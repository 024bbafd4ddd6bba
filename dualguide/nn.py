"""Neural networks in models and guides, written once (amortized inference, Bayesian layers).

A network is built from neutral layers (:class:`Linear`, :class:`Sequential`, :class:`MLP`,
activations) or from a :class:`Module` subclass with a ``forward`` written with
:mod:`dualguide.ops` and these layers, exactly as a ``torch.nn.Module``.  Its initial weights
are drawn with numpy when the layer is built, so the same seed gives the same weights on
NumPyro and on Pyro.  Inside a model or guide, :func:`module` registers the network's weights
as params (``pyro.module`` / ``numpyro.module``); :func:`random_module` (or a :class:`Sample`
prior on a weight, ``PyroSample``-style) makes them latent variables instead.

Names: the weight at path ``path`` (torch's ``named_parameters`` spelling, ``fc1.weight``,
``0.bias``) of a network registered as ``name`` is the param (or sample site)
``f"{name}.{path}"`` -- the name a Pyro ``PyroModule`` called ``name`` gives it.  Not
``pyro.module``'s ``f"{name}.{path}"``: Pyro's ``substitute`` (and every tool built on it)
strips the part before ``$$$`` and would match ``fc1.weight`` of any network
(:func:`dualguide.porting.params.load_params` translates ``$$$`` names of a native Pyro store).

Initialization mirrors ``torch.nn.Linear.reset_parameters``: weight (out, in) and bias (out,)
both uniform on ``(-1/sqrt(in), 1/sqrt(in))`` (torch's ``kaiming_uniform_(a=sqrt(5))`` has
exactly that bound), drawn from numpy's ``default_rng``: a layer's ``seed=``, else the module
generator that :func:`manual_seed` resets (seed 0 at import).

On each backend the layers run the framework's own kernels: ``torch.nn.functional.linear``
and ``torch.nn.functional.relu`` ... on Pyro, ``x @ W.T + b`` and ``jax.nn.relu`` ... on
NumPyro (the backends' ``nn`` feature modules).

>>> import numpy as np
>>> import dualguide as dg
>>> from dualguide import distributions as dist, nn
>>> nn.manual_seed(0)
>>> decoder = nn.MLP([2, 16, 8], activation=nn.Softplus, output_activation=nn.Sigmoid)
>>> def model(x):
...     decode = dg.nn.module("decoder", decoder)
...     with dg.plate("data", x.shape[0]):
...         z = dg.sample("z", dist.Normal(np.zeros(2, np.float32), 1.0).to_event(1))
...         dg.sample("x", dist.Bernoulli(decode(z)).to_event(1), obs=x)
>>> sorted(decoder.init_params())[:2]
['0.bias', '0.weight']
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np

from . import _state
from .errors import SpecError

__all__ = [
    "ELU",
    "Exp",
    "Identity",
    "LeakyReLU",
    "Linear",
    "LogSoftmax",
    "MLP",
    "Module",
    "ReLU",
    "Sample",
    "Sequential",
    "Sigmoid",
    "Softmax",
    "Softplus",
    "Tanh",
    "elu",
    "leaky_relu",
    "linear",
    "manual_seed",
    "module",
    "param_name",
    "random_module",
    "record_networks",
    "relu",
    "stax",
]

#: separator between a network's registered name and a weight's path (``PyroModule``'s)
SEP = "."

_rng = np.random.default_rng(0)


def check_features(n_in: int, weight_shape: tuple[int, ...]) -> None:
    """Raise a :class:`SpecError` unless ``n_in`` (the input's last dim) is the layer's
    ``in_features`` (the last dim of ``weight_shape``).

    Called by the backends' ``linear`` kernels with plain ints, which they read from the
    arrays themselves: on Pyro, reading a size under JIT tracing is allowed only in
    framework code (a shape test in user-level code, or here, would stop the JIT trace).

    >>> check_features(3, (4, 3))
    """
    if int(weight_shape[-1]) != int(n_in):
        raise SpecError(
            f"nn.linear: the input's last dim is {int(n_in)} but the layer takes "
            f"{int(weight_shape[-1])} features (weight shape {tuple(weight_shape)}); "
            "check the network's in_features against the data"
        )


def manual_seed(seed: int) -> None:
    """Reset the generator that layers built without ``seed=`` draw their initial weights from.

    The same seed then builds the same network on any backend (the draw is numpy's).

    >>> from dualguide import nn
    >>> nn.manual_seed(3); a = nn.Linear(2, 2).init_params()["weight"]
    >>> nn.manual_seed(3); b = nn.Linear(2, 2).init_params()["weight"]
    >>> bool((a == b).all())
    True
    """
    global _rng
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise SpecError(f"nn.manual_seed: seed must be an int, got {seed!r}")
    _rng = np.random.default_rng(int(seed))


def _generator(seed: int | np.random.Generator | None) -> np.random.Generator:
    if seed is None:
        return _rng
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(int(seed))


def param_name(name: str, path: str) -> str:
    """The param / sample site name of weight ``path`` of a network registered as ``name``.

    >>> param_name("encoder", "fc1.weight")
    'encoder.fc1.weight'
    """
    return f"{name}{SEP}{path}"


# ---------------------------------------------------------------------------------------------
# priors on weights
# ---------------------------------------------------------------------------------------------
class Sample:
    """A prior on a weight (``PyroSample``-style): the weight becomes a latent sample site.

    ``Sample(dist.Normal, 0.0, 1.0)`` calls the neutral constructor with these arguments when
    the network is registered (so the active backend builds it), expands it to the weight's
    shape and makes every dim an event dim.  A zero-argument callable returning a
    distribution is accepted too (``Sample(lambda: dist.Normal(0.0, 1.0))``).

    >>> from dualguide import distributions as dist, nn
    >>> layer = nn.Linear(3, 2, seed=0)
    >>> layer.weight = nn.Sample(dist.Normal, 0.0, 1.0)   # a Bayesian weight, a learned bias
    >>> [p for p, v in layer.named_parameters() if isinstance(v, nn.Sample)]
    ['weight']
    """

    def __init__(self, fn: Callable[..., Any], *args: Any, **kwargs: Any):
        if not callable(fn):
            raise SpecError(
                f"nn.Sample: expected a distribution constructor such as dist.Normal (with its "
                f"arguments) or a callable returning a distribution, got {fn!r}"
            )
        self.fn, self.args, self.kwargs = fn, args, kwargs
        self.shape: tuple[int, ...] | None = None

    def build(self, shape: tuple[int, ...], where: str) -> Any:
        """The prior for a weight of ``shape`` on the active backend (batch dims -> event)."""
        d = self.fn(*self.args, **self.kwargs)
        if not hasattr(d, "batch_shape") or not hasattr(d, "to_event"):
            raise SpecError(f"{where}: the prior {self!r} did not build a distribution: {d!r}")
        ev = tuple(d.event_shape)
        full = tuple(d.batch_shape) + ev
        if full != tuple(shape):
            if ev:
                raise SpecError(
                    f"{where}: the prior has event shape {ev} but the weight has shape {shape}; "
                    "give a scalar prior (it is expanded) or one of the weight's shape"
                )
            try:
                d = d.expand(tuple(shape))
            except Exception:
                raise SpecError(
                    f"{where}: the prior's batch shape {tuple(d.batch_shape)} does not expand "
                    f"to the weight's shape {tuple(shape)}"
                ) from None
        nb = len(d.batch_shape)
        return d.to_event(nb) if nb else d

    def __repr__(self) -> str:
        name = getattr(self.fn, "name", getattr(self.fn, "__name__", repr(self.fn)))
        args = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return f"Sample({name}{', ' if args else ''}{', '.join(args)})"


# ---------------------------------------------------------------------------------------------
# modules
# ---------------------------------------------------------------------------------------------
class Module:
    """Base class of neutral networks; subclass it as a ``torch.nn.Module``.

    Assign layers and :class:`Module` s as attributes in ``__init__`` (after
    ``super().__init__()``), register weights with :meth:`register_parameter` (a numpy array:
    its initial value), and write ``forward`` with :mod:`dualguide.ops` and layers.  Calling
    the module runs ``forward``: inside a program with the values :func:`module` or
    :func:`random_module` bound, outside one with the values :meth:`load` set (else the
    initial values).

    >>> import numpy as np
    >>> from dualguide import nn, ops
    >>> class Encoder(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.fc1 = nn.Linear(8, 16, seed=1)
    ...         self.fc_loc = nn.Linear(16, 2, seed=2)
    ...         self.fc_scale = nn.Linear(16, 2, seed=3)
    ...     def forward(self, x):
    ...         h = ops.softplus(self.fc1(x))
    ...         return self.fc_loc(h), ops.exp(self.fc_scale(h))
    >>> [p for p, _ in Encoder().named_parameters()][:3]
    ['fc1.weight', 'fc1.bias', 'fc_loc.weight']
    """

    def __init__(self) -> None:
        object.__setattr__(self, "_params", {})
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "_bound", None)  # (backend object, {name: native array})
        object.__setattr__(self, "_loaded", {})  # {name: numpy} set by load()

    # -- attributes ---------------------------------------------------------------------------
    def _check_init(self) -> None:
        if "_params" not in self.__dict__:
            raise SpecError(
                f"{type(self).__name__}: call super().__init__() at the top of __init__ before "
                "assigning layers or weights"
            )

    def __setattr__(self, key: str, value: Any) -> None:
        if isinstance(value, Module):
            self._check_init()
            self._params.pop(key, None)
            self._modules[key] = value
        elif isinstance(value, Sample):
            self._check_init()
            if key not in self._params:
                raise SpecError(
                    f"{type(self).__name__}.{key}: a Sample prior replaces an existing weight "
                    f"(one of {', '.join(self._params) or 'none'}); register the weight first"
                )
            old = self._params[key]
            own = Sample(value.fn, *value.args, **value.kwargs)  # its own copy, with the shape
            own.shape = old.shape if isinstance(old, Sample) else tuple(np.shape(old))
            self._params[key] = own
        elif key in self.__dict__.get("_params", {}):
            self.register_parameter(key, value)
        else:
            object.__setattr__(self, key, value)

    def __getattr__(self, key: str) -> Any:
        d = self.__dict__
        if "_params" in d and key in d["_params"]:
            return self._value(key)
        if "_modules" in d and key in d["_modules"]:
            return d["_modules"][key]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {key!r}")

    def register_parameter(self, name: str, init: Any) -> None:
        """Add weight ``name`` with initial value ``init`` (numbers or a numpy array).

        >>> from dualguide import nn
        >>> m = nn.Module(); m.register_parameter("w", [1.0, 2.0]); m.init_params()["w"].shape
        (2,)
        """
        self._check_init()
        if isinstance(init, Sample):
            setattr(self, name, init)
            return
        try:
            arr = np.array(init, dtype=np.float32)
        except (TypeError, ValueError):
            raise SpecError(
                f"{type(self).__name__}.{name}: a weight's initial value must be numbers or a "
                f"numpy array, got {type(init).__name__}"
            ) from None
        self._params[name] = arr

    # -- structure ----------------------------------------------------------------------------
    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """``(path, module)`` for this module and every submodule, in torch's order."""
        yield prefix, self
        for k, m in self._modules.items():
            yield from m.named_modules(f"{prefix}.{k}" if prefix else k)

    def named_parameters(self) -> list[tuple[str, Any]]:
        """``(path, initial numpy value or Sample)`` for every weight, in torch's order
        (own weights first, then each submodule's)."""
        out = []
        for path, m in self.named_modules():
            for k, v in m._params.items():
                out.append((f"{path}.{k}" if path else k, v))
        return out

    def init_params(self) -> dict[str, np.ndarray]:
        """``{path: initial value}`` of the learnable weights (those without a prior), float32."""
        return {p: v.copy() for p, v in self.named_parameters() if not isinstance(v, Sample)}

    def _resolve(self, path: str) -> tuple[Module, str]:
        *mods, leaf = path.split(".")
        m = self
        for k in mods:
            m = m._modules[k]
        return m, leaf

    # -- values -------------------------------------------------------------------------------
    def _value(self, key: str) -> Any:
        bound = self._bound
        b = _state.current()
        if bound is not None and bound[0] is b and key in bound[1]:
            return bound[1][key]
        v = self._loaded.get(key, self._params[key])
        if isinstance(v, Sample):
            raise SpecError(
                f"{type(self).__name__}.{key} has a prior (a Sample): register the network "
                "with dg.nn.module(name, net) inside the model to draw it, or load values "
                "with net.load(params)"
            )
        return b.to_array(v)

    def _bind(self, backend: Any, values: Mapping[str, Any]) -> None:
        per: dict[int, dict[str, Any]] = {}
        for path, v in values.items():
            m, leaf = self._resolve(path)
            per.setdefault(id(m), {})[leaf] = v
        for _path, m in self.named_modules():
            object.__setattr__(m, "_bound", (backend, per.get(id(m), {})))

    def load(self, params: Mapping[str, Any], name: str | None = None) -> Module:
        """Use these weights when the module is called outside a program (returns ``self``).

        Registering the network in a program (:func:`module`) still starts from its initial
        weights; to start a fit elsewhere, pass ``init_params=`` to ``dg.fit``.

        ``params``: ``{path: value}``, or a fit's params with ``name`` the name the network
        was registered under (keys ``f"{name}.{path}"``, or ``pyro.module``'s ``f"{name}$$${path}"``; others are
        ignored).

        >>> from dualguide import nn
        >>> lin = nn.Linear(1, 1, seed=0).load({"weight": [[2.0]], "bias": [0.5]})
        >>> float(lin(np.ones((1, 1), np.float32))[0, 0])
        2.5
        """
        own = dict(self.named_parameters())
        if name is not None:
            pres = (name + SEP, name + "$$$")
            params = {k[len(p) :]: v for k, v in params.items() for p in pres if k.startswith(p)}
        unknown = sorted(set(params) - set(own))
        if unknown:
            raise SpecError(
                f"{type(self).__name__}.load: no weight {unknown[0]!r}; its weights are "
                f"{', '.join(own)}"
            )
        for path, v in params.items():
            m, leaf = self._resolve(path)
            arr = np.asarray(_state.current().to_numpy(v) if not _plain(v) else v, np.float32)
            want = own[path].shape
            if want is not None and tuple(arr.shape) != tuple(want):
                raise SpecError(
                    f"{type(self).__name__}.load: {path!r} has shape {tuple(arr.shape)}, the "
                    f"weight has shape {tuple(want)}"
                )
            m._loaded[leaf] = arr
        for _p, m in self.named_modules():
            object.__setattr__(m, "_bound", None)
        return self

    # -- calling ------------------------------------------------------------------------------
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """The network's computation (override it)."""
        raise NotImplementedError(f"{type(self).__name__} defines no forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not self._modules:
            return head + ")"
        lines = [head]
        for k, m in self._modules.items():
            sub = repr(m).replace("\n", "\n  ")
            lines.append(f"  ({k}): {sub}")
        return "\n".join(lines) + "\n)"


def _plain(v: Any) -> bool:
    return isinstance(v, (int, float, list, tuple, np.ndarray, np.generic))


class Linear(Module):
    """``y = x @ weight.T + bias``, as ``torch.nn.Linear`` (weight shape ``(out, in)``).

    Initial weights: uniform on ``(-1/sqrt(in_features), 1/sqrt(in_features))`` for weight
    and bias (torch's default), drawn from ``seed`` (an int or numpy Generator) or the
    generator :func:`manual_seed` resets.

    >>> import numpy as np
    >>> from dualguide import nn
    >>> lin = nn.Linear(3, 2, seed=0)
    >>> lin.init_params()["weight"].shape, bool(abs(lin.init_params()["bias"]).max() <= 3**-0.5)
    ((2, 3), True)
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        seed: int | np.random.Generator | None = None,
    ):
        super().__init__()
        for what, n in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
                raise SpecError(f"nn.Linear: {what} must be a positive int, got {n!r}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        rng = _generator(seed)
        bound = 1.0 / math.sqrt(self.in_features)
        self.register_parameter(
            "weight", rng.uniform(-bound, bound, (self.out_features, self.in_features))
        )
        if bias:
            self.register_parameter("bias", rng.uniform(-bound, bound, (self.out_features,)))

    def forward(self, x: Any) -> Any:
        if "bias" in self._params:
            return linear(x, self.weight, self.bias)
        return linear(x, self.weight, None)

    def extra_repr(self) -> str:
        bias = "bias" in self._params
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={bias}"


def linear(x: Any, weight: Any, bias: Any = None) -> Any:
    """``x @ weight.T + bias`` with the backend's kernel (``torch.nn.functional.linear``).

    >>> import numpy as np, dualguide as dg
    >>> from dualguide import nn
    >>> with dg.use_backend("pyro"):
    ...     y = nn.linear(np.ones((1, 2), np.float32), np.eye(2, dtype=np.float32))
    >>> y.tolist()
    [[1.0, 1.0]]
    """
    b = _state.backend_of_type(type(x)) or _state.current()
    x, weight = _native(b, x), _native(b, weight)
    bias = None if bias is None else _native(b, bias)
    return _state.feature(b, "nn").linear(x, weight, bias)  # checks the feature dims


def _native(b: Any, v: Any) -> Any:
    """``v`` as an array of backend ``b`` (numbers and numpy arrays as float32)."""
    if isinstance(v, b.array_types):
        return v
    return b.to_array(np.asarray(v, np.float32) if _plain(v) else v)


def _activation(kind: str, x: Any, **kw: Any) -> Any:
    b = _state.backend_of_type(type(x)) or _state.current()
    return _state.feature(b, "nn").activation(kind, _native(b, x), **kw)


def relu(x: Any) -> Any:
    """``max(x, 0)`` (``torch.nn.functional.relu`` / ``jax.nn.relu``)."""
    return _activation("relu", x)


def leaky_relu(x: Any, negative_slope: float = 0.01) -> Any:
    """``x`` where positive, else ``negative_slope * x`` (torch's default slope 0.01)."""
    return _activation("leaky_relu", x, negative_slope=negative_slope)


def elu(x: Any, alpha: float = 1.0) -> Any:
    """``x`` where positive, else ``alpha * (exp(x) - 1)``."""
    return _activation("elu", x, alpha=alpha)


class _Act(Module):
    kind = ""

    def __init__(self, **kw: Any):
        super().__init__()
        self._kw = kw

    def forward(self, x: Any) -> Any:
        return _activation(self.kind, x, **self._kw)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self._kw.items())


class ReLU(_Act):
    """``max(x, 0)``, as ``torch.nn.ReLU``."""

    kind = "relu"

    def __init__(self) -> None:
        super().__init__()


class LeakyReLU(_Act):
    """``torch.nn.LeakyReLU(negative_slope=0.01)``."""

    kind = "leaky_relu"

    def __init__(self, negative_slope: float = 0.01):
        super().__init__(negative_slope=float(negative_slope))


class ELU(_Act):
    """``torch.nn.ELU(alpha=1.0)``."""

    kind = "elu"

    def __init__(self, alpha: float = 1.0):
        super().__init__(alpha=float(alpha))


class Softplus(_Act):
    """``log(1 + exp(x))``, as ``torch.nn.Softplus()`` (beta 1; torch's linear branch above
    20 agrees with jax's to float32 rounding)."""

    kind = "softplus"

    def __init__(self) -> None:
        super().__init__()


class Tanh(_Act):
    """Elementwise ``tanh``."""

    kind = "tanh"

    def __init__(self) -> None:
        super().__init__()


class Sigmoid(_Act):
    """Elementwise logistic sigmoid."""

    kind = "sigmoid"

    def __init__(self) -> None:
        super().__init__()


class Exp(_Act):
    """Elementwise ``exp`` (a positive output, e.g. a scale; ``stax.Exp``)."""

    kind = "exp"

    def __init__(self) -> None:
        super().__init__()


class Identity(_Act):
    """Returns its input."""

    kind = "identity"

    def __init__(self) -> None:
        super().__init__()


class Softmax(_Act):
    """Softmax over axis ``dim`` (default the last)."""

    kind = "softmax"

    def __init__(self, dim: int = -1):
        super().__init__(dim=int(dim))


class LogSoftmax(_Act):
    """Log-softmax over axis ``dim`` (default the last)."""

    kind = "log_softmax"

    def __init__(self, dim: int = -1):
        super().__init__(dim=int(dim))


#: activation kinds the backends' ``nn`` feature implements
ACTIVATIONS = (
    "relu",
    "leaky_relu",
    "elu",
    "softplus",
    "tanh",
    "sigmoid",
    "exp",
    "identity",
    "softmax",
    "log_softmax",
)


class Sequential(Module):
    """Modules applied in order; children are named ``"0"``, ``"1"``, ... as in torch.

    >>> from dualguide import nn
    >>> net = nn.Sequential(nn.Linear(2, 4, seed=0), nn.Tanh(), nn.Linear(4, 1, seed=1))
    >>> [p for p, _ in net.named_parameters()]
    ['0.weight', '0.bias', '2.weight', '2.bias']
    """

    def __init__(self, *modules: Module):
        super().__init__()
        for i, m in enumerate(modules):
            if isinstance(m, type) and issubclass(m, Module):
                raise SpecError(
                    f"nn.Sequential: item {i} is the class {m.__name__}; pass an instance "
                    f"({m.__name__}())"
                )
            if not isinstance(m, Module):
                raise SpecError(
                    f"nn.Sequential: item {i} is {type(m).__name__}, not a dualguide.nn module"
                )
            setattr(self, str(i), m)

    def __len__(self) -> int:
        return len(self._modules)

    def __getitem__(self, i: int) -> Module:
        return list(self._modules.values())[i]

    def forward(self, x: Any) -> Any:
        for m in self._modules.values():
            x = m(x)
        return x


class MLP(Sequential):
    """``Linear(sizes[0], sizes[1])``, activation, ..., ``Linear(sizes[-2], sizes[-1])``
    [, output activation], as a :class:`Sequential` (paths ``0.weight``, ``2.weight``, ...).

    ``activation`` / ``output_activation``: a module class (``nn.ReLU``) or instance.

    >>> from dualguide import nn
    >>> net = nn.MLP([3, 8, 8, 1], activation=nn.Tanh, seed=0)
    >>> len(net), [p for p, _ in net.named_parameters()][-1]
    (5, '4.bias')
    """

    def __init__(
        self,
        sizes: list[int] | tuple[int, ...],
        activation: Any = None,
        output_activation: Any = None,
        *,
        seed: int | np.random.Generator | None = None,
    ):
        sizes = list(sizes)
        if len(sizes) < 2:
            raise SpecError(f"nn.MLP: sizes needs at least an input and an output, got {sizes}")
        rng = _generator(seed)
        act = ReLU if activation is None else activation
        layers: list[Module] = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(Linear(a, b, seed=rng))
            if i < len(sizes) - 2:
                layers.append(act() if isinstance(act, type) else act)
        if output_activation is not None:
            oa = output_activation
            layers.append(oa() if isinstance(oa, type) else oa)
        super().__init__(*layers)


# ---------------------------------------------------------------------------------------------
# stax: NumPyro's jax.example_libraries.stax layers, sized when registered
# ---------------------------------------------------------------------------------------------
class _StaxLayer(Module):
    """A stax layer: its weights are made when the network is registered with an input shape
    (``dg.nn.module(name, net, input_shape)``, as ``numpyro.module``)."""

    def build(self, shape: Any) -> Any:
        """Make the weights for inputs of ``shape``; return the output shape."""
        return shape


class _StaxDense(_StaxLayer):
    def __init__(self, out_dim: int, seed: int | np.random.Generator | None = None):
        super().__init__()
        if isinstance(out_dim, bool) or not isinstance(out_dim, (int, np.integer)) or out_dim < 1:
            raise SpecError(f"nn.stax.Dense: out_dim must be a positive int, got {out_dim!r}")
        object.__setattr__(self, "out_dim", int(out_dim))
        object.__setattr__(self, "_seed", seed)

    def build(self, shape: Any) -> Any:
        n_in = int(shape[-1])
        if "0" not in self._params:
            # stax's defaults: W glorot_normal (a truncated normal, fan_avg), b normal(1e-6)
            rng = _generator(self._seed)
            std = math.sqrt(2.0 / (n_in + self.out_dim)) / 0.87962566103423978
            w = rng.standard_normal((n_in, self.out_dim))
            while np.any(np.abs(w) > 2.0):
                bad = np.abs(w) > 2.0
                w[bad] = rng.standard_normal(int(bad.sum()))
            self.register_parameter("0", w * std)
            self.register_parameter("1", rng.standard_normal(self.out_dim) * 1e-6)
        return (*tuple(shape)[:-1], self.out_dim)

    def forward(self, x: Any) -> Any:
        w = self._value("0")
        return _native(_state.current(), x) @ w + self._value("1")

    def extra_repr(self) -> str:
        return f"{self.out_dim}"


class _StaxAct(_StaxLayer):
    def __init__(self, kind: str, **kw: Any):
        super().__init__()
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "_kw", kw)

    def forward(self, x: Any) -> Any:
        return _activation(self.kind, x, **self._kw)

    def extra_repr(self) -> str:
        return self.kind


class _StaxSerial(_StaxLayer):
    def __init__(self, *layers: Any):
        super().__init__()
        for i, m in enumerate(layers):
            if not isinstance(m, _StaxLayer):
                raise SpecError(
                    f"nn.stax.serial: item {i} is {type(m).__name__}, not a dg.nn.stax layer"
                )
            setattr(self, str(i), m)

    def build(self, shape: Any) -> Any:
        for m in self._modules.values():
            shape = m.build(shape)
        return shape

    def forward(self, x: Any) -> Any:
        for m in self._modules.values():
            x = m(x)
        return x


class _StaxParallel(_StaxSerial):
    def build(self, shape: Any) -> Any:
        return [m.build(s) for m, s in zip(self._modules.values(), shape)]

    def forward(self, xs: Any) -> Any:
        return [m(x) for m, x in zip(self._modules.values(), xs)]


class _StaxFanOut(_StaxLayer):
    def __init__(self, num: int):
        super().__init__()
        object.__setattr__(self, "num", int(num))

    def build(self, shape: Any) -> Any:
        return [shape] * self.num

    def forward(self, x: Any) -> Any:
        return [x] * self.num


class stax:
    """NumPyro's ``jax.example_libraries.stax`` layers, neutral (what ``dualguide port``
    writes for them): ``serial``, ``parallel``, ``Dense(out_dim)``, ``FanOut(n)`` and the
    activations ``Relu``, ``Elu``, ``LeakyRelu``, ``Softplus``, ``Sigmoid``, ``Tanh``,
    ``Exp``, ``Identity``, ``Softmax``, ``LogSoftmax`` (values, as in stax).

    A stax network's input size comes from the registration, as with ``numpyro.module``:
    ``dg.nn.module(name, net, input_shape)`` makes the weights (stax's initializers, drawn
    with numpy: ``nn.manual_seed``) the first time.  Weights are named by their position in
    stax's params, ``f"{name}.{i}.{j}"`` (``decoder.0.0`` is the first Dense's ``W``, shape
    ``(in, out)``; ``decoder.0.1`` its ``b``), the names a NumPyro ``name$params`` pytree
    flattens to.

    >>> import numpy as np, dualguide as dg
    >>> from dualguide import nn
    >>> dec = nn.stax.serial(nn.stax.Dense(4), nn.stax.Softplus, nn.stax.Dense(3), nn.stax.Sigmoid)
    >>> def model():
    ...     f = dg.nn.module("decoder", dec, (5, 2))
    ...     return f(np.zeros((5, 2), np.float32))
    >>> sorted(dg.trace(model, backend="pyro"))
    ['decoder.0.0', 'decoder.0.1', 'decoder.2.0', 'decoder.2.1']
    """

    Dense = _StaxDense
    FanOut = _StaxFanOut
    Relu = _StaxAct("relu")
    Elu = _StaxAct("elu")
    LeakyRelu = _StaxAct("leaky_relu")
    Softplus = _StaxAct("softplus")
    Sigmoid = _StaxAct("sigmoid")
    Tanh = _StaxAct("tanh")
    Exp = _StaxAct("exp")
    Identity = _StaxAct("identity")
    Softmax = _StaxAct("softmax")
    LogSoftmax = _StaxAct("log_softmax")

    @staticmethod
    def serial(*layers: Any) -> Module:
        """Layers applied in order (``stax.serial``)."""
        return _StaxSerial(*layers)

    @staticmethod
    def parallel(*layers: Any) -> Module:
        """Each layer applied to its own input of a list (``stax.parallel``)."""
        return _StaxParallel(*layers)


# ---------------------------------------------------------------------------------------------
# registering a network in a program
# ---------------------------------------------------------------------------------------------
def _check_name(name: Any, what: str) -> str:
    if not isinstance(name, str) or not name:
        raise SpecError(f"{what}: the network's name must be a non-empty string, got {name!r}")
    return name


def module(name: str, net: Any, input_shape: tuple[int, ...] | None = None) -> Any:
    """Register ``net``'s weights in the running model or guide; return the callable network.

    For a :class:`Module`: every weight at path ``p`` becomes ``dg.param(f"{name}.{p}",
    initial value)`` (``PyroModule``'s names), or, if it has a :class:`Sample` prior, the
    sample site of that name; the network (returned, and ``net`` itself, as with
    ``pyro.module``) then computes with those values.  Both backends run the same network.

    A native network is accepted for one backend only (it cannot be cross-checked, exported
    or ported): a ``torch.nn.Module`` on Pyro (``pyro.module(name, net)``), a stax pair
    ``(init_fn, apply_fn)`` with ``input_shape`` on NumPyro (``numpyro.module``).

    >>> import numpy as np, dualguide as dg
    >>> from dualguide import nn
    >>> net = nn.Linear(2, 1, seed=0)
    >>> def guide():
    ...     f = dg.nn.module("f", net)
    ...     return f(np.ones((3, 2), np.float32))
    >>> sorted(dg.trace(guide, backend="pyro"))
    ['f.bias', 'f.weight']
    """
    _check_name(name, "nn.module")
    if not isinstance(net, Module):
        return _state.feature(_state.current(), "nn").native_module(name, net, input_shape)
    if isinstance(net, _StaxLayer):
        if input_shape is None:
            raise SpecError(
                f"nn.module({name!r}): a stax network needs input_shape= (numpyro.module's "
                "third argument), e.g. dg.nn.module(name, net, (batch, features))"
            )
        if not net.__dict__.get("_built", False):  # sized once (a later call may be traced
            net.build(tuple(input_shape))  # by Pyro's JIT: no sizes read then)
            object.__setattr__(net, "_built", True)
        _state.feature(_state.current(), "nn").init_key()  # numpyro.module's init key
    return _register(name, net, {})


def random_module(name: str, net: Module, prior: Any) -> Module:
    """Put priors on ``net``'s weights and draw them (``pyro.random_module``), inside a model.

    ``prior``: a :class:`Sample` for every weight, or ``{path: Sample}`` for some (the others
    stay learnable params).  Each drawn weight is the sample site ``f"{name}.{path}"`` with
    the prior expanded to the weight's shape (all dims event dims).  Returns ``net`` computing
    with the drawn weights; ``net`` itself keeps its priors unset (unlike assigning
    :class:`Sample` attributes, which is permanent).

    >>> import numpy as np, dualguide as dg
    >>> from dualguide import distributions as dist, nn
    >>> net = nn.Linear(1, 1, seed=0)
    >>> def model():
    ...     f = dg.nn.random_module("bnn", net, nn.Sample(dist.Normal, 0.0, 1.0))
    ...     return f(np.ones((1, 1), np.float32))
    >>> sorted(dg.trace(model, backend="numpyro"))
    ['bnn.bias', 'bnn.weight']
    """
    _check_name(name, "nn.random_module")
    if not isinstance(net, Module):
        raise SpecError(
            f"nn.random_module({name!r}): expected a dualguide.nn module, got {type(net).__name__}"
        )
    paths = dict(net.named_parameters())
    if isinstance(prior, Sample):
        priors = {p: prior for p in paths}
    elif isinstance(prior, Mapping):
        priors = dict(prior)
        unknown = sorted(set(priors) - set(paths))
        if unknown:
            raise SpecError(
                f"nn.random_module({name!r}): prior for {unknown[0]!r}, which is not a weight "
                f"of the network (its weights: {', '.join(paths)})"
            )
        for k, v in priors.items():
            if not isinstance(v, Sample):
                raise SpecError(
                    f"nn.random_module({name!r}): prior[{k!r}] must be an nn.Sample, e.g. "
                    f"nn.Sample(dist.Normal, 0.0, 1.0); got {v!r}"
                )
    else:
        raise SpecError(
            f"nn.random_module({name!r}): prior must be an nn.Sample (for every weight) or a "
            f"dict {{path: nn.Sample}}; got {prior!r}"
        )
    return _register(name, net, priors)


#: open :func:`record_networks` blocks (innermost last)
_recorders: list[dict[str, tuple[str, str]]] = []


@contextmanager
def record_networks() -> Iterator[dict[str, tuple[str, str]]]:
    """Record the network weights registered while the block runs.

    Yields a dict ``{param or site name: (network name, "param" or "sample")}`` that
    :func:`module` and :func:`random_module` fill (a weight with a prior is a ``"sample"``
    site).  The crosscheck reads it to know which params are network weights (not
    identifiable one by one: compared through what the networks compute).

    >>> import numpy as np, dualguide as dg
    >>> from dualguide import nn
    >>> net = nn.Linear(2, 1, seed=0)
    >>> def guide():
    ...     return dg.nn.module("f", net)(np.ones((3, 2), np.float32))
    >>> with nn.record_networks() as rec:
    ...     _ = dg.trace(guide, backend="numpyro")
    >>> sorted(rec.items())
    [('f.bias', ('f', 'param')), ('f.weight', ('f', 'param'))]
    """
    rec: dict[str, tuple[str, str]] = {}
    _recorders.append(rec)
    try:
        yield rec
    finally:
        _recorders.remove(rec)


def _register(name: str, net: Module, priors: Mapping[str, Sample]) -> Module:
    from . import primitives

    b = _state.current()
    values: dict[str, Any] = {}
    for path, v in net.named_parameters():
        full = param_name(name, path)
        prior = priors.get(path, v if isinstance(v, Sample) else None)
        for rec in _recorders:
            rec[full] = (name, "param" if prior is None else "sample")
        if prior is not None:
            shape = v.shape if isinstance(v, Sample) else tuple(np.shape(v))
            d = prior.build(tuple(shape or ()), f"weight {full!r}")
            values[path] = primitives.sample(full, d)
        else:
            values[path] = primitives.param(full, v)  # the initial weights, never load()'s
    net._bind(b, values)
    return net
