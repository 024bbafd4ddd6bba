"""One source for a user-defined distribution's base class on each backend (backend and
export), and what a ported NumPyro class draws for a key.

Each backend renders a neutral ``dist.Distribution`` subclass over its own ``UserDistribution``
and ``_NeutralKey`` classes; ``dualguide export`` copies those very classes into the exported
file, so the two cannot drift: the same key (NumPyro) or torch seed (Pyro) gives the same
draws."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pytest

import dualguide as dg
from dualguide import _state
from dualguide._files import load_file
from dualguide.porting.port import port

DATA = Path(__file__).resolve().parent / "data"

NEUTRAL = """import dualguide as dg
from dualguide import constraints, ops
from dualguide import distributions as dist


class Twice(dist.Distribution):
    arg_constraints = {"rate": constraints.positive}
    support = constraints.positive
    has_rsample = True

    def __init__(self, rate, validate_args=None):
        self.rate = ops.asarray(rate)
        super().__init__(batch_shape=tuple(self.rate.shape), validate_args=validate_args)

    def sample(self, key, sample_shape=()):
        shape = tuple(sample_shape) + tuple(self.batch_shape)
        # two draws from the key: an exponential and a normal
        return -ops.log1p(-key.uniform(shape)) / self.rate + 0.0 * key.normal(shape)

    def log_prob(self, value):
        return ops.log(self.rate) - self.rate * value


def model():
    dg.sample("x", Twice(ops.asarray([2.0, 0.5])))


def guide():
    pass
"""


def test_the_export_copies_the_backends_classes(backend, tmp_path):
    feat = _state.feature(backend, "dists")
    src = tmp_path / "twice.py"
    src.write_text(NEUTRAL)
    code = dg.export(src, backend=backend, out=tmp_path / f"twice_{backend}.py")
    for cls in (feat.UserDistribution, feat._NeutralKey):
        assert inspect.getsource(cls) in code  # verbatim: one source
    assert code.count("class UserDistribution(") == 1 and "class Twice(UserDistribution)" in code


def test_the_same_key_gives_the_same_draws_and_densities(tmp_path):
    import jax

    src = tmp_path / "twice.py"
    src.write_text(NEUTRAL)
    out = tmp_path / "twice_np.py"
    dg.export(src, backend="numpyro", out=out)
    exported, neutral = load_file(str(out)), load_file(str(src))
    key = jax.random.PRNGKey(3)
    with dg.use_backend("numpyro"):
        d_dg = neutral.Twice(dg.ops.asarray([2.0, 0.5]))
        x_dg = np.asarray(d_dg.sample(key, (4,)))
        r_dg = np.asarray(d_dg.rsample(key, (4,)))
        lp_dg = np.asarray(d_dg.log_prob(dg.ops.asarray([-1.0, 1.0])))
    d_ex = exported.Twice(jax.numpy.asarray([2.0, 0.5]))
    x_ex = np.asarray(d_ex.sample(key, (4,)))
    # bit for bit: one base class, one key schedule
    np.testing.assert_array_equal(x_ex, x_dg)
    np.testing.assert_array_equal(np.asarray(d_ex.rsample(key, (4,))), r_dg)
    np.testing.assert_array_equal(np.asarray(d_ex.log_prob(jax.numpy.asarray([-1.0, 1.0]))), lp_dg)
    assert lp_dg[0] == -np.inf and np.isfinite(lp_dg[1])  # outside the support: -inf
    assert d_dg.has_rsample and d_ex.has_rsample


def test_a_ported_numpyro_class_draws_from_the_first_subkey(tmp_path):
    """The original ``Shifted.sample(key)`` draws ``jax.random.normal(key, ...)``; the ported
    class draws ``key.normal(...)``, which splits first (every neutral draw is a fresh one), so
    its numbers are the original's for the key's first subkey ``jax.random.split(key)[1]``:
    the same distribution, other numbers for the same key (docs/export_and_port.md says why)."""
    import jax

    original = load_file(str(DATA / "numpyro_user_dist.py"))
    out = tmp_path / "ported.py"
    port(DATA / "numpyro_user_dist.py", out=out)
    ported = load_file(str(out))
    key = jax.random.PRNGKey(0)
    with dg.use_backend("numpyro"):
        got = np.asarray(ported.Shifted(0.5, 2.0).sample(key, (5,)))
    orig = original.Shifted(0.5, 2.0)
    np.testing.assert_array_equal(got, np.asarray(orig.sample(jax.random.split(key)[1], (5,))))
    assert not np.allclose(got, np.asarray(orig.sample(key, (5,))))


@pytest.mark.parametrize("n", [1, 3])
def test_the_neutral_key_draws_a_fresh_subkey_each_call(n):
    """The schedule both the backend and the export use: draw i takes the second half of the
    i-th split of the key."""
    import jax

    feat = _state.feature("numpyro", "dists")
    key = jax.random.PRNGKey(7)
    k = feat._NeutralKey(key)
    got = [np.asarray(k.normal((2,))) for _ in range(n)]
    for i in range(n):
        key, sub = jax.random.split(key)
        np.testing.assert_array_equal(got[i], np.asarray(jax.random.normal(sub, (2,))))


# --- Pyro: the same one source (backends/pyro/dists.py, copied into the export) ------------
def test_the_pyro_export_runs_as_the_backend_same_seed_same_draws(tmp_path):
    """The exported file executes, and its class gives the backend's draws for the same torch
    seed, its log_prob (-inf outside the support), expand and to_event bit for bit."""
    import torch

    src = tmp_path / "twice.py"
    src.write_text(NEUTRAL)
    out = tmp_path / "twice_pyro.py"
    dg.export(src, backend="pyro", out=out)
    exported, neutral = load_file(str(out)), load_file(str(src))
    value = torch.tensor([-1.0, 1.0])
    with dg.use_backend("pyro"):
        d_dg = neutral.Twice(dg.ops.asarray([2.0, 0.5]))
    d_ex = exported.Twice(torch.tensor([2.0, 0.5]))
    got = {}
    for name, d in (("dg", d_dg), ("ex", d_ex)):
        torch.manual_seed(5)
        x = d.sample((4,))
        r = d.rsample((4,))
        e = d.expand((3, 2)).to_event(1)
        got[name] = (x, r, d.log_prob(value), e.sample().shape, e.log_prob(value))
    for a, b in zip(got["dg"], got["ex"]):
        if isinstance(a, torch.Size):
            assert a == b == (3, 2)
        else:
            np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
    lp = got["dg"][2].numpy()
    assert lp[0] == -np.inf and np.isfinite(lp[1])  # outside the support: -inf
    assert got["dg"][4].numpy()[0] == -np.inf  # also through expand + to_event, no ValueError
    assert d_dg.has_rsample and d_ex.has_rsample
