"""Export and port carry enumeration (issue 14): ``config_enumerate``, ``infer={"enumerate":
"parallel"}``, ``markov``, ``Vindex``, ``infer_discrete`` and ``TraceEnum_ELBO``, spelled as the
rows of ``_table.ENUM`` / ``_table.ELBOS`` say.  The exported programs run natively and give the
neutral program's enumerated loss, which is the exact marginal likelihood (a point-mass guide
on the continuous latents, so the loss has no Monte Carlo noise)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import norm

import dualguide as dg
from dualguide import _table
from dualguide._files import load_file
from dualguide.porting.export import ExportError
from dualguide.porting.port import port

DATA = Path(__file__).resolve().parent / "data"
GMM = DATA / "neutral_enum_gmm.py"
HMM = DATA / "neutral_enum_hmm.py"


def _native(name: str, backend: str) -> str:
    return _table.ENUM[name][_table.BACKENDS.index(backend)][0]


def gmm_exact(x, w, locs) -> float:
    """log p(x, locs) with the assignments summed out."""
    x, w, locs = (np.asarray(a, np.float64) for a in (x, w, locs))
    lik = logsumexp(np.log(w) + norm(locs, 1.0).logpdf(x[:, None]), axis=1)
    return float(norm(0.0, 10.0).logpdf(locs).sum() + lik.sum())


def hmm_forward(h) -> float:
    """log p(y) of the HMM file's chain by the forward algorithm (float64)."""
    e = norm(h.MEANS.astype(np.float64), 0.7).logpdf(h.YS.astype(np.float64)[:, None])
    lt = np.log(h.TRANS.astype(np.float64))
    alpha = np.log(h.INIT.astype(np.float64)) + e[0]
    for t in range(1, len(h.YS)):
        alpha = logsumexp(alpha[:, None] + lt, axis=0) + e[t]
    return float(logsumexp(alpha))


def hmm_viterbi(h) -> list[int]:
    e = norm(h.MEANS.astype(np.float64), 0.7).logpdf(h.YS.astype(np.float64)[:, None])
    lt = np.log(h.TRANS.astype(np.float64))
    delta, back = np.log(h.INIT.astype(np.float64)) + e[0], []
    for t in range(1, len(h.YS)):
        s = delta[:, None] + lt
        back.append(s.argmax(axis=0))
        delta = s.max(axis=0) + e[t]
    path = [int(delta.argmax())]
    for bp in reversed(back):
        path.append(int(bp[path[-1]]))
    return path[::-1]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Each program exported once per backend: (program, backend) -> (code, path)."""
    d = tmp_path_factory.mktemp("enum_export")
    out = {}
    for prog, path in (("gmm", GMM), ("hmm", HMM)):
        for b in ("numpyro", "pyro"):
            p = d / f"{prog}_{b}.py"
            out[prog, b] = (dg.export(path, backend=b, out=p), p)
    return out


def test_the_table_drives_the_native_names(exported, backend):
    gmm, _ = exported["gmm", backend]
    hmm, _ = exported["hmm", backend]
    assert f"@{_native('config_enumerate', backend)}\ndef model(x):" in gmm
    assert f"{_native('ops.Vindex', backend)}(locs)[..., z]" in gmm
    assert f"for t in {_native('markov', backend)}(range(len(ys))):" in hmm
    assert f"{_native('ops.Vindex', backend)}(trans)[z, :]" in hmm
    assert 'infer={"enumerate": "parallel"}' in hmm
    assert f"decoder = {_native('infer_discrete', backend)}(model, first_available_dim=-1" in hmm
    # FIT_SETTINGS' loss is the native fit's estimator (NumPyro's; Pyro's JIT twin, with
    # TraceEnum_ELBO when the program does not trace)
    elbo = _table.ELBOS["TraceEnum_ELBO"][_table.BACKENDS.index(backend)]
    assert f"{elbo}(num_particles=num_particles, max_plate_nesting=1)" in gmm or (
        f"max_plate_nesting=1)\n    elbo = Jit{elbo}(" in gmm
    )
    assert "import dualguide" not in gmm + hmm
    for code in (gmm, hmm):
        compile(code, "<export>", "exec")


def test_exported_gmm_gives_the_neutral_enumerated_loss(exported, backend):
    src = load_file(str(GMM))
    m = load_file(str(exported["gmm", backend][1]))
    fs = src.FIT_SETTINGS
    params, losses = m.fit(m.model, m.guide, num_steps=3)
    r = dg.fit(
        src.model,
        src.guide,
        backend=backend,
        model_args=src.MODEL_ARGS,
        loss=fs["loss"],
        optim=fs["optim"],
        num_steps=3,
        seed=0,
    )
    # the first loss is -log p(x, locs) at the init, exactly (float32 sums of six terms ~10)
    assert losses[0] == pytest.approx(-gmm_exact(src.X, [0.35, 0.65], [0.5, 4.0]), rel=1e-5)
    # the loss is deterministic, so the native fit takes dualguide's Adam steps: NumPyro's are
    # the same computation; Pyro's Adam agrees with dualguide's torch port to float32 rounding
    np.testing.assert_allclose(losses, r.losses, rtol=1e-5)
    np.testing.assert_allclose(params["l"], r.params["l"], atol=1e-5)


def test_exported_hmm_gives_the_forward_algorithm_and_viterbi(exported, backend):
    h = load_file(str(HMM))
    m = load_file(str(exported["hmm", backend][1]))
    _params, losses = m.fit(m.model, m.guide, num_steps=1)
    svi = dg.infer.SVI(
        h.model, h.guide, dg.optim.Adam(lr=0.01), loss=h.FIT_SETTINGS["loss"], backend=backend
    )
    dg.clear_param_store()
    neutral = svi.evaluate_loss(h.YS)
    dg.clear_param_store()
    # the enumerated loss under markov is -log p(y): the forward algorithm's, in float32
    assert losses[0] == pytest.approx(-hmm_forward(h), rel=1e-5)
    assert losses[0] == pytest.approx(neutral, rel=1e-6)
    # the exported decoder (infer_discrete at temperature 0), run natively, is the Viterbi path
    path = hmm_viterbi(h)
    assert len(set(path)) == 3  # it visits every state: a real decoding test
    if backend == "numpyro":
        import numpyro

        tr = numpyro.handlers.trace(numpyro.handlers.seed(m.decoder, 0)).get_trace(*m.MODEL_ARGS)
    else:
        import pyro

        tr = pyro.poutine.trace(m.decoder).get_trace(*m.MODEL_ARGS).nodes
    assert [int(tr[f"z_{t}"]["value"]) for t in range(len(h.YS))] == path


@pytest.mark.parametrize("prog", ["gmm", "hmm"])
def test_the_exports_port_back(exported, backend, prog):
    """The enumeration constructs read back as the neutral ones, verified by tracing."""
    r = port(exported[prog, backend][1])
    assert r.verified, r.report()
    if prog == "gmm":
        assert "@dg.config_enumerate\ndef model(x):" in r.source
        assert "ops.Vindex(locs)[..., z]" in r.source and "dg.ops" not in r.source
    else:
        assert "for t in dg.markov(range(len(ys))):" in r.source
        assert "decoder = dg.infer_discrete(model, first_available_dim=-1" in r.source


def test_infer_discrete_sampling_is_not_exported_to_numpyro(tmp_path):
    src = tmp_path / "sampled.py"
    src.write_text(
        HMM.read_text().replace("first_available_dim=-1, temperature=0", "first_available_dim=-1")
    )
    with pytest.raises(ExportError, match=r"sampled.py:\d+: dg.infer_discrete: only temperature=0"):
        dg.export(src, backend="numpyro")
    assert "pyro.infer.infer_discrete(model, first_available_dim=-1)" in dg.export(
        src, backend="pyro"
    )


def _native_enum_loss(module, framework: str, max_plate_nesting: int) -> float:
    """The native TraceEnum_ELBO loss of ``module``'s model and guide at the params' inits."""
    args = tuple(module.MODEL_ARGS) if hasattr(module, "MODEL_ARGS") else None
    if framework == "numpyro":
        import jax
        from numpyro.infer import TraceEnum_ELBO

        args = args if args is not None else (module.YS,)
        elbo = TraceEnum_ELBO(max_plate_nesting=max_plate_nesting)
        return float(elbo.loss(jax.random.PRNGKey(0), {}, module.model, module.guide, *args))
    import pyro
    from pyro.infer import TraceEnum_ELBO

    args = args if args is not None else (module.data,)
    pyro.clear_param_store()
    loss = TraceEnum_ELBO(max_plate_nesting=max_plate_nesting).loss(
        module.model, module.guide, *args
    )
    pyro.clear_param_store()
    return float(loss)


@pytest.mark.parametrize(
    ("native", "framework", "nesting"),
    [("numpyro_enum_hmm.py", "numpyro", 0), ("pyro_enum_gmm.py", "pyro", 1)],
)
def test_native_enumeration_ports_and_agrees_with_the_original(
    tmp_path, native, framework, nesting
):
    """NumPyro's enumerated HMM (config_enumerate, markov, Vindex) and Pyro's GMM tutorial
    (config_enumerate, TraceEnum_ELBO) port; the ported program's enumerated loss on both
    backends, and that of its export run natively, is the original's."""
    neutral = tmp_path / f"{framework}_neutral.py"
    r = port(DATA / native, out=neutral)
    assert r.verified, r.report()
    assert "@dg.config_enumerate" in r.source
    # the loss of the original's SVI is carried, so fit, crosscheck and export use it
    assert f'FIT_SETTINGS = {{"loss": dg.infer.TraceEnum_ELBO(max_plate_nesting={nesting}), ' in (
        r.source
    )
    want = _native_enum_loss(load_file(str(DATA / native)), framework, nesting)
    p = load_file(str(neutral))
    for b in ("numpyro", "pyro"):
        dg.clear_param_store()
        svi = dg.infer.SVI(
            p.model, p.guide, dg.optim.Adam(lr=0.01), loss=p.FIT_SETTINGS["loss"], backend=b
        )
        # float32 sums of a few terms of size ~10: a few 1e-6 relative
        assert svi.evaluate_loss(*p.MODEL_ARGS) == pytest.approx(want, rel=1e-5), b
        dg.clear_param_store()
    for b in ("numpyro", "pyro"):
        out = tmp_path / f"{framework}_to_{b}.py"
        dg.export(neutral, backend=b, out=out)
        got = _native_enum_loss(load_file(str(out)), b, nesting)
        assert got == pytest.approx(want, rel=1e-5), b


def test_enumeration_without_trace_enum_is_refused_by_export(tmp_path):
    """A Trace_ELBO fit would sample the enumerated sites: one clear error with the fix."""
    with pytest.raises(ExportError, match=r"neutral_enum_gmm.py:13: .*enumeration.*TraceEnum_ELBO"):
        dg.export(GMM, backend="pyro", settings={})
