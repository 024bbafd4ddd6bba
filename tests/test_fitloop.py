"""fit's own loops: the very steps of the frameworks' SVI, run faster.

dualguide.fit does not run NumPyro's ``SVI.run`` or Pyro's ``SVI.step`` loop, but its
own (``dualguide/backends/*/fitloop.py``).  These tests pin down that each step is
still the framework's: same random draws, same loss, same update, so the loss
trajectory equals the native loop's to float rounding.  Deterministic comparisons
(same seed, same draws): the tolerances are float32 rounding, not Monte Carlo error.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest

import dualguide as dg
from dualguide import constraints, ops
from dualguide import distributions as dist

OPTIMS = {
    "adam": dg.optim.Adam(lr=0.01),
    "clipped-lrd": dg.optim.ClippedAdam(lr=0.05, lrd=0.99, clip_norm=0.5),
    "schedule": dg.optim.Adam(lr=dg.optim.exponential_decay(0.05, 0.1, 300)),
}
FIT = dict(num_steps=300, seed=3, check=False, progress=False)


# ------------------------------------------------------------------------------------------
# the unrolled threefry: bit-identical to JAX's default generator
# ------------------------------------------------------------------------------------------
def test_fastrng_draws_the_same_bits_as_jax():
    import jax
    import jax.numpy as jnp

    from dualguide.backends.numpyro import fastrng

    for impl in (fastrng.IMPL, fastrng.IMPL_SPLIT):
        assert impl is not None
        for seed in (0, 2**31 - 1):
            a, b = jax.random.PRNGKey(seed), jax.random.key(seed, impl=impl)
            assert (jax.random.key_data(b) == a).all()
            kd = lambda k: jax.random.key_data(k)
            assert (kd(jax.random.split(a, 5)) == kd(jax.random.split(b, 5))).all()
            assert (kd(jax.random.fold_in(a, 7)) == kd(jax.random.fold_in(b, 7))).all()
            for shape in ((), (2, 5)):
                assert (jax.random.normal(a, shape) == jax.random.normal(b, shape)).all()
                assert (jax.random.uniform(a, shape) == jax.random.uniform(b, shape)).all()
                assert (jax.random.bits(a, shape) == jax.random.bits(b, shape)).all()
                assert (
                    jax.random.bits(a, shape, jnp.uint8) == jax.random.bits(b, shape, jnp.uint8)
                ).all()
            # a key rewrapped from SVI's state keeps its bits
            assert (kd(fastrng.rewrap(a, impl)) == a).all()


@pytest.mark.parametrize("P", [1, 3])
def test_numpyro_unrolled_key_splits_change_no_draw(monkeypatch, P):
    """A small model's fit uses the unrolled key splits with several particles or from
    ``UNROLL_MIN_STEPS`` steps on, JAX's own below (they compile faster there): the same
    draws, losses and params either way."""
    from dualguide.backends.numpyro import fastrng, fitloop

    used = []
    real = fastrng.rewrap
    monkeypatch.setattr(fastrng, "rewrap", lambda *a: used.append(1) or real(*a))
    model, guide, args = _plated(D=3)
    kw = dict(backend="numpyro", model_args=args, num_particles=P, **FIT)
    plain = dg.fit(model, guide, **kw)
    assert bool(used) == (P > 1)
    monkeypatch.setattr(fitloop, "UNROLL_MIN_STEPS", 1)
    used.clear()
    unrolled = dg.fit(model, guide, **kw)
    assert used
    np.testing.assert_array_equal(plain.losses, unrolled.losses)
    for k in plain.params:
        np.testing.assert_array_equal(plain.params[k], unrolled.params[k])


# ------------------------------------------------------------------------------------------
# NumPyro: fit == SVI.run step for step
# ------------------------------------------------------------------------------------------
def _svi_run_numpyro(model, guide, opt, P, steps, seed, args=()):
    import jax
    import numpyro  # noqa: F401
    from numpyro.infer import SVI, Trace_ELBO

    b = dg._state.load("numpyro")
    svi = SVI(
        dg.render(model, "numpyro"),
        dg.render(guide, "numpyro"),
        b.optimizer(opt),
        Trace_ELBO(num_particles=P),
    )
    res = svi.run(jax.random.PRNGKey(seed), steps, *args, progress_bar=False)
    return np.asarray(res.losses), {k: np.asarray(v) for k, v in res.params.items()}


@pytest.mark.parametrize("opt", list(OPTIMS), ids=list(OPTIMS))
@pytest.mark.parametrize("P", [1, 4])
def test_numpyro_fit_is_svi_update_step_for_step(seed_gaussian, opt, P):
    r = dg.fit(
        seed_gaussian.model_improper,
        seed_gaussian.guide,
        backend="numpyro",
        optim=OPTIMS[opt],
        num_particles=P,
        **FIT,
    )
    losses, params = _svi_run_numpyro(
        seed_gaussian.model_improper,
        seed_gaussian.guide,
        OPTIMS[opt],
        P,
        FIT["num_steps"],
        FIT["seed"],
    )
    np.testing.assert_allclose(r.losses, losses, rtol=1e-5, atol=1e-5)
    for k in params:
        np.testing.assert_allclose(r.params[k], params[k], rtol=1e-5)


def test_numpyro_chunks_join_up(seed_gaussian, monkeypatch):
    """Many short chunks (static scan length 32, ragged last chunk) give the same run."""
    from dualguide.backends.numpyro import fitloop

    monkeypatch.setattr(fitloop, "CHUNK", 32)
    monkeypatch.setattr(fitloop, "_CACHE", fitloop.OrderedDict())
    r = dg.fit(
        seed_gaussian.model_nofactor,
        seed_gaussian.guide,
        backend="numpyro",
        optim=OPTIMS["adam"],
        num_particles=2,
        **{**FIT, "num_steps": 150},
    )
    losses, _ = _svi_run_numpyro(
        seed_gaussian.model_nofactor, seed_gaussian.guide, OPTIMS["adam"], 2, 150, FIT["seed"]
    )
    assert r.losses.shape == (150,) and r.num_steps == 150
    np.testing.assert_allclose(r.losses, losses, rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------------------------------
# NumPyro: the compiled loop is reused, and never with stale values
# ------------------------------------------------------------------------------------------
def _mean_model(y):
    mu = dg.sample("mu", dist.Normal(0.0, 10.0))
    with dg.plate("n", y.shape[0]):
        dg.sample("obs", dist.Normal(mu, 0.5), obs=y)


#: decaying steps, so the last iterate sits near the optimum (within ~0.02 here)
DECAY = dg.optim.ClippedAdam(lr=0.05, lrd=0.995)


def _mean_guide(y):
    loc = dg.param("loc", 0.0)
    scale = dg.param("scale", 0.3, constraint=constraints.positive)
    dg.sample("mu", dist.Normal(loc, scale))


def test_numpyro_compiles_once_and_takes_new_data(monkeypatch):
    from dualguide.backends.numpyro import fitloop

    compiles = []
    orig = fitloop._compile
    monkeypatch.setattr(fitloop, "_compile", lambda *a: compiles.append(1) or orig(*a))
    kw = dict(
        backend="numpyro", num_steps=1000, num_particles=4, check=False, progress=False, optim=DECAY
    )
    fits = {}
    for mean in (2.0, -1.0, 2.0):
        y = np.full(8, mean, np.float32)
        fits[mean] = dg.fit(_mean_model, _mean_guide, model_args=(y,), **kw)
        # the posterior mean of mu is 8 y / (8 + 0.25/100) ~ y: the fit must follow the data
        assert float(fits[mean].params["loc"]) == pytest.approx(mean, abs=0.05)
    assert len(compiles) == 1  # same program, same shapes: compiled once
    dg.fit(_mean_model, _mean_guide, model_args=(np.zeros(5, np.float32),), **kw)
    assert len(compiles) == 2  # new shapes: compiled again


def test_numpyro_cache_notices_a_rebound_global():
    ns = {"dg": dg, "dist": dist, "constraints": constraints, "MU": 1.0}
    exec(
        "def model():\n"
        "    dg.sample('x', dist.Normal(MU, 0.5))\n"
        "def guide():\n"
        "    dg.sample('x', dist.Normal(dg.param('loc', 0.0), 0.5))\n",
        ns,
    )
    kw = dict(
        backend="numpyro", num_steps=1000, num_particles=4, check=False, progress=False, optim=DECAY
    )
    a = dg.fit(ns["model"], ns["guide"], **kw)
    ns["MU"] = 3.0
    b = dg.fit(ns["model"], ns["guide"], **kw)
    assert float(a.params["loc"]) == pytest.approx(1.0, abs=0.1)
    assert float(b.params["loc"]) == pytest.approx(3.0, abs=0.1)


def test_numpyro_model_needing_concrete_data_still_fits():
    """A model branching in Python on its data: the loop bakes the data in instead."""

    def model(y):
        scale = 0.5 if np.asarray(y).sum() > 0 else 5.0  # needs the data as numbers
        mu = dg.sample("mu", dist.Normal(0.0, 10.0))
        with dg.plate("n", y.shape[0]):
            dg.sample("obs", dist.Normal(mu, scale), obs=y)

    y = np.full(8, 2.0, np.float32)
    r = dg.fit(
        model,
        _mean_guide,
        backend="numpyro",
        model_args=(y,),
        num_steps=1000,
        num_particles=4,
        check=False,
        progress=False,
        optim=DECAY,
    )
    assert float(r.params["loc"]) == pytest.approx(2.0, abs=0.05)


# ------------------------------------------------------------------------------------------
# Pyro: fit == SVI.step with JitTrace_ELBO step for step
# ------------------------------------------------------------------------------------------
def _svi_steps_pyro(model, guide, opt, P, steps, seed):
    import pyro
    import torch
    from pyro.infer import SVI, JitTrace_ELBO

    from dualguide.backends.pyro.optim import make_optimizer

    store = pyro.get_param_store()
    with store.scope(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        svi = SVI(
            dg.render(model, "pyro"),
            dg.render(guide, "pyro"),
            make_optimizer(opt),
            JitTrace_ELBO(num_particles=P, vectorize_particles=P > 1, ignore_jit_warnings=True),
        )
        losses = np.array([svi.step() for _ in range(steps)], np.float32)
        params = {k: v.detach().numpy().copy() for k, v in store.items()}
    return losses, params


@pytest.mark.parametrize("opt", list(OPTIMS), ids=list(OPTIMS))
@pytest.mark.parametrize("P", [1, 4])
def test_pyro_fit_is_jit_svi_step_for_step(seed_gaussian, opt, P):
    r = dg.fit(
        seed_gaussian.model_improper,
        seed_gaussian.guide,
        backend="pyro",
        optim=OPTIMS[opt],
        num_particles=P,
        **FIT,
    )
    assert r.elbo == "JitTrace_ELBO"
    losses, params = _svi_steps_pyro(
        seed_gaussian.model_improper,
        seed_gaussian.guide,
        OPTIMS[opt],
        P,
        FIT["num_steps"],
        FIT["seed"],
    )
    np.testing.assert_allclose(r.losses, losses, rtol=1e-5, atol=1e-5)
    for k in params:
        np.testing.assert_allclose(r.params[k], params[k], rtol=1e-5)


def test_pyro_without_the_fast_loop_is_the_same_fit(seed_gaussian, monkeypatch):
    """Should Pyro's internals move, fit falls back to Pyro's own JIT loop: same result."""
    from dualguide.backends.pyro import fitloop

    def broken(self, *a, **k):
        raise RuntimeError("unexpected JitTrace_ELBO state")

    kw = dict(optim=OPTIMS["adam"], num_particles=2, **{**FIT, "num_steps": 60})
    fast = dg.fit(seed_gaussian.model_nofactor, seed_gaussian.guide, backend="pyro", **kw)
    monkeypatch.setattr(fitloop._JitLoop, "__init__", broken)
    slow = dg.fit(seed_gaussian.model_nofactor, seed_gaussian.guide, backend="pyro", **kw)
    assert slow.elbo == "JitTrace_ELBO"
    np.testing.assert_allclose(fast.losses, slow.losses, rtol=1e-5, atol=1e-5)


def test_numpyro_jit_false_runs_the_same_steps_op_by_op(seed_gaussian):
    kw = dict(backend="numpyro", optim=OPTIMS["adam"], num_particles=2, **{**FIT, "num_steps": 15})
    a = dg.fit(seed_gaussian.model_nofactor, seed_gaussian.guide, **kw)
    b = dg.fit(seed_gaussian.model_nofactor, seed_gaussian.guide, jit=False, **kw)
    # op by op vs fused: the same draws, float32 rounding apart
    np.testing.assert_allclose(a.losses, b.losses, rtol=1e-4, atol=1e-4)


def test_guide_without_params_fits_on_both_backends(backend):
    def model():
        dg.sample("x", dist.Normal(0.0, 1.0))

    def guide():
        dg.sample("x", dist.Normal(0.5, 1.0))

    r = dg.fit(model, guide, backend=backend, num_steps=20, check=False, progress=False)
    assert r.params == {} and r.losses.shape == (20,) and np.isfinite(r.losses).all()


def _plated(D=7):
    data = np.linspace(-1.0, 2.0, D).astype(np.float32)

    def model(y):
        with dg.plate("d", D):
            z = dg.sample("z", dist.Normal(0.0, 1.0))
            dg.sample("y", dist.Normal(z, 1.0), obs=y)

    def guide(y):
        loc = dg.param("loc", np.zeros(D, np.float32))
        scale = dg.param("scale", np.ones(D, np.float32), constraint=constraints.positive)
        with dg.plate("d", D):
            dg.sample("z", dist.Normal(loc, scale))

    return model, guide, (data,)


@pytest.mark.parametrize("P", [1, 4])
@pytest.mark.parametrize("problem", ["seed", "plated"])
def test_pyro_recorded_particle_step_is_the_op_by_op_step(
    seed_gaussian, problem, P, monkeypatch, caplog
):
    """The step recorded as one program (fits longer than RECORD_MIN_STEPS; one particle or
    vectorized particles) replays the traced ELBO's very kernels and autograd's backward
    ops, so the fit is bit for bit the op-by-op one."""
    from dualguide.backends.pyro import fitloop

    if problem == "seed":
        model, guide, args = seed_gaussian.model_nofactor, seed_gaussian.guide, ()
    else:
        model, guide, args = _plated()
    kw = dict(backend="pyro", model_args=args, optim=OPTIMS["clipped-lrd"], num_particles=P)
    kw.update({**FIT, "num_steps": fitloop.RECORD_MIN_STEPS + 20})
    recorded = []
    real = fitloop._record_grad_program

    def spy(*a):
        recorded.append(real(*a))
        return recorded[-1]

    monkeypatch.setattr(fitloop, "_record_grad_program", spy)
    with caplog.at_level(logging.DEBUG, logger="dualguide"):
        fast = dg.fit(model, guide, **kw)
    assert len(recorded) == 1
    assert "op by op" not in caplog.text  # the recorded program passed its check and ran
    monkeypatch.setattr(fitloop, "RECORD_MIN_STEPS", 10**9)
    # one particle: the op-by-op step is a TorchScript graph whose profiling executor
    # differentiates with TorchScript's own gradient formulas (float rounding apart from
    # eager autograd's); the recording replays eager autograd's, so compare with the step
    # run without that executor (it stays within 1e-5 of Pyro's SVI: the test above)
    import torch

    with torch.jit.optimized_execution(P > 1):
        slow = dg.fit(model, guide, **kw)
    assert len(recorded) == 1  # not recorded this time
    np.testing.assert_array_equal(fast.losses, slow.losses)
    for k in slow.params:
        np.testing.assert_array_equal(fast.params[k], slow.params[k])


# ------------------------------------------------------------------------------------------
# NumPyro: the first call compiles two programs (issue 17's compile rows)
# ------------------------------------------------------------------------------------------
def _compiles(call):
    """``(call(), the number of XLA compilations it ran)``."""
    import jax.monitoring

    events: list[str] = []

    def listen(event, duration, **_):
        if event == "/jax/core/compile/backend_compile_duration":
            events.append(event)

    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        out = call()
    finally:
        jax.monitoring.unregister_event_duration_listener(listen)
    return out, len(events)


def test_numpyro_first_fit_compiles_init_and_loop_only(monkeypatch):
    """A fit of new shapes compiles the init and the loop as two XLA programs, no eager
    kernel (the estimator check traces the guide abstractly; the params come out of the
    loop), and the compiled init gives the eager init's fit bit for bit."""
    import jax.numpy as jnp

    from dualguide.backends.numpyro import fitloop

    model, guide, args = _plated(D=5)  # the process-wide one-time compiles (PRNG, ...)
    dg.fit(model, guide, backend="numpyro", model_args=args, num_steps=2, check=False)
    model, guide, args = _plated(D=37)  # a size no other test compiles
    args = tuple(jnp.asarray(a) for a in args)  # as SVI.run gets them (a conversion compiles)
    kw = dict(backend="numpyro", model_args=args, num_steps=50, num_particles=3, seed=1)
    fast, compiles = _compiles(lambda: dg.fit(model, guide, check=False, progress=False, **kw))
    assert compiles == 2

    monkeypatch.setattr(fitloop, "_init", lambda *a: None)  # the eager svi.init
    monkeypatch.setattr(fitloop, "_CACHE", type(fitloop._CACHE)())
    slow = dg.fit(model, guide, check=False, progress=False, **kw)
    np.testing.assert_array_equal(fast.losses, slow.losses)
    for k in slow.params:
        np.testing.assert_array_equal(fast.params[k], slow.params[k])


#: a plate of this many latents with a param each makes a model large (over SMALL_MODEL)
LARGE_D = 300


def _quiet_plate(D):
    """Model and guide statements for ``D`` latents that fit calmly beside the others
    (none when ``D`` is 0): they make a model large without changing its story."""

    def model_part():
        if D:
            with dg.plate("d", D):
                dg.sample("w", dist.Normal(0.0, 1.0))

    def guide_part():
        if D:
            loc = dg.param("w_loc", np.zeros(D, np.float32))
            with dg.plate("d", D):
                dg.sample("w", dist.Normal(loc, 1.0))

    return model_part, guide_part


def _walled():
    """``log(4 - z)`` is NaN past 4 and a pull drives ``z`` near it (the optimum is ~3.8):
    sooner or later a draw crosses."""

    def model():
        z = dg.sample("z", dist.Normal(0.0, 1.0))
        dg.factor("wall", ops.log(4.0 - z))
        dg.factor("pull", 10.0 * z)

    def guide():
        dg.sample("z", dist.Normal(dg.param("loc", 0.0), 0.1))

    return model, guide


def _stopped(model, guide, backend, **kw):
    with pytest.raises(dg.errors.FitError) as e:
        dg.fit(
            model,
            guide,
            backend=backend,
            num_steps=2000,
            seed=3,
            check=False,
            progress=False,
            optim=dg.optim.Adam(lr=0.05),
            **kw,
        )
    return e.value.result


@pytest.mark.parametrize("D", [0, LARGE_D], ids=["small", "large"])
def test_numpyro_stop_at_a_nonfinite_loss_keeps_the_state_before_it(D):
    """The compiled loop stops at the step whose loss is NaN, where the op-by-op loop
    (``jit=False``, the same draws) stops, and returns the params before that step; for
    small and large models (which compile with different XLA options)."""
    model0, guide0 = _walled()
    part_m, part_g = _quiet_plate(D)

    def model():
        model0()
        part_m()

    def guide():
        guide0()
        part_g()

    fast = _stopped(model, guide, "numpyro")
    slow = _stopped(model, guide, "numpyro", jit=False)
    assert 20 < slow.stopped_at < 2000 and not np.isfinite(slow.losses[-1])
    assert fast.stopped_at == slow.stopped_at
    # fused vs op by op: float32 rounding of a loss summing up to 301 terms (near 0 at times)
    np.testing.assert_allclose(fast.losses[:-1], slow.losses[:-1], rtol=1e-4, atol=1e-3)
    for k in slow.params:  # the params before the bad step, not after it
        np.testing.assert_allclose(fast.params[k], slow.params[k], rtol=1e-5, atol=1e-6)


def test_pyro_stop_at_a_nonfinite_loss_keeps_the_state_before_it():
    """Pyro: fit stops at the step whose loss is NaN in Pyro's own ``SVI.step`` loop with
    ``JitTrace_ELBO`` (the same draws; ``jit=False`` draws differently: JitTrace_ELBO's
    first step runs the program twice more to trace it) and returns the params Pyro had
    before that step."""
    model, guide = _walled()
    fast = _stopped(model, guide, "pyro")
    assert 20 < fast.stopped_at < 2000 and not np.isfinite(fast.losses[-1])
    opt = dg.optim.Adam(lr=0.05)
    losses, _ = _svi_steps_pyro(model, guide, opt, 1, fast.stopped_at + 1, 3)
    assert np.isfinite(losses[:-1]).all() and not np.isfinite(losses[-1])
    np.testing.assert_allclose(fast.losses[:-1], losses[:-1], rtol=1e-4, atol=1e-5)
    _, before = _svi_steps_pyro(model, guide, opt, 1, fast.stopped_at, 3)
    np.testing.assert_allclose(fast.params["loc"], before["loc"], rtol=1e-5)


@pytest.mark.parametrize("D", [0, LARGE_D], ids=["small", "large"])
def test_numpyro_stop_finds_the_step_whose_state_overflows(D):
    """A gradient whose square overflows float32 makes Adam's ``v`` inf while every loss stays
    finite (the params then freeze): the compiled loop, which tests the state once per chunk,
    stops at the very step the op-by-op loop (every step tested) stops at, with its params."""
    part_m, part_g = _quiet_plate(D)

    def model():
        z = dg.sample("z", dist.Normal(0.0, 1.0))
        dg.factor("grow", ops.exp(10.0 * z))  # d/dz = 10 exp(10 z): its square overflows first
        part_m()

    def guide():
        dg.sample("z", dist.Normal(dg.param("loc", 0.0), 1e-3))
        part_g()

    def stopped(jit):
        with pytest.raises(dg.errors.FitError) as e:
            dg.fit(
                model,
                guide,
                backend="numpyro",
                num_steps=300,
                jit=jit,
                check=False,
                progress=False,
                optim=dg.optim.Adam(lr=0.1),
            )
        return e.value.result

    fast, slow = stopped(True), stopped(False)
    assert 20 < slow.stopped_at < 100  # Adam's steps of ~0.1 reach z ~ 4.4 first
    assert np.isfinite(slow.losses).all()  # no loss told it: only the state
    assert fast.stopped_at == slow.stopped_at
    # exp(10 z) magnifies the compiled vs op-by-op float32 rounding of z (measured 1.2e-4)
    np.testing.assert_allclose(fast.losses, slow.losses, rtol=1e-3)
    np.testing.assert_allclose(fast.params["loc"], slow.params["loc"], rtol=1e-5)


def test_numpyro_state_test_off_the_host_is_the_same_test(monkeypatch):
    """On an accelerator the once-per-chunk state test runs as a small compiled reduction (the
    state stays on the device; one bool comes back): forced here on the CPU, it stops the
    overflowing fit above at the step the numpy test stops it at."""
    from dualguide.backends.numpyro import fitloop

    part_m, part_g = _quiet_plate(0)

    def model():
        z = dg.sample("z", dist.Normal(0.0, 1.0))
        dg.factor("grow", ops.exp(10.0 * z))
        part_m()

    def guide():
        dg.sample("z", dist.Normal(dg.param("loc", 0.0), 1e-3))
        part_g()

    def stopped():
        with pytest.raises(dg.errors.FitError) as e:
            dg.fit(model, guide, backend="numpyro", num_steps=300, check=False,
                   progress=False, optim=dg.optim.Adam(lr=0.1))  # fmt: skip
        return e.value.result

    on_host = stopped()
    calls = []
    real = fitloop._finite_on_device
    monkeypatch.setattr(fitloop, "_on_host", lambda arrays: False)
    monkeypatch.setattr(fitloop, "_finite_on_device", lambda s: calls.append(1) or real(s))
    on_device = stopped()
    assert calls  # the device path ran
    assert on_device.stopped_at == on_host.stopped_at
    np.testing.assert_array_equal(on_device.params["loc"], on_host.params["loc"])


def test_numpyro_autoguide_is_set_up_outside_jax_transforms():
    """An autoguide keeps what its first call builds (the packed latents' layout); built
    under the compiled init or the abstract estimator check it kept tracers and unpacked
    the latents wrongly (this fit's medians came out wrong).
    Each latent here sits 30 prior sds from the others, so any swap fails by far."""
    from dualguide import distributions as dist

    def model():
        dg.sample("b", dist.Normal(-3.0, 0.1))
        dg.sample("a", dist.Normal(np.array([1.0, 2.0], np.float32), 0.1).to_event(1))

    guide = dg.autoguides.AutoDiagonalNormal(model)
    r = dg.fit(model, guide, backend="numpyro", num_steps=800, seed=0, progress=False)
    med = guide.median(r.params, backend="numpyro")
    # 800 Adam steps from the prior-free init reach each mean within a few hundredths
    np.testing.assert_allclose(med["b"], -3.0, atol=0.1)
    np.testing.assert_allclose(med["a"], [1.0, 2.0], atol=0.1)


def test_numpyro_later_fits_of_a_program_compile_nothing():
    """A program's init and loop compile once: its second fit compiles nothing (the eager
    init it ran instead compiled a kernel per op and shape: 5.7 s for the rotated mixture)
    and gives the same fit."""

    model, guide, args = _plated(D=41)  # a size no other test compiles
    kw = dict(backend="numpyro", model_args=args, num_steps=30, seed=2, check=False)
    first = dg.fit(model, guide, progress=False, **kw)
    warm, compiles = _compiles(lambda: dg.fit(model, guide, progress=False, **kw))
    assert compiles == 0
    np.testing.assert_array_equal(first.losses, warm.losses)
    for k in first.params:
        np.testing.assert_array_equal(first.params[k], warm.params[k])


def test_numpyro_compiled_init_takes_each_fits_init_values(monkeypatch):
    """The compiled init gets the params' init values as arguments, so a later fit of the
    same program starts from its own: ``init_params``, or a guide whose init value changed
    (here a dict it reads, changed in place), bit for bit as the eager ``svi.init``."""
    from dualguide.backends.numpyro import fitloop

    D = 43  # a size no other test compiles
    data = np.linspace(-1.0, 2.0, D).astype(np.float32)
    start = {"loc": np.full(D, 0.5, np.float32)}

    def model(y):
        with dg.plate("d", D):
            z = dg.sample("z", dist.Normal(0.0, 1.0))
            dg.sample("y", dist.Normal(z, 1.0), obs=y)

    def guide(y):
        loc = dg.param("loc", start["loc"])
        scale = dg.param("scale", np.ones(D, np.float32), constraint=constraints.positive)
        with dg.plate("d", D):
            dg.sample("z", dist.Normal(loc, scale))

    kw = dict(backend="numpyro", model_args=(data,), num_steps=3, seed=0, check=False)
    fit = lambda **k: dg.fit(model, guide, progress=False, **kw, **k)
    first = fit()
    start["loc"] = np.full(D, -2.0, np.float32)
    moved = fit()
    given = fit(init_params={"scale": np.full(D, 3.0, np.float32)})
    assert not np.array_equal(first.params["loc"], moved.params["loc"])
    monkeypatch.setattr(fitloop, "_init", lambda *a: None)  # the eager svi.init
    np.testing.assert_array_equal(moved.params["loc"], fit().params["loc"])
    eager = fit(init_params={"scale": np.full(D, 3.0, np.float32)})
    for k in eager.params:
        np.testing.assert_array_equal(given.params[k], eager.params[k])
    np.testing.assert_array_equal(given.losses, eager.losses)
