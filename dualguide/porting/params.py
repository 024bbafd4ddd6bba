"""Portable params: a fit's params in a plain ``.npz`` file, loadable into either backend.

The file is an ordinary NumPy ``.npz`` archive: one float32 array per param
(constrained values, stored under the param's name where that is a safe archive
key), plus one string array ``__dualguide_meta__`` holding JSON: the format and its
version, the dualguide version, the backend that fitted the params, each param's
shape and neutral constraint, and facts about the fit.  No pickle anywhere: it is
read with ``allow_pickle=False``.

>>> import dualguide as dg
>>> r = dg.fit(model, guide, backend="numpyro", num_steps=2000)      # doctest: +SKIP
>>> dg.save_params("fit.npz", r)                                      # doctest: +SKIP
>>> p = dg.load_params("fit.npz", guide=guide, backend="pyro")        # doctest: +SKIP
>>> r2 = dg.fit(model, guide, backend="pyro", init_params=p)          # doctest: +SKIP
"""

from __future__ import annotations

import datetime
import json
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import _state
from ..constraints import Constraint, as_constraint
from ..errors import SpecError

__all__ = ["save_params", "load_params", "ParamsInfo", "LoadedParams", "FORMAT_VERSION"]

FORMAT = "dualguide-params"
#: version of the file layout; a reader refuses files from a newer version
FORMAT_VERSION = 1
META_KEY = "__dualguide_meta__"


@dataclass(frozen=True)
class ParamsInfo:
    """What a params file says about itself (plain Python types and neutral constraints).

    ``format_version`` and ``dualguide_version`` are None for a plain ``.npz``
    without dualguide metadata; ``constraints[name]`` is None where unknown.
    """

    path: str
    format_version: int | None
    dualguide_version: str | None
    backend: str | None
    constraints: dict[str, Constraint | None]
    shapes: dict[str, tuple]
    fit: dict = field(default_factory=dict)
    created: str | None = None


class LoadedParams(dict):
    """``{name: numpy array}`` of constrained values, with the file's :class:`ParamsInfo`
    in ``.info``.  Pass it straight to ``dg.fit(..., init_params=...)``."""

    def __init__(self, params: Mapping[str, np.ndarray], info: ParamsInfo):
        super().__init__(params)
        self.info = info

    def __repr__(self) -> str:
        body = ", ".join(f"{k!r}: {np.array2string(v, precision=4)}" for k, v in self.items())
        return f"LoadedParams({{{body}}}, backend={self.info.backend!r}, path={self.info.path!r})"


# saving ------------------------------------------------------------------------------------


def _safe_key(name: str, taken: set) -> bool:
    return (
        bool(name)
        and not name.startswith("__")
        and not any(ch in name for ch in "/\\\0")
        and name not in taken
    )


def _as_constraint(c, name: str) -> Constraint | None:
    if c is None or isinstance(c, Constraint):
        return c
    if isinstance(c, Mapping):
        try:
            return Constraint.from_dict(dict(c))
        except (KeyError, TypeError, ValueError):
            raise SpecError(f"save_params: constraint of {name!r} is malformed: {c!r}") from None
    return as_constraint(c, where=f"save_params: constraint of {name!r}")


def _fit_info(result) -> dict:
    out = {}
    for k in ("num_steps", "num_particles", "seed", "elbo", "optimizer", "wall_time"):
        v = getattr(result, k, None)
        if isinstance(v, (bool, int, float, str)) and not (
            isinstance(v, float) and not math.isfinite(v)
        ):
            out[k] = v
    loss = getattr(result, "final_loss", None)
    if isinstance(loss, float) and math.isfinite(loss):
        out["final_loss"] = loss
    return out


def save_params(
    path: str | os.PathLike,
    result_or_params: Any,
    constraints: Mapping[str, Any] | None = None,
    *,
    backend: str | None = None,
) -> Path:
    """Write params (a :class:`~dualguide.FitResult` or a dict of constrained values) to ``path``.

    From a FitResult the constraints and backend come along; for a plain dict pass
    ``constraints`` (neutral constraints or their names, by param name; a param
    without one is recorded as unknown) and, if you like, ``backend``.  Every value
    is checked against its constraint first, so a diverged fit is not saved.  The
    file is written to a temporary name and then renamed: a crash never leaves half
    a file.  Returns the path.

    >>> import dualguide as dg, tempfile, os
    >>> from dualguide import constraints
    >>> path = os.path.join(tempfile.mkdtemp(), "p.npz")
    >>> _ = dg.save_params(path, {"s": 2.0}, {"s": constraints.positive})
    >>> p = dg.load_params(path)
    >>> p["s"], p.info.constraints["s"]
    (array(2., dtype=float32), positive)
    """
    import dualguide

    path = Path(os.fspath(path))
    result = None
    if hasattr(result_or_params, "params") and isinstance(result_or_params.params, dict):
        result = result_or_params
        params = result.params
        if constraints is None:
            constraints = getattr(result, "constraints", None)
        backend = backend or getattr(result, "backend", None)
    elif isinstance(result_or_params, Mapping):
        params = result_or_params
    else:
        raise SpecError(
            "save_params: expected a FitResult or a dict of params by name, got "
            f"{type(result_or_params).__name__}"
        )
    if not params:
        raise SpecError(f"save_params: no params to write to {path}")
    constraints = dict(constraints or {})
    unknown = sorted(set(constraints) - set(params))
    if unknown:
        raise SpecError(
            f"save_params: constraints given for {', '.join(map(repr, unknown))}, "
            "which are not among the params"
        )
    if backend is not None:
        backend = _state.resolve(backend).name if not isinstance(backend, str) else backend.lower()

    arrays, entries = {}, []
    for name, value in params.items():
        if not isinstance(name, str):
            raise SpecError(f"save_params: param names must be strings, got {name!r}")
        try:
            arr = np.asarray(value)
        except Exception:
            raise SpecError(f"save_params: param {name!r} is not numeric: {value!r}") from None
        if arr.dtype.kind == "f":
            arr = arr.astype(np.float32)
        elif arr.dtype.kind not in "biu":
            raise SpecError(f"save_params: param {name!r} is not numeric ({arr.dtype})")
        c = _as_constraint(constraints.get(name), name)
        if c is not None and not c.check(arr):
            raise SpecError(
                f"save_params: param {name!r} = {arr.tolist()} is outside its constraint {c!r} "
                f"(a diverged fit?); nothing written to {path}"
            )
        key = name if _safe_key(name, set(arrays) | {META_KEY}) else f"param_{len(entries)}"
        arrays[key] = arr
        entries.append(
            {
                "name": name,
                "key": key,
                "shape": list(arr.shape),
                "dtype": arr.dtype.name,
                "constraint": None if c is None else c.to_dict(),
            }
        )
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "dualguide_version": dualguide.__version__,
        "backend": backend,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "params": entries,
        "fit": _fit_info(result) if result is not None else {},
    }
    arrays[META_KEY] = np.array(json.dumps(meta))
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except OSError as e:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise SpecError(f"save_params: cannot write {path}: {e.strerror or e}") from None
    return path


# loading -----------------------------------------------------------------------------------


def _corrupt(path, why: str) -> SpecError:
    return SpecError(f"load_params: {path} is not a valid dualguide params file: {why}")


def _read(path: Path) -> tuple[dict[str, np.ndarray], ParamsInfo]:
    if not path.exists():
        raise SpecError(f"load_params: {path}: no such file")
    if path.is_dir():
        raise SpecError(f"load_params: {path} is a directory, not a params file")
    try:
        z = np.load(path, allow_pickle=False)
    except Exception as e:
        raise _corrupt(path, f"cannot read it as .npz ({type(e).__name__}: {e})") from None
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise _corrupt(path, "it holds a single array (.npy), not an .npz archive")
    try:
        with z:
            raw = {k: z[k] for k in z.files}
    except Exception as e:
        raise _corrupt(path, f"cannot read its arrays ({type(e).__name__}: {e})") from None
    meta_raw = raw.pop(META_KEY, None)
    if meta_raw is None:  # a plain npz: every array is a param, nothing else is known
        params = {k: v for k, v in raw.items()}
        info = ParamsInfo(
            path=str(path),
            format_version=None,
            dualguide_version=None,
            backend=None,
            constraints={k: None for k in params},
            shapes={k: v.shape for k, v in params.items()},
        )
        return params, info
    try:
        meta = json.loads(str(meta_raw[()]))
    except (ValueError, TypeError, IndexError) as e:
        raise _corrupt(path, f"its metadata is not JSON ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise _corrupt(path, f"its metadata does not say format {FORMAT!r}")
    version = meta.get("format_version")
    if not isinstance(version, int):
        raise _corrupt(path, "its metadata has no format_version")
    if version > FORMAT_VERSION:
        raise SpecError(
            f"load_params: {path} has format version {version}, written by a newer dualguide "
            f"({meta.get('dualguide_version')}); this one reads up to version {FORMAT_VERSION}: "
            "upgrade dualguide"
        )
    params, cons, shapes = {}, {}, {}
    try:
        for e in meta["params"]:
            name, key, shape = e["name"], e["key"], tuple(e["shape"])
            if key not in raw:
                raise _corrupt(path, f"param {name!r} (array {key!r}) is missing")
            arr = raw.pop(key)
            if arr.shape != shape:
                raise _corrupt(path, f"param {name!r} has shape {arr.shape}, metadata says {shape}")
            c = e.get("constraint")
            params[name] = arr
            cons[name] = None if c is None else Constraint.from_dict(c)
            shapes[name] = shape
    except SpecError:
        raise
    except (KeyError, TypeError, ValueError) as e:
        raise _corrupt(path, f"its metadata is malformed ({type(e).__name__}: {e})") from None
    if raw:
        raise _corrupt(path, f"arrays {', '.join(map(repr, sorted(raw)))} are not in its metadata")
    info = ParamsInfo(
        path=str(path),
        format_version=version,
        dualguide_version=meta.get("dualguide_version"),
        backend=meta.get("backend"),
        constraints=cons,
        shapes=shapes,
        fit=dict(meta.get("fit") or {}),
        created=meta.get("created"),
    )
    return params, info


def _fmt(shape) -> str:
    return str(tuple(shape))


def load_params(
    path: str | os.PathLike,
    guide: Callable | None = None,
    backend: str | None = None,
    model: Callable | None = None,
    model_args: tuple = (),
    model_kwargs: dict | None = None,
) -> LoadedParams:
    """Read a params file; with ``guide``, check it against the guide on ``backend``.

    Returns a dict of constrained numpy arrays by name (a :class:`LoadedParams`,
    whose ``.info`` says what the file records).  With ``guide`` (and ``model``, if
    the model declares params of its own) the guide is traced on ``backend``
    (default: the active one) with ``model_args``; the file must declare exactly its
    params, with the same shapes and constraints, or one :class:`SpecError` lists
    every mismatch.  A neutral autoguide's params fitted on the other backend are
    translated to ``backend``'s names and storage first, and a native Pyro store's
    ``pyro.module`` weights (``name$$$path``) are read as ``dualguide.nn``'s ``name.path``.

    >>> import dualguide as dg
    >>> p = dg.load_params("fit.npz", guide=guide, backend="pyro")        # doctest: +SKIP
    >>> r = dg.fit(model, guide, backend="pyro", init_params=p)           # doctest: +SKIP
    """
    path = Path(os.fspath(path))
    params, info = _read(path)
    if guide is None:
        if model is not None:
            raise SpecError("load_params: pass guide= too; params are checked against a guide")
        return LoadedParams(params, info)
    from ..autoguides import AutoGuide, AutoGuideList, naming_of, translate_constraints

    b = _state.resolve(backend)
    constraints = dict(info.constraints)
    if isinstance(guide, AutoGuideList):  # part by part (Pyro names them by position)
        source = _list_naming(guide, params)
        if source is not None and source != b.name:
            params = guide.translate(
                params, to=b.name, model_args=model_args, model_kwargs=model_kwargs
            )
            constraints = _list_constraints(
                guide, constraints, source, b.name, model_args, model_kwargs
            )
    elif isinstance(guide, AutoGuide):
        source = naming_of(guide.kind, params)
        if source is not None and source != b.name:
            params = guide.translate(
                params, to=b.name, model_args=model_args, model_kwargs=model_kwargs
            )
            constraints = translate_constraints(guide.kind, constraints, source, b.name)
    declared, declared_c = _declared(b, guide, model, model_args, model_kwargs)
    # a native Pyro store's pyro.module weights (name$$$path) are dualguide.nn's name.path
    nn_names = {
        k: k.replace("$$$", ".")
        for k in params
        if "$$$" in k and k not in declared and k.replace("$$$", ".") in declared
    }
    if nn_names:
        params = {nn_names.get(k, k): v for k, v in params.items()}
        constraints = {nn_names.get(k, k): v for k, v in constraints.items()}
    problems = []
    for name, shape in declared.items():
        if name not in params:
            problems.append(
                f"missing: {name!r} (the guide's is shape {_fmt(shape)}, "
                f"constraint {declared_c.get(name)!r})"
            )
    for name in params:
        if name not in declared:
            problems.append(f"extra: {name!r} (shape {_fmt(params[name].shape)}), not in the guide")
    for name, shape in declared.items():
        if name not in params:
            continue
        if tuple(params[name].shape) != tuple(shape):
            problems.append(
                f"shape: {name!r} is {_fmt(params[name].shape)} in the file, {_fmt(shape)} in "
                "the guide"
            )
        fc, gc = constraints.get(name), declared_c.get(name)
        if fc is not None and gc is not None and fc != gc:
            problems.append(f"constraint: {name!r} is {fc!r} in the file, {gc!r} in the guide")
    if problems:
        what = "guide and model" if model is not None else "guide"
        raise SpecError(
            f"load_params: {path} does not match the {what} on {b.name} "
            f"({len(problems)} mismatch{'es' if len(problems) > 1 else ''}):\n  - "
            + "\n  - ".join(problems)
        )
    out = {k: params[k] for k in declared}  # the guide's order
    info = ParamsInfo(
        path=info.path,
        format_version=info.format_version,
        dualguide_version=info.dualguide_version,
        backend=info.backend,
        constraints={k: constraints.get(k) for k in out},
        shapes={k: tuple(v.shape) for k, v in out.items()},
        fit=info.fit,
        created=info.created,
    )
    return LoadedParams(out, info)


def _list_naming(guide: Any, params: Mapping[str, Any]) -> str | None:
    """Which backend's names an AutoGuideList's ``params`` use (None: neither)."""
    from .._table import AUTOGUIDE_PARAMS
    from ..autoguides import _pattern

    if any(k.startswith("AutoGuideList.") for k in params):
        return "pyro"
    pats = [_pattern(p.name) for part in guide.parts for p in AUTOGUIDE_PARAMS[part.kind].numpyro]
    return "numpyro" if any(p.match(k) for k in params for p in pats) else None


def _list_constraints(guide, constraints, source, target, model_args, model_kwargs) -> dict:
    """An AutoGuideList's recorded constraints under ``target``'s names, part by part."""
    from ..autoguides import translate_constraints

    out, used = {}, set()
    for i, part in enumerate(guide.parts):
        sites = {s for s, _ in part.layout(source, model_args, model_kwargs)}
        own = guide._own(i, part, constraints, source, sites)
        used |= {k for k, _ in own.values()}
        mine = {name: c for name, (_k, c) in own.items()}
        for k, c in translate_constraints(part.kind, mine, source, target).items():
            out[f"AutoGuideList.{i}.{k[len(part.kind) + 1 :]}" if target == "pyro" else k] = c
    out.update({k: c for k, c in constraints.items() if k not in used})
    return out


def _declared(b, guide, model, model_args, model_kwargs):
    from ..render import render

    if not isinstance(model_args, (tuple, list)):
        raise SpecError(f"load_params: model_args must be a tuple, got {type(model_args).__name__}")
    args = tuple(b.to_array(a) for a in model_args)
    kwargs = {k: b.to_array(v) for k, v in (model_kwargs or {}).items()}
    mod = _state.feature(b, "params")
    with _state.param_overrides() as hook:
        shapes = mod.declared(
            None if model is None else render(model, b), render(guide, b), args, kwargs
        )
    return shapes, dict(hook.constraints)
