"""Discrete latents by enumeration (issue 14) on both backends, against exact answers computed
in numpy: a Gaussian mixture's marginal likelihood (logsumexp), an HMM's forward algorithm, its
Viterbi path, and posterior draws of a discrete site (docs/elbo.md, "Enumeration")."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import norm

import dualguide as dg
from dualguide import constraints, ops
from dualguide import distributions as dist
from dualguide.errors import SpecError

# -- a 1-D Gaussian mixture: enumerated assignments, a point mass on the locations ------------
X = np.array([-0.4, 0.3, 0.9, 4.1, 5.2, 4.7], np.float32)
W0 = np.array([0.35, 0.65], np.float32)
L0 = np.array([0.5, 4.0], np.float32)


@dg.config_enumerate
def gmm(x):
    w = ops.asarray(W0)
    locs = dg.sample("locs", dist.Normal(0.0, 10.0).expand([2]).to_event(1))
    with dg.plate("data", len(X)):
        z = dg.sample("z", dist.Categorical(w))
        dg.sample("x", dist.Normal(locs[z], 1.0), obs=x)


def gmm_guide(x):
    dg.sample("locs", dist.Delta(dg.param("l", L0)).to_event(1))


def gmm_exact(w, locs) -> float:
    """log p(x, locs) with the assignments summed out: the enumerated ELBO of a point mass."""
    w, locs = np.asarray(w, np.float64), np.asarray(locs, np.float64)
    prior = norm(0.0, 10.0).logpdf(locs).sum()
    lik = logsumexp(np.log(w) + norm(locs, 1.0).logpdf(X.astype(np.float64)[:, None]), axis=1)
    return float(prior + lik.sum())


ENUM1 = dg.infer.TraceEnum_ELBO(max_plate_nesting=1)


def test_gmm_enumerated_elbo_is_the_exact_marginal_likelihood(backend):
    dg.clear_param_store()
    svi = dg.infer.SVI(gmm, gmm_guide, dg.optim.Adam(lr=0.05), loss=ENUM1, backend=backend)
    # float32 sums of six terms of size ~10: a few 1e-6 relative
    assert -svi.evaluate_loss(X) == pytest.approx(gmm_exact(W0, L0), rel=1e-5)
    dg.clear_param_store()


def test_gmm_fit_follows_the_exact_objective_on_both_backends(both):
    # The enumerated loss is deterministic (a point-mass guide), so both backends take the
    # same Adam steps up to float32 rounding, and each recorded loss is the exact -log p(x, locs)
    # at the params before that step.  (A simplex param would not do: Pyro unconstrains it by
    # softmax, NumPyro by stick-breaking, so Adam walks different paths to the same optimum.)
    fits = {
        b: dg.fit(gmm, gmm_guide, backend=b, model_args=(X,), num_steps=40, loss=ENUM1, seed=0)
        for b in both
    }
    for r in fits.values():
        assert "TraceEnum_ELBO(max_plate_nesting=1)" in r.elbo
        assert r.losses[0] == pytest.approx(-gmm_exact(W0, L0), rel=1e-5)
        assert r.losses[-1] < r.losses[0]
    a, b = (fits[k] for k in both)
    np.testing.assert_allclose(a.params["l"], b.params["l"], atol=1e-4)
    np.testing.assert_allclose(a.losses, b.losses, rtol=1e-4)


# -- the crosscheck's gradient and lockstep checks with TraceEnum_ELBO ------------------------
def gmm_exact_grad(locs) -> np.ndarray:
    """d/d locs of the exact log p(x, locs): -locs / 100 + sum_i r_ik (x_i - locs_k), with r
    the exact posterior responsibilities of the assignments."""
    locs = np.asarray(locs, np.float64)
    x = X.astype(np.float64)[:, None]
    logr = np.log(W0.astype(np.float64)) + norm(locs, 1.0).logpdf(x)
    r = np.exp(logr - logsumexp(logr, axis=1, keepdims=True))
    return -locs / 100.0 + (r * (x - locs)).sum(0)


def test_enumerated_gradient_parity_is_the_exact_gradient(both):
    from dualguide.crosscheck.estimators import estimator_gradient_parity

    r = estimator_gradient_parity(gmm, gmm_guide, (X,), loss=ENUM1)
    # a point-mass guide: the estimate is deterministic, both backends agree to float32
    assert r.status == "pass" and r.details["mode"] == "common noise", r.summary
    assert r.details["max_rel_diff"] < 1e-5
    assert "TraceEnum_ELBO(max_plate_nesting=1)" in r.summary
    for b in both:  # the loss's gradient is minus the exact one (float32: ~1e-6 relative)
        np.testing.assert_allclose(
            r.details["params"]["l"][b], -gmm_exact_grad(L0), rtol=1e-5, atol=1e-4
        )


def test_enumerated_gradient_parity_catches_a_cut_gradient(both):
    # a rendering that cuts the gradient path on one backend (the same values, no gradient):
    # the enumerated loss still agrees, the gradients do not (the exact ones against 0)
    from dualguide.crosscheck.estimators import estimator_gradient_parity

    def guide_cut(x):
        loc = dg.param("l", L0)
        if dg.get_backend() == "pyro":
            loc = loc.detach()
        dg.sample("locs", dist.Delta(loc).to_event(1))

    r = estimator_gradient_parity(gmm, guide_cut, (X,), loss=ENUM1)
    assert r.status == "fail" and "> limit" in r.summary, r.summary
    assert r.details["max_loss_rel_diff"] < 1e-5 < r.details["max_rel_diff"]


def test_enumerated_lockstep_is_adam_on_the_exact_objective(both):
    # every step of both backends is Adam on the exact gradient (numpy, float64): the
    # trajectories agree with it to float32 rounding over 15 steps (~1e-6; limit 1e-4)
    r = dg.crosscheck.lockstep(
        gmm, gmm_guide, (X,), loss=ENUM1, num_steps=15, num_particles=1, optim=0.1
    )
    assert r.status == "pass", r.summary
    assert "TraceEnum_ELBO(max_plate_nesting=1)" in r.summary
    lr, b1, b2, eps = 0.1, 0.9, 0.999, 1e-8
    u, m, v, path = L0.astype(np.float64), 0.0, 0.0, [L0.astype(np.float64)]
    for t in range(1, 16):
        g = -gmm_exact_grad(u)
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        u = u - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
        path.append(u)
    for b in both:
        np.testing.assert_allclose(r.data["params"][b]["l"], np.array(path), atol=1e-4)


def gmm_normal_guide(x):
    loc = dg.param("l", L0)
    scale = dg.param("s", np.full(2, 0.3, np.float32), constraint=constraints.positive)
    dg.sample("locs", dist.Normal(loc, scale).to_event(1))


def test_enumeration_with_a_random_guide_is_deterministic_given_the_noise(both):
    # a Normal guide on the locations: the enumerated estimate is a function of the guide's
    # noise, so common noise makes both backends' gradients and SVI steps agree to float32
    from dualguide.crosscheck.estimators import estimator_gradient_parity

    g = estimator_gradient_parity(gmm, gmm_normal_guide, (X,), loss=ENUM1, num_crn=4)
    assert g.status == "pass" and g.details["mode"] == "common noise", g.summary
    assert g.details["draws"] == 4 and g.details["max_rel_diff"] < 1e-5
    lock = dg.crosscheck.lockstep(
        gmm, gmm_normal_guide, (X,), loss=ENUM1, num_steps=10, num_particles=2, optim=0.05
    )
    assert lock.status == "pass" and "locs (Normal)" in lock.summary, lock.summary


def test_crosscheck_runs_the_enumerated_checks(both):
    report = dg.crosscheck(
        gmm,
        gmm_guide,
        (X,),
        optim=dg.optim.Adam(lr=0.05),
        num_steps=5,
        loss=ENUM1,
        checks="all",
        lockstep_steps=5,
        reference=None,
        elbo_particles=2,
        doctor=False,
        tolerances=1.0,
    )
    est = {b: report.runs[b].fit.elbo for b in both}
    assert est["numpyro"] == "TraceEnum_ELBO(max_plate_nesting=1)"
    assert est["pyro"] in (est["numpyro"], "Jit" + est["numpyro"])
    for c in ("logdensity", "gradient", "lockstep"):
        assert report.checks[c].status == "pass", report.checks[c].summary
    assert "TraceEnum_ELBO(max_plate_nesting=1)" in report.checks["gradient"].summary
    assert "TraceEnum_ELBO(max_plate_nesting=1)" in report.checks["lockstep"].summary


def test_enumerated_lockstep_with_simplex_params_is_not_applicable(both):
    # the HMM's init and trans are simplex params: Pyro unconstrains them by softmax, NumPyro
    # by stick-breaking, so Adam takes other paths; the gradient (on the simplex) still agrees
    from dualguide.crosscheck.estimators import estimator_gradient_parity

    loss = dg.infer.TraceEnum_ELBO(max_plate_nesting=0)
    lock = dg.crosscheck.lockstep(hmm, no_guide, (YS,), loss=loss, num_steps=3)
    assert lock.status == "n/a" and "'trans' (simplex)" in lock.summary
    g = estimator_gradient_parity(hmm, no_guide, (YS,), loss=loss)
    assert g.status == "pass" and g.details["max_rel_diff"] < 1e-5, g.summary
    # against the forward algorithm's gradient (central differences in float64, h = 1e-6:
    # error ~1e-9), on the simplex for init and trans (its mean over the last axis removed)
    vals = {"init": INIT, "trans": TRANS, "means": MEANS}
    for name, v in vals.items():
        exact = np.zeros(v.shape)
        for idx in np.ndindex(v.shape):
            hi, lo = (np.array(v, np.float64) for _ in range(2))
            hi[idx] += 1e-6
            lo[idx] -= 1e-6
            f = {k: vals[k] for k in vals}
            exact[idx] = (forward(**{**f, name: hi}) - forward(**{**f, name: lo})) / 2e-6
        if name != "means":
            exact = exact - exact.mean(-1, keepdims=True)
        for b in both:  # the loss's gradient: minus log p's (float32 sums: ~1e-5 absolute)
            np.testing.assert_allclose(g.details["params"][name][b], -exact, atol=2e-4)


# -- a 3-state HMM with markov: forward algorithm and Viterbi ---------------------------------
INIT = np.array([0.6, 0.3, 0.1], np.float32)
TRANS = np.array([[0.8, 0.15, 0.05], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]], np.float32)
MEANS = np.array([-2.0, 0.0, 2.5], np.float32)
YS = np.array([-2.1, -1.7, 0.2, -0.3, 0.4, 2.2, 2.9, 1.8, 0.1, -2.4], np.float32)


def hmm(ys):
    init = dg.param("init", INIT, constraint=constraints.simplex)
    trans = dg.param("trans", TRANS, constraint=constraints.simplex)
    means = dg.param("means", MEANS)
    z = None
    for t in dg.markov(range(len(YS))):
        probs = init if z is None else ops.Vindex(trans)[z, :]
        z = dg.sample(f"z_{t}", dist.Categorical(probs), infer={"enumerate": "parallel"})
        dg.sample(f"y_{t}", dist.Normal(means[z], 0.7), obs=ys[t])


def no_guide(ys):
    pass


def _emissions() -> np.ndarray:
    return norm(MEANS.astype(np.float64), 0.7).logpdf(YS.astype(np.float64)[:, None])  # (T, K)


def forward(init=INIT, trans=TRANS, means=MEANS) -> float:
    """log p(y_0..T-1) by the forward algorithm."""
    e = norm(np.asarray(means, np.float64), 0.7).logpdf(YS.astype(np.float64)[:, None])
    lt = np.log(np.asarray(trans, np.float64))
    alpha = np.log(np.asarray(init, np.float64)) + e[0]
    for t in range(1, len(YS)):
        alpha = logsumexp(alpha[:, None] + lt, axis=0) + e[t]
    return float(logsumexp(alpha))


def viterbi() -> list[int]:
    e, lt = _emissions(), np.log(TRANS.astype(np.float64))
    delta, back = np.log(INIT.astype(np.float64)) + e[0], []
    for t in range(1, len(YS)):
        s = delta[:, None] + lt
        back.append(s.argmax(axis=0))
        delta = s.max(axis=0) + e[t]
    path = [int(delta.argmax())]
    for bp in reversed(back):
        path.append(int(bp[path[-1]]))
    return path[::-1]


def test_hmm_enumerated_elbo_is_the_forward_algorithm(backend):
    dg.clear_param_store()
    loss = dg.infer.TraceEnum_ELBO(max_plate_nesting=0)
    svi = dg.infer.SVI(hmm, no_guide, dg.optim.Adam(lr=0.01), loss=loss, backend=backend)
    assert -svi.evaluate_loss(YS) == pytest.approx(forward(), rel=1e-5)
    dg.clear_param_store()


def test_infer_discrete_map_is_the_viterbi_path(backend):
    path = viterbi()
    assert len(set(path)) == 3  # the path visits every state: a real decoding test
    decoder = dg.infer_discrete(hmm, first_available_dim=-1, temperature=0)
    with dg.use_backend(backend):
        tr = dg.handlers.trace(decoder).get_trace(YS)
    assert [int(tr[f"z_{t}"].value) for t in range(len(YS))] == path


@dg.config_enumerate
def coin_flips(y):
    with dg.plate("n", 4000):
        z = dg.sample("z", dist.Bernoulli(0.3))
        dg.sample("y", dist.Normal(2.0 * z, 1.0), obs=y)


def test_infer_discrete_samples_the_exact_posterior(backend):
    # p(z=1 | y=0.8) = 0.3 N(0.8; 2, 1) / (0.3 N(0.8; 2, 1) + 0.7 N(0.8; 0, 1)) ~ 0.285;
    # 4000 independent draws have sd 0.0071, so 0.03 is over 4 sd for any seed.
    p1, p0 = 0.3 * norm(2.0, 1.0).pdf(0.8), 0.7 * norm(0.0, 1.0).pdf(0.8)
    sampler = dg.infer_discrete(coin_flips, first_available_dim=-2, temperature=1)
    with dg.use_backend(backend):
        dg.set_rng_seed(0)
        tr = dg.handlers.trace(dg.handlers.seed(sampler, rng_seed=0)).get_trace(0.8)
    z = tr["z"].value
    assert z.shape == (4000,) and set(np.unique(z)) <= {0.0, 1.0}
    assert float(z.mean()) == pytest.approx(p1 / (p1 + p0), abs=0.03)


# -- refusals: one clear error naming the fix ---------------------------------------------------
def test_trace_enum_elbo_needs_max_plate_nesting():
    with pytest.raises(SpecError, match="max_plate_nesting"):
        dg.infer.TraceEnum_ELBO()
    with pytest.raises(SpecError, match="max_plate_nesting"):
        dg.fit(gmm, gmm_guide, model_args=(X,), loss="TraceEnum_ELBO")


def test_too_small_max_plate_nesting_names_the_site(backend):
    loss = dg.infer.TraceEnum_ELBO(max_plate_nesting=0)
    with pytest.raises(SpecError, match="'z'.*max_plate_nesting=1"):
        dg.fit(gmm, gmm_guide, backend=backend, model_args=(X,), num_steps=1, loss=loss)


def test_autoguides_with_trace_enum(backend):
    loss = dg.infer.TraceEnum_ELBO(max_plate_nesting=1)
    # an autoguide built on the whole model would have to guess the enumerated site
    with pytest.raises(SpecError, match=r"discrete site 'z'.*hide=\['z'\]"):
        dg.fit(gmm, dg.autoguides.AutoDelta(gmm), backend=backend, model_args=(X,), loss=loss)
    # NumPyro's TraceEnum_ELBO has no packed (AutoContinuous) guides: refused on both
    packed = dg.autoguides.AutoDiagonalNormal(dg.handlers.block(gmm, hide=["z"]))
    with pytest.raises(SpecError, match="AutoDiagonalNormal.*AutoNormal"):
        dg.fit(gmm, packed, backend=backend, model_args=(X,), loss=loss)


def test_unsupported_enumeration_is_refused():
    with pytest.raises(SpecError, match="parallel"):
        dg.config_enumerate(gmm, default="sequential")
    with pytest.raises(SpecError, match="first_available_dim"):
        dg.infer_discrete(hmm, temperature=0)
    with pytest.raises(SpecError, match="dim= and name="):
        dg.markov(range(3), dim=-1)


def test_vindex_broadcasts_like_the_frameworks(backend):
    with dg.use_backend(backend):
        x = ops.reshape(ops.arange(12.0), (3, 4))
        i = ops.astype(ops.asarray([[0], [2]]), "int32")  # (2, 1) against (3,): (2, 3)
        j = ops.astype(ops.asarray([1, 0, 3]), "int32")
        out = ops.to_numpy(ops.Vindex(x)[i, j])
        left = ops.to_numpy(ops.Vindex(x)[..., j[0]])  # a scalar index keeps the left dims
    ref = np.arange(12.0).reshape(3, 4)[np.array([[0], [2]]), np.array([1, 0, 3])]
    np.testing.assert_array_equal(out, ref)
    np.testing.assert_array_equal(left, np.arange(12.0).reshape(3, 4)[:, 1])


# -- porting ------------------------------------------------------------------------------------
GALLERY = Path(__file__).resolve().parent.parent / "examples" / "gallery"


@pytest.mark.parametrize(
    "path, names",
    [
        ("gmm_enum/pyro_model.py", ["dg.config_enumerate", "dg.infer.TraceEnum_ELBO"]),
        ("gmm_enum/numpyro_model.py", ["dg.config_enumerate"]),
        ("hmm_markov/pyro_model.py", ["dg.markov(", "dg.infer.TraceEnum_ELBO"]),
        ("hmm_markov/numpyro_model.py", ["dg.markov("]),
    ],
)
def test_port_rewrites_the_enumeration_names(path, names):
    from dualguide.porting.port import port_source

    text, _fw, _notes, _functions, problems, _margs = port_source(GALLERY / path)
    assert problems == []
    for n in names:
        assert n in text


def _load(path: Path, name: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _ported(tmp_path: Path, rel: str):
    """``dualguide port`` of a gallery file (verified on both backends), loaded."""
    from dualguide._files import load_file
    from dualguide.porting.port import port

    out = tmp_path / (rel.replace("/", "_"))
    r = port(GALLERY / rel, out=out)
    assert r.verified, r.report()
    return load_file(str(out))


def test_ported_pyro_gmm_tutorial_agrees_with_the_original(tmp_path, both):
    # Pyro's GMM tutorial (5 points, AutoDelta from init_to_value): the original's enumerated
    # loss at its init, the ported program's on both backends, and the exact -log p(data, init)
    # (numpy logsumexp) agree to float32 rounding; 20 steps of the ported run() on Pyro retrace
    # the original's (a deterministic estimator from the same init: float32 rounding)
    import pyro
    import torch
    from scipy.stats import dirichlet, lognorm

    orig = _load(GALLERY / "gmm_enum/pyro_model.py", "gallery_gmm_enum_pyro")
    pmod = _ported(tmp_path, "gmm_enum/pyro_model.py")
    w, sc, locs = np.array([0.5, 0.5]), 3.0, np.array([0.0, 10.0])
    data = np.array([0.0, 1.0, 10.0, 11.0, 12.0])
    exact = -(
        dirichlet([0.5, 0.5]).logpdf(w)
        + lognorm(s=2.0).logpdf(sc)
        + norm(0.0, 10.0).logpdf(locs).sum()
        + logsumexp(np.log(w) + norm(locs, sc).logpdf(data[:, None]), axis=1).sum()
    )
    pyro.clear_param_store()
    with torch.no_grad():
        native = pyro.infer.TraceEnum_ELBO(max_plate_nesting=1).loss(
            orig.model, orig.guide, orig.data
        )
    assert native == pytest.approx(exact, rel=1e-5)
    for b in both:
        dg.clear_param_store()
        loss = dg.infer.TraceEnum_ELBO(max_plate_nesting=1)
        svi = dg.infer.SVI(pmod.model, pmod.guide, dg.optim.Adam(lr=0.05), loss=loss, backend=b)
        assert svi.evaluate_loss(pmod.data) == pytest.approx(exact, rel=1e-5), b
    orig.SETTINGS["steps"] = pmod.SETTINGS["steps"] = 20
    want = orig.run()["params"]
    with dg.use_backend("pyro"):
        got = pmod.run()["params"]
    assert sorted(got) == sorted(want)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], atol=1e-4, err_msg=k)
    dg.clear_param_store()


def test_ported_numpyro_hmm_example_agrees_with_the_original(tmp_path, both):
    # NumPyro's enumerated HMM (trimmed: 20 points, 2 states, markov, AutoDelta): at one point
    # of the params, the original's TraceEnum_ELBO loss, the ported program's on both backends
    # and the exact -(log priors + forward algorithm) (numpy) agree to float32 rounding
    import jax
    import numpyro

    orig = _load(GALLERY / "hmm_markov/numpyro_model.py", "gallery_hmm_markov_numpyro")
    pmod = _ported(tmp_path, "hmm_markov/numpyro_model.py")
    trans = np.array([[0.8, 0.2], [0.3, 0.7]], np.float32)
    locs = np.array([-1.0, 1.0], np.float32)
    ys = np.asarray(orig.obs, np.float64)
    e = norm(locs.astype(np.float64), 0.5).logpdf(ys[:, None])
    lt = np.log(trans.astype(np.float64))
    alpha = lt[0] + e[0]  # z_0 ~ Categorical(trans[0]): the chain starts from state 0
    for t in range(1, len(ys)):
        alpha = logsumexp(alpha[:, None] + lt, axis=0) + e[t]
    # Dirichlet(1, 1) rows have log density log Gamma(2) = 0
    exact = -(norm([-0.5, 0.5], 1.0).logpdf(locs).sum() + logsumexp(alpha))
    p = {"trans_auto_loc": trans, "locs_auto_loc": locs}
    numpyro.handlers.seed(orig.guide, 0)(orig.obs)  # the autoguide sets itself up (eagerly)
    native = numpyro.infer.TraceEnum_ELBO(max_plate_nesting=0).loss(
        jax.random.PRNGKey(0),
        {k: jax.numpy.asarray(v) for k, v in p.items()},  # jax arrays, as SVI passes them
        orig.model,
        orig.guide,
        orig.obs,
    )
    assert float(native) == pytest.approx(exact, rel=1e-5)
    from dualguide.enum import elbo_values

    names = {"numpyro": p, "pyro": {"AutoDelta.trans": trans, "AutoDelta.locs": locs}}
    for b in both:
        v = elbo_values(pmod.model, pmod.guide, names[b], b, 2, 0, (pmod.obs,), max_plate_nesting=0)
        assert -float(v[0]) == pytest.approx(exact, rel=1e-5), b
