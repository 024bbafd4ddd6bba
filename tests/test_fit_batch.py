"""fit(batch=[...]): one fit per batch member (its data, init values, learning rate, seed), and
per seed, in one compiled program (issue 17 item 3, docs/batch.md).

On both backends each member's fit is the separate fit with the member's arguments: NumPyro
vmaps the compiled loop (same keys, same draws: equal to float32 rounding), Pyro vmaps the
traced ELBO with the runs sharing the draws of fit(seed=s) (measured: bit for bit equal).
"""

from __future__ import annotations

import logging

import numpy as np
import pytest

import dualguide as dg
from dualguide import constraints
from dualguide import distributions as dist


def model(x, scale=1.0):
    mu = dg.sample("mu", dist.Normal(0.0, 10.0))
    with dg.plate("d", x.shape[0]):
        dg.sample("obs", dist.Normal(mu, scale), obs=x)


def guide(x, scale=1.0):
    loc = dg.param("loc", 0.0)
    sc = dg.param("sc", 1.0, constraint=constraints.positive)
    dg.sample("mu", dist.Normal(loc, sc))


def data(n=3, size=20):
    rng = np.random.default_rng(0)
    return [rng.normal(i, 1.0, size=size).astype(np.float32) for i in range(n)]


KW = dict(num_steps=120, num_particles=2, optim=dg.optim.Adam(lr=0.05), progress=False)


def separate(backend, member, **kw):
    """The fit a member stands for, run on its own."""
    kw = {**KW, **kw}
    kw["optim"] = member.get("optim", kw["optim"])
    return dg.fit(
        model,
        guide,
        backend=backend,
        model_args=member.get("model_args", ()),
        model_kwargs=member.get("model_kwargs"),
        init_params=member.get("init_params"),
        **kw,
    )


def assert_same_fit(r, q):
    # float32 rounding: XLA may order a batched reduction differently (Pyro: measured equal)
    np.testing.assert_allclose(r.losses, q.losses, rtol=1e-5, atol=1e-5)
    assert r.params.keys() == q.params.keys()
    for k in q.params:
        np.testing.assert_allclose(r.params[k], q.params[k], rtol=1e-5, atol=1e-6)


def test_members_equal_their_separate_fits(backend, caplog):
    xs = data()
    batch = [
        {"model_args": (xs[0],)},
        {"model_args": (xs[1],), "optim": dg.optim.Adam(lr=0.02)},
        {"model_args": (xs[2],), "init_params": {"loc": 1.5}},
    ]
    with caplog.at_level(logging.INFO, logger="dualguide"):
        rs = dg.fit(model, guide, backend=backend, batch=batch, seed=3, **KW)
    assert not [r for r in caplog.records if "one program unavailable" in r.getMessage()]
    assert [r.member for r in rs] == [0, 1, 2] and all(r.seed == 3 for r in rs)
    assert len({r.wall_time for r in rs}) == 1  # one program: the batch's wall time
    for r, m in zip(rs, batch):
        assert r.backend == backend and r.num_steps == KW["num_steps"]
        assert all(type(v) is np.ndarray for v in r.params.values())
        assert_same_fit(r, separate(backend, m, seed=3))
    # the members really are different fits (data around 0, 1 and 2)
    locs = [float(r.params["loc"]) for r in rs]
    assert locs[0] < locs[1] < locs[2]


def test_members_times_seeds(backend):
    xs = data(2)
    batch = [{"model_args": (x,)} for x in xs]
    rs = dg.fit(model, guide, backend=backend, batch=batch, seeds=[1, 2], **KW)
    assert [[(r.member, r.seed) for r in row] for row in rs] == [[(0, 1), (0, 2)], [(1, 1), (1, 2)]]
    assert all(np.all(np.isfinite(r.losses)) for row in rs for r in row)
    # each seed draws its own noise
    assert rs[0][0].losses[5] != rs[0][1].losses[5]
    if backend == "numpyro":  # the same keys as fit(seed=s): the same fit
        for row, m in zip(rs, batch):
            for r in row:
                assert_same_fit(r, separate(backend, m, seed=r.seed))


def test_a_seed_per_member(backend):
    xs = data(2)
    batch = [{"model_args": (xs[0],), "seed": 4}, {"model_args": (xs[1],), "seed": 7}]
    rs = dg.fit(model, guide, backend=backend, batch=batch, **KW)
    assert [r.seed for r in rs] == [4, 7]
    if backend == "numpyro":
        for r, m in zip(rs, batch):
            assert_same_fit(r, separate(backend, m, seed=m["seed"]))


def test_members_that_cannot_share_a_program_are_fitted_one_by_one(backend, caplog):
    """Integer data differing between members is baked into a compiled program: dualguide fits
    the members one after the other, says why, and each result is the separate fit."""

    def model_n(x, n):
        mu = dg.sample("mu", dist.Normal(0.0, 10.0))
        with dg.plate("d", x.shape[0]):
            dg.sample("obs", dist.Normal(mu, 1.0), obs=x)

    def guide_n(x, n):
        loc = dg.param("loc", 0.0)
        dg.sample("mu", dist.Normal(loc, 1.0))

    xs = data(2)
    ns = [np.arange(3, dtype=np.int32), np.arange(3, dtype=np.int32) + 1]
    batch = [{"model_args": (xs[0], ns[0])}, {"model_args": (xs[1], ns[1])}]
    kw = dict(KW, num_steps=40)
    with caplog.at_level(logging.INFO, logger="dualguide"):
        rs = dg.fit(model_n, guide_n, backend=backend, batch=batch, **kw)
    msgs = [r.getMessage() for r in caplog.records]
    assert any("one program unavailable" in m and "batch[1] model_args[1]" in m for m in msgs)
    for r, m in zip(rs, batch):
        q = dg.fit(model_n, guide_n, backend=backend, model_args=m["model_args"], **kw)
        np.testing.assert_array_equal(r.losses, q.losses)  # the same fit, run the same way


def guide_bounded(x, scale=1.0):
    # the upper bound is computed from the member's data: another constraint per member
    loc = dg.param("loc", 0.0, constraint=constraints.interval(-1.0, x.max()))
    dg.sample("mu", dist.Normal(loc, 1.0))


def test_members_whose_constraints_differ_are_fitted_on_their_own(backend, caplog):
    """A constraint built from a member's data differs between members; one program would give
    every member batch[0]'s.  dualguide compares each member's param declarations with
    batch[0]'s, names the param and the member, and fits that member on its own: each result
    is the separate fit (Pyro), or the batch is refused as the separate fit is (NumPyro's
    compiled loop cannot take a bound computed from traced data)."""
    xs = [x + 3.0 for x in data()]  # upper bounds max(x) differ, all above the lower -1
    batch = [{"model_args": (x,)} for x in xs]
    kw = dict(KW, num_steps=60)
    with caplog.at_level(logging.INFO, logger="dualguide"):
        if backend == "numpyro":
            with pytest.raises(dg.errors.SpecError, match="plain number"):
                dg.fit(model, guide_bounded, backend=backend, batch=batch, seed=2, **kw)
            with pytest.raises(dg.errors.SpecError, match="plain number"):
                dg.fit(model, guide_bounded, backend=backend, model_args=(xs[1],), **kw)
        else:
            rs = dg.fit(model, guide_bounded, backend=backend, batch=batch, seed=2, **kw)
    msgs = [r.getMessage() for r in caplog.records]
    for i in (1, 2):
        assert any(f"batch[{i}] fitted on its own: param 'loc'" in m for m in msgs), msgs
    assert not any("batch[0] fitted on its own" in m for m in msgs)
    if backend == "numpyro":
        return
    for r, x in zip(rs, xs):
        q = dg.fit(model, guide_bounded, backend=backend, model_args=(x,), seed=2, **kw)
        assert_same_fit(r, q)
        assert -1.0 < float(r.params["loc"]) < float(x.max())  # its own bound, not batch[0]'s


def test_members_whose_constraints_agree_share_one_program(backend, caplog):
    """The comparison of declarations does not split members whose constraints agree."""
    xs = data()
    batch = [{"model_args": (x,)} for x in xs]
    with caplog.at_level(logging.DEBUG, logger="dualguide"):
        rs = dg.fit(model, guide, backend=backend, batch=batch, **dict(KW, num_steps=20))
    msgs = [r.getMessage() for r in caplog.records]
    assert any(f"({backend}, batch): 3 runs in one program" in m for m in msgs), msgs
    assert not any("fitted on its own" in m or "unavailable" in m for m in msgs)
    assert len({r.wall_time for r in rs}) == 1
    # bounds from the data that agree (every member's max is 5): no member is split off
    xs = [np.minimum(x, 5.0).astype(np.float32) for x in data()]
    for x in xs:
        x[0] = 5.0
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="dualguide"):
        try:
            dg.fit(model, guide_bounded, backend=backend, batch=[{"model_args": (x,)} for x in xs],
                   **dict(KW, num_steps=5))  # fmt: skip
        except dg.errors.SpecError:  # NumPyro cannot compile a bound from traced data
            assert backend == "numpyro"
    assert not any("fitted on its own" in r.getMessage() for r in caplog.records)


def test_the_doctor_checks_every_member_whose_data_differ(backend):
    """check=True runs the guide doctor on each member with other data than batch[0]'s: a
    guide that leaves out the model's latent for batch[1]'s data only is refused, naming the
    member (the doctor's traces are concrete, so it sees the branch batch[1] takes)."""

    def guide_branch(x, scale=1.0):
        loc = dg.param("loc", 0.0)
        if float(x[0]) > 0:
            dg.sample("mu", dist.Normal(loc, 1.0))

    pos = np.full(4, 1.0, np.float32)
    batch = [{"model_args": (pos,)}, {"model_args": (-pos,)}]
    with pytest.raises(dg.errors.SpecError, match=r"(?s)batch\[1\]: fit .*latent 'mu'"):
        dg.fit(model, guide_branch, backend=backend, batch=batch, num_steps=2, progress=False)


def test_model_kwargs_vary(backend, caplog):
    """Float kwargs are data like any other on NumPyro; Pyro's trace bakes kwargs in, so it
    fits such members one by one (and says so).  Either way: the separate fits."""
    x = data(1)[0]
    batch = [{"model_kwargs": {"scale": 1.0}}, {"model_kwargs": {"scale": 3.0}}]
    kw = dict(KW, num_steps=60)
    with caplog.at_level(logging.INFO, logger="dualguide"):
        rs = dg.fit(model, guide, backend=backend, model_args=(x,), batch=batch, **kw)
    fallback = any("one program unavailable" in r.getMessage() for r in caplog.records)
    assert fallback == (backend == "pyro")
    for r, m in zip(rs, batch):
        assert_same_fit(r, separate(backend, {**m, "model_args": (x,)}, num_steps=60))


def test_one_by_one_with_seeds_keeps_the_shape(backend):
    """The fallback with seeds=[...] returns the same nested list (member, then seed)."""
    x = data(1)[0]
    batch = [{"model_kwargs": {"scale": 1.0}}, {"model_kwargs": {"scale": 3.0}, "optim": 0.1}]
    rs = dg.fit(model, guide, backend=backend, model_args=(x,), batch=batch, seeds=[0, 5],
                jit=False, num_steps=3, progress=False)  # fmt: skip
    assert [[(r.member, r.seed) for r in row] for row in rs] == [[(0, 0), (0, 5)], [(1, 0), (1, 5)]]
    assert rs[1][0].optimizer != rs[0][0].optimizer


def test_a_member_that_fails_stops_alone_and_the_error_names_it(backend):
    def guide_boom(x, scale=1.0):
        loc = dg.param("loc", 0.0)
        dg.sample("mu", dist.Normal(loc, 1.0))
        dg.factor("boom", ops_log(x[0]))  # log of a negative number in member 1 only

    from dualguide import ops

    def ops_log(v):
        return ops.log(v)

    x0 = np.full(4, 2.0, np.float32)
    x1 = np.full(4, -2.0, np.float32)
    batch = [{"model_args": (x0,)}, {"model_args": (x1,)}]
    with pytest.raises(dg.errors.FitError, match=r"batch\[1\] \(seed 0\)") as ei:
        dg.fit(model, guide_boom, backend=backend, batch=batch, num_steps=5, progress=False,
               check=False)  # fmt: skip
    res = ei.value.result
    assert len(res) == 2 and res[0].stopped_at is None and res[1].stopped_at == 0


X = np.zeros(5, np.float32)


@pytest.mark.parametrize(
    "batch,extra,match",
    [
        ([], {}, "batch is empty"),
        ({"model_args": (X,)}, {}, "list of dicts"),
        ([(X,)], {}, r"batch\[0\] is a tuple"),
        ([{"model_args": (X,)}, {"num_steps": 3}], {}, r"batch\[1\] sets 'num_steps'"),
        (
            [{"model_args": (X,)}, {"model_args": (np.zeros(6, np.float32),)}],
            {},
            r"batch\[1\] model_args\[0\] has shape \(6,\) and batch\[0\]'s has shape \(5,\)",
        ),
        (
            [{"model_args": (X,)}, {"model_args": (np.zeros(5, np.int32),)}],
            {},
            r"batch\[1\] model_args\[0\] has dtype int32",
        ),
        ([{"model_args": (X,), "seed": 1}], {"seeds": [1, 2]}, r"batch\[0\] sets 'seed'"),
        ([{"model_args": X}], {}, r"batch\[0\]\['model_args'\] must be a tuple"),
        ([{"model_args": (X,), "seed": -1}], {}, r"batch\[0\]\['seed'\]"),
        ([{"model_args": (X, X, X)}], {}, r"batch\[0\]: fit: the model"),
    ],
)
def test_bad_batches_are_refused(batch, extra, match):
    with pytest.raises(dg.errors.SpecError, match=match):
        dg.fit(model, guide, backend="numpyro", batch=batch, num_steps=2, **extra)


def test_an_unknown_init_param_of_a_member_is_named(backend):
    batch = [{"model_args": (X,)}, {"model_args": (X,), "init_params": {"nope": 1.0}}]
    with pytest.raises(dg.errors.SpecError, match="'nope'"):
        dg.fit(model, guide, backend=backend, batch=batch, num_steps=2, progress=False,
               check=False)  # fmt: skip


def test_the_docs_example_runs(capsys):
    """docs/batch.md's example runs as written (both backends: it fits on each)."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "docs" / "batch.md").read_text()
    (code,) = re.findall(r"```python\n(.*?)```", text, re.S)
    exec(compile(code, "docs/batch.md", "exec"), {})
    lines = capsys.readouterr().out.split("\n")
    locs = [float(ln.split()[1]) for ln in lines if ln.strip()]
    # the three datasets' means (about 0, 1, 2 from 50 draws of sd 1: the posterior mean
    # is within 0.5 of them for any seed, 3.5 sd of the sample mean)
    assert len(locs) == 3 and all(abs(a - b) < 0.5 for a, b in zip(locs, (0.0, 1.0, 2.0)))
