"""Bad input everywhere gets one clear error naming the culprit and the fix; nothing is lost on failure.

Every case asserts the message a user reads, not only the exception type, on both backends
where a backend is involved.  Property-based cases (hypothesis) cover families of bad values.
The last section checks that a fit meeting NaN/inf, or interrupted with Ctrl-C, returns the
last finite params.
"""

from __future__ import annotations

import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dualguide as dg
from dualguide import _state, constraints, ops
from dualguide import distributions as dist
from dualguide._table import CONSTRAINTS, DISTRIBUTIONS
from dualguide.errors import BackendError, FitError, SpecError, UnknownNameError

BACKENDS = ["numpyro", "pyro"]
DATA = Path(__file__).parent / "data"
HYP = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def model_x():
    dg.sample("x", dist.Normal(0.0, 1.0))


def _guide_with(make):
    def guide():
        dg.sample("x", make())

    return guide


def _raises(backend, guide):
    """The message of the SpecError that tracing ``guide`` on ``backend`` raises."""
    with pytest.raises(SpecError) as ei:
        dg.trace(guide, backend=backend)
    return str(ei.value)


# -- unknown names ------------------------------------------------------------------------------


def test_unknown_distribution_suggests_the_name():
    with pytest.raises(AttributeError) as ei:
        dist.Normall  # noqa: B018
    e = ei.value
    assert isinstance(e, UnknownNameError) and isinstance(e, SpecError)
    assert str(e).startswith(
        "dualguide.distributions has no distribution 'Normall'; did you mean 'Normal'"
    )


def test_unknown_distribution_without_a_close_name():
    with pytest.raises(UnknownNameError) as ei:
        dist.Zipf  # noqa: B018
    msg = str(ei.value)
    assert (
        "has no distribution 'Zipf' (known: AsymmetricLaplace, Bernoulli," in msg
        and "did you mean" not in msg
    )
    assert "add a row to DISTRIBUTIONS in dualguide/_table.py" in msg


_LONG_DISTS = sorted(n for n in DISTRIBUTIONS if len(n) >= 6)


@HYP
@given(name=st.sampled_from(_LONG_DISTS), data=st.data())
def test_typo_of_a_distribution_suggests_it(name, data):
    i = data.draw(st.integers(0, len(name) - 1))
    typo = name[:i] + name[i + 1 :]  # one letter dropped
    if typo in DISTRIBUTIONS:
        return
    with pytest.raises(UnknownNameError) as ei:
        getattr(dist, typo)
    head = str(ei.value).split(" (known:")[0]
    assert f"has no distribution {typo!r}; did you mean" in head and repr(name) in head


@HYP
@given(name=st.sampled_from(sorted(CONSTRAINTS)), upper=st.booleans())
def test_wrong_case_of_a_constraint_suggests_it(name, upper):
    wrong = name.upper() if upper else name.title()
    with pytest.raises(UnknownNameError, match=re.escape(f"did you mean {name!r}?")):
        getattr(constraints, wrong)


def test_unknown_constraint_typo():
    with pytest.raises(
        UnknownNameError, match=r"no constraint 'postive'; did you mean 'positive'\?"
    ):
        constraints.postive  # noqa: B018


def test_missing_attribute_probes_still_work():
    # hasattr / getattr(default) rely on AttributeError: the error is one
    assert not hasattr(dist, "NoSuchThing") and getattr(constraints, "nope", 7) == 7


# -- constraints and params ---------------------------------------------------------------------


@HYP
@given(lo=st.floats(-1e6, 1e6), gap=st.floats(0.0, 1e6))
def test_interval_with_bounds_in_the_wrong_order(lo, gap):
    with pytest.raises(SpecError, match="lower bound must be below upper bound"):
        constraints.interval(lo + gap, lo)


def test_interval_with_a_non_number():
    with pytest.raises(SpecError, match="constraints.interval: lower_bound must be a plain number"):
        constraints.interval("a", 1.0)


@pytest.mark.parametrize(
    "c, msg",
    [
        (
            constraints.interval,
            "constraints.interval needs arguments, e.g. constraints.interval(0.0, 1.0)",
        ),
        ("postive", "'postive' is not a dualguide constraint"),
    ],
)
def test_param_with_a_bad_constraint(backend, c, msg):
    def guide():
        dg.sample("x", dist.Normal(dg.param("s", 1.0, constraint=c), 1.0))

    assert msg in _raises(backend, guide)


@pytest.mark.parametrize("backend", BACKENDS)
@HYP
@given(v=st.floats(-1e30, 0.0))
def test_init_outside_positive(backend, v):
    def guide():
        dg.sample("x", dist.Normal(0.0, dg.param("s", v, constraint=constraints.positive)))

    msg = _raises(backend, guide)
    assert msg.startswith("param 's': init value ")
    assert "is outside its constraint positive; pick an init value inside it" in msg


@pytest.mark.parametrize("backend", BACKENDS)
@HYP
@given(v=st.one_of(st.floats(1.0001, 1e6), st.floats(-1e6, -0.0001)))
def test_init_outside_an_interval(backend, v):
    def guide():
        p = dg.param("p", v, constraint=constraints.unit_interval)
        dg.sample("x", dist.Normal(p, 1.0))

    assert "is outside its constraint unit_interval" in _raises(backend, guide)


def test_init_of_the_wrong_type(backend):
    def guide_str():
        dg.sample("x", dist.Normal(dg.param("loc", "zero"), 1.0))

    assert "param 'loc' init value: expected numbers, got <U4 value 'zero'" in _raises(
        backend, guide_str
    )

    def guide_obj():
        dg.sample("x", dist.Normal(dg.param("loc", {"a": 1}), 1.0))

    assert "param 'loc' init value: expected numbers" in _raises(backend, guide_obj)


# -- distributions with bad arguments -----------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@HYP
@given(s=st.text(max_size=8))
def test_a_string_as_a_scale(backend, s):
    msg = _raises(backend, _guide_with(lambda: dist.Normal(0.0, s)))
    assert msg.startswith(f"dist.Normal: scale is the string {s!r}; pass a number, an array")


def test_an_array_of_the_other_framework_is_a_constant(backend):
    # the input rule (dualguide/_inputs.py, tests/test_input_rules.py): a foreign array is
    # read through numpy as a constant on both backends
    if backend == "numpyro":
        import torch

        foreign = torch.tensor(0.0)
    else:
        import jax.numpy as jnp

        foreign = jnp.zeros(())
    sites = dg.trace(_guide_with(lambda: dist.Normal(foreign, 1.0)), backend=backend, seed=0)
    assert np.isfinite(sites["x"].log_prob).all() and sites["x"].value.dtype == np.float32


def test_unknown_keyword_and_too_many_arguments(backend):
    msg = _raises(backend, _guide_with(lambda: dist.Normal(0.0, sigma=1.0)))
    assert msg.startswith("dist.Normal(loc, scale) got an unexpected keyword 'sigma'")
    msg = _raises(backend, _guide_with(lambda: dist.Normal(0.0, 1.0, 2.0, 3.0)))
    assert msg.startswith("dist.Normal(loc, scale) got 4 positional arguments; its arguments")


def test_an_invalid_parameter_value(backend):
    msg = _raises(backend, _guide_with(lambda: dist.Normal(0.0, -1.0)))
    assert msg.startswith("dist.Normal(loc, scale) refused its arguments:") and "scale" in msg


def test_not_a_distribution(backend):
    msg = _raises(backend, _guide_with(lambda: dist.Normal))
    assert "sample site 'x': dist.Normal is a constructor; call it, e.g. dist.Normal(...)" in msg
    msg = _raises(backend, _guide_with(lambda: 3.0))
    assert "sample site 'x': 3.0 is not a distribution; use dualguide.distributions" in msg


@pytest.mark.parametrize(
    "wrap",
    [
        lambda d: dist.Independent(d, 0),
        lambda d: dist.TransformedDistribution(d, [dist.transforms.ExpTransform()]),
        lambda d: dist.MixtureSameFamily(dist.Categorical(probs=[0.5, 0.5]), d),
        lambda d: dist.ExpandedDistribution(d, (2,)),
    ],
    ids=["Independent", "TransformedDistribution", "MixtureSameFamily", "Expanded"],
)
def test_a_distribution_built_on_the_other_backend_as_an_argument(backend, wrap):
    """A distribution argument built while the other backend was active is one SpecError
    naming the wrapper, the argument and the fix: Pyro wrapped a NumPyro Normal silently
    (Independent, TransformedDistribution), NumPyro failed with an AttributeError or an
    AssertionError from inside numpyro."""
    other = "pyro" if backend == "numpyro" else "numpyro"
    with dg.use_backend(other):
        inner = dist.Normal(ops.asarray([0.0, 1.0]), 1.0)
    with dg.use_backend(backend):
        with pytest.raises(dg.SpecError) as e:
            wrap(inner)
    msg = str(e.value)
    assert f"built while the {other} backend was active, but the {backend} backend" in msg
    assert "with dualguide.distributions" in msg
    with dg.use_backend(backend):  # built on the active backend it is taken
        wrap(dist.Normal(ops.asarray([0.0, 1.0]), 1.0))


def test_a_native_distribution_of_the_other_framework(backend):
    if backend == "numpyro":
        import pyro.distributions as other

        expect = "got a Pyro/torch distribution Normal while the numpyro backend is active"
    else:
        import numpyro.distributions as other

        expect = "got a NumPyro distribution Normal while the pyro backend is active"
    assert expect in _raises(backend, _guide_with(lambda: other.Normal(0.0, 1.0)))


def test_a_dualguide_distribution_built_on_the_other_backend(backend):
    """dualguide's own subclasses of the other framework's distributions (their module is
    dualguide's) are named as that framework's, not as "not a distribution"."""
    other = "pyro" if backend == "numpyro" else "numpyro"
    with dg.use_backend(other):
        d = dist.Normal(0.0, 1.0)
    msg = _raises(backend, _guide_with(lambda: d))
    assert "distribution Normal while the " + backend + " backend is active" in msg


def test_improper_uniform_sampled_names_the_site(backend):
    def guide():
        dg.sample("x", dist.ImproperUniform(constraints.real, (), ()))

    def model_flat():
        dg.sample("x", dist.ImproperUniform(constraints.real, (), ()))

    # without the doctor, the backend's own error names the site (not numpyro's empty
    # NotImplementedError nor Pyro's "does not support sampling")
    for m, g in ((model_x, guide), (model_flat, lambda: None)):
        with pytest.raises(SpecError) as ei:
            dg.fit(m, g, backend=backend, num_steps=2, check=False)
        assert str(ei.value).startswith("sample site 'x': ImproperUniform has no sampler")
        assert "the guide must provide it" in str(ei.value)
    # with it, the fit refuses before any step and says which check failed
    with pytest.raises(SpecError, match="the model's latent 'x' \\(ImproperUniform\\) has no site"):
        dg.fit(model_flat, lambda: None, backend=backend, num_steps=2)


# -- backends -----------------------------------------------------------------------------------


def test_backend_not_installed(monkeypatch, backend):
    import importlib.util

    hidden = {"numpyro": ("numpyro", "jax"), "pyro": ("pyro", "torch")}[backend]
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n in hidden else real(n, *a)
    )
    monkeypatch.setattr(_state, "_loaded", {})  # as if the backend was never loaded
    extra = {"numpyro": "numpyro, jax", "pyro": "pyro, torch"}[backend]
    for call in (
        lambda: dg.fit(model_x, model_x, backend=backend, num_steps=1),
        lambda: dg.check(model_x, model_x, backend=backend),
        lambda: dg.set_backend(backend),
    ):
        with pytest.raises(BackendError) as ei:
            call()
        assert str(ei.value) == (
            f"backend {backend!r} needs {extra}, which is not installed: "
            f"pip install 'dualguide[{backend}]'"
        )


@HYP
@given(name=st.text(min_size=1, max_size=12).filter(lambda s: s.lower() not in BACKENDS))
def test_unknown_backend_name(name):
    with pytest.raises(BackendError) as ei:
        dg.check(model_x, model_x, backend=name)
    msg = str(ei.value)
    assert msg.startswith("unknown backend ") and ": choose one of numpyro, pyro" in msg
    assert "set_backend('numpyro') or DUALGUIDE_BACKEND=pyro" in msg


# -- fit and check arguments --------------------------------------------------------------------


@pytest.mark.parametrize(
    "kw, msg",
    [
        ({"num_steps": 0}, "fit: num_steps must be an integer >= 1, got 0"),
        ({"num_steps": 2.5}, "fit: num_steps must be an integer >= 1, got 2.5"),
        ({"num_particles": True}, "fit: num_particles must be an integer >= 1, got True"),
        ({"seed": -1}, "fit: seed must be an integer >= 0, got -1"),
        ({"on_nonfinite": "ignore"}, "fit: on_nonfinite must be 'stop' or 'skip', got 'ignore'"),
        (
            {"model_args": {"a": 1}},
            "fit: model_args must be a tuple (or list) of arguments, got dict",
        ),
        ({"optim": "adam"}, "adam"),
        ({"optim": dg.optim.Adam}, "Adam"),
    ],
)
def test_fit_arguments(backend, kw, msg):
    with pytest.raises(SpecError) as ei:
        dg.fit(model_x, _guide_with(lambda: dist.Normal(0.0, 1.0)), backend=backend, **kw)
    assert msg in str(ei.value)


def test_init_params_that_do_not_fit(backend):
    def guide():
        dg.sample("x", dist.Normal(dg.param("loc", 0.0), 1.0))

    with pytest.raises(SpecError) as ei:
        dg.fit(model_x, guide, backend=backend, num_steps=2, init_params={"lco": 1.0})
    assert str(ei.value) == (
        "fit: init_params has 'lco', which the guide and model never declare (they declare 'loc')"
    )
    with pytest.raises(SpecError, match="fit: init_params\\['loc'\\] is not numeric: 'one'"):
        dg.fit(model_x, guide, backend=backend, num_steps=2, init_params={"loc": "one"})


def test_check_arguments():
    with pytest.raises(SpecError, match="check: expected a guide function, got 'guide'"):
        dg.check(model_x, "guide")
    with pytest.raises(SpecError, match="check: expected a model function \\(or None\\), got 3"):
        dg.check(3, model_x)
    with pytest.raises(SpecError, match="check: model_args must be a tuple, got int"):
        dg.check(model_x, model_x, model_args=5)


# -- malformed spec files for the command line --------------------------------------------------


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "dualguide.cli", "check", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_cli_syntax_error(tmp_path):
    bad = tmp_path / "bad_syntax.py"
    bad.write_text("import dualguide as dg\n\ndef model():\n    dg.sample('x', (\n")
    p = _cli(bad)
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr.strip() == f"dualguide check: {bad}:4: syntax error: '(' was never closed"


@pytest.mark.parametrize(
    "args, msg",
    [
        (
            [DATA / "bad_noguide.py"],
            "bad_noguide.py: no guide function 'guide' (functions in the file: model, "
            "my_guide_with_another_name); name it with --guide",
        ),
        ([DATA / "bad_raises.py"], "bad_raises.py: importing it raised KeyError: 'sclae'"),
        (
            [DATA / "good_regression.py", "--model", "mdl"],
            "no model function 'mdl' (functions in the file: guide, model); name it with --model",
        ),
        ([DATA / "no_such_file.py"], "no_such_file.py: no such file"),
    ],
)
def test_cli_bad_spec_file(args, msg):
    p = _cli(*args)
    assert p.returncode == 2, p.stdout
    assert p.stderr.startswith("dualguide check: ") and msg in p.stderr
    assert "Traceback" not in p.stderr


def test_cli_bad_arguments():
    p = _cli(DATA / "good_regression.py", "--backend", "jax")
    assert p.returncode == 2 and "invalid choice: 'jax'" in p.stderr


# -- nothing lost: NaN/inf and Ctrl-C -----------------------------------------------------------


def model_wall():
    x = dg.sample("x", dist.Normal(3.0, 1.0))
    dg.factor("wall", ops.log(1.0 - x) * 0.0)  # NaN once a draw crosses x = 1


def model_wall_grad():
    x = dg.sample("x", dist.Normal(3.0, 1.0))
    # finite value, NaN gradient once a draw crosses x = 1 (the unselected branch is NaN)
    dg.factor("wall", ops.where(x > 1.0, 0.0 * x, ops.sqrt(1.0 - x)))


def guide_loc():
    dg.sample("x", dist.Normal(dg.param("loc", 0.0), 0.05))


# the prior pulls loc from 0 toward 3 by about lr per step: a draw crosses x = 1 after ~20 steps
WALL = dict(num_steps=300, optim=dg.optim.Adam(lr=0.05), seed=3)


def test_nan_loss_stops_names_step_and_site_and_keeps_params(backend):
    with pytest.raises(FitError) as ei:
        dg.fit(model_wall, guide_loc, backend=backend, **WALL)
    e, r = ei.value, ei.value.result
    k = r.stopped_at
    assert 5 < k < 100
    msg = str(e)
    assert msg.startswith(f"fit ({backend}): step {k} gave a non-finite loss")
    assert "'wall' in the model" in msg and "on_nonfinite='skip'" in msg
    assert r.num_steps == k and len(r.losses) == k + 1
    assert np.all(np.isfinite(r.losses[:-1])) and not np.isfinite(r.losses[-1])
    # .result holds the params of the last finite step: a fit of exactly k steps ends there
    clean = dg.fit(model_wall, guide_loc, backend=backend, **{**WALL, "num_steps": k})
    np.testing.assert_allclose(r.params["loc"], clean.params["loc"], rtol=1e-6)
    assert 0.5 < float(r.params["loc"]) < 1.5  # it stopped near the wall at x = 1


def test_nan_gradient_stops_with_finite_params(backend):
    with pytest.raises(FitError) as ei:
        dg.fit(model_wall_grad, guide_loc, backend=backend, **WALL)
    r = ei.value.result
    msg = str(ei.value)
    assert msg.startswith(f"fit ({backend}): step {r.stopped_at} gave a non-finite")
    if backend == "pyro":
        assert "non-finite gradient" in msg
    # the loss is finite there, so no site is blamed: the message says so
    assert "no site had a NaN/inf log density in 32 draws" in msg and "gradient did it" in msg
    assert np.isfinite(r.params["loc"]) and np.all(np.isfinite(r.losses))


def test_skip_drops_nonfinite_steps(backend):
    r = dg.fit(model_wall, guide_loc, backend=backend, on_nonfinite="skip", **WALL)
    assert r.num_steps == WALL["num_steps"] and len(r.skipped_steps) > 0
    assert np.all(~np.isfinite(r.losses[r.skipped_steps]))
    assert np.isfinite(r.params["loc"])


@pytest.fixture
def ctrl_c(monkeypatch):
    """Send a real SIGINT from the progress bar's first update (between chunks of steps)."""
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        pytest.skip("SIGINT is handled by someone else here")
    from dualguide._progress import Progress

    calls = []

    def update(self, n, loss=None):
        calls.append(n)
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)  # the signal interrupts this

    monkeypatch.setattr(Progress, "update", update)
    return calls


def _model_n():
    dg.sample("x", dist.Normal(1.0, 2.0))


def _guide_n():
    loc = dg.param("loc", 0.0)
    dg.sample("x", dist.Normal(loc, dg.param("s", 1.0, constraint=constraints.positive)))


def test_ctrl_c_returns_what_it_has(backend, ctrl_c, monkeypatch):
    r = dg.fit(_model_n, _guide_n, backend=backend, num_steps=100_000, seed=1)
    n = r.num_steps
    assert ctrl_c and 0 < n < 100_000
    assert r.message == f"interrupted after {n} steps" and len(r.losses) == n
    monkeypatch.undo()
    clean = dg.fit(_model_n, _guide_n, backend=backend, num_steps=n, seed=1)
    for k in ("loc", "s"):
        np.testing.assert_allclose(r.params[k], clean.params[k], rtol=1e-5)


def test_ctrl_c_inside_a_pyro_step_returns_what_it_has():
    """Ctrl-C lands while the model runs (mid-step): the steps before it are kept."""
    calls = {"n": 0, "at": None}

    def model():
        calls["n"] += 1
        if calls["n"] == calls["at"]:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
        _model_n()

    calls["at"] = 31  # the model runs once per step (one particle, no jit, no checks)
    r = dg.fit(model, _guide_n, backend="pyro", num_steps=1000, seed=2, jit=False, check=False)
    assert r.num_steps == 30 and r.message == "interrupted after 30 steps"
    calls["at"] = None
    clean = dg.fit(model, _guide_n, backend="pyro", num_steps=30, seed=2, jit=False, check=False)
    for k in ("loc", "s"):
        np.testing.assert_allclose(r.params[k], clean.params[k], rtol=1e-6)
    assert math.isfinite(float(r.params["loc"]))
