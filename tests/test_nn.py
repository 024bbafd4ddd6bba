"""dualguide.nn: networks in models and guides, the same on NumPyro and on Pyro (issue 15)."""

from __future__ import annotations

import numpy as np
import pytest

import dualguide as dg
from dualguide import distributions as dist
from dualguide import nn, ops
from dualguide.errors import SpecError

# a tiny VAE: 32 binary 6-pixel "images" from two prototypes with 10 % flipped pixels
_rng = np.random.default_rng(12)
_PROTOS = np.array([[1, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1]], dtype=np.float32)
IMAGES = np.abs(_PROTOS[_rng.integers(0, 2, 32)] - (_rng.uniform(size=(32, 6)) < 0.1)).astype(
    np.float32
)


class Encoder(nn.Module):
    def __init__(self, seed=0):
        super().__init__()
        rng = np.random.default_rng(seed)
        self.fc1 = nn.Linear(6, 8, seed=rng)
        self.fc_loc = nn.Linear(8, 2, seed=rng)
        self.fc_scale = nn.Linear(8, 2, seed=rng)

    def forward(self, x):
        h = ops.softplus(self.fc1(x))
        return self.fc_loc(h), ops.exp(self.fc_scale(h))


def make_vae(seed=0):
    encoder = Encoder(seed)
    decoder = nn.MLP([2, 8, 6], activation=nn.Softplus, output_activation=nn.Sigmoid, seed=seed)

    def model(x):
        decode = dg.nn.module("decoder", decoder)
        with dg.plate("data", x.shape[0]):
            z = dg.sample("z", dist.Normal(ops.zeros(2), 1.0).to_event(1))
            dg.sample("obs", dist.Bernoulli(decode(z)).to_event(1), obs=x)

    def guide(x):
        encode = dg.nn.module("encoder", encoder)
        loc, scale = encode(x)
        with dg.plate("data", x.shape[0]):
            dg.sample("z", dist.Normal(loc, scale).to_event(1))

    return model, guide, encoder, decoder


# -- construction and forward ------------------------------------------------------------------
def test_linear_init_mirrors_torch_scheme_and_seed():
    a = nn.Linear(50, 40, seed=3).init_params()
    b = nn.Linear(50, 40, seed=3).init_params()
    assert a["weight"].shape == (40, 50) and a["bias"].shape == (40,)
    assert a["weight"].dtype == np.float32
    np.testing.assert_array_equal(a["weight"], b["weight"])
    bound = 1 / np.sqrt(50)  # torch.nn.Linear: kaiming_uniform_(a=sqrt(5)) = U(+-1/sqrt(fan_in))
    for w in (a["weight"], a["bias"]):
        assert np.abs(w).max() <= bound
        assert np.abs(w).max() > 0.9 * bound  # 2,040 draws fill the interval
    nn.manual_seed(7)
    c = nn.MLP([3, 4, 1]).init_params()
    nn.manual_seed(7)
    d = nn.MLP([3, 4, 1]).init_params()
    assert all(np.array_equal(c[k], d[k]) for k in c)
    assert list(c) == ["0.weight", "0.bias", "2.weight", "2.bias"]  # torch's Sequential paths


def test_forward_is_the_same_on_both_backends_to_float32_rounding(both):
    net = nn.Sequential(
        nn.Linear(5, 7, seed=1),
        nn.ReLU(),
        nn.Linear(7, 7, seed=2),
        nn.Tanh(),
        nn.Linear(7, 7, seed=3),
        nn.LeakyReLU(0.1),
        nn.Linear(7, 7, seed=4),
        nn.ELU(),
        nn.Linear(7, 4, seed=5),
        nn.Softplus(),
        nn.Sigmoid(),
    )
    x = np.random.default_rng(0).normal(size=(3, 5)).astype(np.float32) * 3
    outs = {}
    for b in both:
        with dg.use_backend(b):
            outs[b] = ops.to_numpy(net(x))
            sm = ops.to_numpy(nn.Softmax()(net(x)))
            np.testing.assert_allclose(sm.sum(-1), 1.0, rtol=1e-6)
    # the same float32 computation with other kernels: a few ulps apart
    np.testing.assert_allclose(outs["numpyro"], outs["pyro"], rtol=1e-6, atol=1e-6)
    # and numpy's float64 says what it should be
    h = x.astype(np.float64)
    p = net.init_params()

    def lin(h, i):
        return h @ p[f"{i}.weight"].T + p[f"{i}.bias"]

    h = np.maximum(lin(h, 0), 0)
    h = np.tanh(lin(h, 2))
    h = lin(h, 4)
    h = np.where(h > 0, h, 0.1 * h)
    h = lin(h, 6)
    h = np.where(h > 0, h, np.expm1(h))
    h = 1 / (1 + np.exp(-np.log1p(np.exp(lin(h, 8)))))
    np.testing.assert_allclose(outs["pyro"], h, rtol=1e-5, atol=1e-6)


def test_registered_names_and_values(backend):
    model, guide, encoder, decoder = make_vae()
    tr = dg.trace(guide, IMAGES, backend=backend)
    names = [n for n, s in tr.items() if s.type == "param"]
    assert names == [f"encoder.{p}" for p, _ in encoder.named_parameters()]
    for p, v in encoder.init_params().items():
        np.testing.assert_array_equal(tr[f"encoder.{p}"].value, v)


def test_module_sees_param_overrides(backend):
    net = nn.Linear(2, 1, seed=0)

    def guide():
        return dg.nn.module("f", net)(np.ones((1, 2), np.float32))

    from dualguide import _state

    with _state.param_overrides({"f.weight": [[1.0, 2.0]], "f.bias": [0.5]}) as hook:
        out = dg.render(guide, backend)()
    assert float(ops.to_numpy(out)[0, 0]) == 3.5
    assert set(hook.constraints) == {"f.weight", "f.bias"}


def test_load_uses_fitted_values_outside_a_program(backend):
    net = nn.Linear(2, 1, seed=0)
    fitted = {"f.weight": np.array([[1.0, 2.0]]), "f.bias": np.array([0.5]), "other": 1.0}
    with dg.use_backend(backend):
        y = net.load(fitted, name="f")(np.ones((1, 2), np.float32))
    assert float(ops.to_numpy(y)[0, 0]) == 3.5
    # a native Pyro store's pyro.module names load too
    net.load({"g$$$weight": np.array([[0.0, 1.0]]), "g$$$bias": np.array([0.0])}, name="g")
    with dg.use_backend(backend):
        assert float(ops.to_numpy(net(np.ones((1, 2), np.float32)))[0, 0]) == 1.0


# -- fitting and cross-checking ----------------------------------------------------------------
def test_vae_fit_lowers_the_loss(backend):
    model, guide, *_ = make_vae()
    r = dg.fit(
        model,
        guide,
        backend=backend,
        model_args=(IMAGES,),
        num_steps=300,
        optim=dg.optim.Adam(lr=0.02),
        progress=False,
    )
    # one-particle losses are noisy (sd ~ 3 here); the fit drops them by ~60 nats
    assert r.losses[-30:].mean() < r.losses[:30].mean() - 20
    assert set(r.params) >= {"encoder.fc1.weight", "decoder.2.bias"}
    assert r.params["decoder.0.weight"].shape == (8, 2)


def test_lockstep_through_the_networks_matches_to_float32():
    model, guide, *_ = make_vae()
    r = dg.crosscheck.lockstep(
        model, guide, (IMAGES,), optim=dg.optim.Adam(lr=0.02), num_steps=25, num_particles=2
    )
    # the same init, noise and Adam update: only float32 rounding separates the trajectories
    assert r.status == "pass", r.summary
    assert r.details["max_param_dev"] < 1e-5


def test_elbos_agree_within_monte_carlo_error_at_the_same_params():
    model, guide, *_ = make_vae()
    ests = {
        b: dg.crosscheck.elbo_estimate(
            model, guide, backend=b, num_particles=2000, model_args=(IMAGES,)
        )
        for b in ("numpyro", "pyro")
    }
    (m1, s1), (m2, s2) = ests["numpyro"], ests["pyro"]
    # independent Monte-Carlo estimates of one number: within 5 joint standard errors
    assert abs(m1 - m2) < 5 * np.hypot(s1, s2), ests
    # (the gradients are compared exactly, under common noise, by the lockstep test)


def test_logdensity_parity_through_the_networks():
    model, guide, *_ = make_vae()
    r = dg.crosscheck.logdensity_parity(model, guide, (IMAGES,))
    assert r.status == "pass", r.summary


# -- Bayesian layers ---------------------------------------------------------------------------
def test_random_module_draws_weights_with_the_prior(backend):
    net = nn.MLP([1, 3, 1], activation=nn.Tanh, seed=0)
    prior = nn.Sample(dist.Normal, 0.0, 1.0)

    def model(x):
        f = dg.nn.random_module("bnn", net, prior)
        return f(x)

    x = np.linspace(-1, 1, 4, dtype=np.float32)[:, None]
    tr = dg.trace(model, x, backend=backend, seed=3)
    names = [n for n, s in tr.items() if s.type == "sample"]
    assert names == ["bnn.0.weight", "bnn.0.bias", "bnn.2.weight", "bnn.2.bias"]
    w = tr["bnn.0.weight"]
    assert w.value.shape == (3, 1)
    # all dims are event dims: one log density per weight tensor, the standard normal's
    want = -0.5 * (w.value**2).sum() - 3 * 0.5 * np.log(2 * np.pi)
    np.testing.assert_allclose(w.log_prob, want, rtol=1e-5)
    assert not any(isinstance(v, nn.Sample) for _p, v in net.named_parameters())


def test_sample_attribute_makes_one_weight_latent(backend):
    lin = nn.Linear(2, 1, seed=0)
    lin.weight = nn.Sample(dist.Normal, 0.0, 2.0)

    def model():
        return dg.nn.module("lin", lin)(np.ones((1, 2), np.float32))

    tr = dg.trace(model, backend=backend)
    assert tr["lin.weight"].type == "sample" and tr["lin.bias"].type == "param"


def test_bnn_regression_fits_on_both_backends(both):
    rng = np.random.default_rng(1)
    x = np.linspace(-1, 1, 20, dtype=np.float32)[:, None]
    y = (2.0 * x[:, 0] + 0.1 * rng.normal(size=20)).astype(np.float32)
    net = nn.Linear(1, 1, seed=0)

    def model(x, y):
        f = dg.nn.random_module("lin", net, nn.Sample(dist.Normal, 0.0, 10.0))
        with dg.plate("data", x.shape[0]):
            dg.sample("y", dist.Normal(f(x)[..., 0], 0.1), obs=y)

    guide = dg.autoguides.AutoNormal(model)
    for b in both:
        r = dg.fit(
            model,
            guide,
            backend=b,
            model_args=(x, y),
            num_steps=600,
            num_particles=4,
            optim=dg.optim.Adam(lr=0.05),
            progress=False,
        )
        loc = guide.median(r.params, backend=b, model_args=(x, y))["lin.weight"]
        # least squares slope of 20 points with noise 0.1: 2 +- 0.04; the posterior is tight
        assert abs(float(np.ravel(loc)[0]) - 2.0) < 0.15, (b, loc)


# -- native networks (one backend only) and bad input -----------------------------------------
def test_native_torch_module_on_pyro_only(backend_state):
    import torch

    lin = torch.nn.Linear(2, 1)

    def guide():
        return dg.nn.module("t", lin)(torch.ones(1, 2))

    tr = dg.trace(guide, backend="pyro")
    assert {"t$$$weight", "t$$$bias"} <= set(tr)
    with pytest.raises(SpecError, match="runs only on the pyro backend"):
        dg.trace(guide, backend="numpyro")


def test_native_stax_network_on_numpyro_only():
    from jax.example_libraries import stax

    net = stax.serial(stax.Dense(3), stax.Relu)

    def guide():
        f = dg.nn.module("s", net, input_shape=(1, 2))
        return f(np.ones((1, 2), np.float32))

    tr = dg.trace(guide, backend="numpyro")
    assert [n for n in tr if tr[n].type == "param"] == ["s.0.0", "s.0.1"]  # Dense W, b
    with pytest.raises(SpecError, match="runs only on the numpyro backend"):
        dg.trace(guide, backend="pyro")


def test_bad_input_is_one_clear_error(backend):
    with pytest.raises(SpecError, match="in_features must be a positive int"):
        nn.Linear(0, 3)
    with pytest.raises(SpecError, match="pass an instance"):
        nn.Sequential(nn.ReLU)
    with pytest.raises(SpecError, match="not a weight"):
        with dg.use_backend(backend):
            nn.random_module("m", nn.Linear(1, 1), {"w": nn.Sample(dist.Normal, 0.0, 1.0)})

    class NoSuper(nn.Module):
        def __init__(self):
            self.fc = nn.Linear(1, 1)

    with pytest.raises(SpecError, match="super"):
        NoSuper()
    net = nn.Linear(3, 2, seed=0)

    def guide():
        return dg.nn.module("f", net)(np.ones((4, 5), np.float32))

    with pytest.raises(SpecError, match="last dim is 5 but the layer takes 3"):
        dg.trace(guide, backend=backend)
    with pytest.raises(SpecError, match="shape"):
        net.load({"weight": np.zeros((3, 3))})


def test_load_params_reads_a_native_pyro_module_store(tmp_path):
    """A Pyro param store of ``pyro.module("f", torch_linear)`` loads into the neutral guide."""
    net = nn.Linear(2, 1, seed=0)

    def guide():
        dg.nn.module("f", net)

    native = {"f$$$weight": np.array([[1.0, 2.0]], np.float32), "f$$$bias": np.array([0.5])}
    path = dg.save_params(tmp_path / "store.npz", native)
    p = dg.load_params(path, guide=guide, backend="numpyro")
    assert list(p) == ["f.weight", "f.bias"]
    np.testing.assert_array_equal(p["f.weight"], [[1.0, 2.0]])


def test_port_maps_torch_networks_and_verifies(tmp_path):
    from pathlib import Path

    from dualguide.porting.port import port

    src = Path(__file__).resolve().parents[1] / "examples" / "gallery" / "vae" / "pyro_model.py"
    r = port(src, out=tmp_path / "vae_neutral.py")
    assert "dg.nn.Module" in r.source and "dg.nn.Linear(8, 16)" in r.source
    assert 'dg.nn.module("decoder", decoder)' in r.source
    # traced from the original's weights, the port has the original's sites and values
    assert r.verified, r.report()


# -- the crosscheck's verdict for networks (issue 15, item 1) -------------------------------
def test_crosscheck_judges_networks_by_what_is_identifiable():
    model, guide, *_ = make_vae()
    rep = dg.crosscheck(
        model,
        guide,
        (IMAGES,),
        optim=dg.optim.Adam(lr=0.02),
        num_steps=40,
        num_particles=2,
        checks=(),
        reference=None,
        elbo_particles=200,
        doctor=False,
        progress=False,
    )
    nets = {p.name: p.network for p in rep.params}
    # every param is a network weight: none is compared value by value (two fits' weights
    # differ by the networks' symmetries: their elementwise limits would fail)
    assert nets["encoder.fc1.weight"] == "encoder" and nets["decoder.2.bias"] == "decoder"
    assert all(p.ok is None for p in rep.params)
    assert any(p.worst()[1] > p.worst()[2] for p in rep.params)  # they do differ
    net = rep.checks["networks"]
    # the same fitted weights give the same log densities on both backends (float32)
    assert net.status == "pass", net.summary
    assert set(net.details["logdensity_at_fit"]) == {"numpyro", "pyro"}
    assert "encoder (6 params), decoder (4 params)" in net.summary
    assert rep.ok, rep.failures
    assert "network" in str(rep) and rep.to_dict()["params"][0]["network"] is not None


def test_network_params_of_a_bnn_under_an_autoguide():
    from dualguide.crosscheck._networks import network_params
    from dualguide.crosscheck._programs import prepare
    from dualguide.crosscheck._steps import _Problem

    net = nn.MLP([1, 3, 1], activation=nn.Tanh, seed=0)
    x = np.linspace(-1, 1, 8, dtype=np.float32)[:, None]
    y = np.sin(3 * x[:, 0]).astype(np.float32)

    def model(x, y):
        f = dg.nn.random_module("bnn", net, nn.Sample(dist.Normal, 0.0, 1.0))
        sigma = dg.sample("sigma", dist.LogNormal(-2.0, 1.0))
        with dg.plate("data", x.shape[0]):
            dg.sample("y", dist.Normal(f(x)[..., 0], sigma), obs=y)

    guide = dg.autoguides.AutoNormal(model)
    progs = prepare(model, guide, (x, y))
    got = network_params(_Problem(model, guide, (x, y), None, None, 0, "stop"), progs)
    # the autoguide's loc and scale of each weight site (NumPyro's names, the canonical ones);
    # sigma's stay compared value by value
    want = {
        f"bnn.{p}_auto_{r}"
        for p in ("0.weight", "0.bias", "2.weight", "2.bias")
        for r in ("loc", "scale")
    }
    assert set(got) == want and set(got.values()) == {"bnn"}
    assert "sigma_auto_loc" in progs.params


def test_pyro_keeps_the_jit_through_a_network(backend_state):
    import warnings

    model, guide, *_ = make_vae()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = dg.fit(model, guide, backend="pyro", model_args=(IMAGES,), num_steps=3, progress=False)
    # the layers' shape check reads sizes in backend code: the JIT trace is not stopped
    assert r.elbo == "JitTrace_ELBO"
    assert not [w for w in caught if "Fallback" in type(w.message).__name__], caught


def test_gallery_bnn_matmul_of_drawn_weights_runs_with_particles_on_pyro():
    # the gallery's bnn row (issue 15, item 2): weights drawn as sample sites and used in
    # matmuls (X @ w1 + b1) @ w2; Pyro once failed here with "Expected size for first two
    # dimensions of batch2 tensor to be: [64, 5] but got: [64, 1]" (particles vectorized
    # around the matmul).  The model never sees a particle dimension now: the fit with
    # particles and several seeds runs, and the ELBO at the same params agrees with NumPyro's
    rng = np.random.default_rng(13)
    x = np.linspace(-1.0, 1.0, 40, dtype=np.float32)[:, None]
    y = (np.sin(3.0 * x[:, 0]) + 0.1 * rng.normal(size=40)).astype(np.float32)

    def model(X, y=None):
        w1 = dg.sample("w1", dist.Normal(ops.zeros((1, 5)), 1.0).to_event(2))
        b1 = dg.sample("b1", dist.Normal(ops.zeros(5), 1.0).to_event(1))
        w2 = dg.sample("w2", dist.Normal(ops.zeros(5), 1.0).to_event(1))
        b2 = dg.sample("b2", dist.Normal(0.0, 1.0))
        prec = dg.sample("prec", dist.Gamma(3.0, 1.0))
        mu = ops.tanh(X @ w1 + b1) @ w2 + b2
        with dg.plate("data", X.shape[0]):
            dg.sample("obs", dist.Normal(mu, 1.0 / ops.sqrt(prec)), obs=y)

    guide = dg.autoguides.AutoNormal(model, init_loc_fn="median")
    r = dg.fit(
        model,
        guide,
        backend="pyro",
        model_args=(x, y),
        num_steps=5,
        num_particles=8,
        seeds=[0, 1],
        progress=False,
    )
    assert len(r) == 2 and all(np.isfinite(ri.losses).all() for ri in r)
    params = r[0].params
    est = {
        "pyro": dg.crosscheck.elbo_estimate(
            model, guide, params, backend="pyro", num_particles=500, model_args=(x, y)
        ),
        "numpyro": dg.crosscheck.elbo_estimate(
            model,
            guide,
            guide.translate(params, "numpyro", model_args=(x, y)),
            backend="numpyro",
            num_particles=2000,
            model_args=(x, y),
        ),
    }
    (m1, s1), (m2, s2) = est["numpyro"], est["pyro"]
    # independent Monte-Carlo estimates of one number: within 5 joint standard errors
    assert abs(m1 - m2) < 5 * np.hypot(s1, s2), est


def test_logdensity_parity_with_a_deterministic_under_an_autoguide():
    # examples/bnn.py records its mean with dg.deterministic: Pyro scores it (a Delta sample
    # site, log density 0), NumPyro does not list it; the check once failed on "site sets
    # differ" with every log density equal
    net = nn.MLP([1, 3, 1], activation=nn.Tanh, seed=0)
    x = np.linspace(-1, 1, 8, dtype=np.float32)[:, None]
    y = np.sin(3 * x[:, 0]).astype(np.float32)

    def model(x, y):
        f = dg.nn.random_module("bnn", net, nn.Sample(dist.Normal, 0.0, 1.0))
        mu = dg.deterministic("mu", f(x)[..., 0])
        with dg.plate("data", x.shape[0]):
            dg.sample("y", dist.Normal(mu, 0.1), obs=y)

    r = dg.crosscheck.logdensity_parity(model, dg.autoguides.AutoNormal(model), (x, y))
    assert r.status == "pass", r.summary
    assert "model_unmatched_sites" not in r.details


# -- NumPyro's stax layers (issue 15, item 3) --------------------------------------------------
def _stax_encoder(stax):
    return stax.serial(
        stax.Dense(16),
        stax.Softplus,
        stax.FanOut(2),
        stax.parallel(stax.Dense(2), stax.serial(stax.Dense(2), stax.Exp)),
    )


def test_stax_layers_compute_what_jax_stax_computes(backend):
    from jax.example_libraries import stax as jstax

    nn.manual_seed(0)
    enc = _stax_encoder(nn.stax)
    x = np.random.default_rng(1).uniform(size=(5, 8)).astype(np.float32)

    def guide():
        loc, scale = dg.nn.module("encoder", enc, (5, 8))(x)
        dg.deterministic("loc", loc)
        dg.deterministic("scale", scale)

    tr = dg.trace(guide, backend=backend)
    w = {k[len("encoder.") :]: s.value for k, s in tr.items() if k.startswith("encoder.")}
    # stax's params tree, from the same numbers: [(W, b), (), (), [(W, b), [(W, b), ()]]]
    tree = [
        (w["0.0"], w["0.1"]),
        (),
        (),
        [(w["3.0.0"], w["3.0.1"]), [(w["3.1.0.0"], w["3.1.0.1"]), ()]],
    ]
    _init, apply = _stax_encoder(jstax)
    loc, scale = apply(tree, x)
    # the same float32 matmuls and activations: rounding only
    np.testing.assert_allclose(tr["loc"].value, np.asarray(loc), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(tr["scale"].value, np.asarray(scale), rtol=1e-5, atol=1e-6)
    assert w["0.0"].shape == (8, 16)  # stax's (in, out) layout


def test_port_carries_numpyro_stax_vae_and_verifies(tmp_path):
    from pathlib import Path

    from dualguide.porting.port import port

    src = Path(__file__).parent.parent / "examples" / "gallery" / "vae" / "numpyro_model.py"
    r = port(src, out=tmp_path / "vae.py")
    assert "dg.nn.stax.serial(" in r.source and 'dg.nn.module("decoder", decoder' in r.source
    # traced on both backends, and on NumPyro against the original from the original's
    # weights (numpyro.module's decoder$params pytree read as decoder.0.0, ...)
    assert r.verified, r.report()
    orig = [v for v in r.verification if v.backend == "numpyro vs original"]
    assert {v.function for v in orig} == {"model", "guide"} and all(v.ok for v in orig)


def test_stax_network_needs_an_input_shape(backend):
    net = nn.stax.serial(nn.stax.Dense(2))

    def model():
        return dg.nn.module("f", net)(np.ones((1, 3), np.float32))

    with pytest.raises(SpecError, match=r"nn.module\('f'\): a stax network needs input_shape"):
        dg.trace(model, backend=backend)


def test_ported_stax_vae_keeps_the_jit_on_pyro(backend_state, tmp_path):
    import warnings
    from pathlib import Path

    from dualguide._files import load_file
    from dualguide.porting.port import port

    src = Path(__file__).parent.parent / "examples" / "gallery" / "vae" / "numpyro_model.py"
    port(src, out=tmp_path / "vae.py")
    mod = load_file(str(tmp_path / "vae.py"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = dg.fit(mod.model, mod.guide, backend="pyro", model_args=mod.MODEL_ARGS, num_steps=3)
    # input_shape=(images.shape[0], 2) is read once, when the network is first sized; the
    # JIT-traced calls read no sizes
    assert r.elbo == "JitTrace_ELBO"
    assert not [w for w in caught if "Fallback" in type(w.message).__name__], caught
