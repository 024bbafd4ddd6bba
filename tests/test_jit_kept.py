"""dualguide's own checks must not cost Pyro's JIT: a model observing data inside a plate
fits with JitTrace_ELBO (the input checks run on the eager first step, not in the trace)."""

from __future__ import annotations

import numpy as np

import dualguide as dg
from dualguide import distributions as dist

X = np.random.default_rng(0).normal(size=(50,)).astype(np.float32)


def model(x):
    m = dg.sample("m", dist.Normal(0.0, 1.0))
    with dg.plate("data", 50):
        dg.sample("obs", dist.Normal(m, 1.0), obs=x)


def guide(x):
    loc = dg.param("loc", 0.0)
    dg.sample("m", dist.Normal(loc, 0.5))


def test_plated_observations_keep_the_jit_on_pyro():
    r = dg.fit(model, guide, backend="pyro", model_args=(X,), num_steps=50, progress=False)
    assert r.elbo == "JitTrace_ELBO"


def test_the_plate_check_still_runs_under_the_jit():
    import pytest

    with pytest.raises(dg.errors.SpecError, match="plate 'data' has size 50"):
        dg.fit(model, guide, backend="pyro", model_args=(X[:40],), num_steps=5, progress=False)


# --- every ops function keeps Pyro's JIT inside a dg.transformed map (issue 17) -------------
# torch's gradients of ops that save their output (exp, tanh, sqrt, softmax, 1 / x, ...)
# cannot be recorded by torch.jit.trace; the Pyro backend computes them through input-saving
# autograd functions while tracing.  Each map below (1) fits under JitTrace_ELBO with no
# fallback warning, and (2) traced on its own, gives the eager log|det J| and its gradient in
# the param at fresh inputs (so a wrong derivative formula cannot hide).
import pytest  # noqa: E402

from dualguide import constraints, ops  # noqa: E402

from .conftest import (  # noqa: E402
    assert_fit_keeps_the_jit,
    assert_traced_matches_eager,
    fit_small_on_pyro,
)

SCALAR_MAPS = {
    "exp": lambda u: ops.exp(u),
    "expm1": lambda u: ops.expm1(u),
    "sqrt": lambda u: ops.sqrt(2.0 + u),
    "tan": lambda u: ops.tan(0.5 * u),
    "tanh": lambda u: ops.tanh(u),
    "sigmoid": lambda u: ops.sigmoid(u),
    "expit": lambda u: ops.expit(u),
    "reciprocal": lambda u: 1.0 / (2.0 + u),
    "rpow": lambda u: 2.0**u,
    "power": lambda u: ops.power(2.0 + u, u),
}
VECTOR_MAPS = {
    "softmax": lambda u: u + ops.softmax(u, axis=-1),
    "log_softmax": lambda u: u + ops.log_softmax(u, axis=-1),
    "logsumexp": lambda u: u + ops.logsumexp(u, axis=-1, keepdims=True),
    # a vector map of plain ops: lost the JIT before too (traced sizes read as Python values)
    "slice": lambda u: 2.0 * u + u[..., :1],
}
CASES = [(k, False) for k in SCALAR_MAPS] + [(k, True) for k in VECTOR_MAPS]


def _program(fn, vector: bool):
    def model():
        d = dist.Normal(ops.zeros(3), 3.0).to_event(1) if vector else dist.Normal(0.0, 3.0)
        dg.sample("x", d)

    def guide():
        m = dg.param("m", 0.1)
        s = dg.param("s", 0.3, constraint=constraints.positive)
        base = dist.Normal(m * ops.ones(3), s).to_event(1) if vector else dist.Normal(m, s)
        dg.transformed("x", {"u": base}, fn, event_dims=1 if vector else 0)

    return model, guide


@pytest.mark.parametrize("name,vector", CASES)
def test_each_op_keeps_the_jit_in_a_transformed_map(name, vector):
    fn = (VECTOR_MAPS if vector else SCALAR_MAPS)[name]
    assert_fit_keeps_the_jit(*_program(fn, vector), seed=3)


@pytest.mark.parametrize("name,vector", CASES)
def test_traced_jacobian_of_each_op_matches_eager(name, vector):
    from dualguide._linalg import logabsdet
    from dualguide.backends.pyro.transforms import jacobian

    fn = (VECTOR_MAPS if vector else SCALAR_MAPS)[name]
    ed = 1 if vector else 0

    def f(u, p):
        with dg.use_backend("pyro"):
            outs, J, plan = jacobian(fn, [u * p], [ed], [ed], ("u",), ("x",), True)
            return logabsdet(J, plan.d_in).sum() + outs[0].sum()

    assert_traced_matches_eager(f)


def test_an_op_the_trace_cannot_take_warns_naming_op_and_site():
    fn = lambda u: ops.prod(ops.exp(u)[..., None], axis=-1)
    with pytest.warns(UserWarning, match=r"transformed \(x\) <- \(u\): the map uses prod"):
        r = fit_small_on_pyro(*_program(fn, False), seed=3)
    assert r.elbo == "Trace_ELBO"


def test_the_trace_check_catches_a_graph_that_baked_in_its_inputs():
    """The shared check is not vacuous: a map that reads a value as a Python float is traced
    with that value frozen, and the check sees it differ from eager at the fresh inputs."""

    def f(u, p):
        return u.sum() * p * float(p)  # the trace records float(p) = 1.1 as a constant

    with pytest.raises(AssertionError):
        assert_traced_matches_eager(f)


# ------------------------------------------------------------------------------------------
# dualguide's shape reads (found by porting programs, 2026-12-03): under torch.jit.trace a
# tensor's sizes are traced 0-d tensors; reading them as ints to check a param's init shape
# or a handlers.mask against its site raised a TracerWarning that the JIT-safety check took
# for user code freezing a value, so the fit fell back to Trace_ELBO (with a warning naming
# dualguide's own line).  The porter writes ops.zeros(n) for torch.zeros(n), so ported
# programs hit it.  Each program fits with JitTrace_ELBO, to the numbers of Pyro's own loop.
# ------------------------------------------------------------------------------------------
from dualguide import handlers  # noqa: E402

D = 3


def vec_model():
    dg.sample("x", dist.Normal(0.0, 1.0).expand([D]).to_event(1))


def guide_zeros():
    loc = dg.param("loc", ops.zeros(D))
    dg.sample("x", dist.Normal(loc, 1.0).to_event(1))


def guide_full():
    loc = dg.param("loc", ops.full((D,), 0.5))
    dg.sample("x", dist.Normal(loc, 1.0).to_event(1))


MASK = np.array([True, False, True, True])


def masked_model():
    with dg.plate("n", 4):
        with handlers.mask(mask=ops.asarray(MASK)):
            dg.sample("z", dist.Normal(0.0, 1.0))


def masked_guide():
    loc = dg.param("loc", ops.zeros(4))
    with dg.plate("n", 4):
        with handlers.mask(mask=ops.asarray(MASK)):
            dg.sample("z", dist.Normal(loc, 1.0))


CASES = {
    "param init ops.zeros": (vec_model, guide_zeros),
    "param init ops.full": (vec_model, guide_full),
    "mask inside a plate": (masked_model, masked_guide),
}


@pytest.mark.parametrize("case", list(CASES))
def test_pyro_keeps_the_jit(case, monkeypatch):
    m, g = CASES[case]
    fast = assert_fit_keeps_the_jit(m, g, seed=0)
    from dualguide.backends.pyro import fitloop

    def broken(self, *a, **k):
        raise RuntimeError("use Pyro's own loop")

    monkeypatch.setattr(fitloop._JitLoop, "__init__", broken)  # Pyro's SVI.step, JitTrace_ELBO
    slow = fit_small_on_pyro(m, g, 0, 0.1)
    assert slow.elbo == "JitTrace_ELBO"
    np.testing.assert_allclose(fast.losses, slow.losses, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("case", list(CASES))
def test_numpyro_fits_the_same_programs(case):
    m, g = CASES[case]
    r = dg.fit(m, g, backend="numpyro", num_steps=4, check=False, progress=False)
    assert np.all(np.isfinite(r.losses))


def test_other_elbos_warn_when_the_jit_falls_back():
    """A loss other than Trace_ELBO (TraceMeanField_ELBO here) whose JIT trace fails warns
    as Trace_ELBO's does (it was an INFO log line only), naming the cause."""

    def guide():
        s = dg.param("s", 1.0, constraint=constraints.positive)
        dg.sample("x", dist.Normal(0.0, float(s)))  # a tensor read as a number: not traceable

    def model():
        dg.sample("x", dist.Normal(0.0, 1.0))

    from dualguide.backends.pyro.fitloop import JitFallbackWarning

    with pytest.warns(JitFallbackWarning, match="JitTraceMeanField_ELBO failed .*TraceMeanField"):
        r = dg.fit(
            model,
            guide,
            backend="pyro",
            loss="TraceMeanField_ELBO",
            num_steps=3,
            check=False,
            progress=False,
        )
    assert r.elbo == "TraceMeanField_ELBO"
