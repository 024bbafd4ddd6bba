"""The per-step caches of the neutral layer and the Pyro renderer (issue 17): Pyro runs a
rendered program eagerly at every step, so decisions that depend only on a site's names,
shapes and argument types are made once and remembered.  A remembered decision must change
nothing: the step with warm caches is the step that decides everything afresh, bit for bit,
and bad input is still refused with the same error after a good call filled the caches."""

from __future__ import annotations

import math

import numpy as np
import pytest

import dualguide as dg
from dualguide import _inputs, ops
from dualguide import distributions as dist
from dualguide import transforms as neutral_transforms
from dualguide.errors import SpecError

from .conftest import load_example


def _clear_caches() -> None:
    """Forget every per-step decision (what a process's first step sees)."""
    from dualguide import constraints
    from dualguide.backends.pyro import transforms as pyro_transforms

    _inputs._PASS_THROUGH.clear()
    _inputs._CHECKED_SIGNATURES.clear()
    neutral_transforms._CHECKED_NAMES.clear()
    neutral_transforms._BACKEND_MODULES.clear()
    pyro_transforms._PLANS.clear()
    constraints._MADE.clear()


def _svi_run(num_particles: int, steps: int, cold: bool) -> tuple[list[float], dict]:
    import pyro
    import torch
    from pyro.infer import SVI, Trace_ELBO

    rm = load_example("rotated_mixture")
    model, guide = dg.render(rm.model, "pyro"), dg.render(rm.guide, "pyro")
    store = pyro.get_param_store()
    pyro.set_rng_seed(0)
    with store.scope():
        elbo = Trace_ELBO(
            num_particles=num_particles,
            vectorize_particles=num_particles > 1,
            max_plate_nesting=0,
        )
        svi = SVI(model, guide, pyro.optim.Adam({"lr": 0.01}), elbo)
        losses = []
        for _ in range(steps):
            if cold:
                _clear_caches()
            losses.append(svi.step())
        with torch.no_grad():
            params = {k: v.detach().numpy().copy() for k, v in store.items()}
    return losses, params


@pytest.mark.parametrize("num_particles", [1, 16])
def test_pyro_step_with_warm_caches_is_the_step_without(num_particles):
    """The rotated mixture (a mixture sampler, dg.transformed's autodiff Jacobian, interval
    and positive constraints, ImproperUniform priors: every cached path) under Pyro's
    Trace_ELBO: 25 steps with the caches warm equal 25 steps that clear them before each
    step, losses and params bit for bit (same seed, same ops: no tolerance is needed)."""
    warm_losses, warm_params = _svi_run(num_particles, 25, cold=False)
    cold_losses, cold_params = _svi_run(num_particles, 25, cold=True)
    assert warm_losses == cold_losses
    assert warm_params.keys() == cold_params.keys() == {"b", "theta"}
    for k in warm_params:
        np.testing.assert_array_equal(warm_params[k], cold_params[k])
    assert all(math.isfinite(v) for v in warm_losses)


def _map_guide(bad: bool):
    def guide():
        u = {"u1": dist.Normal(0.0, 1.0), "u2": dist.Normal(0.0, 1.0)}
        if bad:  # one output for two names
            fn = lambda u1, u2: u1 + u2
        else:
            fn = lambda u1, u2: (u1 + u2, u1 - 2.0 * u2)
        dg.transformed(("x", "y"), u, fn)

    return guide


def test_transformed_still_refuses_after_a_good_call(backend):
    """A good call leaves the names and (on Pyro) the shape plan cached; the same names with a
    map that returns too few outputs are still refused with the same message."""
    sites = dg.trace(_map_guide(False), backend=backend)
    assert float(sites["x"].log_prob) == pytest.approx(-math.log(3.0), rel=1e-6)
    with pytest.raises(SpecError, match=r"fn returned a single array for 2 names"):
        dg.trace(_map_guide(True), backend=backend)


def test_transformed_names_checked_after_a_good_call(backend):
    """Names checked once are remembered, but a base site named like an output is still an
    error (that check does not depend on the names alone)."""
    dg.trace(_map_guide(False), backend=backend)

    def clash():
        dg.transformed(("x", "y"), {"x": dist.Normal(0.0, 1.0)}, lambda x: (x, x))

    with pytest.raises(SpecError, match=r"'x' is both a base site and an output"):
        dg.trace(clash, backend=backend)


def test_dist_signature_check_after_a_good_call(backend):
    """``MixtureSameFamily(cat, comp)`` takes the fast path (distributions pass unchanged) and
    remembers its signature; the same signature with None is still refused, naming the
    argument."""
    with dg.use_backend(backend):
        cat = dist.Categorical(probs=ops.asarray([0.5, 0.5]))
        comp = dist.Normal(ops.asarray([-1.0, 1.0]), 1.0)
        dist.MixtureSameFamily(cat, comp)
        with pytest.raises(SpecError, match=r"missing its argument 'component_distribution'"):
            dist.MixtureSameFamily(cat, None)
        # a list is data the rule converts: still converted after the fast path saw the name
        d = dist.Normal([0.0, 1.0], 1.0)
        assert tuple(d.batch_shape) == (2,)


def test_constraint_made_once_and_still_checked():
    """``constraints.interval(a, b)`` with the same numbers is one object (its backend objects
    are then built once), equal to the one from ints; bad bounds are refused after good ones."""
    from dualguide import constraints

    c = constraints.interval(0.0, math.pi / 2)
    assert constraints.interval(0.0, math.pi / 2) is c
    assert constraints.interval(0, 1) == constraints.interval(0.0, 1.0)
    assert constraints.interval(0, 1).args == (0.0, 1.0)
    with pytest.raises(SpecError, match=r"lower bound must be below upper bound"):
        constraints.interval(math.pi / 2, 0.0)
    with pytest.raises(SpecError, match=r"must not be NaN"):
        constraints.greater_than(float("nan"))
    with pytest.raises(SpecError, match=r"must be a plain number"):
        constraints.interval(0.0, [1.0])


def test_pyro_real_mixture_is_not_masked_but_positive_one_is():
    """A mixture of real-valued components has the real line as support (torch wraps it in a
    MixtureSameFamilyConstraint): its log_prob is torch's, with no support check and no
    ``where`` in the step's graph; a mixture of positive components still masks a value
    outside its support to -inf (the documented rule)."""
    import pyro.distributions as pd
    import torch

    with dg.use_backend("pyro"):
        loc = torch.tensor([-1.0, 1.0], requires_grad=True)
        cat = dist.Categorical(probs=ops.asarray([0.3, 0.7]))
        mix = dist.MixtureSameFamily(cat, dist.Normal(loc, 0.5))
        x = torch.tensor([-2.0, 0.1, 3.0])
        lp = mix.log_prob(x)
        plain = pd.MixtureSameFamily(
            pd.Categorical(probs=torch.tensor([0.3, 0.7])), pd.Normal(loc, 0.5)
        ).log_prob(x)
        torch.testing.assert_close(lp, plain, rtol=0, atol=0)
        assert "Where" not in type(lp.grad_fn).__name__
        pos = dist.MixtureSameFamily(cat, dist.Gamma(ops.asarray([2.0, 3.0]), 1.0))
        out = pos.log_prob(torch.tensor([-1.0, 1.0]))
        assert out[0].item() == -math.inf and math.isfinite(out[1].item())
