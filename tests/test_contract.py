"""The contract between the neutral core and the backends (``dualguide/contract.py``).

Both backends implement the whole :class:`~dualguide.contract.Backend` protocol with the
protocol's signatures; every feature module in the registry exists on both and defines
what :data:`~dualguide.contract.FEATURE_API` asks; and the import graph has no upward
arrow: backends import only the kernel and the contract, the kernel imports no tool, and
the library never imports the command line.
"""

from __future__ import annotations

import ast
import inspect
import typing
from pathlib import Path

import pytest

from dualguide import _state
from dualguide.contract import FEATURE_API, FEATURES, Backend, FitOutput

PKG = Path(__file__).resolve().parents[1] / "dualguide"

#: the kernel: what a backend may import (plus ``contract``), and what imports no tool
KERNEL = {
    "dualguide._linalg",
    "dualguide._mixture_math",
    "dualguide._noise",
    "dualguide._state",
    "dualguide._support",
    "dualguide._table",
    "dualguide._progress",
    "dualguide.constraints",
    "dualguide.contract",
    "dualguide.dist_transforms",
    "dualguide._dist_base",
    "dualguide.distributions",
    "dualguide.errors",
    "dualguide.ops",
    "dualguide.optim",
    "dualguide.primitives",
    "dualguide.trace",
    "dualguide._inputs",
    "dualguide.enum",
    "dualguide.nn",
}
#: the tools built on the kernel (packages include their submodules)
FEATURE_PACKAGES = (
    "dualguide.autoguides",
    "dualguide.crosscheck",
    "dualguide.doctor",
    "dualguide.infer",
    "dualguide.porting",
    "dualguide.render",
    "dualguide.transforms",
)
CLI = ("dualguide.cli", "dualguide._cli")


def _protocol_members() -> list[str]:
    names = [n for n in vars(Backend) if not n.startswith("_")]
    names += list(typing.get_type_hints(Backend))  # the data attributes
    return sorted(set(names))


def _params(fn) -> list[tuple]:
    """(name, kind, default) of each parameter after ``self`` (annotations are not compared)."""
    ps = list(inspect.signature(fn).parameters.values())[1:]
    return [(p.name, p.kind, p.default) for p in ps]


# -- the Backend protocol -----------------------------------------------------------------------
def test_protocol_lists_what_the_neutral_layer_uses():
    members = _protocol_members()
    for name in ("name", "ops", "array_types", "features", "to_array", "to_numpy"):
        assert name in members
    for name in ("constraint", "param", "sample", "plate", "factor", "deterministic"):
        assert name in members
    for name in ("make_dist", "override", "optimizer", "fit", "trace"):
        assert name in members


def test_both_backends_implement_the_whole_protocol(backend):
    b = _state.load(backend)
    assert isinstance(b, Backend)
    for name in _protocol_members():
        assert hasattr(b, name), f"{backend} backend lacks {name!r}"
        spec = getattr(Backend, name, None)
        if inspect.isfunction(spec):
            impl = getattr(type(b), name)
            assert inspect.isfunction(impl), f"{backend}.{name} is not a method"
            # defined in the class body, not patched on afterwards
            assert impl.__qualname__ == f"{type(b).__name__}.{name}", impl.__qualname__
            assert _params(impl) == _params(spec), (
                f"{backend}.{name}{inspect.signature(impl)} differs from the contract's "
                f"{name}{inspect.signature(spec)}"
            )
            assert impl.__doc__ or spec.__doc__, f"{backend}.{name} has no docstring"
    assert b.name == backend
    assert all(isinstance(t, type) for t in b.array_types)
    assert isinstance(b.to_array(1.5), b.array_types)


def test_fit_returns_a_fit_output(backend):
    import dualguide as dg
    from dualguide import constraints
    from dualguide import distributions as dist

    def model():
        dg.sample("x", dist.Normal(0.0, 1.0))

    def guide():
        dg.sample(
            "x",
            dist.Normal(dg.param("m", 0.0), dg.param("s", 1.0, constraint=constraints.positive)),
        )

    b = _state.load(backend)
    with _state.param_overrides() as hook:
        out = b.fit(
            dg.render(model, b),
            dg.render(guide, b),
            (),
            {},
            dg.optim.Adam(lr=0.01),
            num_steps=3,
            num_particles=1,
            seed=0,
            on_nonfinite="stop",
            progress=False,
            jit=False,
        )
    assert isinstance(out, FitOutput)
    assert sorted(out.params) == ["m", "s"] == sorted(hook.constraints)
    assert out.steps_done == 3 and len(out.losses) == 3 and out.stopped_at is None


def test_override_names_dualguides_own_classes(backend):
    b = _state.load(backend)
    assert b.override("MixtureSameFamily").__name__ == "MixtureSameFamily"
    assert b.override("Normal") is None


# -- the feature registry -----------------------------------------------------------------------
def test_every_feature_module_exists_on_both_backends(backend):
    b = _state.load(backend)
    assert set(b.features) == set(FEATURES)
    for kind in FEATURES:
        mod = _state.feature(b, kind)
        assert mod.__name__ == b.features[kind]
        assert mod.__name__.startswith(f"dualguide.backends.{backend}.")
        missing = [n for n in FEATURE_API[kind] if not hasattr(mod, n)]
        assert not missing, f"{mod.__name__} lacks {missing}"


def test_feature_functions_take_the_same_arguments_on_both():
    """The required parameters agree; a backend may add optional ones."""
    for kind in FEATURES:
        a, b = _state.feature("numpyro", kind), _state.feature("pyro", kind)
        for name in FEATURE_API[kind]:
            fa, fb = getattr(a, name), getattr(b, name)
            if not (inspect.isfunction(fa) and inspect.isfunction(fb)):
                continue

            def required(f):
                return [
                    (p.name, p.kind)
                    for p in inspect.signature(f).parameters.values()
                    if p.default is inspect.Parameter.empty
                ]

            assert required(fa) == required(fb), f"{kind}.{name}: {required(fa)} != {required(fb)}"


def test_unknown_feature_is_a_clear_error():
    from dualguide.errors import BackendError

    with pytest.raises(BackendError, match="no 'nope' feature module"):
        _state.feature("numpyro", "nope")


# -- the import graph ---------------------------------------------------------------------------
def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Every dualguide module ``path`` imports, at the top or inside functions.

    Relative imports are resolved; ``from pkg import name`` counts as importing
    ``pkg.name`` when that is a module; ``importlib.import_module`` string arguments count
    too (an f-string by its literal prefix, with ``*`` for each placeholder).
    """
    mod = _module_name(path)
    is_pkg = path.name == "__init__.py"
    tree = ast.parse(path.read_text(), str(path))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = mod.split(".")
                base = base[: len(base) - node.level + (1 if is_pkg else 0)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for a in node.names:
                sub = f"{target}.{a.name}"
                is_mod = (PKG.parent / sub.replace(".", "/")).with_suffix(".py").exists() or (
                    PKG.parent / sub.replace(".", "/") / "__init__.py"
                ).exists()
                out.add(sub if is_mod else target)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "import_module"
            and node.args
        ):
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                out.add(arg.value)
            elif isinstance(arg, ast.JoinedStr):
                out.add(
                    "".join(v.value if isinstance(v, ast.Constant) else "*" for v in arg.values)
                )
    return {m for m in out if m == "dualguide" or m.startswith("dualguide.")}


def _graph() -> dict[str, set[str]]:
    return {_module_name(p): _imports(p) for p in sorted(PKG.rglob("*.py"))}


def _within(name: str, roots) -> bool:
    return any(name == r or name.startswith(r + ".") or name.startswith(r + "*") for r in roots)


def test_import_scanner_sees_every_kind_of_import():
    graph = _graph()
    assert "dualguide._state" in graph["dualguide.backends.numpyro.autoguides"]
    assert "dualguide.contract" in graph["dualguide.backends.pyro.transforms"]
    assert "dualguide.backends.*" in graph["dualguide._state"]  # import_module(f"...")
    assert "dualguide._cli.*" in graph["dualguide.cli"]


def test_backends_import_only_the_kernel_and_the_contract():
    bad = {}
    for mod, deps in _graph().items():
        if not mod.startswith("dualguide.backends"):
            continue
        wrong = {
            d
            for d in deps
            if d != "dualguide" and not d.startswith("dualguide.backends") and d not in KERNEL
        }
        if wrong:
            bad[mod] = sorted(wrong)
    assert not bad, f"backend modules import above the kernel: {bad}"


def test_the_kernel_imports_no_tool_and_no_cli():
    graph = _graph()
    bad = {
        mod: sorted(d for d in graph[mod] if _within(d, FEATURE_PACKAGES + CLI)) for mod in KERNEL
    }
    bad = {k: v for k, v in bad.items() if v}
    assert not bad, f"kernel modules import tools: {bad}"


def test_tools_reach_backends_only_through_the_registry():
    """No tool spells a backend module's name; ``_state.feature`` finds it."""
    bad = {
        mod: sorted(d for d in deps if d.startswith("dualguide.backends"))
        for mod, deps in _graph().items()
        if _within(mod, FEATURE_PACKAGES)
    }
    bad = {k: v for k, v in bad.items() if v}
    assert not bad, bad


def test_the_library_never_imports_the_cli():
    bad = {
        mod: sorted(d for d in deps if _within(d, ("dualguide._cli",)))
        for mod, deps in _graph().items()
        if not _within(mod, CLI)
    }
    bad = {k: v for k, v in bad.items() if v}
    assert not bad, f"library modules import the command line: {bad}"
