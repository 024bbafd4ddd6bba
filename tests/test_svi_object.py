"""dg.infer.SVI: a user's own step loop on each framework's SVI, and the one param store."""

from __future__ import annotations

import numpy as np
import pytest

import dualguide as dg
from dualguide import distributions as dist
from dualguide.errors import SpecError

#: every test runs with an empty param store (the fixture clears it)
pytestmark = pytest.mark.usefixtures("conjugate")


def test_a_step_loop_reaches_the_conjugate_posterior(backend, conjugate):
    Y, MEAN, PREC, model, guide = (
        conjugate.Y,
        conjugate.MEAN,
        conjugate.PREC,
        conjugate.model,
        conjugate.guide,
    )
    svi = dg.infer.SVI(
        model,
        guide,
        dg.optim.ClippedAdam(lr=0.05, lrd=0.995),
        loss=dg.infer.Trace_ELBO(num_particles=8),
        backend=backend,
        seed=0,
    )
    losses = [svi.step(Y) for _ in range(600)]
    assert all(isinstance(v, float) for v in losses[:3])
    p = svi.params
    assert isinstance(p["m"], np.ndarray)
    # the Gaussian guide's ELBO optimum is the exact posterior; 8 particles and lr decayed
    # to 0.05 * 0.995**600 = 0.0025 leave about 0.01 of noise
    assert float(p["m"]) == pytest.approx(MEAN, abs=0.05)
    assert float(p["s"]) == pytest.approx(PREC**-0.5, abs=0.04)
    store = dg.get_param_store()
    assert sorted(store) == ["m", "s"] and float(store["m"]) == float(p["m"])
    assert np.isfinite(svi.evaluate_loss(Y))
    # the user's next line: posterior predictive draws with the fitted params (from the store)
    pred = dg.infer.Predictive(model, guide=guide, num_samples=400, seed=0, backend=backend)
    y_new = pred(None)["y"]
    assert y_new.shape == (400, 3)
    # exact: E y_new = posterior mean, sd sqrt(1/prec + 0.25) = 0.53; 400 draws give a
    # standard error of 0.027, the fit itself is within 0.05
    assert np.all(np.abs(y_new.mean(0) - MEAN) < 0.05 + 4 * 0.027)


def test_store_continues_and_clear_restarts(backend, conjugate):
    Y, model, guide = conjugate.Y, conjugate.model, conjugate.guide
    svi = dg.infer.SVI(model, guide, dg.optim.Adam(lr=0.1), backend=backend, seed=0)
    for _ in range(30):
        svi.step(Y)
    m = float(dg.get_param_store()["m"])
    assert m > 1.0  # moved from 0 towards 1.16
    # a new SVI object starts from the stored values (Pyro's rule, on both backends)
    svi2 = dg.infer.SVI(model, guide, dg.optim.Adam(lr=1e-6), backend=backend, seed=1)
    svi2.step(Y)
    assert float(svi2.params["m"]) == pytest.approx(m, abs=1e-4)
    # clearing the store restarts every SVI object from the init values
    dg.clear_param_store()
    assert len(dg.get_param_store()) == 0
    svi2.step(Y)
    assert float(svi2.params["m"]) == pytest.approx(0.0, abs=1e-4)


def exact_loss(m: float, s: float, y_obs) -> float:
    """-ELBO of q = N(m, s) for x ~ N(1, 2), y_i ~ N(x, 0.5): E_q[-log p(x, y)] - H(q)."""
    c = 0.5 * np.log(2 * np.pi)
    prior = -0.5 * (s**2 + (m - 1.0) ** 2) / 4.0 - np.log(2.0) - c
    lik = sum(-0.5 * ((y - m) ** 2 + s**2) / 0.25 - np.log(0.5) - c for y in y_obs)
    entropy = 0.5 * np.log(2 * np.pi * np.e * s**2)
    return float(-(prior + lik + entropy))


def test_evaluate_loss_is_the_exact_elbo_at_the_init_params(both, conjugate):
    """evaluate_loss before any step: Trace_ELBO at m = 0, s = 1 on both backends."""
    Y, model, guide = conjugate.Y, conjugate.model, conjugate.guide
    want = exact_loss(0.0, 1.0, Y)
    assert want == pytest.approx(17.63, abs=0.01)  # checked by Monte Carlo (200000 draws)
    for b in both:
        dg.clear_param_store()
        svi = dg.infer.SVI(
            model, guide, 0.01, loss=dg.infer.Trace_ELBO(num_particles=20000), backend=b, seed=0
        )
        # the per-particle loss has sd 16.4 here (it is quadratic in x); 20000 particles
        # give a standard error of 0.12; 5 standard errors
        assert svi.evaluate_loss(Y) == pytest.approx(want, abs=0.6)


def test_a_handler_wrapped_model_in_the_loop(backend, conjugate):
    Y, MEAN, model, guide = conjugate.Y, conjugate.MEAN, conjugate.model, conjugate.guide
    open_model = dg.handlers.condition(
        lambda y: model(None), data={"y": Y}
    )  # y observed by condition instead of obs=
    svi = dg.infer.SVI(
        open_model,
        guide,
        dg.optim.ClippedAdam(lr=0.05, lrd=0.995),
        loss=dg.infer.Trace_ELBO(num_particles=8),
        backend=backend,
        seed=0,
    )
    for _ in range(600):
        svi.step(None)
    assert float(svi.params["m"]) == pytest.approx(MEAN, abs=0.05)


def test_bad_input(conjugate):
    model, guide = conjugate.model, conjugate.guide
    with pytest.raises(SpecError, match="Trace_ELBO"):
        dg.infer.SVI(model, guide, 0.01, loss="elbo")
    with pytest.raises(SpecError, match="num_particles"):
        dg.infer.Trace_ELBO(num_particles=0)
    with pytest.raises(SpecError, match="not a dualguide optimizer"):
        dg.infer.SVI(model, guide, "adam")
    with pytest.raises(KeyError, match="no param 'q'"):
        dg.get_param_store()["q"]


def test_int_arguments_stay_ints(backend):
    """A plate size passed to step() as a Python int (NumPyro: a static argument of the jit)."""

    def sized(y, n):
        x = dg.sample("x", dist.Normal(0.0, 1.0))
        with dg.plate("d", n):
            dg.sample("y", dist.Normal(x, 1.0), obs=y)

    def sized_guide(y, n):
        dg.sample("x", dist.Normal(dg.param("m", 0.0), 1.0))

    svi = dg.infer.SVI(sized, sized_guide, 0.05, backend=backend, seed=0)
    y = np.ones(5, dtype=np.float32)
    for _ in range(300):
        svi.step(y, 5)
    # posterior mean 5/6; lr 0.05 Adam with one particle jitters by about 0.05
    assert float(svi.params["m"]) == pytest.approx(5 / 6, abs=0.15)
    assert np.isfinite(svi.evaluate_loss(y, n=5))


def test_an_autoguide_continues_from_the_store(backend, conjugate):
    Y, model = conjugate.Y, conjugate.model
    g = dg.autoguides.AutoNormal(model)
    svi = dg.infer.SVI(model, g, dg.optim.Adam(lr=0.1), backend=backend, seed=0)
    for _ in range(30):
        svi.step(Y)
    before = dict(svi.params)
    assert len(before) == 2  # loc and scale of x, in the framework's own names
    svi2 = dg.infer.SVI(model, dg.autoguides.AutoNormal(model), 1e-6, backend=backend, seed=1)
    svi2.step(Y)
    for k, v in before.items():
        np.testing.assert_allclose(svi2.params[k], v, atol=1e-4)


def test_set_rng_seed_repeats_and_param_reads_the_store(backend, backend_state, conjugate):
    Y, model, guide = conjugate.Y, conjugate.model, conjugate.guide
    dg.set_backend(backend)

    def run():
        dg.clear_param_store()
        dg.set_rng_seed(3)
        svi = dg.infer.SVI(model, guide, 0.05)  # unseeded: the global RNGs
        return [svi.step(Y) for _ in range(3)]

    assert run() == run()
    # pyro.param("m") after a loop: the fitted value, on both backends
    assert dg.param("m").item() == pytest.approx(float(dg.get_param_store()["m"]))
    with pytest.raises(SpecError, match="seed"):
        dg.set_rng_seed(-1)


def test_a_param_read_outside_the_program_is_a_numpy_copy(backend, backend_state, conjugate):
    """``dg.param("m")`` after a loop (found porting Pyro host code: the port of
    ``pyro.param("m").detach().numpy()``): Pyro gave its live tensor, which requires grad
    (``np.stack`` of it failed), NumPyro a jax array.  Both give numpy now, and a copy: later
    steps do not change a value already read."""
    Y, model, guide = conjugate.Y, conjugate.model, conjugate.guide
    dg.set_backend(backend)
    svi = dg.infer.SVI(model, guide, 0.05)
    for _ in range(3):
        svi.step(Y)
    m, s = dg.param("m"), dg.param("s")
    assert type(m) is np.ndarray and type(s) is np.ndarray
    assert np.stack([m, s]).shape == (2,)
    before = m.copy()
    svi.step(Y)
    np.testing.assert_array_equal(m, before)
    assert float(dg.param("m")) != float(before)  # the new value, read again
    with pytest.raises(SpecError, match=r"dg.param\('not_there'\): no fitted value"):
        dg.param("not_there")
