"""One input rule on both backends (dualguide/_inputs.py; the README's "Inputs" table).

Every input kind is either accepted identically on NumPyro and Pyro (same values, same
dtypes, same log densities, checked against exact answers) or refused with the same
SpecError, whose message is asserted here in full or by its informative part.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import dualguide as dg
from dualguide import constraints, ops
from dualguide import distributions as dist
from dualguide._table import DIST_REQUIRED
from dualguide.errors import SpecError

BACKENDS = ["numpyro", "pyro"]


def _foreign(backend, value):
    """``value`` as an array of the framework that ``backend`` does not use."""
    if backend == "numpyro":
        import torch

        return torch.as_tensor(np.asarray(value))
    import jax.numpy as jnp

    return jnp.asarray(np.asarray(value))


def _msg(backend, fn, *args):
    with pytest.raises(SpecError) as ei:
        dg.trace(fn, *args, backend=backend)
    return str(ei.value)


def _same_msg(fn, *args):
    """The SpecError message, asserted identical on both backends."""
    msgs = [_msg(b, fn, *args) for b in BACKENDS]
    assert msgs[0] == msgs[1], msgs
    return msgs[0]


def _sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


# -- model arguments ----------------------------------------------------------------------------


def _plated_model(n):
    with dg.plate("N", n):
        dg.sample("z", dist.Normal(0.0, 1.0))


def _plated_guide(n):
    loc = dg.param("loc", np.zeros(3))
    with dg.plate("N", n):
        dg.sample("z", dist.Normal(loc, 1.0))


@pytest.mark.parametrize("n", [3, np.int64(3)])
def test_a_python_int_model_argument_is_a_plate_size_on_both(backend, n):
    # NumPyro's jit used to trace it (TracerBoolConversionError in plate); now it stays static
    r = dg.fit(_plated_model, _plated_guide, backend=backend, model_args=(n,), num_steps=3)
    assert r.params["loc"].shape == (3,) and r.params["loc"].dtype == np.float32


@pytest.mark.parametrize(
    "arg, dtype",
    [
        (1.5, np.float32),
        (np.float64(1.5), np.float32),
        (np.arange(3.0), np.float32),
        ([1.0, 2.0], np.float32),
        (np.arange(3), None),  # integer arrays keep their kind (indices)
        (np.array([True, False]), np.bool_),  # masks stay bool
    ],
)
def test_model_argument_kinds(backend, arg, dtype):
    def model(x):
        return dg.deterministic("seen", ops.asarray(x) if dtype is not np.bool_ else x)

    v = dg.trace(model, arg, backend=backend)["seen"].value
    if dtype is None:
        assert v.dtype.kind == "i"
    else:
        assert v.dtype == dtype
    np.testing.assert_array_equal(v, np.asarray(arg))


def test_foreign_array_as_model_argument_and_obs(backend):
    data = np.array([0.5, -1.0, 2.0])

    def model(y):
        mu = dg.sample("mu", dist.Normal(0.0, 1.0))
        with dg.plate("N", 3):
            dg.sample("y", dist.Normal(mu, 1.0), obs=y)

    def guide(y):
        dg.sample("mu", dist.Normal(dg.param("m", 0.0), 1.0))

    r = dg.fit(model, guide, backend=backend, model_args=(_foreign(backend, data),), num_steps=3)
    assert np.isfinite(r.losses).all()
    # exact: log N(y | mu, 1) at the traced mu, with the foreign array as obs
    s = dg.trace(lambda: model(_foreign(backend, data)), backend=backend)
    mu = float(s["mu"].value)
    want = -0.5 * (data - mu) ** 2 - 0.5 * math.log(2 * math.pi)
    np.testing.assert_allclose(s["y"].log_prob, want, rtol=1e-6)


# -- observations ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "y",
    [
        np.array([1, 0, 1], dtype=np.int64),
        np.array([1, 0, 1], dtype=np.int32),
        np.array([True, False, True]),
        [1, 0, 1],
        np.array([1.0, 0.0, 1.0]),
    ],
    ids=["int64", "int32", "bool", "list", "float"],
)
@pytest.mark.parametrize("param", ["logits", "probs"])
def test_bernoulli_observations_of_every_kind(backend, y, param):
    # Pyro's Bernoulli(logits=) refused int64 ("result type Float can't be cast to Long") and
    # bool; NumPyro accepted both: now both accept, with the same exact log density
    kw = {"logits": 0.3} if param == "logits" else {"probs": _sigmoid(0.3)}

    def model():
        with dg.plate("N", 3):
            dg.sample("y", dist.Bernoulli(**kw), obs=y)

    lp = dg.trace(model, backend=backend)["y"].log_prob
    p = _sigmoid(0.3)
    yy = np.asarray(y, dtype=float)
    np.testing.assert_allclose(lp, yy * math.log(p) + (1 - yy) * math.log(1 - p), rtol=1e-5)


def test_categorical_int_observations(backend):
    probs = np.array([0.2, 0.3, 0.5])

    def model():
        with dg.plate("N", 4):
            dg.sample("c", dist.Categorical(probs=probs), obs=np.array([0, 2, 2, 1], np.int64))

    lp = dg.trace(model, backend=backend)["c"].log_prob
    np.testing.assert_allclose(lp, np.log(probs[[0, 2, 2, 1]]), rtol=1e-6)


def test_discrete_observations_keep_integers_where_the_framework_allows(backend):
    def model():
        dg.sample("y", dist.Bernoulli(probs=0.5), obs=np.array(1, np.int64))

    v = dg.trace(model, backend=backend)["y"].value
    # NumPyro keeps them integer; Pyro's discrete log_probs take floats (the rule's one cast)
    assert v.dtype.kind == ("i" if backend == "numpyro" else "f") and v == 1


def test_int_observations_of_a_continuous_distribution_become_floats(backend):
    def model():
        with dg.plate("N", 2):
            dg.sample("y", dist.Normal(0.0, 1.0), obs=np.array([1, 2], np.int64))

    s = dg.trace(model, backend=backend)["y"]
    assert s.value.dtype == np.float32
    np.testing.assert_allclose(
        s.log_prob, -0.5 * np.array([1.0, 4.0]) - 0.5 * math.log(2 * math.pi)
    )


def test_observations_of_the_wrong_length_for_their_plate():
    # NumPyro's native message blamed the guide; Pyro's was a raw shape error
    def model(y):
        mu = dg.sample("mu", dist.Normal(0.0, 1.0))
        with dg.plate("data", 4):
            dg.sample("y", dist.Normal(mu, 1.0), obs=y)

    msg = _same_msg(model, np.zeros(3))
    assert msg == (
        "sample site 'y': obs has shape (3,) but plate 'data' has size 4 (batch dim -1): the "
        "observations along that dim must number 4; pass data of the plate's length or make "
        "the plate dg.plate('data', len(data))"
    )


def test_wrong_length_in_a_fit_names_the_site_not_the_guide(backend):
    def model(y):
        mu = dg.sample("mu", dist.Normal(0.0, 1.0))
        with dg.plate("data", 4):
            dg.sample("y", dist.Normal(mu, 1.0), obs=y)

    def guide(y):
        dg.sample("mu", dist.Normal(dg.param("m", 0.0), 1.0))

    for check in (True, False):
        with pytest.raises(SpecError, match=r"sample site 'y': obs has shape \(3,\) but plate"):
            dg.fit(
                model, guide, backend=backend, model_args=(np.zeros(3),), num_steps=2, check=check
            )


def test_empty_data():
    def model(y):
        dg.sample("y", dist.Normal(0.0, 1.0), obs=y)

    assert _same_msg(model, np.zeros(0)) == (
        "sample site 'y': obs is empty (shape (0,)); there is nothing to observe: check the "
        "data you pass (model_args) and its plate's size"
    )

    def plated(y):
        with dg.plate("N", len(y)):
            dg.sample("y", dist.Normal(0.0, 1.0), obs=y)

    assert _same_msg(plated, np.zeros(0)) == (
        "plate 'N': size is 0; a plate needs at least one element (empty data? check the data "
        "you pass as model_args)"
    )


# -- distribution parameters ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "loc",
    [np.array([0.0, 1.0]), np.array([0, 1]), [0.0, 1.0], np.array([False, True])],
    ids=["float64", "int64", "list", "bool"],
)
def test_numpy_and_list_distribution_parameters(backend, loc):
    # Pyro raised an AttributeError/refusal for numpy parameters; now both take them as floats
    def model():
        dg.sample("x", dist.Normal(loc, np.float64(2.0)).to_event(1), obs=np.array([0.5, 0.5]))

    s = dg.trace(model, backend=backend)["x"]
    z = (0.5 - np.array([0.0, 1.0])) / 2.0
    want = np.sum(-0.5 * z**2 - math.log(2.0) - 0.5 * math.log(2 * math.pi))
    np.testing.assert_allclose(s.log_prob, want, rtol=1e-6)


def test_foreign_distribution_parameter_and_param_init(backend):
    def guide():
        a = dg.param("a", _foreign(backend, [1.0, 2.0]), constraint=constraints.positive)
        dg.sample("x", dist.Normal(_foreign(backend, [0.0, 0.0]), a).to_event(1))

    s = dg.trace(guide, backend=backend)
    assert s["a"].value.dtype == np.float32
    np.testing.assert_array_equal(s["a"].value, [1.0, 2.0])
    assert np.isfinite(s["x"].log_prob)


def test_param_init_kinds(backend):
    def guide():
        dg.param("i", np.array([1, 2], np.int64))
        dg.param("f", np.float64(0.5))
        dg.param("l", [1.0, 2.0])

    s = dg.trace(guide, backend=backend)
    for k in ("i", "f", "l"):
        assert s[k].value.dtype == np.float32


def test_bool_param_init_is_refused_the_same_on_both():
    msg = _same_msg(lambda: dg.param("a", np.array([True])))
    assert msg.startswith("param 'a': init value has dtype bool; params are real numbers (float32)")


def test_a_distribution_without_its_arguments():
    # NumPyro has defaults (Normal(0, 1)), Pyro requires them: one rule, Pyro's signature
    msg = _same_msg(lambda: dg.sample("x", dist.Normal()))
    assert msg == (
        "dist.Normal(loc, scale) is missing its argument 'loc'; pass it, e.g. "
        "dist.Normal(loc=..., scale=...)"
    )
    msg = _same_msg(lambda: dg.sample("x", dist.Normal(0.0)))
    assert msg.startswith("dist.Normal(loc, scale) is missing its argument 'scale'")
    msg = _same_msg(lambda: dg.sample("x", dist.Bernoulli()))
    assert msg == (
        "dist.Bernoulli(probs, logits) needs exactly one of 'probs', 'logits' (got none); pass "
        "one, e.g. dist.Bernoulli(probs=...)"
    )
    msg = _same_msg(lambda: dg.sample("x", dist.Bernoulli(probs=0.5, logits=0.0)))
    assert "needs exactly one of 'probs', 'logits' (got more than one)" in msg


def test_the_argument_check_remembers_only_signatures_that_passed():
    # plain arguments (floats, native arrays) take a fast path that checks each signature once
    # (issue 10's benchmark): one that was refused is refused again at every call, and a None
    # argument always goes through the whole check
    for _ in range(2):
        msg = _same_msg(lambda: dg.sample("x", dist.Bernoulli(probs=0.5, logits=0.0)))
        assert "needs exactly one of 'probs', 'logits' (got more than one)" in msg
        msg = _same_msg(lambda: dg.sample("x", dist.Normal(0.0)))
        assert msg.startswith("dist.Normal(loc, scale) is missing its argument 'scale'")
    for b in BACKENDS:
        assert (
            dg.trace(lambda: dg.sample("x", dist.Normal(0.0, 1.0)), backend=b)["x"].value.shape
            == ()
        )
    msg = _same_msg(lambda: dg.sample("x", dist.Normal(0.0, None)))
    assert msg.startswith("dist.Normal(loc, scale) is missing its argument 'scale'")


@pytest.mark.parametrize("name", sorted(DIST_REQUIRED))
def test_every_distribution_without_arguments_is_the_same_error(name):
    msg = _same_msg(lambda: dg.sample("x", getattr(dist, name)()))
    first = DIST_REQUIRED[name][0]
    assert msg.startswith(f"dist.{name}(") and (
        f"missing its argument {first!r}" in msg or "needs exactly one of" in msg
    )


# -- site names, plates, fit's loss ----------------------------------------------------------------


def test_a_duplicate_site_name():
    def model():
        dg.sample("x", dist.Normal(0.0, 1.0))
        dg.sample("x", dist.Normal(0.0, 1.0))

    assert _same_msg(model) == (
        "sample site 'x' appears twice in one run of the program; every site needs its own name "
        "(in a loop, e.g. f'x_{i}', or use dg.plate for independent copies)"
    )


def test_a_guide_param_named_like_the_latent():
    def guide():
        x = dg.param("x", 0.0)
        dg.sample("x", dist.Normal(x, 1.0))

    assert _same_msg(guide) == (
        "sample site 'x': the program already has a param named 'x'; a param and a sample site "
        "cannot share a name (a guide's param is often named like the model latent it shapes): "
        "rename the param, e.g. 'x_loc'"
    )


def test_a_param_named_like_the_latent_in_a_fit(backend):
    def model():
        dg.sample("x", dist.Normal(0.0, 1.0))

    def guide():
        x = dg.param("x", 0.0)
        dg.sample("x", dist.Normal(x, 1.0))

    with pytest.raises(SpecError, match="the program already has a param named 'x'"):
        dg.fit(model, guide, backend=backend, num_steps=2)


def test_a_plate_without_a_size_or_with_a_bad_one():
    assert _same_msg(lambda: dg.plate("N").__enter__()) == (
        "plate 'N' has no size; give the number of elements, e.g. dg.plate('N', len(data))"
    )
    msg = _same_msg(lambda: dg.plate("N", 2.5).__enter__())
    assert msg == "plate 'N': size must be a whole number, got 2.5; e.g. dg.plate(name, len(data))"


def test_fit_with_an_unknown_loss(backend):
    def model():
        dg.sample("x", dist.Normal(0.0, 1.0))

    def guide():
        dg.sample("x", dist.Normal(dg.param("m", 0.0), 1.0))

    with pytest.raises(SpecError) as ei:
        dg.fit(model, guide, backend=backend, num_steps=2, loss="Trace_ELBOO")
    assert str(ei.value) == (
        "fit: loss 'Trace_ELBOO' is not one of 'Trace_ELBO', 'TraceMeanField_ELBO', "
        "'TraceGraph_ELBO', 'RenyiELBO', 'TraceEnum_ELBO'; pass one of these names or its object, e.g. "
        "loss=dg.infer.RenyiELBO(alpha=0)"
    )
    assert dg.fit(model, guide, backend=backend, num_steps=2, loss="Trace_ELBO").num_steps == 2


@pytest.mark.parametrize("check", [True, False])
def test_the_param_shape_clash_is_an_error(backend, check):
    # the same name with shape (3,) in the model and () in the guide used to fit silently,
    # the model's param replaced by the guide's
    def model():
        a = dg.param("a", np.zeros(3))
        dg.sample("x", dist.Normal(ops.sum(a), 1.0))

    def guide():
        a = dg.param("a", 0.0)
        dg.sample("x", dist.Normal(a, 1.0))

    with pytest.raises(
        SpecError, match=r"param 'a' is declared with shape \(\) and again with shape \(3,\)"
    ):
        dg.fit(model, guide, backend=backend, num_steps=2, check=check)


@pytest.mark.parametrize("init", [[0.1, 0.2], (0.1, 0.2), np.array([0.1, 0.2], np.float32)])
def test_a_params_shape_is_its_init_values_shape(backend, init):
    """A list or tuple init value is data, its shape numpy's: (2,) here (a review found a
    tuple, and on Pyro a list, read as a shape: (0, 0)), so the same param declared again
    with an array of that shape fits, and [1.0, 2.0] does not pass for shape (1, 2)."""

    def model():
        dg.sample("x", dist.Normal(0.0, 1.0).expand([2]).to_event(1))

    def guide():
        loc = dg.param("loc", init)
        loc = dg.param("loc", np.zeros(2, np.float32))  # the same param, the same shape
        dg.sample("x", dist.Normal(loc, 1.0).to_event(1))

    r = dg.fit(model, guide, backend=backend, num_steps=2, check=False, progress=False)
    assert r.params["loc"].shape == (2,)

    def clash():
        dg.param("b", [1.0, 2.0])
        dg.param("b", np.zeros((1, 2), np.float32))

    with pytest.raises(
        SpecError, match=r"declared with shape \(2,\) and again with shape \(1, 2\)"
    ):
        dg.fit(model, lambda: (clash(), guide()), backend=backend, num_steps=2, check=False)


KINDS = [
    "AutoNormal",
    "AutoDiagonalNormal",
    "AutoMultivariateNormal",
    "AutoLowRankMultivariateNormal",
    "AutoDelta",
]


@pytest.mark.parametrize("kind", KINDS)
def test_every_autoguide_with_an_improper_uniform_latent(backend, kind):
    # Pyro's inits sample the prior, which ImproperUniform cannot: it failed on Pyro for all
    def model():
        x = dg.sample("x", dist.ImproperUniform(constraints.positive, (), ()))
        dg.sample("y", dist.Normal(0.0, x), obs=1.0)

    guide = getattr(dg.autoguides, kind)(model)
    r = dg.fit(model, guide, backend=backend, num_steps=5)
    assert np.isfinite(r.losses).all()


def test_a_subsampled_plate_checks_the_minibatch_length(backend):
    def model(y):
        with dg.plate("N", 100, subsample_size=4) as idx:
            dg.sample("y", dist.Normal(0.0, 1.0), obs=y[idx])

    data = np.arange(100.0)
    s = dg.trace(model, data, backend=backend)["y"]
    assert s.value.shape == (4,) and np.isin(s.value, data).all()
    with pytest.raises(SpecError, match=r"obs has shape \(100,\) but plate 'N' has size 4"):
        dg.trace(_full, data, backend=backend)


def _full(y):
    with dg.plate("N", 100, subsample_size=4):
        dg.sample("y", dist.Normal(0.0, 1.0), obs=y)


def test_deterministic_and_factor_values(backend):
    def model():
        dg.deterministic("n", 3)
        dg.deterministic("f", 2.0)
        dg.deterministic("v", _foreign(backend, [1.0, 2.0]))
        dg.factor("pen", -1)

    s = dg.trace(model, backend=backend)
    assert s["n"].value.dtype.kind == "i" and s["n"].value == 3
    assert s["f"].value.dtype == np.float32 and s["v"].value.dtype == np.float32
    np.testing.assert_array_equal(s["v"].value, [1.0, 2.0])


def test_every_distribution_row_states_its_required_arguments():
    """A row added to DISTRIBUTIONS without a DIST_REQUIRED entry would let ``dist.X()`` behave
    as each framework defaults (NumPyro has defaults where Pyro requires arguments)."""
    from dualguide._table import DISTRIBUTIONS

    assert sorted(set(DISTRIBUTIONS) - set(DIST_REQUIRED)) == []
    for name, groups in DIST_REQUIRED.items():
        for group in groups:
            assert set(group.split("|")) <= set(DISTRIBUTIONS[name].args), name
