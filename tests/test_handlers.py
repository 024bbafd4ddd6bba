"""dualguide.handlers on both backends, against exact log densities (docs/handlers.md)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import dualguide as dg
from dualguide import distributions as dist
from dualguide.errors import SpecError
from dualguide.reparam import LocScaleReparam

H = dg.handlers


def lognormal(x, loc, scale):
    return -0.5 * ((x - loc) / scale) ** 2 - math.log(scale) - 0.5 * math.log(2 * math.pi)


def model(y=None):
    x = dg.sample("x", dist.Normal(1.0, 2.0))
    with dg.plate("data", 3):
        dg.sample("y", dist.Normal(x, 0.5), obs=y)
    return x


Y = np.array([0.5, 1.0, 2.0], dtype=np.float32)


def exact(x, y=Y):
    return lognormal(x, 1.0, 2.0) + sum(lognormal(v, x, 0.5) for v in y)


@pytest.fixture
def on(backend, backend_state):
    dg.set_backend(backend)
    return backend


def test_trace_is_a_neutral_dict_of_numpy_sites(on):
    tr = H.trace(H.seed(model, rng_seed=0)).get_trace(Y)
    assert list(tr) == ["x", "y"] and tr.backend == on
    assert isinstance(tr["x"], H.TraceSite) and isinstance(tr["x"].value, np.ndarray)
    assert tr["x"]["value"] is tr["x"].value  # NumPyro-style item access
    assert tr.nodes is tr and tr.stochastic_nodes == ["x"] and tr.observation_nodes == ["y"]
    assert tr["y"].log_prob.shape == (3,) and tr["y"].scale is None and tr["y"].mask is None
    assert tr.log_prob_sum() == pytest.approx(exact(float(tr["x"].value)), abs=1e-4)


def test_trace_as_context_manager(on):
    with H.trace() as tr:
        with H.seed(rng_seed=0):
            model(Y)
    assert list(tr) == ["x", "y"]


def test_unseeded_programs_run_on_both(on):
    tr = H.trace(model).get_trace(Y)  # NumPyro: seeded from numpy's global RNG
    assert tr["x"].value.shape == ()


def test_condition_makes_a_latent_observed(on):
    tr = H.trace(H.condition(model, data={"x": 0.25})).get_trace(Y)
    assert tr["x"].is_observed and float(tr["x"].value) == 0.25
    assert tr.stochastic_nodes == []
    assert tr.log_prob_sum() == pytest.approx(exact(0.25), abs=1e-4)


def test_condition_replaces_an_observation(on):
    y2 = np.array([3.0, 3.0, 3.0], dtype=np.float32)
    tr = H.trace(H.condition(model, data={"x": 0.0, "y": y2})).get_trace(Y)
    np.testing.assert_array_equal(tr["y"].value, y2)
    assert tr.log_prob_sum() == pytest.approx(exact(0.0, y2), abs=1e-4)


def test_condition_decorator_and_context_forms(on):
    a = H.condition(data={"x": 0.25})(model)
    assert float(a(Y)) == 0.25
    with H.trace() as tr:
        with H.condition(data={"x": 0.25}):
            model(Y)
    assert tr["x"].is_observed


def test_unknown_data_name_is_a_spec_error(on):
    with pytest.raises(SpecError, match="'z'.*never samples"):
        H.condition(model, data={"x": 0.0, "z": 1.0})(Y)
    with pytest.raises(SpecError, match="data must be a dict"):
        H.condition(model, data=[1.0])


def test_substitute_keeps_latents_latent_and_observations(on):
    def guide():
        s = dg.param("s", 1.0, constraint=dg.constraints.positive)
        return dg.sample("x", dist.Normal(0.0, s))

    tr = H.trace(H.substitute(guide, data={"x": 0.5, "s": 2.0})).get_trace()
    assert float(tr["s"].value) == 2.0
    assert float(tr["x"].value) == 0.5 and not tr["x"].is_observed
    assert tr.log_prob_sum() == pytest.approx(lognormal(0.5, 0.0, 2.0), abs=1e-5)
    # an observed site keeps its observation (use condition to change it)
    tr = H.trace(H.substitute(model, data={"x": 0.5})).get_trace(Y)
    np.testing.assert_array_equal(tr["y"].value, Y)
    assert tr.log_prob_sum() == pytest.approx(exact(0.5), abs=1e-4)


def test_do_returns_the_intervention_downstream(on):
    def chain():
        x = dg.sample("x", dist.Normal(0.0, 1.0))
        return dg.sample("z", dist.Normal(x, 1e-3))

    tr = H.trace(H.seed(H.do(chain, data={"x": 5.0}), rng_seed=1)).get_trace()
    assert sorted(tr) == ["x", "z"]
    assert not tr["x"].is_observed and abs(float(tr["x"].value)) < 5  # a fresh, unused draw
    assert float(tr["z"].value) == pytest.approx(5.0, abs=0.01)


@pytest.mark.parametrize(
    "kwargs, kept",
    [
        ({}, []),
        ({"hide": ["x"]}, ["s", "y"]),
        ({"expose": ["x"]}, ["x"]),
        ({"hide_types": ["sample"]}, ["s"]),
        ({"expose_types": ["sample"]}, ["x", "y"]),
        ({"hide_fn": lambda site: site["name"] == "y"}, ["s", "x"]),
    ],
)
def test_block_hides_sites(on, kwargs, kept):
    def prog(y=None):
        dg.param("s", 1.0)
        return model(y)

    tr = H.trace(H.block(prog, **kwargs)).get_trace(Y)
    assert sorted(tr) == kept


def test_block_takes_one_rule():
    with pytest.raises(SpecError, match="give one of"):
        H.block(model, hide=["x"], expose=["y"])


def test_scale_multiplies_the_log_density(on):
    cond = H.condition(model, data={"x": 0.25})
    tr = H.trace(H.scale(cond, scale=3.0)).get_trace(Y)
    assert tr.log_prob_sum() == pytest.approx(3.0 * exact(0.25), abs=1e-4)
    assert float(tr["x"].scale) == 3.0
    with pytest.raises(SpecError, match="positive"):
        H.scale(model, scale=-1.0)


def test_mask_zeroes_the_log_density(on):
    keep = np.array([True, False, True])

    def masked(y):
        x = dg.sample("x", dist.Normal(1.0, 2.0), obs=0.25)
        with dg.plate("data", 3), H.mask(mask=keep):
            dg.sample("y", dist.Normal(x, 0.5), obs=y)

    tr = H.trace(masked).get_trace(Y)
    np.testing.assert_array_equal(tr["y"].mask, keep)
    assert tr["y"].log_prob[1] == 0.0
    want = lognormal(0.25, 1.0, 2.0) + lognormal(0.5, 0.25, 0.5) + lognormal(2.0, 0.25, 0.5)
    assert tr.log_prob_sum() == pytest.approx(want, abs=1e-4)
    assert H.trace(H.mask(masked, mask=False)).get_trace(Y).log_prob_sum() == 0.0


def test_mask_errors(on):
    with pytest.raises(SpecError, match="bool"):
        H.mask(model, mask=np.array([1.0, 0.0, 1.0]))
    with pytest.raises(SpecError, match=r"does not fit site 'x'"):
        H.mask(model, mask=np.array([True, False, True]))(Y)


def test_seed_repeats_and_innermost_wins(on):
    def draw(fn):
        return float(H.trace(fn).get_trace(Y)["x"].value)

    a, b = draw(H.seed(model, rng_seed=1)), draw(H.seed(model, rng_seed=2))
    assert a == draw(H.seed(model, rng_seed=1)) and a != b
    assert draw(H.seed(H.seed(model, rng_seed=1), rng_seed=2)) == a  # innermost wins
    with H.trace() as tr, H.seed(rng_seed=2), H.seed(rng_seed=1):
        model(Y)
    assert float(tr["x"].value) == a
    with pytest.raises(SpecError, match="plain int"):
        H.seed(model, rng_seed=1.5)


def test_replay_reuses_latents_across_backends(backend_state):
    tr = H.trace(H.seed(model, rng_seed=0)).get_trace(Y)  # the default backend
    for b in ("numpyro", "pyro"):
        with dg.use_backend(b):
            again = H.trace(H.replay(model, trace=tr)).get_trace(Y)
        assert again.backend == b
        assert float(again["x"].value) == float(tr["x"].value)
        assert again.log_prob_sum() == pytest.approx(tr.log_prob_sum(), abs=1e-4)


def test_locscale_reparam_changes_the_density_by_the_jacobian(on):
    rep = H.reparam(model, config={"x": LocScaleReparam(centered=0.0)})
    tr = H.trace(H.condition(rep, data={"x_decentered": 0.5})).get_trace(Y)
    assert tr["x"].type == "deterministic"
    x = 1.0 + 2.0 * 0.5
    assert float(tr["x"].value) == pytest.approx(x)
    # p(x_dec, y) = p(x, y) |dx/dx_dec| = p(x, y) * scale
    assert tr.log_prob_sum() == pytest.approx(exact(x) + math.log(2.0), abs=1e-4)
    # centered=1 leaves the model as it was (no auxiliary site on either backend)
    rep1 = H.reparam(model, config=lambda name: LocScaleReparam(1.0) if name == "x" else None)
    tr1 = H.trace(H.condition(rep1, data={"x": 0.7})).get_trace(Y)
    assert list(tr1) == ["x", "y"]
    assert tr1.log_prob_sum() == pytest.approx(exact(0.7), abs=1e-4)
    with pytest.raises(SpecError, match="dualguide.reparam"):
        H.reparam(model, config={"x": "loc-scale"})


def test_uncondition_samples_observed_sites(on):
    tr = H.trace(H.seed(H.uncondition(model), rng_seed=0)).get_trace(Y * 100)
    assert not tr["y"].is_observed and np.all(np.abs(tr["y"].value) < 50)


def test_same_log_density_on_both_backends(backend_state):
    data = {"x": 0.3}
    got = []
    for b in ("numpyro", "pyro"):
        with dg.use_backend(b):
            prog = H.scale(H.condition(model, data=data), scale=0.5)
            got.append(H.trace(prog).get_trace(Y).log_prob_sum())
    assert got[0] == pytest.approx(got[1], abs=1e-5)
    assert got[0] == pytest.approx(0.5 * exact(0.3), abs=1e-4)


def test_a_conditioned_model_fits(on):
    """dg.fit takes a handler-wrapped model: x ~ N(1, 2), 3 points at sd 0.5 -> exact posterior."""

    def guide(y=None):
        m = dg.param("m", 0.0)
        s = dg.param("s", 1.0, constraint=dg.constraints.positive)
        dg.sample("x", dist.Normal(m, s))

    def open_model(y=None):
        x = dg.sample("x", dist.Normal(1.0, 2.0))
        with dg.plate("data", 3):
            dg.sample("y", dist.Normal(x, 0.5))

    conditioned = H.condition(open_model, data={"y": Y})
    r = dg.fit(
        conditioned,
        guide,
        num_steps=1500,
        num_particles=16,
        seed=0,
        optim=dg.optim.ClippedAdam(lr=0.05, lrd=0.998),
        progress=False,
    )
    prec = 1 / 4 + 3 / 0.25
    mean = (1.0 / 4 + Y.sum() / 0.25) / prec
    # the ELBO optimum is the exact posterior (Gaussian guide); 16 particles and a decayed
    # learning rate leave a few hundredths of noise
    assert float(r.params["m"]) == pytest.approx(mean, abs=0.05)
    assert float(r.params["s"]) == pytest.approx(prec**-0.5, abs=0.05)


def test_the_docs_example_runs_and_prints_what_the_page_says(on, capsys):
    """docs/handlers.md: the first python block, on each backend."""
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "handlers.md").read_text()
    code = doc.split("```python\n", 1)[1].split("```", 1)[0]
    printed = doc.split("prints (on either backend)\n\n```\n", 1)[1].split("```", 1)[0]
    exec(compile(code, "docs/handlers.md", "exec"), {"__name__": "docs_handlers"})
    assert capsys.readouterr().out == printed
    dg.clear_param_store()
