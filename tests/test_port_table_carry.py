"""Export and port carry every distribution and transform row of the table (issue 12, item 6).

Generated from ``_table.DISTRIBUTIONS`` / ``_table.TRANSFORMS`` and their parity cases
(``_dist_cases``): each row is written as neutral source, exported to both frameworks, run
natively -- the same log density (distributions) or the same forward map (transforms) as
dualguide's on that backend -- and the export ports back to the same neutral name.  A row the
export or port cannot carry must be listed, with its reason, in ``_support_matrix.PORT_GAPS``
(rendered into docs/support_matrix.md); ops are checked the same way by
``tests/test_ops_parity.py``.
"""

from __future__ import annotations

import numpy as np
import pytest

import dualguide as dg
from dualguide import _dist_cases, _state, _support_matrix, _table
from dualguide._files import load_file
from dualguide.porting.port import port

HEAD = (
    "import dualguide as dg\n"
    "from dualguide import constraints, ops\n"
    "from dualguide import distributions as dist\n\n\n"
    "def guide():\n"
    "    pass\n"
)
#: rows whose case arguments are distributions, constraints or transforms: their source
SOURCES = {
    "ImproperUniform": "dist.ImproperUniform(constraints.real, (), ())",
    "MixtureSameFamily": "dist.MixtureSameFamily(dist.Categorical(probs=ops.asarray([0.3, 0.7])),"
    " dist.Normal(ops.asarray([-1.0, 1.0]), ops.asarray([0.5, 1.0])))",
    "ZeroInflatedDistribution": "dist.ZeroInflatedDistribution(dist.Poisson(ops.asarray(2.0)),"
    " gate_logits=ops.asarray(-0.5))",
    "SineSkewed": "dist.SineSkewed(dist.Independent(dist.VonMises(ops.asarray([0.0, 0.5]),"
    " ops.asarray([1.0, 2.0])), 1), ops.asarray([0.2, -0.3]))",
    "FoldedDistribution": "dist.FoldedDistribution(dist.Normal(ops.asarray(0.3), ops.asarray(1.0)))",
    "Independent": "dist.Independent(dist.Normal(ops.asarray([0.0, 1.0]),"
    " ops.asarray([1.0, 2.0])), 1)",
    "ExpandedDistribution": "dist.ExpandedDistribution(dist.Gamma(ops.asarray(2.5),"
    " ops.asarray(1.5)), (3,))",
    "MaskedDistribution": "dist.MaskedDistribution(dist.Normal(ops.asarray(0.3),"
    " ops.asarray(1.5)), True)",
    "TransformedDistribution": "dist.TransformedDistribution(dist.Normal(ops.asarray(0.1),"
    " ops.asarray(0.4)), [dist.transforms.AffineTransform(0.5, 2.0),"
    " dist.transforms.ExpTransform()])",
    # transforms
    "ComposeTransform": "dist.transforms.ComposeTransform([dist.transforms.AffineTransform(0.5,"
    " 2.0), dist.transforms.SigmoidTransform()])",
    "IndependentTransform": "dist.transforms.IndependentTransform("
    "dist.transforms.ExpTransform(), 1)",
    "ReshapeTransform": "dist.transforms.ReshapeTransform((6,), (2, 3))",
}


def _literal(a) -> str | None:
    if isinstance(a, (int, float)) and not isinstance(a, bool):
        return repr(a)
    if type(a).__module__.split(".")[0] in ("jax", "jaxlib", "numpy"):
        return f"ops.asarray({np.asarray(a).tolist()!r})"
    return None


def _source(name: str, case, prefix: str) -> str:
    if name in SOURCES:
        return SOURCES[name]
    with dg.use_backend("numpyro"):
        args, kwargs = case.make()
    items = [_literal(a) for a in args] + [f"{k}={_literal(v)}" for k, v in kwargs.items()]
    assert None not in items and all("None" not in i for i in items), (
        f"{name}: its case arguments are not arrays or numbers: write its source in SOURCES"
    )
    return f"{prefix}{name}({', '.join(items)})"  # type: ignore[arg-type]


def _obs(case) -> str:
    pt = np.asarray(case.points[0])
    return f"ops.asarray({(pt.astype(int) if case.int_points else pt).tolist()!r})"


@pytest.fixture(scope="module")
def programs(tmp_path_factory):
    """One neutral file with a model per distribution row and a maker per transform row."""
    d = tmp_path_factory.mktemp("carry")
    lines = [HEAD]
    for name in _table.DISTRIBUTIONS:
        case = _dist_cases.DIST_CASES[name]
        src = _source(name, case, "dist.")
        lines.append(f'\n\ndef model_{name}():\n    dg.sample("x", {src}, obs={_obs(case)})\n')
    for name in _table.TRANSFORMS:
        src = _source(name, _dist_cases.TRANSFORM_CASES[name], "dist.transforms.")
        lines.append(f"\n\ndef make_{name}():\n    return {src}\n")
    path = d / "carry.py"
    path.write_text("".join(lines))
    return path, d


def _native_log_prob(m, name: str, backend: str) -> np.ndarray:
    fn = getattr(m, f"model_{name}")
    if backend == "numpyro":
        import numpyro

        site = numpyro.handlers.trace(numpyro.handlers.seed(fn, 0)).get_trace()["x"]
        return np.asarray(site["fn"].log_prob(site["value"]))
    import pyro

    site = pyro.poutine.trace(fn).get_trace().nodes["x"]
    return site["fn"].log_prob(site["value"]).detach().numpy()


def test_every_row_is_carried_both_ways(programs, backend):
    path, d = programs
    neutral = load_file(str(path))
    out = d / f"carry_{backend}.py"
    code = dg.export(path, backend=backend, model="model_Normal", out=out)
    assert "import dualguide" not in code
    m = load_file(str(out))
    back = port(out, verify=False).source
    gaps = []
    for name in _table.DISTRIBUTIONS:
        want = dg.trace(getattr(neutral, f"model_{name}"), backend=backend)["x"].log_prob
        got = _native_log_prob(m, name, backend)
        # the same framework class at the same point: float32 rounding at most
        if not np.allclose(np.sum(got), np.sum(want), rtol=1e-5, atol=1e-5):
            gaps.append(f"dist.{name}: exported log_prob {got} != {want}")
        if f"dist.{name}(" not in back.split(f"def model_{name}():")[1].split("def ")[0]:
            gaps.append(f"dist.{name}: does not port back")
    for name, case in _dist_cases.TRANSFORM_CASES.items():
        x = np.asarray(case.points, np.float32)[0]
        with dg.use_backend(backend):
            t = _state.feature(_state.current(), "dists").transform(
                getattr(neutral, f"make_{name}")()
            )
            want = dg.ops.to_numpy(t(dg.ops.asarray(x)))
            got = getattr(m, f"make_{name}")()(dg.ops.asarray(x))
        got = np.asarray(got.detach() if hasattr(got, "detach") else got)
        if not np.allclose(got, want, rtol=1e-5, atol=1e-6):
            gaps.append(f"dist.transforms.{name}: exported map {got} != {want}")
        if f"dist.transforms.{name}(" not in back.split(f"def make_{name}():")[1]:
            gaps.append(f"dist.transforms.{name}: does not port back")
    assert not gaps, "\n".join(gaps)


def test_affine_with_event_dim_is_carried_both_ways(tmp_path, backend):
    """``AffineTransform(..., event_dim=1)`` (once a PORT_GAPS row): exported to NumPyro as
    ``IndependentTransform(AffineTransform(loc, scale), 1)``, to Pyro as written; both run the
    neutral program's log density and port back."""
    assert not any("AffineTransform" in k for k in _support_matrix.PORT_GAPS)
    src = tmp_path / "affine.py"
    src.write_text(
        HEAD + "\n\ndef model_x():\n"
        "    t = dist.transforms.AffineTransform(ops.asarray([1.0, -1.0]), "
        "ops.asarray([2.0, -0.5]), event_dim=1)\n"
        '    dg.sample("x", dist.TransformedDistribution(dist.Normal(ops.zeros(2), 1.0)'
        ".to_event(1), [t]), obs=ops.asarray([0.3, -2.0]))\n"
    )
    out = tmp_path / f"affine_{backend}.py"
    code = dg.export(src, backend=backend, model="model_x", out=out)
    if backend == "numpyro":
        assert "dist.transforms.IndependentTransform(dist.transforms.AffineTransform(" in code
    want = dg.trace(load_file(str(src)).model_x, backend=backend)["x"].log_prob
    got = _native_log_prob(load_file(str(out)), "x", backend)
    # exact: N(0,1) at (0.3-1)/2 and (-2+1)/-0.5, less log 2 and log 0.5 (= log|det J| = 0)
    z = np.array([(0.3 - 1.0) / 2.0, (-2.0 + 1.0) / -0.5])
    exact = float(np.sum(-0.5 * z**2 - 0.5 * np.log(2 * np.pi)) - np.log(2.0) - np.log(0.5))
    np.testing.assert_allclose(np.sum(got), exact, rtol=1e-5)
    np.testing.assert_allclose(np.sum(want), exact, rtol=1e-5)
    assert "dist.transforms.AffineTransform(" in port(out, verify=False).source
