"""Mistakes a first-time user makes (from a fresh-eyes review): each gets one clear error."""

from __future__ import annotations

import numpy as np
import pytest

import dualguide as dg
from dualguide import distributions as dist


def _model(data):
    dg.sample("x", dist.Normal(0.0, 1.0))


def _guide(data):
    dg.sample("x", dist.Normal(0.0, 1.0))


def test_missing_model_args_names_the_program_and_the_fix(backend):
    with pytest.raises(
        dg.SpecError, match=r"model _model\(data\) cannot be called .* model_args=\(\.\.\.\)"
    ):
        dg.fit(_model, _guide, backend=backend, num_steps=2)


def test_model_args_not_a_tuple_suggests_the_spelling(backend):
    with pytest.raises(dg.SpecError, match=r"write model_args=\(data,\)"):
        dg.fit(_model, _guide, backend=backend, num_steps=2, model_args=np.ones(3))


def test_model_args_as_a_list_is_accepted(backend):
    r = dg.fit(_model, _guide, backend=backend, num_steps=2, model_args=[np.ones(3)])
    assert r.num_steps == 2


def test_bool_param_init_is_refused_and_ints_become_float32(backend):
    with pytest.raises(dg.SpecError, match="param 'a': init value has dtype bool"):
        dg.trace(lambda: dg.param("a", np.array([True, False])), backend=backend)
    sites = dg.trace(lambda: dg.param("a", np.array([1, 2])), backend=backend)
    assert sites["a"].value.dtype == np.float32


def test_numpyro_sample_outside_a_run_is_a_clear_error():
    with dg.use_backend("numpyro"):
        with pytest.raises(dg.SpecError, match="called outside a model or guide run"):
            dg.sample("x", dist.Normal(0.0, 1.0))


def test_lazy_names_are_listed():
    for name in ("crosscheck", "check", "transformed", "save_params", "load_params", "export"):
        assert name in dir(dg)


def test_pyro_param_cut_off_from_autodiff_is_warned():
    from dualguide import constraints
    from dualguide.errors import CheckWarning

    def model():
        dg.sample("x", dist.Normal(0.0, 2.0))

    def guide():
        a = dg.param("a", 1.0, constraint=constraints.positive)
        dg.sample("x", dist.Normal(0.0, float(a)))  # float() cuts 'a' off from the gradient

    with pytest.warns(CheckWarning, match="param\\(s\\) 'a' get no gradient"):
        dg.fit(model, guide, backend="pyro", num_steps=5)


def test_guide_outside_the_models_plate_is_one_error_on_both_backends(backend):
    def model():
        with dg.plate("N", 5):
            dg.sample("z", dist.Normal(0.0, 1.0))

    def guide():
        loc = dg.param("loc", np.zeros(5))
        dg.sample("z", dist.Normal(loc, 1.0))  # same shape, but no plate: Pyro would reject it

    with pytest.raises(
        dg.SpecError, match=r"site 'z' is inside plate\(s\) 'N' in the model but not in"
    ):
        dg.fit(model, guide, backend=backend, num_steps=2)


@pytest.mark.parametrize(
    "kind", ["AutoDiagonalNormal", "AutoMultivariateNormal", "AutoLowRankMultivariateNormal"]
)
def test_whole_latent_autoguides_of_a_plated_latent_pass_the_doctor(backend, kind):
    """NumPyro's whole-latent autoguides record each latent as a Delta outside the model's
    plates (the joint ``_auto_latent`` carries the density): not the plate mismatch above.
    The hierarchical prior has no data, so the posterior is the prior: mu ~ N(0, 1),
    a_i ~ N(0, 2) marginally, and a_i, mu correlated 1/sqrt(2)."""
    from dualguide.doctor import check

    def model():
        mu = dg.sample("mu", dist.Normal(0.0, 1.0))
        with dg.plate("groups", 3):
            dg.sample("a", dist.Normal(mu, 1.0))

    guide = getattr(dg.autoguides, kind)(model)
    report = check(model, guide, backend=backend)
    assert not [f for f in report.findings if f.severity == "error"], report
    rendered = dg.render(guide, backend)  # the native autoguide, handed over as it is
    report = check(model, rendered, backend=backend)
    assert not [f for f in report.findings if f.severity == "error"], report
    r = dg.fit(model, guide, backend=backend, num_steps=1500, num_particles=8, seed=0)
    med = guide.median(r.params, backend=backend)
    # 1500 steps of 8 particles put the medians within ~0.1 of 0 (posterior sds 1 and 1.4)
    np.testing.assert_allclose(med["mu"], 0.0, atol=0.25)
    np.testing.assert_allclose(med["a"], np.zeros(3), atol=0.25)


def _plated_model(y):
    mu = dg.sample("mu", dist.Normal(0.0, 2.0))
    with dg.plate("n", 4):
        th = dg.sample("theta", dist.Normal(mu, 1.0))
        dg.sample("obs", dist.Normal(th, 0.5), obs=y)


def _plated_guide(size):
    def guide(y):
        dg.sample("mu", dist.Normal(dg.param("m", 0.0), 1.0))
        with dg.plate("n", 4):
            dg.sample("theta", dist.Normal(dg.param("t", np.zeros(size, np.float32)), 1.0))

    return guide


Y4 = np.array([0.5, 1.2, -0.3, 0.8], np.float32)


@pytest.mark.parametrize("check", [True, False])
def test_a_guide_site_whose_batch_shape_misses_its_plate_names_the_site(backend, check):
    """A param of shape (3,) inside a plate of 4 (found by a probe): NumPyro raised
    ``ValueError: Incompatible shapes for broadcasting`` from inside ``lax``, naming nothing;
    Pyro its own shape error.  One SpecError naming the site, the plate and the fix, from the
    doctor (``check=True``) and from the fit itself."""
    with pytest.raises(
        dg.SpecError, match=r"sample site 'theta'.*batch shape \(3,\).*plate 'n' has size 4"
    ):
        dg.fit(_plated_model, _plated_guide(3), backend=backend, model_args=(Y4,),
               num_steps=2, check=check, progress=False)  # fmt: skip


@pytest.mark.parametrize("value", [np.zeros(3), 0.0])
def test_init_params_of_another_shape_than_the_param_is_refused(backend, value):
    """``init_params={"t": <shape (3,)>}`` for a param declared with shape (4,) failed inside
    the frameworks; a scalar for it fitted silently one number for all four (a tied param,
    another model).  Both are one error naming the param and the shapes."""
    with pytest.raises(
        dg.SpecError,
        match=r"param 't'.*has shape \(\d?,?\) but the program declares it with shape \(4,\)",
    ):
        dg.fit(_plated_model, _plated_guide(4), backend=backend, model_args=(Y4,),
               num_steps=2, init_params={"t": value}, check=False, progress=False)  # fmt: skip


def test_a_plate_made_again_by_name_is_the_same_plate_on_both_backends(backend):
    """``with dg.plate("cols", 3)`` written twice in one model (found by a probe): NumPyro
    allows it, Pyro raised ``RuntimeError: Multiple sample sites named 'cols'`` with its
    trace-shapes dump.  Now the same plate on both; the model fits."""

    def model(y):
        with dg.plate("cols", 3, dim=-1):
            c = dg.sample("c", dist.Normal(0.0, 2.0))
        with dg.plate("rows", 4, dim=-2), dg.plate("cols", 3, dim=-1):
            dg.sample("y", dist.Normal(c, 1.0), obs=y)

    def guide(y):
        with dg.plate("cols", 3, dim=-1):
            dg.sample("c", dist.Normal(dg.param("loc", np.zeros(3, np.float32)), 0.5))

    y = np.tile(np.array([1.0, 2.0, 3.0], np.float32), (4, 1))
    r = dg.fit(model, guide, backend=backend, model_args=(y,), num_steps=800, num_particles=4,
               optim=dg.optim.ClippedAdam(lr=0.05, lrd=0.995), progress=False)  # fmt: skip
    # exact posterior mean of c_j: 4 y_j / (4 + 1/4) = 0.941 y_j (the guide's fixed scale does
    # not move the optimal loc); the decayed learning rate (0.05 * 0.995^800 < 0.001; its
    # steps sum to ~10, enough to travel 2.8) leaves what the gradient noise of 4 particles
    # did late in the fit: max |error| 0.009-0.039 over seeds 0-4 on both backends, so 0.08
    np.testing.assert_allclose(r.params["loc"], 0.941 * y[0], atol=0.08)


def test_a_subsampled_plate_made_again_by_name_is_refused(backend):
    """Made twice by name, a subsampled plate draws two minibatches on NumPyro (each site its
    own indices) and clashes on Pyro: one error saying to reuse the plate object."""

    def model():
        with dg.plate("d", 100, subsample_size=5):
            dg.sample("a", dist.Normal(0.0, 1.0))
        with dg.plate("d", 100, subsample_size=5):
            dg.sample("b", dist.Normal(0.0, 1.0))

    with pytest.raises(
        dg.SpecError, match=r"plate 'd' .* made a second time .* enter the same object"
    ):
        dg.trace(model, backend=backend)
