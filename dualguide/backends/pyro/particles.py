"""Pyro particles with NumPyro's semantics: the model never sees a particle dimension.

Pyro's ``Trace_ELBO(vectorize_particles=True)`` runs the model once inside an outer
particle ``plate``: every latent gets a leading particle dimension the model sees
(``ops.matmul(X, w)`` then fails, ``ops.sum(w)`` silently sums over particles too), and a
subsampled ``plate`` draws one minibatch shared by all particles.  NumPyro's
``Trace_ELBO`` vmaps one particle instead: the model sees single draws and each
particle draws its own minibatch.  dualguide's documented rule (``docs/particles.md``)
is NumPyro's, and this module implements it on Pyro:

* ``"vmap"``: one particle of Pyro's ``Trace_ELBO`` (the same loss and surrogate loss,
  Pyro's own traces and score-function terms), batched with
  ``torch.func.vmap(..., randomness="different")``: each particle gets its own draws and
  its own minibatch indices.  ``torch.jit.trace`` records the batched ops, so the fast
  fit loop works unchanged.
* ``"loop"``: the same particle run ``num_particles`` times (Pyro's
  ``vectorize_particles=False``): identical semantics, used when a program cannot run
  under ``vmap`` (a Beta or Dirichlet site, whose torch sampler is an
  ``autograd.Function`` without a batching rule; Python control flow on a drawn value).
  The switch is logged (``logging.getLogger("dualguide")``).

With one particle both are Pyro's plain ``Trace_ELBO``.
"""

from __future__ import annotations

import logging
import math
import warnings
from typing import Any

import pyro
import pyro.ops.jit
import torch
from pyro import poutine
from pyro.distributions.util import is_identically_zero
from pyro.infer import JitTrace_ELBO
from pyro.infer.enum import get_importance_trace
from pyro.infer.trace_elbo import _compute_log_r

log = logging.getLogger("dualguide")

__all__ = ["ParticleELBO"]


def _particle(model, guide, args, kwargs) -> tuple[Any, Any]:
    """One particle of Pyro's ``Trace_ELBO``: ``(loss, surrogate_loss)`` (JitTrace_ELBO's body)."""
    model_trace, guide_trace = get_importance_trace("flat", math.inf, model, guide, args, kwargs)
    elbo: Any = 0.0
    surrogate: Any = 0.0
    log_r = None
    for site in model_trace.nodes.values():
        if site["type"] == "sample":
            elbo = elbo + site["log_prob_sum"]
            surrogate = surrogate + site["log_prob_sum"]
    for site in guide_trace.nodes.values():
        if site["type"] == "sample":
            _, score_function_term, entropy_term = site["score_parts"]
            elbo = elbo - site["log_prob_sum"]
            if not is_identically_zero(entropy_term):
                surrogate = surrogate - entropy_term.sum()
            if not is_identically_zero(score_function_term):
                if log_r is None:
                    log_r = _compute_log_r(model_trace, guide_trace)
                term = log_r.sum_to(site["cond_indep_stack"])
                surrogate = surrogate + (term * score_function_term).sum()
    return -torch.as_tensor(elbo), -torch.as_tensor(surrogate)


def _shape(t) -> list[int]:
    # plain ints: under torch.jit.trace a traced size would lose vmap's particle dimension
    return [int(d) for d in t.shape]


def _uniform(t, a=0.0, b=1.0, *, generator=None):
    return torch.rand(_shape(t), dtype=t.dtype, device=t.device, generator=generator) * (b - a) + a


def _normal(t, mean=0.0, std=1.0, *, generator=None):
    return torch.randn(_shape(t), dtype=t.dtype, device=t.device, generator=generator) * std + mean


def _exponential(t, lambd=1.0, *, generator=None):
    u = torch.rand(_shape(t), dtype=t.dtype, device=t.device, generator=generator)
    return -torch.log1p(-u) / lambd


def _cauchy(t, median=0.0, sigma=1.0, *, generator=None):
    u = torch.rand(_shape(t), dtype=t.dtype, device=t.device, generator=generator)
    return median + sigma * torch.tan(math.pi * (u - 0.5))


#: torch's in-place random fills and an out-of-place draw of the same law
_OUT_OF_PLACE = {
    "normal_": _normal,
    "uniform_": _uniform,
    "exponential_": _exponential,
    "cauchy_": _cauchy,
}


#: torch's note that an op runs without a batching rule under vmap (slower, same values)
_NO_BATCHING_RULE = (
    "There is a performance drop because we have not yet implemented the batching rule"
)


class _OutOfPlaceDraws:
    """Draw out of place inside ``vmap``.

    torch's samplers fill a fresh tensor in place (``torch.empty(shape).normal_()`` in
    ``Normal.rsample``, ``x.new(shape).exponential_()``, ...), which
    ``vmap(randomness="different")`` refuses (the fresh tensor has no particle
    dimension).  While this context is open, each such fill made inside a ``vmap`` returns
    an out-of-place draw of the same law instead, which ``vmap`` batches (the samplers use
    only the returned tensor); outside a ``vmap`` the fills are torch's own.  (A
    ``TorchFunctionMode`` would do the same without touching ``torch.Tensor``, but under
    ``torch.jit.trace`` it breaks ``Tensor.size``.)
    The methods are replaced on ``torch.Tensor`` for the duration of the block, process-wide:
    another thread drawing inside its own ``vmap`` meanwhile would get the out-of-place draws too.
    """

    def __init__(self, always: bool = False) -> None:
        self.always = always  # also outside a vmap (while tracing a particle for vmap)
        self.saved: dict[str, Any] = {}

    def __enter__(self):
        for name, repl in _OUT_OF_PLACE.items():
            self.saved[name] = torch.Tensor.__dict__.get(name)
            base = getattr(torch._C.TensorBase, name)
            setattr(torch.Tensor, name, repl if self.always else _dispatch(base, repl))
        return self

    def __exit__(self, *exc):
        for name, orig in self.saved.items():
            if orig is None:
                delattr(torch.Tensor, name)
            else:
                setattr(torch.Tensor, name, orig)
        return False


def _dispatch(base, repl):
    from torch._C._functorch import maybe_current_level

    def fill(self, *args, **kwargs):
        if maybe_current_level() is None:  # not inside a vmap: torch's own in-place fill
            return base(self, *args, **kwargs)
        return repl(self, *args, **kwargs)

    return fill


class ParticleELBO(JitTrace_ELBO):
    """Pyro's (Jit)Trace_ELBO whose particles the model never sees (see the module docstring).

    ``jit=True`` compiles one particle with ``pyro.ops.jit.trace`` (as ``JitTrace_ELBO``
    compiles its estimate) and runs it under ``vmap``; ``jit=False`` runs the particle op by
    op, as ``Trace_ELBO`` does, under ``vmap``.  :attr:`vmap_particles` is the number of
    particles the compiled function is vmapped over (0 when it computes the whole
    estimate: one particle, or the ``"loop"`` fallback) -- the fast fit loop reads it.

    Draws: the first call runs the program once unbatched to create the params (Pyro's
    vectorized ELBO does the same to guess the plate nesting), and with ``jit=True`` it
    spends the draws of two batched runs while compiling (Pyro's compiler runs its
    vectorized program twice).  So for a program that never looks at the particle
    dimension and has no subsampled plate, the draws, losses and gradients are those of
    Pyro's ``(Jit)Trace_ELBO(vectorize_particles=True)``.
    """

    def __init__(self, num_particles: int = 1, jit: bool = True, **kwargs) -> None:
        super().__init__(num_particles=num_particles, vectorize_particles=False, **kwargs)
        self.jit = jit
        self.mode = "single" if num_particles == 1 else "vmap"
        self.vmap_particles = 0
        self._initialized = False
        self._loss_and_surrogate_loss: Any = None

    # the estimate, op by op ------------------------------------------------------------------
    def _init_params(self, model, guide, args, kwargs) -> None:
        """Create the params outside ``vmap``, which cannot create them."""
        with poutine.block():
            guide_trace = poutine.trace(guide).get_trace(*args, **kwargs)
            poutine.replay(model, trace=guide_trace)(*args, **kwargs)
        self._initialized = True

    def _vmap(self, fn, traced: bool = False):
        """``fn()`` (a tensor ``[loss, surrogate]``) for each particle, under ``vmap``, averaged
        over the particles.

        ``traced``: ``fn`` only calls the traced particle, whose graph already draws out of
        place and validates nothing (the fast loop's steps)."""
        # the profiling executor's rewritten graphs do not run under vmap; an op without a
        # batching rule (Gamma's draw clamps in place) runs per particle, and torch warns of
        # it on every step, asking to file an issue with PyTorch: not the user's to act on
        with torch.jit.optimized_execution(False), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_NO_BATCHING_RULE, category=UserWarning)
            batched = torch.func.vmap(lambda _: fn(), randomness="different")
            if traced:
                out = batched(torch.zeros(self.num_particles))
            else:
                with pyro.validation_enabled(False), _OutOfPlaceDraws():
                    out = batched(torch.zeros(self.num_particles))
        return out.mean(0)

    def _looped(self, model, guide, args, kwargs):
        loss: Any = 0.0
        surrogate: Any = 0.0
        for _ in range(self.num_particles):
            lp, sp = _particle(model, guide, args, kwargs)
            loss = loss + lp / self.num_particles
            surrogate = surrogate + sp / self.num_particles
        return loss, surrogate

    def _fall_back(self, e: Exception, rng) -> None:
        torch.set_rng_state(rng)
        first = str(e).splitlines()[0] if str(e) else ""
        log.info(
            "fit (pyro): the particles cannot run under torch.func.vmap (%s: %s); running "
            "them one by one (the same semantics, slower)",
            type(e).__name__,
            first[:200],
        )
        self.mode = "loop"
        self.vmap_particles = 0
        self._loss_and_surrogate_loss = None

    def estimate(self, model, guide, args, kwargs):
        """``(loss, surrogate_loss)`` averaged over the particles, op by op."""
        if self.mode == "single":
            return _particle(model, guide, args, kwargs)
        if not self._initialized:
            self._init_params(model, guide, args, kwargs)
        if self.mode == "vmap":
            rng = torch.get_rng_state()
            try:
                out = self._vmap(lambda: torch.stack(_particle(model, guide, args, kwargs)))
                return out[0], out[1]
            except Exception as e:
                self._fall_back(e, rng)
        return self._looped(model, guide, args, kwargs)

    # the estimate, compiled -------------------------------------------------------------------
    def _compiled(self, model, guide, args, kwargs):
        if self.mode == "vmap":
            if not self._initialized:
                self._init_params(model, guide, args, kwargs)
            rng = torch.get_rng_state()
            try:
                return self._compiled_vmap(model, guide, args, kwargs)
            except Exception as e:
                self._fall_back(e, rng)
        if self._loss_and_surrogate_loss is None:

            @pyro.ops.jit.trace(
                ignore_warnings=self.ignore_jit_warnings, jit_options=self.jit_options
            )
            def whole(*args, **kwargs):
                if self.mode == "single":
                    return _particle(model, guide, args, kwargs)
                return self._looped(model, guide, args, kwargs)

            self._loss_and_surrogate_loss = whole
        return self._loss_and_surrogate_loss(*args, **kwargs)

    def _compiled_vmap(self, model, guide, args, kwargs):
        first = self._loss_and_surrogate_loss is None
        if first:

            @pyro.ops.jit.trace(
                ignore_warnings=self.ignore_jit_warnings, jit_options=self.jit_options
            )
            def one(*args, **kwargs):
                return torch.stack(_particle(model, guide, args, kwargs))

            rng = torch.get_rng_state()
            with pyro.validation_enabled(False), _OutOfPlaceDraws(always=True):
                one(*args, **kwargs)  # capture the params and trace one particle
            torch.set_rng_state(rng)
            self._loss_and_surrogate_loss = one
            self.vmap_particles = self.num_particles
        one = self._loss_and_surrogate_loss
        if first:  # the draws Pyro's compiler spends (see the class docstring)
            with torch.no_grad():
                self._vmap(lambda: one(*args, **kwargs))
                self._vmap(lambda: one(*args, **kwargs))
        out = self._vmap(lambda: one(*args, **kwargs))
        return out[0], out[1]

    # Pyro's ELBO interface ---------------------------------------------------------------
    def loss_and_surrogate_loss(self, model, guide, *args, **kwargs):
        if self.jit:
            return self._compiled(model, guide, args, kwargs)
        return self.estimate(model, guide, args, kwargs)

    def loss(self, model, guide, *args, **kwargs) -> float:
        with torch.no_grad():
            loss, _ = self.loss_and_surrogate_loss(model, guide, *args, **kwargs)
        return float(loss)

    def loss_and_grads(self, model, guide, *args, **kwargs) -> float:
        loss, surrogate = self.loss_and_surrogate_loss(model, guide, *args, **kwargs)
        if getattr(surrogate, "requires_grad", False):
            surrogate.backward()
        return float(loss.detach()) if isinstance(loss, torch.Tensor) else float(loss)
