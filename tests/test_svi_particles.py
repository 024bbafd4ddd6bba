"""dg.infer.SVI keeps dg.fit's particle rule (docs/particles.md) and one evaluate_loss rule.

- The model never sees a particle dimension: ``ops.matmul(X, w)`` in a data plate runs with
  16 particles through ``svi.step`` on both backends (Pyro's vectorized particles used to
  fail here with a raw torch error) and reaches the exact posterior mean.
- ``svi.evaluate_loss`` draws fresh noise at each call and advances the step's noise (Pyro's
  rule; NumPyro's own ``evaluate`` reuses the next update's key).
"""

from __future__ import annotations

import numpy as np
import pytest

import dualguide as dg
from dualguide import constraints, ops
from dualguide import distributions as dist

RNG = np.random.default_rng(0)
X = RNG.normal(size=(20, 3)).astype(np.float32)
W_TRUE = np.array([1.0, -0.5, 0.25], dtype=np.float32)
Y = (X @ W_TRUE + 0.5 * RNG.normal(size=20)).astype(np.float32)
# the exact posterior of w ~ N(0, I), y ~ N(X w, 0.5): the mean-field Gaussian optimum has its
# mean, and the variances 1 / diag(precision)
PREC = np.eye(3) + X.T @ X / 0.25
POST_MEAN = np.linalg.solve(PREC, X.T @ Y / 0.25)

SEEN: list[tuple[int, ...]] = []


def model(X, y):
    w = dg.sample("w", dist.Normal(ops.zeros(3), 1.0).to_event(1))
    SEEN.append(tuple(int(d) for d in w.shape))
    with dg.plate("data", X.shape[0]):
        dg.sample("y", dist.Normal(ops.matmul(X, w), 0.5), obs=y)


def guide(X, y):
    loc = dg.param("loc", np.zeros(3, dtype=np.float32))
    scale = dg.param("scale", np.full(3, 0.3, dtype=np.float32), constraint=constraints.positive)
    dg.sample("w", dist.Normal(loc, scale).to_event(1))


@pytest.fixture(autouse=True)
def fresh_store():
    dg.clear_param_store()
    yield
    dg.clear_param_store()


def test_matmul_in_a_data_plate_with_16_particles_on_both(both):
    """The issue's reproducer 1 through the SVI object, side by side."""
    fitted = {}
    for b in both:
        dg.clear_param_store()
        SEEN.clear()
        svi = dg.infer.SVI(
            model,
            guide,
            dg.optim.ClippedAdam(lr=0.05, lrd=0.99),
            loss=dg.infer.Trace_ELBO(num_particles=16),
            backend=b,
            seed=0,
        )
        losses = [svi.step(X, Y) for _ in range(400)]
        assert np.all(np.isfinite(losses))
        # the model saw single draws only: never a particle dimension
        assert set(SEEN) == {(3,)}, (b, set(SEEN))
        fitted[b] = svi.params["loc"]
        assert np.isfinite(svi.evaluate_loss(X, Y))
    # posterior sd is about 0.06 per coordinate; 16 particles and lr decayed to
    # 0.05 * 0.99**400 = 9e-4 leave the loc within ~0.01 of the optimum: 0.03 is 3x that
    for b in both:
        np.testing.assert_allclose(fitted[b], POST_MEAN, atol=0.03)
    np.testing.assert_allclose(fitted["numpyro"], fitted["pyro"], atol=0.05)


def test_other_estimators_do_not_show_the_particle_dimension(backend):
    """TraceMeanField_ELBO runs its particles one by one on Pyro: the same rule."""
    SEEN.clear()
    svi = dg.infer.SVI(
        model,
        guide,
        0.05,
        loss=dg.infer.TraceMeanField_ELBO(num_particles=4),
        backend=backend,
        seed=0,
    )
    for _ in range(3):
        assert np.isfinite(svi.step(X, Y))
    assert set(SEEN) == {(3,)}


def test_evaluate_loss_draws_fresh_noise_and_advances_the_steps(backend):
    """Pyro's rule on both: each evaluate_loss call draws new noise, the params stay, and
    the step after an evaluation draws other noise than the step would have without it."""

    def run(evaluate_first: bool) -> tuple[list[float], float]:
        dg.clear_param_store()
        svi = dg.infer.SVI(model, guide, 0.01, backend=backend, seed=0)
        evals = []
        if evaluate_first:
            evals = [svi.evaluate_loss(X, Y) for _ in range(3)]
        return evals, svi.step(X, Y)

    evals, step_after = run(True)
    # one particle at loc 0, scale 0.3: the loss varies by ~10 between draws, so three
    # equal values would mean the same key was reused
    assert len(set(evals)) == 3
    _, step_alone = run(False)
    assert step_after != step_alone
    # and the whole sequence repeats for the same seed
    assert run(True) == (evals, step_after)
