"""``Predictive``: prior, posterior and guide predictive draws, as numpy, on either backend.

The rule (the same on both backends; docs/handlers.md):

- ``Predictive(model, posterior_samples=S)``: draw ``i`` runs the model with every latent
  site named in ``S`` set to ``S[name][i]`` (substituted: the site stays latent); the
  other sites are drawn.  Deterministic functions of ``S`` are therefore the same numbers
  on both backends.
- ``Predictive(model, guide=g)``: draw ``i`` runs the guide once (a fresh draw), then the
  model with the guide's latent values substituted.  This is the same distribution as
  ``Predictive(model, posterior_samples=Predictive(g, ...)())``: running the guide *as the
  model*, ``Predictive(g, params=..., num_samples=n)``, gives the posterior samples of its
  latents (what autoguides' ``sample_posterior`` gives).
- ``Predictive(model, num_samples=n)``: prior predictive.
- ``return_sites=None`` returns the model's sample sites (factors and auxiliary sites
  excluded) that neither
  ``posterior_samples`` nor the guide provides, and its deterministic sites; a list names
  any model or guide sites instead.
- ``params``: constrained values by name (a dict or a ``FitResult``); None uses
  :func:`dualguide.get_param_store` (filled by :class:`dualguide.infer.SVI`), then the
  programs' init values.

Every result is a numpy array of shape ``(num_samples, *site shape)`` on both backends.

>>> import dualguide as dg
>>> from dualguide import distributions as dist
>>> def model():
...     x = dg.sample("x", dist.Normal(0.0, 1.0))
...     dg.deterministic("x2", 2 * x)
>>> out = dg.infer.Predictive(model, posterior_samples={"x": [0.5, 1.5]})()
>>> out["x2"].tolist()
[1.0, 3.0]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from . import _state
from .autoguides import AutoGuide
from .errors import SpecError

__all__ = ["Predictive"]


class Predictive:
    """Predictive draws of ``model`` (Pyro's and NumPyro's ``Predictive``), as numpy arrays.

    ``parallel=True`` vectorizes the draws: ``jax.vmap`` on NumPyro (the same numbers as
    ``parallel=False``), Pyro's own ``Predictive(parallel=True)`` on Pyro (other draws of the
    same distribution, reshaped to the same shapes); either falls back to one by one, logged,
    when the program does not vectorize.  ``seed`` (int) makes every call draw the same numbers;
    None draws a seed from numpy's global RNG at each call.

    >>> import dualguide as dg
    >>> from dualguide import distributions as dist
    >>> def model():
    ...     dg.sample("y", dist.Normal(0.0, 1.0))
    >>> dg.infer.Predictive(model, num_samples=5, seed=0)()["y"].shape
    (5,)
    """

    def __init__(
        self,
        model: Callable,
        posterior_samples: dict | None = None,
        guide: Callable | None = None,
        num_samples: int | None = None,
        return_sites: list[str] | tuple[str, ...] | None = None,
        parallel: bool = False,
        *,
        params: Any = None,
        seed: int | None = None,
        backend: str | None = None,
    ) -> None:
        if callable(posterior_samples) and guide is None:  # Predictive(model, guide)
            posterior_samples, guide = None, posterior_samples
        if not callable(model):
            raise SpecError(f"Predictive: model must be a function, got {model!r}")
        if guide is not None and not callable(guide):
            raise SpecError(f"Predictive: guide must be a function, got {guide!r}")
        if guide is not None and posterior_samples is not None:
            raise SpecError(
                "Predictive: give posterior_samples or a guide, not both (the guide's draws "
                "would replace the samples)"
            )
        self.samples = _check_samples(posterior_samples)
        n = _check_num_samples(num_samples, self.samples)
        if return_sites is not None:
            if isinstance(return_sites, str) or not all(isinstance(s, str) for s in return_sites):
                raise SpecError(
                    f"Predictive: return_sites must be a list of site names, got {return_sites!r}"
                )
            return_sites = list(return_sites)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise SpecError(f"Predictive: seed must be an int >= 0 or None, got {seed!r}")
        self.model, self.guide = model, guide
        self.num_samples = n
        self.return_sites = return_sites
        self.parallel = bool(parallel)
        self.params = _state.check_init_params(params) if params is not None else None
        self.seed = seed
        self.backend = backend

    def __call__(self, *args: Any, **kwargs: Any) -> dict[str, np.ndarray]:
        """Draw: ``{site: numpy array (num_samples, *site shape)}``."""
        b = _state.resolve(self.backend)
        feat = _state.feature(b, "handlers")
        seed = self.seed if self.seed is not None else int(np.random.randint(0, 2**31 - 1))
        seeds = np.random.default_rng(seed).integers(0, 2**31 - 1, size=(self.num_samples, 2))
        params = self.params
        if params is None:
            from .svi import get_param_store

            params = get_param_store().as_dict()
        a = tuple(b.to_array(x) if isinstance(x, np.ndarray) else x for x in args)
        k = {n: b.to_array(v) if isinstance(v, np.ndarray) else v for n, v in kwargs.items()}
        model = _state.render(self.model, b)
        if isinstance(self.guide, AutoGuide):
            guide, params = _autoguide(self.guide, b, params, args, kwargs)
        else:
            guide = None if self.guide is None else _state.render(self.guide, b)
        with _state.param_overrides(params):
            return feat.predictive(
                model, guide, self.samples, seeds, a, k, self._select, parallel=self.parallel
            )

    def get_samples(self, *args: Any, **kwargs: Any) -> dict[str, np.ndarray]:
        """The same as calling the object (Pyro's spelling)."""
        return self(*args, **kwargs)

    def _select(self, model_sites: dict, guide_sites: dict) -> list[str]:
        """The sites to return, from the first draw's ``{name: (type, is_observed, is_factor)}``."""
        if self.return_sites is not None:
            missing = [
                s for s in self.return_sites if s not in model_sites and s not in guide_sites
            ]
            if missing:
                have = sorted(set(model_sites) | set(guide_sites))
                raise SpecError(
                    f"Predictive: return_sites has {', '.join(map(repr, missing))}, which neither "
                    f"the model nor the guide has (they have {', '.join(map(repr, have))})"
                )
            return list(self.return_sites)
        fixed = set(self.samples or ()) | {
            n for n, (t, obs, aux) in guide_sites.items() if t == "sample" and not obs
        }
        return [
            n
            for n, (t, obs, fac) in model_sites.items()
            if t == "deterministic" or (t == "sample" and not fac and n not in fixed)
        ]


def _autoguide(guide: AutoGuide, b: Any, params: Any, args: tuple, kwargs: dict) -> tuple:
    """The native autoguide set up on the model as it was fitted, and ``params`` in its
    backend's names.  An autoguide's latents are the model's latents when it was set up: a
    site observed in fitting (``y``) is latent in a model called without it
    (``Predictive(...)(x)``), and a guide set up then would draw ``y`` itself (from init
    params: a silent wrong answer).  ``dg.fit`` / ``dg.infer.SVI`` keep the fitted arguments
    on the autoguide (NumPyro's and Pyro's own guides keep their setup from fitting)."""
    fitted = guide._seen
    model_args, model_kwargs = fitted if fitted is not None else (args, kwargs)
    if not params:
        return _state.render(guide, b), params
    try:
        native = guide.render(b, params=params, model_args=model_args, model_kwargs=model_kwargs)
        params = guide.translate(params, b.name, model_args=model_args, model_kwargs=model_kwargs)
    except SpecError as e:
        if fitted is not None:
            raise
        raise SpecError(
            f"Predictive: {type(guide).__name__}, set up with this call's arguments, does not "
            f"match the params ({e}); a site observed in fitting is a latent of a model called "
            "without its observation.  Fit the autoguide in this process first (dg.fit and "
            "dg.infer.SVI keep the arguments it was fitted with), then call Predictive"
        ) from None
    return native, params


def _check_samples(samples: Any) -> dict[str, np.ndarray] | None:
    if samples is None:
        return None
    if not isinstance(samples, dict) or not all(isinstance(k, str) for k in samples):
        raise SpecError(
            f"Predictive: posterior_samples must be a dict of arrays by site name, got "
            f"{type(samples).__name__}"
        )
    out: dict[str, np.ndarray] = {}
    for k, v in samples.items():
        try:
            arr = np.asarray(v)
        except Exception:
            raise SpecError(f"Predictive: posterior_samples[{k!r}] is not an array") from None
        if arr.ndim == 0:
            raise SpecError(
                f"Predictive: posterior_samples[{k!r}] is a scalar; give one value per sample "
                "(leading dimension num_samples)"
            )
        out[k] = arr.astype(np.float32) if arr.dtype.kind == "f" else arr
    sizes = {k: v.shape[0] for k, v in out.items()}
    if len(set(sizes.values())) > 1:
        raise SpecError(
            f"Predictive: posterior_samples have different numbers of samples {sizes}; the "
            "leading dimension must be the same for every site"
        )
    return out


def _check_num_samples(num_samples: Any, samples: dict | None) -> int:
    have = next(iter(samples.values())).shape[0] if samples else None
    if num_samples is None:
        if have is None:
            raise SpecError(
                "Predictive: give num_samples= (or posterior_samples, whose leading dimension "
                "sets it)"
            )
        return int(have)
    if isinstance(num_samples, bool) or not isinstance(num_samples, (int, np.integer)):
        raise SpecError(f"Predictive: num_samples must be an int >= 1, got {num_samples!r}")
    if num_samples < 1:
        raise SpecError(f"Predictive: num_samples must be >= 1, got {num_samples}")
    if have is not None and num_samples != have:
        raise SpecError(
            f"Predictive: num_samples={num_samples} but posterior_samples hold {have} samples; "
            "drop num_samples or slice the samples"
        )
    return int(num_samples)
