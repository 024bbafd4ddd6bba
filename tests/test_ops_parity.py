"""Every op of the table gives the same values on both backends and numpy, and exports natively.

The cases are generated from ``dualguide._table.OPS``: each row must have a case here (or a
reason it has none), an implementation in both backends, and a native spelling that the
exporter writes and that runs.  A case is a neutral expression over the named inputs below,
with numpy's answer; the same expression is exported (``native_source``) and run natively.

Tolerances: float32 on both backends against float64 numpy, so ~1e-6 relative for
elementwise ops; 2e-5 where float32 rounding adds up over a reduction, a factorization or a
special function's series (digamma, lgamma, erfc), measured well below that here.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import inspect
import sys

import numpy as np
import pytest
from scipy import special

import dualguide as dg
from dualguide import _state, ops
from dualguide._table import OPS
from dualguide.errors import SpecError
from dualguide.porting._native import native_source

X = np.array([[0.3, -1.2, 2.0], [0.5, 0.1, -0.7]], dtype=np.float32)
P = np.array([[0.2, 0.5, 0.9], [0.4, 0.6, 0.1]], dtype=np.float32)
_M = np.array([[1.0, 0.2, -0.3], [0.4, 1.5, 0.1], [0.0, -0.6, 0.8]])
INPUTS = {
    "x": X,
    "p": P,
    "v": np.array([0.5, -1.0, 2.0], dtype=np.float32),
    "a": (_M @ _M.T + np.eye(3)).astype(np.float32),  # symmetric positive definite
    "tri": np.array([[2.0, 0.0, 0.0], [0.5, 1.5, 0.0], [-0.3, 0.4, 1.2]], dtype=np.float32),
    "b": np.array([[1.0, 0.0], [2.0, 1.0], [-1.0, 0.5]], dtype=np.float32),
    "idx": np.array([[2], [0]]),
    "i1": np.array([2, 0, 2]),  # 1-D indices (take)
    "e": np.array([-1.0, 0.0, 0.5, 2.0], dtype=np.float32),  # sorted edges (searchsorted)
}

#: op -> [(neutral expression over INPUTS, numpy reference taking the same names)]
CASES: dict[str, list[tuple[str, object]]] = {
    "exp": [("ops.exp(x)", lambda x: np.exp(x))],
    "log": [("ops.log(p)", lambda p: np.log(p))],
    "log1p": [("ops.log1p(p)", lambda p: np.log1p(p))],
    "expm1": [("ops.expm1(x)", lambda x: np.expm1(x))],
    "sqrt": [("ops.sqrt(p)", lambda p: np.sqrt(p))],
    "square": [("ops.square(x)", lambda x: x**2)],
    "abs": [("ops.abs(x)", lambda x: np.abs(x))],
    "sin": [("ops.sin(x)", lambda x: np.sin(x))],
    "cos": [("ops.cos(x)", lambda x: np.cos(x))],
    "tan": [("ops.tan(x)", lambda x: np.tan(x))],
    "arcsin": [("ops.arcsin(p)", lambda p: np.arcsin(p))],
    "arccos": [("ops.arccos(p)", lambda p: np.arccos(p))],
    "arctan": [("ops.arctan(x)", lambda x: np.arctan(x))],
    "arctan2": [("ops.arctan2(x, p)", lambda x, p: np.arctan2(x, p))],
    "sinh": [("ops.sinh(x)", lambda x: np.sinh(x))],
    "cosh": [("ops.cosh(x)", lambda x: np.cosh(x))],
    "tanh": [("ops.tanh(x)", lambda x: np.tanh(x))],
    "sigmoid": [("ops.sigmoid(x)", lambda x: special.expit(x))],
    "softplus": [("ops.softplus(x)", lambda x: np.logaddexp(0, x))],
    "erf": [("ops.erf(x)", lambda x: special.erf(x))],
    "lgamma": [("ops.lgamma(p + 0.5)", lambda p: special.gammaln(p + 0.5))],
    "sign": [("ops.sign(x)", lambda x: np.sign(x))],
    "stop_gradient": [("ops.stop_gradient(x) * x", lambda x: x * x)],
    "logaddexp": [("ops.logaddexp(x, p)", lambda x, p: np.logaddexp(x, p))],
    "logsumexp": [
        ("ops.logsumexp(x, axis=-1)", lambda x: special.logsumexp(x, -1)),
        ("ops.logsumexp(x)", lambda x: special.logsumexp(x)),
    ],
    "sum": [
        ("ops.sum(x, axis=0)", lambda x: x.sum(0)),
        ("ops.sum(x, -1, keepdims=True)", lambda x: x.sum(-1, keepdims=True)),
        ("ops.sum(x)", lambda x: x.sum()),
    ],
    "prod": [("ops.prod(x, axis=1)", lambda x: x.prod(1))],
    "mean": [("ops.mean(x, dim=0)", lambda x: x.mean(0))],
    "max": [("ops.max(x, axis=1)", lambda x: x.max(1)), ("ops.max(x)", lambda x: x.max())],
    "min": [("ops.min(x, axis=0, keepdims=True)", lambda x: x.min(0, keepdims=True))],
    "cumsum": [
        ("ops.cumsum(x, axis=1)", lambda x: x.cumsum(1)),
        ("ops.cumsum(x)", lambda x: np.cumsum(x)),
    ],
    "maximum": [("ops.maximum(x, p)", lambda x, p: np.maximum(x, p))],
    "minimum": [("ops.minimum(x, 0.25)", lambda x: np.minimum(x, 0.25))],
    "clip": [
        ("ops.clip(x, -0.5, 0.6)", lambda x: np.clip(x, -0.5, 0.6)),
        ("ops.clip(x, min=0.0)", lambda x: np.clip(x, 0.0, None)),
    ],
    "stack": [("ops.stack([x, p], axis=-1)", lambda x, p: np.stack([x, p], -1))],
    "concatenate": [("ops.concatenate([x, p], axis=0)", lambda x, p: np.concatenate([x, p], 0))],
    "where": [("ops.where(x > 0, x, p)", lambda x, p: np.where(x > 0, x, p))],
    "matmul": [("ops.matmul(x, a)", lambda x, a: x @ a)],
    "einsum": [("ops.einsum('ij,kj->ik', x, p)", lambda x, p: np.einsum("ij,kj->ik", x, p))],
    "reshape": [("ops.reshape(x, (3, 2))", lambda x: x.reshape(3, 2))],
    "expand_dims": [("ops.expand_dims(x, 1)", lambda x: x[:, None])],
    "swapaxes": [("ops.swapaxes(x, 0, 1)", lambda x: x.T)],
    "broadcast_to": [("ops.broadcast_to(v, (2, 3))", lambda v: np.broadcast_to(v, (2, 3)))],
    "broadcast_arrays": [
        ("ops.stack(ops.broadcast_arrays(v, x))", lambda v, x: np.stack(np.broadcast_arrays(v, x)))
    ],
    "take_along_axis": [
        ("ops.take_along_axis(x, idx, -1)", lambda x, idx: np.take_along_axis(x, idx, -1))
    ],
    "zeros": [("ops.zeros((2, 3)) + x", lambda x: x)],
    "ones": [("ops.ones((2, 3)) * x", lambda x: x)],
    "zeros_like": [("ops.zeros_like(x) + 1.0", lambda x: np.ones_like(x))],
    "ones_like": [("ops.ones_like(x) * x", lambda x: x)],
    "full": [("ops.full((2, 3), 0.5) * x", lambda x: 0.5 * x)],
    "arange": [("ops.arange(0, 3) + x", lambda x: np.arange(3) + x)],
    "eye": [
        ("ops.eye(3) * a", lambda a: np.eye(3) * a),
        ("ops.eye(2, 3, k=1) * x", lambda x: np.eye(2, 3, 1) * x),
        ("ops.eye(3, k=-1) * a", lambda a: np.eye(3, k=-1) * a),
    ],
    "asarray": [("ops.asarray([1.0, 2.0, 3.0]) * v", lambda v: np.array([1.0, 2, 3]) * v)],
    "isfinite": [("ops.isfinite(ops.log(x))", lambda x: np.isfinite(np.log(np.abs(x))) & (x > 0))],
    "det": [("ops.det(a)", lambda a: np.linalg.det(a))],
    "slogdet": [("ops.slogdet(a)[1]", lambda a: np.linalg.slogdet(a)[1])],
    "inv": [("ops.inv(a)", lambda a: np.linalg.inv(a))],
    "cholesky": [("ops.cholesky(a)", lambda a: np.linalg.cholesky(a))],
    "power": [
        ("ops.power(p, 2.5)", lambda p: p**2.5),
        ("ops.power(x, 2)", lambda x: x**2),
        ("ops.power(2.0, x)", lambda x: 2.0**x),
    ],
    "cumprod": [
        ("ops.cumprod(x, axis=1)", lambda x: x.cumprod(1)),
        ("ops.cumprod(x, axis=None)", lambda x: x.cumprod()),
        ("ops.cumprod(p)", lambda p: np.cumprod(p)),
    ],
    "transpose": [("ops.transpose(x, (1, 0))", lambda x: x.T)],
    "permute_dims": [
        ("ops.permute_dims(ops.expand_dims(x, 0), (2, 0, 1))", lambda x: x[None].transpose(2, 0, 1))
    ],
    "moveaxis": [("ops.moveaxis(ops.expand_dims(x, 0), 0, -1)", lambda x: x[:, :, None])],
    "squeeze": [("ops.squeeze(ops.expand_dims(x, 1), 1)", lambda x: x)],
    "astype": [
        ("ops.astype(x * 2.0, 'int32')", lambda x: np.trunc(x * 2).astype(np.int32)),
        ("ops.astype(x > 0, 'float32') * p", lambda x, p: (x > 0) * p),
    ],
    "linspace": [("ops.linspace(0.0, 1.0, 3) * x", lambda x: np.linspace(0, 1, 3) * x)],
    "full_like": [("ops.full_like(x, 2.0) * x", lambda x: 2 * x)],
    "softmax": [
        ("ops.softmax(x)", lambda x: special.softmax(x, -1)),
        ("ops.softmax(x, axis=0)", lambda x: special.softmax(x, 0)),
    ],
    "log_softmax": [("ops.log_softmax(x, dim=-1)", lambda x: special.log_softmax(x, -1))],
    "logit": [("ops.logit(p)", lambda p: special.logit(p))],
    "expit": [("ops.expit(x)", lambda x: special.expit(x))],
    "erfc": [("ops.erfc(x)", lambda x: special.erfc(x))],
    "digamma": [("ops.digamma(p + 0.5)", lambda p: special.digamma(p + 0.5))],
    "floor": [("ops.floor(x * 3.0)", lambda x: np.floor(x * 3))],
    "ceil": [("ops.ceil(x * 3.0)", lambda x: np.ceil(x * 3))],
    "isnan": [("ops.isnan(ops.log(x))", lambda x: x < 0)],
    "argmax": [
        ("ops.argmax(x, axis=1)", lambda x: x.argmax(1)),
        ("ops.argmax(x)", lambda x: x.argmax()),
    ],
    "argmin": [("ops.argmin(x, axis=0, keepdims=True)", lambda x: x.argmin(0, keepdims=True))],
    "tril": [
        ("ops.tril(a)", lambda a: np.tril(a)),
        ("ops.tril(a, k=-1)", lambda a: np.tril(a, -1)),
    ],
    "triu": [("ops.triu(a, 1)", lambda a: np.triu(a, 1))],
    "outer": [("ops.outer(v, v)", lambda v: np.outer(v, v))],
    "solve": [
        ("ops.solve(a, v)", lambda a, v: np.linalg.solve(a, v)),
        ("ops.solve(a, b)", lambda a, b: np.linalg.solve(a, b)),
    ],
    "solve_triangular": [
        ("ops.solve_triangular(tri, v, upper=False)", lambda tri, v: np.linalg.solve(tri, v)),
        ("ops.solve_triangular(tri.T, b, upper=True)", lambda tri, b: np.linalg.solve(tri.T, b)),
    ],
    "norm": [
        ("ops.norm(x)", lambda x: np.linalg.norm(x)),
        ("ops.norm(x, axis=-1)", lambda x: np.linalg.norm(x, axis=-1)),
        ("ops.norm(x, 1, axis=0, keepdims=True)", lambda x: np.linalg.norm(x, 1, 0, True)),
    ],
    "var": [
        ("ops.var(x)", lambda x: x.var()),
        ("ops.var(x, 1, True, correction=1)", lambda x: x.var(1, ddof=1, keepdims=True)),
    ],
    "std": [("ops.std(x, axis=0)", lambda x: x.std(0))],
    "all": [
        ("ops.all(x > -1.0, axis=1)", lambda x: (x > -1).all(1)),
        ("ops.all(x < 3.0)", lambda x: (x < 3).all()),
    ],
    "any": [("ops.any(x > 1.0, 0, True)", lambda x: (x > 1).any(0, keepdims=True))],
    "isinf": [("ops.isinf(ops.log(p - 0.2))", lambda p: p == np.float32(0.2))],
    "logical_not": [("ops.logical_not(x > 0)", lambda x: ~(x > 0))],
    "logical_and": [("ops.logical_and(x > 0, p > 0.3)", lambda x, p: (x > 0) & (p > 0.3))],
    "logical_or": [("ops.logical_or(x > 0, p > 0.3)", lambda x, p: (x > 0) | (p > 0.3))],
    "diagonal": [
        ("ops.diagonal(a)", lambda a: np.diagonal(a)),
        ("ops.diagonal(x, offset=1)", lambda x: np.diagonal(x, 1)),
    ],
    "tensordot": [
        ("ops.tensordot(x, p, 2)", lambda x, p: np.tensordot(x, p, 2)),
        ("ops.tensordot(x, a, axes=1)", lambda x, a: np.tensordot(x, a, 1)),
    ],
    "sort": [
        ("ops.sort(x)", lambda x: np.sort(x, -1)),
        ("ops.sort(x, axis=0, descending=True)", lambda x: -np.sort(-x, 0)),
    ],
    "argsort": [
        ("ops.argsort(x)", lambda x: np.argsort(x, -1, kind="stable")),
        ("ops.argsort(x, dim=0, descending=True)", lambda x: np.argsort(-x, 0, kind="stable")),
        # ties keep their order (a stable sort, the array API's)
        ("ops.argsort(ops.floor(x * 0.4))", lambda x: np.argsort(np.floor(x * 0.4), kind="stable")),
    ],
    "take": [
        ("ops.take(x, i1, axis=1)", lambda x, i1: np.take(x, i1, axis=1)),
        ("ops.take(x, idx)", lambda x, idx: np.take(x, idx)),
    ],
    "flip": [
        ("ops.flip(x, axis=1)", lambda x: np.flip(x, 1)),
        ("ops.flip(x)", lambda x: np.flip(x)),
        ("ops.flip(x, (0, -1))", lambda x: np.flip(x, (0, -1))),
    ],
    "roll": [
        ("ops.roll(x, 1, axis=1)", lambda x: np.roll(x, 1, 1)),
        ("ops.roll(x, -2)", lambda x: np.roll(x, -2)),
    ],
    "vecdot": [
        ("ops.vecdot(x, p)", lambda x, p: (x * p).sum(-1)),
        ("ops.vecdot(x, p, axis=0)", lambda x, p: (x * p).sum(0)),
    ],
    "kron": [("ops.kron(x, b)", lambda x, b: np.kron(x, b))],
    "searchsorted": [
        ("ops.searchsorted(e, x)", lambda e, x: np.searchsorted(e, x)),
        ("ops.searchsorted(e, v, side='right')", lambda e, v: np.searchsorted(e, v, "right")),
    ],
}
#: op rows with no value case here, and why
NO_VALUE_CASE = {
    "random.normal": "draws differ between frameworks; shapes, seeds and moments are tested below",
    "random.uniform": "draws differ between frameworks; shapes, seeds and moments are tested below",
}
#: ops whose outputs are not differentiable (integers, booleans) or have no gradient to compare
NO_GRADIENT = {
    "sign",
    "floor",
    "ceil",
    "argmax",
    "argmin",
    "isnan",
    "isfinite",
    "astype",
    "all",
    "any",
    "isinf",
    "logical_not",
    "logical_and",
    "logical_or",
    "argsort",
    "searchsorted",
}

FLAT = [(op, i, expr, ref) for op, cases in CASES.items() for i, (expr, ref) in enumerate(cases)]
IDS = [f"{op}-{i}" for op, i, _e, _r in FLAT]
RTOL = {"det": 2e-5, "inv": 2e-5, "solve": 2e-5, "digamma": 2e-5, "lgamma": 2e-5, "erfc": 2e-5}


def names_in(expr: str) -> list[str]:
    """The inputs an expression uses, in INPUTS order."""
    used = {n.id for n in ast.walk(ast.parse(expr)) if isinstance(n, ast.Name)}
    return [k for k in INPUTS if k in used]


@functools.cache
def neutral_value(backend: str, expr: str):
    """The expression's value by dualguide on ``backend`` (cached: several tests compare to it)."""
    with dg.use_backend(backend):
        env = {k: ops.asarray(INPUTS[k]) for k in names_in(expr)}
        return ops.to_numpy(eval(expr, {"ops": ops}, env))


def reference(expr: str, ref) -> np.ndarray:
    args = {
        k: INPUTS[k].astype(np.float64) if INPUTS[k].dtype.kind == "f" else INPUTS[k]
        for k in inspect.signature(ref).parameters
    }
    return np.asarray(ref(*args.values()))


# --- the table is covered ---------------------------------------------------------------------
def test_every_op_row_has_a_case():
    missing = sorted(set(OPS) - set(CASES) - set(NO_VALUE_CASE))
    assert not missing, f"op rows without a parity case in tests/test_ops_parity.py: {missing}"
    stale = sorted((set(CASES) | set(NO_VALUE_CASE)) - set(OPS))
    assert not stale, f"parity cases for ops that are not table rows: {stale}"


def _resolve(ns, name: str):
    for part in name.split("."):
        ns = getattr(ns, part, None)
    return ns


@pytest.mark.parametrize("name", sorted(OPS))
def test_every_op_row_is_implemented(backend, name):
    assert callable(_resolve(ops, name)), f"dualguide.ops has no {name}"
    impl = _resolve(_state.load(backend).ops, name)
    assert callable(impl), f"op row {name!r} has no implementation in the {backend} backend's Ops"


# --- values -----------------------------------------------------------------------------------
@pytest.mark.parametrize("op,i,expr,ref", FLAT, ids=IDS)
def test_op_values_match_numpy_on_both_backends(op, i, expr, ref):
    want = reference(expr, ref)
    got = {b: neutral_value(b, expr) for b in ("numpyro", "pyro")}
    rtol = RTOL.get(op, 2e-6)
    for b, v in got.items():
        assert v.shape == want.shape, (b, v.shape, want.shape)
        np.testing.assert_allclose(v, want, rtol=rtol, atol=rtol, err_msg=f"{b}: {expr}")
        if want.dtype.kind == "f":
            assert v.dtype == np.float32, (b, v.dtype)
    assert got["numpyro"].dtype.kind == got["pyro"].dtype.kind


# --- float64 (issue 12): every case once more under dg.use_dtype("float64") -------------------
@pytest.fixture(scope="module")
def values64():
    """Every case's value in float64 on both backends (one dtype switch for all)."""
    from dualguide import _state

    out = {}
    with _state.preserved(), dg.use_dtype("float64"):
        for _op, _i, expr, _ref in FLAT:
            for b in ("numpyro", "pyro"):
                with dg.use_backend(b):
                    env = {k: ops.asarray(INPUTS[k]) for k in names_in(expr)}
                    out[(b, expr)] = ops.to_numpy(eval(expr, {"ops": ops}, env))
    return out


@pytest.mark.parametrize("op,i,expr,ref", FLAT, ids=IDS)
def test_op_values_match_numpy_in_float64(op, i, expr, ref, values64):
    """In float64 every op gives float64 results equal to numpy's in float64 to 1e-10 (a
    float32 step anywhere would leave ~1e-7); the inputs are the float32 values, upcast."""
    want = reference(expr, ref)
    if op == "isinf":  # p - 0.2 is 0 only where float32 rounds: in float64 nowhere
        want = INPUTS["p"].astype(np.float64) == 0.2
    for b in ("numpyro", "pyro"):
        v = values64[(b, expr)]
        assert v.shape == want.shape, (b, v.shape, want.shape)
        np.testing.assert_allclose(v, want, rtol=1e-10, atol=1e-10, err_msg=f"{b}: {expr}")
        if want.dtype.kind == "f":
            assert v.dtype == np.float64, (b, v.dtype, expr)


# --- gradients --------------------------------------------------------------------------------
def _weights(shape) -> np.ndarray:
    n = int(np.prod(shape))
    return np.linspace(0.5, 1.5, n).reshape(shape) if n else np.zeros(shape)


def gradients(backend: str, expr: str) -> list[np.ndarray]:
    """d/d(float inputs) of sum(w * expr) with fixed weights w."""
    names = [k for k in names_in(expr) if INPUTS[k].dtype.kind == "f"]
    others = [k for k in names_in(expr) if k not in names]
    with dg.use_backend(backend):
        if backend == "numpyro":
            import jax
            import jax.numpy as jnp

            def loss(*xs):
                env = dict(zip(names, xs)) | {k: jnp.asarray(INPUTS[k]) for k in others}
                out = eval(expr, {"ops": ops}, env)
                return jnp.sum(out * _weights(out.shape))

            gs = jax.grad(loss, argnums=tuple(range(len(names))))(
                *[jnp.asarray(INPUTS[k]) for k in names]
            )
            return [np.asarray(g) for g in gs]
        import torch

        xs = [torch.tensor(INPUTS[k], requires_grad=True) for k in names]
        env = dict(zip(names, xs)) | {k: torch.as_tensor(INPUTS[k]) for k in others}
        out = eval(expr, {"ops": ops}, env)
        if not out.requires_grad:  # a constant of the inputs (zeros_like): zero gradients
            return [np.zeros(x.shape, np.float32) for x in xs]
        (out * torch.as_tensor(_weights(tuple(out.shape)), dtype=out.dtype)).sum().backward()
        return [np.zeros(x.shape) if x.grad is None else x.grad.numpy() for x in xs]


#: ops that only move, copy or build values: their gradients are routing, not math (skipped
#: to keep the file fast; their values and exports are tested above)
ROUTING = {
    "zeros",
    "ones",
    "zeros_like",
    "ones_like",
    "full",
    "full_like",
    "arange",
    "eye",
    "asarray",
    "linspace",
    "reshape",
    "expand_dims",
    "swapaxes",
    "transpose",
    "permute_dims",
    "moveaxis",
    "squeeze",
    "broadcast_to",
    "broadcast_arrays",
    "stack",
    "concatenate",
    "take",
    "flip",
    "roll",
}
#: one gradient case per op (the first), to keep the file fast
GRAD_CASES = [c for c in FLAT if c[0] not in NO_GRADIENT | ROUTING and c[1] == 0]


@pytest.mark.parametrize("op,i,expr,ref", GRAD_CASES, ids=[f"{c[0]}-{c[1]}" for c in GRAD_CASES])
def test_op_gradients_agree_across_backends(op, i, expr, ref):
    if not names_in(expr) or all(INPUTS[k].dtype.kind != "f" for k in names_in(expr)):
        pytest.skip("no float input")
    gj, gt = gradients("numpyro", expr), gradients("pyro", expr)
    for a, b in zip(gj, gt):
        # float32 gradients by two autodiff systems: agree to float32 rounding
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-5, err_msg=expr)


# --- export: each op written natively runs and gives the same values --------------------------
@pytest.fixture(scope="module")
def case_module(tmp_path_factory):
    """The cases as functions of a module file (the exporter reads source)."""
    lines = ["from dualguide import ops", ""]
    for k, (_op, _i, expr, _ref) in enumerate(FLAT):
        lines += [f"def case_{k}({', '.join(names_in(expr))}):", f"    return {expr}", ""]
    path = tmp_path_factory.mktemp("ops_cases") / "ops_cases_mod.py"
    path.write_text("\n".join(lines))
    spec = importlib.util.spec_from_file_location("ops_cases_mod", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["ops_cases_mod"] = mod
    spec.loader.exec_module(mod)
    yield mod
    sys.modules.pop("ops_cases_mod", None)


def _native_arrays(backend: str, names):
    if backend == "numpyro":
        import jax.numpy as jnp

        return [jnp.asarray(INPUTS[k]) for k in names]
    import torch

    return [torch.as_tensor(INPUTS[k]) for k in names]


@pytest.mark.parametrize("k", range(len(FLAT)), ids=IDS)
def test_op_exports_natively_and_round_trips(case_module, backend, k):
    op, _i, expr, _ref = FLAT[k]
    fn = getattr(case_module, f"case_{k}")
    code, imports = native_source(fn, backend)
    assert "ops." not in code, code
    ns: dict = {}
    exec("\n".join(sorted(imports)) + "\n" + code, ns)
    native = ns[f"case_{k}"](*_native_arrays(backend, names_in(expr)))
    got = native.detach().numpy() if hasattr(native, "detach") else np.asarray(native)
    np.testing.assert_allclose(
        got, neutral_value(backend, expr), rtol=1e-6, atol=1e-6, err_msg=code
    )


def test_exported_ops_port_back_to_the_same_values(case_module, backend, tmp_path):
    """Export every case natively, port the native module back: the ported cases give
    numpy's values on the other backend (the table read both ways)."""
    from dualguide.porting.port import port_source

    heads, bodies, kept = set(), [], []
    for k in range(len(FLAT)):
        code, imports = native_source(getattr(case_module, f"case_{k}"), backend)
        if backend == "pyro" and ".dim()" in code:
            continue  # solve_triangular's vector branch for torch is torch code (see docs/ops.md)
        heads |= imports
        bodies.append(code)
        kept.append(k)
    path = tmp_path / f"native_cases_{backend}.py"
    path.write_text("\n".join(sorted(heads)) + "\n\n\n" + "\n\n".join(bodies))
    text, framework, _notes, _fns, problems, _margs = port_source(path)
    assert framework == backend and not problems, problems
    assert ("jnp" if backend == "numpyro" else "torch") not in text
    ns: dict = {}
    exec(compile(text, str(path), "exec"), ns)
    other = "pyro" if backend == "numpyro" else "numpyro"  # the table read both ways
    for b in (other,):
        for k in kept:
            op, _i, expr, ref = FLAT[k]
            with dg.use_backend(b):
                args = [ops.asarray(INPUTS[n]) for n in names_in(expr)]
                got = ops.to_numpy(ns[f"case_{k}"](*args))
            np.testing.assert_allclose(
                got,
                reference(expr, ref),
                rtol=RTOL.get(op, 2e-6),
                atol=RTOL.get(op, 2e-6),
                err_msg=f"{b}: {expr} exported to {backend} and ported back",
            )
    assert len(kept) >= len(FLAT) - 2  # the two solve_triangular cases on torch


KEY_INIT_GUIDE = """
import dualguide as dg
from dualguide import distributions as dist
from dualguide import ops


def guide():
    w = dg.param("w", lambda key: 0.1 * ops.random.normal(key, (3,)))
    r = dg.param("r", lambda key: ops.random.uniform(key, 2, minval=1.0, maxval=2.0))
    s = dg.param("s", lambda key: dist.Normal(0.0, 1.0).sample(key))
    dg.sample("z", dist.Normal(ops.sum(w) + ops.sum(r) + s, 1.0))
"""


def test_key_taking_inits_export_natively(tmp_path, backend):
    path = tmp_path / "key_init_guide.py"
    path.write_text(KEY_INIT_GUIDE)
    spec = importlib.util.spec_from_file_location("key_init_guide", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["key_init_guide"] = mod
    try:
        spec.loader.exec_module(mod)
        code, imports = native_source(mod.guide, backend)
    finally:
        sys.modules.pop("key_init_guide", None)
    assert "ops." not in code and "dg." not in code, code
    ns: dict = {}
    exec("\n".join(sorted(imports)) + "\n" + code, ns)
    if backend == "numpyro":
        assert "lambda key: 0.1 * jax.random.normal(key, (3,))" in code
        from numpyro import handlers

        with handlers.trace() as tr, handlers.seed(rng_seed=0):
            ns["guide"]()
        values = {k: np.asarray(v["value"]) for k, v in tr.items()}
    else:
        assert "lambda key=(): 0.1 * torch.randn((3,))" in code
        import pyro

        pyro.clear_param_store()
        tr = pyro.poutine.trace(ns["guide"]).get_trace()
        values = {
            k: v["value"].detach().numpy()
            for k, v in tr.nodes.items()
            if v.get("value") is not None
        }
        pyro.clear_param_store()
    assert values["w"].shape == (3,) and values["r"].shape == (2,) and values["s"].shape == ()
    assert np.all((values["r"] >= 1.0) & (values["r"] < 2.0))


def test_int_seeded_draws_export_to_the_same_numbers(tmp_path, backend):
    path = tmp_path / "seeded_draws.py"
    path.write_text(
        "from dualguide import ops\n\n\ndef draws():\n"
        "    return ops.random.normal(3, 2) + ops.random.uniform(0, (2,), minval=1.0, maxval=2.0)\n"
    )
    spec = importlib.util.spec_from_file_location("seeded_draws", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["seeded_draws"] = mod
    try:
        spec.loader.exec_module(mod)
        code, imports = native_source(mod.draws, backend)
    finally:
        sys.modules.pop("seeded_draws", None)
    ns: dict = {}
    exec("\n".join(sorted(imports)) + "\n" + code, ns)
    with dg.use_backend(backend):
        want = ops.to_numpy(mod.draws())
    np.testing.assert_array_equal(ops.to_numpy(ns["draws"]()), want)


# --- indexing: the native __getitem__ does what numpy does -------------------------------------
INDEXES = {
    "newaxis": lambda x, i, m: x[:, ops.newaxis, None],
    "ellipsis": lambda x, i, m: x[..., 1],
    "int": lambda x, i, m: x[1, -1],
    "slice": lambda x, i, m: x[:, ::2],
    "int_array": lambda x, i, m: x[:, i],
    "int_array_rows": lambda x, i, m: x[i[1:]],
    "bool_mask": lambda x, i, m: x[m],
    "bool_mask_rows": lambda x, i, m: x[m[:, 0]],
}


@pytest.mark.parametrize("kind", list(INDEXES))
def test_indexing_matches_numpy(backend, kind):
    f = INDEXES[kind]
    i = np.array([2, 0, 1])
    with dg.use_backend(backend):
        x = ops.asarray(X)
        out = ops.to_numpy(f(x, ops.asarray(i), x > 0))
    np.testing.assert_array_equal(out, f(X, i, X > 0))


# --- the neutral random source ----------------------------------------------------------------
@pytest.mark.parametrize("draw", ["normal", "uniform"])
def test_random_shapes_seeds_and_moments(backend, draw):
    with dg.use_backend(backend):
        f = getattr(ops.random, draw)
        a, b = ops.to_numpy(f(3, (4, 2))), ops.to_numpy(f(3, (4, 2)))
        assert a.shape == (4, 2) and a.dtype == np.float32
        np.testing.assert_array_equal(a, b)  # an int key is a seed
        assert ops.to_numpy(f(0, 5)).shape == (5,)
        n = 20000
        kw = {"minval": 2.0, "maxval": 4.0} if draw == "uniform" else {}
        s = ops.to_numpy(f(1, (n,), **kw))
    mean, sd = (3.0, 2 / np.sqrt(12)) if draw == "uniform" else (0.0, 1.0)
    # 5 standard errors of the mean and of the sd: fails with probability < 1e-6 for any seed
    assert abs(s.mean() - mean) < 5 * sd / np.sqrt(n)
    assert abs(s.std() - sd) < 5 * sd / np.sqrt(2 * n)
    if draw == "uniform":
        assert s.min() >= 2.0 and s.max() < 4.0


def test_random_bad_key_is_one_clear_error(backend):
    with dg.use_backend(backend), pytest.raises(SpecError, match="ops.random.normal: the key"):
        ops.random.normal("seed", (2,))


def test_init_callables_take_the_init_key(backend):
    from dualguide import distributions as dist

    def guide():
        w = dg.param("w", lambda key: dist.Exponential(1.0).sample(key))
        v = dg.param("v", lambda key: 0.1 * ops.random.normal(key, (3,)))
        u = dg.param("u", lambda: np.ones(2))
        dg.sample("z", dist.Normal(w + ops.sum(v) + ops.sum(u), 1.0))

    s1 = dg.trace(guide, backend=backend, seed=5)
    s2 = dg.trace(guide, backend=backend, seed=5)
    assert s1["w"].value.shape == () and s1["w"].value > 0
    assert s1["v"].value.shape == (3,) and s1["v"].value.dtype == np.float32
    np.testing.assert_array_equal(s1["v"].value, s2["v"].value)  # the fit's seed fixes inits
    assert not np.array_equal(s1["v"].value, dg.trace(guide, backend=backend, seed=6)["v"].value)


def test_init_callable_with_two_arguments_is_refused(backend):
    def guide():
        dg.param("w", lambda key, shape: ops.random.normal(key, shape))

    with pytest.raises(SpecError, match="param 'w': its init callable takes 2 arguments"):
        dg.trace(guide, backend=backend)


# --- bad input ---------------------------------------------------------------------------------
def test_astype_unknown_dtype(backend):
    with dg.use_backend(backend), pytest.raises(SpecError, match="ops.astype: unknown dtype"):
        ops.astype(ops.asarray(X), "float16")


def test_take_with_an_axis_needs_1d_indices(backend):
    with dg.use_backend(backend), pytest.raises(SpecError, match="ops.take: with axis=1"):
        ops.take(ops.asarray(X), ops.asarray(INPUTS["idx"]), axis=1)


def test_searchsorted_unknown_side(backend):
    with dg.use_backend(backend), pytest.raises(SpecError, match="ops.searchsorted: side="):
        ops.searchsorted(ops.asarray(INPUTS["e"]), ops.asarray(X), side="middle")


def test_squeeze_of_a_long_axis_is_one_clear_error(backend):
    with dg.use_backend(backend), pytest.raises(SpecError, match="ops.squeeze: axis 1"):
        ops.squeeze(ops.asarray(X), 1)


# --- port: native programs that use the array surface port without hand edits -----------------
NUMPYRO_PROGRAM = """
import jax
import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist
from numpyro.distributions import constraints


def guide():
    w = numpyro.param("w", lambda rng_key: 0.1 * jax.random.normal(rng_key, (3,)))
    r = numpyro.param("r", lambda key: dist.Exponential(1.0).sample(key),
                      constraint=constraints.positive)
    m = jnp.linalg.norm(w[jnp.newaxis, :], axis=-1)[0]
    loc = numpyro.param("loc", jnp.zeros(2)) + jnp.power(m, 2.0)
    scale = jnp.exp(jnp.clip(loc, min=-3.0)).astype(jnp.float32)
    n = jnp.arange(3).astype(jnp.int32)
    p = jax.nn.softmax(jnp.cumsum(w)[n], axis=-1)
    numpyro.sample("z", dist.Normal(loc, scale * r).to_event(1))
    numpyro.sample("c", dist.Categorical(probs=p))
"""

PYRO_PROGRAM = """
import torch
import pyro
import pyro.distributions as dist
from torch.distributions import constraints


def guide():
    w = pyro.param("w", 0.1 * torch.randn(3))
    u = pyro.param("u", lambda: torch.rand(2, 2), constraint=constraints.unit_interval)
    m = torch.linalg.norm(w[None, :], dim=-1, keepdim=True)[0]
    loc = pyro.param("loc", torch.zeros(2)) + torch.pow(m, 2.0)
    scale = torch.exp(loc.clamp(min=-3.0)).float()
    p = torch.softmax(torch.cumsum(w, dim=0), dim=-1)
    pyro.sample("z", dist.Normal(loc, scale * u.sum(-1)).to_event(1))
    pyro.sample("c", dist.Categorical(probs=p))
"""


@pytest.mark.parametrize("framework", ["numpyro", "pyro"])
def test_programs_using_the_array_surface_port_and_verify(tmp_path, framework):
    from dualguide.porting.port import port

    f = tmp_path / f"{framework}_ops_guide.py"
    f.write_text(NUMPYRO_PROGRAM if framework == "numpyro" else PYRO_PROGRAM)
    r = port(f)
    src = r.source
    if framework == "numpyro":
        assert "lambda rng_key: 0.1 * ops.random.normal(rng_key, (3,))" in src
        assert "lambda key: dist.Exponential(1.0).sample(key)" in src
        assert "ops.norm(w[ops.newaxis, :], axis=-1)[0]" in src
        assert "ops.power(m, 2.0)" in src and "ops.clip(loc, min=-3.0)" in src
        assert ").astype(" not in src and "ops.astype(ops.arange(3), 'int32')" in src
        assert "ops.softmax(ops.cumsum(w)[n], axis=-1)" in src
    else:
        assert 'dg.param("w", lambda key: 0.1 * ops.random.normal(key, (3,)))' in src
        assert "lambda key: ops.random.uniform(key, (2, 2))" in src
        assert "ops.norm(w[None, :], dim=-1, keepdims=True)[0]" in src
        assert "ops.astype(ops.exp(ops.clip(loc, min=-3.0)), 'float32')" in src
        assert "ops.softmax(ops.cumsum(w, dim=0), dim=-1)" in src
    assert "jnp" not in src and "torch" not in src
    assert r.verified, r.report()


def test_random_draws_outside_a_param_init_are_refused(tmp_path):
    from dualguide.porting.port import PortError, port

    f = tmp_path / "draw.py"
    f.write_text(
        "import torch\nimport pyro\nimport pyro.distributions as dist\n\n\n"
        "def guide():\n"
        "    e = torch.randn(3)\n"
        "    pyro.sample('z', dist.Normal(e, 1.0).to_event(1))\n"
    )
    with pytest.raises(PortError, match="torch.randn outside a param init"):
        port(f)


def test_solve_triangular_ports_with_torch_keyword(tmp_path):
    from dualguide.porting.port import port

    f = tmp_path / "tri.py"
    f.write_text(
        "import jax.numpy as jnp\nimport jax.scipy.linalg\nimport numpyro\n"
        "import numpyro.distributions as dist\n\n\n"
        "def guide():\n"
        "    L = numpyro.param('L', jnp.array([[2.0, 0.0], [1.0, 1.0]]))\n"
        "    x = jax.scipy.linalg.solve_triangular(L, jnp.ones(2), lower=True)\n"
        "    y = jax.scipy.linalg.solve_triangular(L.T, x)\n"
        "    numpyro.sample('z', dist.Normal(y, 1.0).to_event(1))\n"
    )
    r = port(f)
    assert "ops.solve_triangular(L, ops.ones(2), upper=False)" in r.source
    assert "ops.solve_triangular(L.T, x, upper=True)" in r.source
    assert r.verified, r.report()


def test_docs_list_every_op():
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "ops.md").read_text()
    missing = [k for k in OPS if f"| `{k}(" not in doc]
    assert not missing, f"docs/ops.md does not list: {missing}"


def test_torch_var_and_std_port_with_torch_correction(tmp_path):
    """torch divides by N - 1 unless told; the neutral var/std by N - correction (default 0)."""
    from dualguide.porting.port import port

    f = tmp_path / "var_guide.py"
    f.write_text(
        "import torch\nimport pyro\nimport pyro.distributions as dist\n\n\n"
        "def guide():\n"
        "    w = pyro.param('w', torch.tensor([0.5, 1.0, 2.5]))\n"
        "    a = w.var()\n"
        "    b = torch.std(w, dim=0, unbiased=False)\n"
        "    c = w.std(0, keepdim=True)[0]\n"
        "    pyro.sample('z', dist.Normal(a + b + c, 1.0))\n"
    )
    r = port(f)
    assert "a = ops.var(w, correction=1)" in r.source
    assert "b = ops.std(w, dim=0, correction=0)" in r.source
    assert "c = ops.std(w, 0, keepdims=True, correction=1)[0]" in r.source
    assert r.verified, r.report()  # the ported guide's sites equal the original's


def test_torch_sort_take_and_flip_port(tmp_path):
    """torch.sort's (values, indices), index_select's argument order and flip/roll's dims
    keywords port to the neutral ops; a bare torch.sort is refused with its line."""
    from dualguide.porting.port import PortError, port

    f = tmp_path / "sort_guide.py"
    f.write_text(
        "import torch\nimport pyro\nimport pyro.distributions as dist\n\n\n"
        "def guide():\n"
        "    w = pyro.param('w', torch.tensor([0.5, -1.0, 2.5]))\n"
        "    a = torch.sort(w, descending=True).values\n"
        "    b = torch.sort(w, dim=0)[0]\n"
        "    c = torch.index_select(w, 0, torch.argsort(w, stable=True))\n"
        "    d = torch.flip(w, dims=(0,)) + torch.roll(w, shifts=1, dims=0)\n"
        "    pyro.sample('z', dist.Normal(a + b + c + d, 1.0).to_event(1))\n"
    )
    r = port(f)
    assert "a = ops.sort(w, descending=True)" in r.source
    assert "b = ops.sort(w, dim=0)" in r.source
    assert "c = ops.take(w, ops.argsort(w), axis=0)" in r.source
    assert "ops.flip(w, axis=(0,)) + ops.roll(w, shift=1, axis=0)" in r.source
    assert r.verified, r.report()
    g = tmp_path / "bare_sort.py"
    g.write_text(
        "import torch\nimport pyro\nimport pyro.distributions as dist\n\n\n"
        "def guide():\n"
        "    w = pyro.param('w', torch.tensor([0.5, -1.0, 2.5]))\n"
        "    s, i = torch.sort(w)\n"
        "    pyro.sample('z', dist.Normal(s, 1.0).to_event(1))\n"
    )
    with pytest.raises(PortError, match=r"returns \(values, indices\)"):
        port(g)
