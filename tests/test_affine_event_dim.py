"""``dist.transforms.AffineTransform(loc, scale, event_dim=k)`` runs on both backends.

NumPyro's AffineTransform has no ``event_dim`` (it takes a domain, and with an independent
domain it has no codomain, so its TransformedDistribution refused it); the NumPyro backend runs
``IndependentTransform(AffineTransform(loc, scale), k)``, torch's map and log|det J|."""

from __future__ import annotations

import numpy as np
import pytest

import dualguide as dg
from dualguide import distributions as dist
from dualguide import ops

LOC = [1.0, -1.0, 0.5]
SCALE = [2.0, -0.5, 3.0]
POINTS = np.array([[0.3, -2.0, 1.0], [1.0, -1.0, 0.5]], np.float32)


def _exact_log_prob(y: np.ndarray) -> np.ndarray:
    """N(0, I) at (y - loc) / scale, less sum log|scale| (event of 3)."""
    z = (y - np.array(LOC)) / np.array(SCALE)
    return np.sum(-0.5 * z**2 - 0.5 * np.log(2 * np.pi), -1) - np.sum(np.log(np.abs(SCALE)))


def _affine(event_dim=1):
    return dist.transforms.AffineTransform(
        ops.asarray(LOC), ops.asarray(SCALE), event_dim=event_dim
    )


def test_log_prob_map_and_jacobian(backend):
    with dg.use_backend(backend):
        t = _affine()
        d = dist.TransformedDistribution(dist.Normal(ops.zeros(3), 1.0).to_event(1), t)
        assert tuple(d.batch_shape) == () and tuple(d.event_shape) == (3,)
        lp = ops.to_numpy(d.log_prob(ops.asarray(POINTS)))
        x = ops.asarray(POINTS)
        y = t(x)
        ladj = ops.to_numpy(t.log_abs_det_jacobian(x, y))
        back = ops.to_numpy(t.inv(y))
    # float32 arithmetic against float64 formulas
    np.testing.assert_allclose(lp, _exact_log_prob(POINTS), rtol=1e-5)
    np.testing.assert_allclose(ops.to_numpy(y), np.array(LOC) + np.array(SCALE) * POINTS, rtol=1e-6)
    # one log|det J| per event (summed over the event dim), as torch's event_dim=1
    np.testing.assert_allclose(ladj, np.full(2, np.sum(np.log(np.abs(SCALE)))), rtol=1e-6)
    np.testing.assert_allclose(back, POINTS, rtol=1e-6, atol=1e-6)


def test_samples_have_the_transformed_moments(backend):
    with dg.use_backend(backend):
        d = dist.TransformedDistribution(dist.Normal(ops.zeros(3), 1.0).to_event(1), _affine())
        s = ops.to_numpy(dist_sample(d, 20000))
    assert s.shape == (20000, 3)
    # mean loc, sd |scale|: the sample mean's sd is |scale| / sqrt(20000) <= 0.022, so 0.1
    # is over 4.5 sd for any seed; the sd's relative error is ~1/sqrt(2 * 20000) = 0.005
    np.testing.assert_allclose(s.mean(0), LOC, atol=0.1)
    np.testing.assert_allclose(s.std(0), np.abs(SCALE), rtol=0.03)


def dist_sample(d, n: int):
    """``n`` draws of ``d`` inside a model traced by dualguide (both backends' seeding)."""

    def model():
        with dg.plate("n", n):
            dg.sample("y", d)

    return ops.asarray(dg.trace(model, seed=0)["y"].value)


def test_both_backends_score_a_model_site_alike(both):
    """A model site of the transformed distribution: the same log density on both backends,
    and the exact one."""
    obs = np.array([0.5, 0.5, 0.5], np.float32)

    def model():
        d = dist.TransformedDistribution(dist.Normal(ops.zeros(3), 1.0).to_event(1), _affine())
        dg.sample("y", d, obs=obs)

    lps = {b: float(np.sum(dg.trace(model, backend=b)["y"].log_prob)) for b in both}
    np.testing.assert_allclose(lps["numpyro"], lps["pyro"], rtol=1e-6)
    np.testing.assert_allclose(lps["numpyro"], _exact_log_prob(obs), rtol=1e-5)


def test_a_bad_event_dim_is_one_clear_error():
    with dg.use_backend("numpyro"):
        with pytest.raises(
            dg.SpecError, match=r"AffineTransform\(\.\.\., event_dim=1\.5\).*integer"
        ):
            dist.TransformedDistribution(dist.Normal(ops.zeros(3), 1.0).to_event(1), _affine(1.5))
