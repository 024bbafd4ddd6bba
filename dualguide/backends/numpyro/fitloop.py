"""dualguide's own NumPyro fitting loop: ``SVI.update`` itself, in a better-compiled loop.

Each step *is* ``numpyro.infer.SVI.update`` with ``Trace_ELBO`` (vectorized
particles) and NumPyro's Adam / ClippedAdam carrying dualguide's update rule, so a
fit reproduces ``SVI.run``'s losses and params to float rounding
(``tests/test_fitloop.py``).  What differs is the loop around it:

* **Steps inside a ``cond``.**  Steps run in a ``lax.scan`` of static length
  :data:`CHUNK`; each step sits in a ``lax.cond`` that skips the steps past the
  chunk's end (and, with ``on_nonfinite="stop"``, after a bad step), and a second
  ``cond`` keeps the previous state when a step is non-finite.  One compilation
  serves every chunk length, and chunks are sized to about a quarter of a second,
  which keeps the progress bar and Ctrl-C responsive.  The ``cond`` boundary also
  changes how XLA's CPU backend fuses the step: for small models the step runs
  2-3x faster than the same ``svi.update`` in a plain ``lax.scan`` (``SVI.run``).
  (Selecting with ``jnp.where`` instead makes XLA recompute the ELBO inside each
  consumer kernel -- measured ~3x slower.)
* **The non-finite test.**  With ``on_nonfinite="stop"`` a step tests its loss; the
  optimizer state (every param, ``m``, ``v``) is tested once per chunk, on the host (in the
  program it made large models compile longer), and only when it is not finite is the
  chunk replayed to find the step that made it so
  (:func:`_first_bad_step`).  ``"skip"`` tests every step's state.
* **First call.**  ``svi.init`` runs as one compiled program (:func:`_init`) and the loop
  returns the constrained params, so a fit of new shapes compiles two programs and no
  eager kernel (an eager init compiles one per op and shape).  The init program takes the
  params' init values as arguments (:mod:`.initprog`) and is kept like the loop, so a
  later fit of the same program compiles nothing, whatever its init values.
* **Small models: cheaper PRNG and compile settings.**  For models with few params
  (kernel-launch bound) the key is :mod:`.fastrng`'s threefry with key splits
  unrolled (bit-for-bit JAX's generator; one-particle fits from
  :data:`UNROLL_MIN_STEPS` steps on, as it compiles slower there) and XLA's older CPU
  fusion emitters are used, which compile faster.  For large models both cost run time, so they keep
  JAX's defaults.
* **Compile caching.**  The compiled loop is kept (up to :data:`CACHE_SIZE`
  entries) and reused by later fits of the same model and guide functions with
  the same argument shapes and settings.  Float arrays passed in ``model_args``
  are arguments of the compiled loop (new data of the same shape reuses it); the
  values a model or guide reads from globals or closures are part of the cache key
  by identity (rebinding a global recompiles), but an array changed *in place* is
  not noticed -- pass data through ``model_args``.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import threading
import time
import types
from collections import OrderedDict

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ... import _inputs
from ..._progress import Progress
from ...contract import CannotVectorize, FitOutput
from . import fastrng, initprog
from .autoguides import drawing_autoguide, setup_eagerly

log = logging.getLogger("dualguide")

#: static length of the compiled scan: the most steps one call runs (shorter chunks skip the rest)
CHUNK = 4096
#: wall time one chunk aims at (progress updates and Ctrl-C are checked between chunks)
CHUNK_SECONDS = 0.25
#: models with at most this many param numbers count as small (see the module docstring)
SMALL_MODEL = 256
#: one-particle fits of small models use :mod:`.fastrng`'s unrolled key splits from this many
#: steps on: they make a step faster (measured, one thread: 1.60 -> 1.18 us for the seed
#: Gaussian, 1.49 -> 0.90 plated D=10, 3.01 -> 2.79 the rotated mixture) but the loop
#: slower to compile (0.25 -> 0.34 s, 0.25 -> 0.30, 0.41 -> 0.62), which a shorter fit does
#: not earn back.  With several particles they make both faster (seed P=16: 5.42 -> 5.01
#: us, compile 0.49 -> 0.38 s), so those fits always use them.
UNROLL_MIN_STEPS = 50_000
#: compiled loops kept for reuse
CACHE_SIZE = 32

_CACHE: OrderedDict = OrderedDict()


# ------------------------------------------------------------------------------------------
# cache key
# ------------------------------------------------------------------------------------------
def _fingerprint(fn, depth: int = 3, seen: set | None = None) -> tuple:
    """What a traced ``fn`` may bake in: itself, its closure values and the globals it reads.

    Objects are kept by identity (the cache entry holds references, so an id is never
    reused while the entry lives).  Python functions found there are followed a few levels.
    """
    seen = set() if seen is None else seen
    fn = getattr(fn, "neutral", fn)
    if id(fn) in seen:
        return ()
    seen.add(id(fn))
    out: list = [fn]
    code = getattr(fn, "__code__", None)
    if code is None:  # a callable object (e.g. an autoguide): by identity
        return tuple(_ident(o) for o in out)
    for cell in fn.__closure__ or ():
        try:
            out.append(cell.cell_contents)
        except ValueError:  # empty cell
            out.append(None)
    g = getattr(fn, "__globals__", {})
    names = _code_names(code)
    for name in sorted(names):
        if name in g:
            out.append((name, g[name]))
    out.extend(fn.__defaults__ or ())
    if depth > 0:
        for o in list(out[1:]):
            o = o[1] if isinstance(o, tuple) and len(o) == 2 and isinstance(o[0], str) else o
            if isinstance(o, types.FunctionType):
                out.append(_fingerprint(o, depth - 1, seen))
    return tuple(_ident(o) for o in out)


def _code_names(code) -> set:
    names = set(code.co_names)
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            names |= _code_names(c)
    return names


class _Ident:
    """Hash and compare an object by identity, keeping it alive."""

    __slots__ = ("obj",)

    def __init__(self, obj):
        self.obj = obj

    def __hash__(self):
        return id(self.obj)

    def __eq__(self, other):
        return isinstance(other, _Ident) and other.obj is self.obj


def _ident(o):
    if isinstance(o, _Ident):
        return o
    if isinstance(o, types.ModuleType):
        return o.__name__
    if isinstance(o, (int, float, str, bool, bytes, type(None))):
        return (type(o).__name__, o)
    if isinstance(o, tuple):
        return tuple(_ident(x) for x in o)
    return _Ident(o)


def _split_args(args, kwargs, all_static: bool = False):
    """Separate the model arguments into traced leaves and static ones (part of the cache key).

    Float arrays are traced (new data of the same shape reuses the compiled loop);
    integer and boolean arrays, numbers and other objects are baked in, as NumPyro's
    ``SVI.run`` bakes in all of them (a model may use them as sizes or in Python
    control flow).  ``all_static`` bakes in everything (the fallback for models that
    need concrete float data too).
    """
    leaves, treedef = jax.tree_util.tree_flatten((args, kwargs))
    dyn, static, is_arr = [], [], []
    for leaf in leaves:
        traced = (
            not all_static
            and isinstance(leaf, jax.Array)
            and jnp.issubdtype(leaf.dtype, jnp.floating)
        )
        if traced:
            dyn.append(leaf)
            static.append((tuple(leaf.shape), str(leaf.dtype)))
        elif isinstance(leaf, (jax.Array, np.ndarray)):
            a = np.asarray(leaf)
            if a.dtype.kind in "biu" and a.size <= 1_000_000:
                static.append((a.shape, str(a.dtype), a.tobytes()))  # by value
            else:
                static.append(_Ident(leaf))
        else:
            try:
                hash(leaf)
                static.append((type(leaf), leaf))
            except TypeError:
                static.append(_Ident(leaf))
        is_arr.append(traced)
    return dyn, (treedef, tuple(static), tuple(is_arr)), leaves


def _cache_key(model, guide, info, common):
    try:
        key = (_fingerprint(model), _fingerprint(guide), info, common)
        hash(key)
    except TypeError:
        return None  # something unhashable: compile for this call only
    return key


def _constraints_key():
    """The params' neutral constraints (with their arguments) seen while the fit set up."""
    from ... import _state

    hook = _state.param_hook
    cons = getattr(hook, "constraints", None) or {}
    return tuple((name, repr(c)) for name, c in cons.items())


def _opt_key(opt):
    lr = opt.lr if not callable(opt.lr) else _ident(opt.lr)
    return (opt.name, lr, tuple(opt.betas), opt.eps, opt.clip_norm, opt.lrd)


# ------------------------------------------------------------------------------------------
# the compiled loop
# ------------------------------------------------------------------------------------------
def _checked_update(svi, state, args, kwargs):
    """``svi.update`` and the one non-finite test of every loop here: ``(new, loss, ok,
    kept)``, ``ok`` when the loss and every float leaf of the new optimizer state are finite;
    ``kept``: the state a rejected step leaves (the old one, its key advanced)."""
    new, loss = svi.update(state, *args, **kwargs)
    ok = jnp.isfinite(loss) & _finite_state(new)
    return new, loss, ok, state._replace(rng_key=new.rng_key)


def _float_leaves(state) -> list:
    """The floating-point leaves of ``state``'s optimizer state (params, ``m``, ``v``...)."""
    leaves = jax.tree_util.tree_leaves(state.optim_state)
    return [leaf for leaf in leaves if jnp.issubdtype(leaf.dtype, jnp.floating)]


def _finite_state(state):
    """Whether every float leaf of ``state``'s optimizer state is finite.

    Adam's and ClippedAdam's state stays non-finite once it is (each new ``m``, ``v`` and
    param adds the old value times a non-negative factor: inf and nan propagate), which lets
    the ``"stop"`` loop test it once per chunk (:func:`_first_bad_step`)."""
    ok = jnp.asarray(True)
    for leaf in _float_leaves(state):
        ok = ok & jnp.all(jnp.isfinite(leaf))
    return ok


#: :func:`_finite_state` as its own small program, for states held off the host
_finite_on_device = jax.jit(_finite_state)


def _host_finite(state) -> bool:
    """:func:`_finite_state` for a state a compiled chunk returned, tested outside the chunk's
    program: with numpy where the arrays live in host memory (reading them copies nothing),
    else by a small compiled reduction on their device (one bool comes back, not the state)."""
    leaves = _float_leaves(state)
    if not _on_host(leaves):
        return bool(_finite_on_device(state))
    return all(bool(np.isfinite(np.asarray(leaf)).all()) for leaf in leaves)


def _on_host(arrays) -> bool:
    """Whether every array lives in host memory (on JAX's CPU devices)."""
    return all(d.platform == "cpu" for a in arrays for d in a.devices())


def _rebuilder(treedef_info, leaves):
    """``dyn -> (args, kwargs)``: the traced array arguments put back among the static ones."""
    treedef, _, is_arr = treedef_info

    def rebuild(dyn):
        it = iter(dyn)
        full = [next(it) if a else leaf for a, leaf in zip(is_arr, leaves)]
        return jax.tree_util.tree_unflatten(treedef, full)

    return rebuild


def _first_bad_step(runner, state, start: int, upto: int, dyn) -> int:
    """The chunk from ``state`` at step ``start`` left a non-finite optimizer state after its
    first ``upto`` steps: the index (from ``start``) of the step that made it so, by
    bisection over replays of the chunk (the same program, keys and draws)."""
    lo, hi = 0, upto  # the state after lo steps is finite, after hi steps it is not
    while hi - lo > 1:
        mid = (lo + hi) // 2
        new = runner(
            state, jnp.asarray(start, jnp.int32), jnp.asarray(start + mid, jnp.int32), dyn
        )[0]
        if _host_finite(new):
            lo = mid
        else:
            hi = mid
    return lo


def _holds_tracer(obj, depth: int = 6) -> bool:
    """Whether ``obj`` (a transform, a constraint, their containers) keeps a JAX tracer."""
    if isinstance(obj, jax.core.Tracer):
        return True
    if depth == 0:
        return False
    if isinstance(obj, dict):
        return any(_holds_tracer(v, depth - 1) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return any(_holds_tracer(v, depth - 1) for v in obj)
    d = getattr(obj, "__dict__", None)
    return d is not None and any(_holds_tracer(v, depth - 1) for v in d.values())


#: compiled init programs (:func:`_init`), by model, guide, shapes and init-value signature
_INIT_CACHE: OrderedDict = OrderedDict()


def _signature(values: dict) -> tuple:
    """Names, shapes and dtypes of the recorded init values (what the program's inputs are);
    Python numbers enter a program weakly typed, arrays not."""
    return tuple(
        (k, tuple(np.shape(v)), str(jnp.result_type(v)), isinstance(v, (int, float, complex)))
        for k, v in values.items()
    )


def _init(svi, key, args, kwargs, opt):
    """``svi.init(key, *args, **kwargs)`` as one compiled program: ``(abstract, start,
    finish)``, or None where it cannot be (the caller runs ``svi.init`` eagerly).

    Run eagerly, ``svi.init`` compiles one XLA kernel per op and shape of the model and guide
    (new shapes: tens of kernels, seconds for a mixture guide); one program compiles in a
    fraction of that and computes the same values.  The params' concrete init values are
    the program's arguments (:mod:`.initprog`: an abstract pass records them), so the program
    is compiled once per model, guide and shapes and is right for any later fit's init
    values (``init_params``, an autoguide's new locations).  ``abstract`` is the state's
    shapes (from that pass); a program not yet compiled compiles in a thread (XLA releases
    the GIL) from ``start()``, which the caller calls once it has traced and lowered the loop
    (a compile beside the tracing slowed it by a third), and ``finish()`` returns the state
    (None: the compile failed, run it eagerly).  None for a program that needs concrete values or
    whose param constraints were built from traced arguments (``svi.constrain_fn`` would
    keep tracers).
    """
    dyn, info, leaves = _split_args(args, kwargs)
    rebuild = _rebuilder(info, leaves)
    box: dict = {"inputs": None, "found": {}}
    isvi = copy.copy(svi)
    isvi.model = initprog.InitInputs(svi.model, box)
    isvi.guide = initprog.InitInputs(svi.guide, box)

    def init(key, dyn, values):
        box["inputs"] = values
        a, k = rebuild(dyn)
        return isvi.init(key, *a, **k)

    try:
        with initprog.concrete_inits():  # the recording pass: abstract, nothing compiles
            abstract = jax.eval_shape(lambda key, dyn: init(key, dyn, None), key, dyn)
    except Exception as e:  # concrete values needed: the eager init reports real errors
        log.debug("fit (numpyro): init not compiled (%s)", e)
        return None
    if _holds_tracer(getattr(isvi.constrain_fn, "args", ())):
        log.debug("fit (numpyro): init not compiled (constraints built from traced arguments)")
        return None
    svi.constrain_fn = isvi.constrain_fn
    values = dict(box["found"])
    shapes = tuple((tuple(np.shape(x)), str(jnp.result_type(x))) for x in dyn)
    ck = _cache_key(svi.model, svi.guide, info, (shapes, _signature(values), _opt_key(opt)))
    compiled = _INIT_CACHE.get(ck) if ck is not None else None
    worker = None
    if compiled is not None:
        _INIT_CACHE.move_to_end(ck)
    else:
        try:
            with initprog.concrete_inits():
                lowered = jax.jit(init).lower(key, dyn, values)
        except Exception as e:
            log.debug("fit (numpyro): init not compiled (%s)", e)
            return None
        done: dict = {}

        def work():  # run once per program: the faster-compiling CPU options whatever the size
            try:
                done["compiled"] = _compile_lowered(lowered, True)
            except Exception as e:
                done["error"] = e

        worker = threading.Thread(target=work, name="dualguide-init-compile", daemon=True)

    def start():
        if worker is not None and worker.ident is None:
            worker.start()

    def finish():
        nonlocal compiled
        if compiled is None:
            assert worker is not None
            start()
            worker.join()
            if "error" in done:
                log.debug("fit (numpyro): init not compiled (%s)", done["error"])
                return None
            compiled = done["compiled"]
            if ck is not None:
                _INIT_CACHE[ck] = compiled
                while len(_INIT_CACHE) > CACHE_SIZE:
                    _INIT_CACHE.popitem(last=False)
        return compiled(key, dyn, values)

    return abstract, start, finish


def _rewrapped(state):
    """``state`` with its key as :mod:`.fastrng`'s (the same bits, unrolled splits)."""
    return state._replace(rng_key=fastrng.rewrap(state.rng_key, fastrng.IMPL_SPLIT))


def _build(svi, skip, treedef_info, leaves):
    """The chunk function: run steps ``start <= i < stop`` (at most CHUNK) from ``state``;
    returns ``(state, losses, oks, params)`` (``params`` constrained, of the new state).

    With ``skip`` every step tests its new state (a bad step is dropped and the loop goes on).
    Without, a step tests only its loss and the caller tests the state once per chunk, on
    outside the program (:func:`_host_finite`): that test over every param, ``m`` and ``v`` costs up to
    a sixth of a large model's step, and in the loop program it made large models' loops
    compile 6 % longer; a non-finite state stays so (:func:`_finite_state`), so
    :func:`_first_bad_step` finds the step that made it by replaying the chunk, only when it
    happens."""
    rebuild = _rebuilder(treedef_info, leaves)

    def chunk(state, start, stop, dyn):
        args, kwargs = rebuild(dyn)

        def run(state):
            if skip:
                new, loss, ok, kept = _checked_update(svi, state, args, kwargs)
            else:
                new, loss = svi.update(state, *args, **kwargs)
                ok, kept = jnp.isfinite(loss), state._replace(rng_key=new.rng_key)
            new = lax.cond(ok, lambda: new, lambda: kept)
            return new, loss.astype(jnp.result_type(float)), ok

        def idle(state):
            return state, jnp.asarray(jnp.nan, jnp.result_type(float)), jnp.asarray(True)

        def body(sc, i):
            state, stopped = sc
            state, loss, ok = lax.cond((i < stop) & ~stopped, run, idle, state)
            if not skip:
                stopped = stopped | ~ok
            return (state, stopped), (loss, ok)

        (state, _), (losses, oks) = lax.scan(
            body, (state, jnp.asarray(False)), start + jnp.arange(CHUNK, dtype=jnp.int32)
        )
        # the constrained params too: no eager kernels to compile for them after the loop
        return state, losses, oks, svi.get_params(state)

    return chunk


#: XLA CPU options for small models (faster compile, fewer kernels there; slower on large
#: arrays); dropped silently where this jaxlib does not know them
_CPU_OPTIONS = {"xla_cpu_use_fusion_emitters": False}
_options_ok: bool | None = None


def _compile(fn, example, small: bool, lowered_hook=None):
    """``jit(fn)`` traced, lowered and compiled for ``example``; ``lowered_hook()`` is called
    between the lowering and the compile (the init program's compile starts there)."""
    lowered = jax.jit(fn).lower(*example)
    if lowered_hook is not None:
        lowered_hook()
    return _compile_lowered(lowered, small)


def _compile_lowered(lowered, small: bool):
    global _options_ok
    if small and jax.default_backend() == "cpu" and _options_ok is not False:
        try:
            compiled = lowered.compile(compiler_options=_CPU_OPTIONS)
            _options_ok = True
            return compiled
        except Exception as e:  # an unknown option in another jaxlib
            log.debug("fit (numpyro): XLA options %s refused (%s)", _CPU_OPTIONS, e)
            _options_ok = False
    return lowered.compile()


# ------------------------------------------------------------------------------------------
# fit
# ------------------------------------------------------------------------------------------
def fit(
    backend,
    model,
    guide,
    args,
    kwargs,
    opt,
    *,
    num_steps,
    num_particles,
    seed,
    on_nonfinite,
    progress,
    jit,
) -> FitOutput:
    """The NumPyro backend's ``fit`` (see :func:`dualguide.fit` for the contract)."""
    from numpyro.infer import SVI, Trace_ELBO

    t0 = time.perf_counter()
    skip = on_nonfinite == "skip"
    svi = SVI(model, guide, backend.optimizer(opt), Trace_ELBO(num_particles=num_particles))
    # init with JAX's default key (its eager kernels are compiled once per process)
    # an autoguide set up inside jit would keep tracers; set up with SVI.init's key
    setup_eagerly(guide, args, kwargs, seed)
    pending = _init(svi, jax.random.PRNGKey(seed), args, kwargs, opt) if jit else None
    if pending is None:
        state = svi.init(jax.random.PRNGKey(seed), *args, **kwargs)
    else:  # the init's shapes now, its values once the loop is compiled
        state, start_init, finish = pending
    params0 = jax.eval_shape(svi.get_params, state)  # shapes only: nothing to compile
    n_params = sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(params0))
    small = n_params <= SMALL_MODEL
    # the same key bits, unrolled splits: see UNROLL_MIN_STEPS
    rewrap = (
        small
        and fastrng.IMPL_SPLIT is not None
        and (num_particles > 1 or num_steps >= UNROLL_MIN_STEPS)
    )
    if rewrap:
        state = jax.eval_shape(_rewrapped, state) if pending else _rewrapped(state)
    common = (
        jax.tree_util.tree_structure(state),
        tuple((tuple(np.shape(x)), str(x.dtype)) for x in jax.tree_util.tree_leaves(state)),
        num_particles,
        skip,
        _opt_key(opt),
        _constraints_key(),
        small,
        tuple(sorted(_CPU_OPTIONS.items())),
    )
    runner, dyn = None, None
    if pending is None:
        start_init = None
    for all_static in (False, True):
        dyn, info, leaves = _split_args(args, kwargs, all_static)
        if not jit:
            break
        key = _cache_key(model, guide, info, common)
        runner = _CACHE.get(key) if key is not None else None
        if runner is not None:
            _CACHE.move_to_end(key)
            break
        example = (state, jnp.asarray(0, jnp.int32), jnp.asarray(1, jnp.int32), dyn)
        try:
            runner = _compile(_build(svi, skip, info, leaves), example, small, start_init)
        except (jax.errors.JAXTypeError, jax.errors.NonConcreteBooleanIndexError) as e:
            if all_static or not dyn:
                raise
            log.debug("fit (numpyro): model needs concrete arguments (%s); baking them in", e)
            continue
        if key is not None:
            _CACHE[key] = runner
            while len(_CACHE) > CACHE_SIZE:
                _CACHE.popitem(last=False)
        break

    if pending is not None:  # the init program's values (compiled beside the loop)
        state = finish()
        if state is None:
            state = svi.init(jax.random.PRNGKey(seed), *args, **kwargs)
        if rewrap:
            state = _rewrapped(state)

    if not jit:  # jit=False: svi.update step by step, not compiled (for debugging a model)

        def runner(state, start, stop, dyn):
            n = int(stop) - int(start)
            losses, oks = np.full(CHUNK, np.nan, _inputs.float_np()), np.ones(CHUNK, bool)
            for j in range(n):
                new, loss, ok_, kept = _checked_update(svi, state, args, kwargs)
                ok = bool(ok_)
                losses[j], oks[j] = float(loss), ok
                state = new if ok else kept
                if not ok and not skip:
                    break
            return state, losses, oks, svi.get_params(state)

    losses, skipped, stopped_at, message = [], [], None, ""
    params = None
    bar = Progress(num_steps, "numpyro", progress)
    done = 0
    size = min(num_steps, 64, CHUNK)
    try:
        while done < num_steps:
            stop = min(num_steps, done + size)
            tc = time.perf_counter()
            new_state, ls, oks, new_params = runner(
                state, jnp.asarray(done, jnp.int32), jnp.asarray(stop, jnp.int32), dyn
            )
            n = stop - done
            ls, oks = np.asarray(ls)[:n], np.asarray(oks)[:n].copy()  # waits for the chunk
            dt = time.perf_counter() - tc
            if not skip and not _host_finite(new_state):  # the step that made it non-finite
                j = _first_bad_step(
                    runner, state, done, int(np.argmin(oks)) if not oks.all() else n, dyn
                )
                new_state, _, _, new_params = runner(
                    state, jnp.asarray(done, jnp.int32), jnp.asarray(done + j, jnp.int32), dyn
                )
                oks[j:] = False
            state, params = new_state, new_params
            bad = np.nonzero(~oks)[0]
            if bad.size and not skip:
                stopped_at = done + int(bad[0])
                losses.append(ls[: int(bad[0]) + 1])
                done = stopped_at
                break
            losses.append(ls)
            if bad.size:
                skipped.extend(int(done + j) for j in bad)
            done = stop
            bar.update(n, float(ls[-1]))
            size = int(min(CHUNK, max(64, CHUNK_SECONDS * n / max(dt, 1e-9))))
    except KeyboardInterrupt:
        message = f"interrupted after {done} steps"
        log.warning("fit (numpyro): %s; returning the params so far", message)
    finally:
        bar.close()
    if params is None:  # no chunk ran (interrupted before the first)
        params = svi.get_params(state)
    params = {k: np.asarray(v) for k, v in params.items()}
    return FitOutput(
        params=params,
        losses=np.concatenate(losses) if losses else np.zeros(0, _inputs.float_np()),
        steps_done=done,
        wall_time=time.perf_counter() - t0,
        elbo="Trace_ELBO",
        skipped=skipped,
        stopped_at=stopped_at,
        message=message,
    )


# ------------------------------------------------------------------------------------------
# many seeds in one compiled program
# ------------------------------------------------------------------------------------------
def _init_seeds(svi, seeds, args, kwargs):
    """The SVI states of ``svi.init(PRNGKey(seed))`` for every seed, stacked on a leading axis.

    When the first two seeds give the same params (inits that draw nothing: the usual case),
    the others' differ only in their key, which is derived as ``svi.init`` derives it
    (``split(PRNGKey(seed), 3)[0]``) instead of tracing the program once per seed.

    An autoguide whose init strategy draws is set up afresh for each seed, with that seed's
    key (:func:`.autoguides.setup_eagerly`), so each seed starts where ``fit(seed=s)`` does."""
    if drawing_autoguide(svi.guide):
        states = []
        for s in seeds:
            guide = copy.copy(svi.guide)
            guide.prototype_trace = None  # its setup assigns every derived attribute anew
            setup_eagerly(guide, args, kwargs, s)
            one = copy.copy(svi)
            one.guide = guide
            states.append(one.init(jax.random.PRNGKey(s), *args, **kwargs))
        return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *states)
    first = [svi.init(jax.random.PRNGKey(s), *args, **kwargs) for s in seeds[:2]]
    same = len(first) == 1 or all(
        bool(np.array_equal(np.asarray(a), np.asarray(b)))
        for a, b in zip(
            jax.tree_util.tree_leaves((first[0].optim_state, first[0].mutable_state)),
            jax.tree_util.tree_leaves((first[1].optim_state, first[1].mutable_state)),
        )
    )
    if same:
        keys = jax.vmap(lambda s: jax.random.split(jax.random.PRNGKey(s), 3)[0])(
            jnp.asarray(seeds, jnp.uint32)
        )
        S = len(seeds)
        rest = jax.tree_util.tree_map(
            lambda x: jnp.broadcast_to(x, (S,) + jnp.shape(x)), first[0]._replace(rng_key=None)
        )
        return rest._replace(rng_key=keys)
    states = first + [svi.init(jax.random.PRNGKey(s), *args, **kwargs) for s in seeds[2:]]
    return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *states)


# ------------------------------------------------------------------------------------------
# a batch of members (data, init values, learning rate) x seeds in one compiled program
# ------------------------------------------------------------------------------------------
def _build_batch(make_svi, skip, treedef_info, leaves, data_axis):
    """:func:`_build`'s chunk over a batch of runs: the step ``vmap``-ed over the SVI states,
    the data (``data_axis`` 0: one row per run; None: shared) and the learning rates
    (``make_svi(lr)`` builds the run's SVI); the loop and its ``cond`` on the chunk's end left
    unbatched (a batched predicate would run every one of the CHUNK steps).  ``active[j]``
    False: run ``j`` has stopped; its state is kept."""
    rebuild = _rebuilder(treedef_info, leaves)

    def chunk(states, start, stop, active, dyn, lrs):
        S = active.shape[0]

        def one(state, act, dyn_r, lr):
            args, kwargs = rebuild(dyn_r)
            new, loss, ok, kept = _checked_update(make_svi(lr), state, args, kwargs)
            keep = ok & act
            new = jax.tree_util.tree_map(lambda a, b: jnp.where(keep, a, b), new, kept)
            return new, loss.astype(jnp.result_type(float)), ok

        def run(sa):
            states, act = sa
            new, loss, ok = jax.vmap(one, in_axes=(0, 0, data_axis, 0))(states, act, dyn, lrs)
            if not skip:
                act = act & ok
            return (new, act), (loss, ok)

        def idle(sa):
            return sa, (jnp.full((S,), jnp.nan, jnp.result_type(float)), jnp.ones((S,), bool))

        def body(sc, i):
            return lax.cond(i < stop, run, idle, sc)

        (states, _), (losses, oks) = lax.scan(
            body, (states, active), start + jnp.arange(CHUNK, dtype=jnp.int32)
        )
        return states, losses.T, oks.T

    return chunk


def _same_init(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def fit_batch(
    backend,
    model,
    guide,
    runs,
    *,
    num_steps,
    num_particles,
    on_nonfinite,
    progress,
    jit,
) -> list[FitOutput]:
    """The runs of ``dualguide.fit(batch=[...])`` (:class:`.contract.BatchRun`: a member's data,
    init values and learning rate, with a seed) in one compiled program: the chunk of
    :func:`fit` ``jax.vmap``-ed over the SVI states, the float data and the learning rates.

    Each run's steps are those of ``fit(seed=run.seed)`` on the member's data and settings
    (same keys, same draws), so its losses and params equal that fit's to float32 rounding.
    Raises :class:`.contract.CannotVectorize` when the model needs its float data as
    concrete values (it cannot then differ between runs).
    """
    from numpyro.infer import SVI, Trace_ELBO

    if not jit:
        raise CannotVectorize("jit=False")
    t0 = time.perf_counter()
    skip = on_nonfinite == "skip"
    elbo = Trace_ELBO(num_particles=num_particles)
    r0 = runs[0]
    opt0 = r0.opt
    same_lr = all(r.opt == opt0 for r in runs)
    svi0 = SVI(model, guide, backend.optimizer(opt0), elbo)
    R = len(runs)

    def make_svi(lr):
        """The SVI of a run: ``svi0`` (initialized, so it knows the constraints) with the
        run's learning rate (a traced number) when the runs' rates differ."""
        if same_lr:
            return svi0
        svi = copy.copy(svi0)
        svi.optim = backend.optimizer(dataclasses.replace(opt0, lr=lr))
        return svi

    dyns = []
    for r in runs:
        dyn, info, leaves = _split_args(r.args, r.kwargs)
        dyns.append(dyn)
    dyn, info, leaves = _split_args(runs[0].args, runs[0].kwargs)
    shared = all(
        all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(d, dyn)) for d in dyns[1:]
    )
    data_axis = None if shared else 0
    if not shared:
        dyn = [jnp.stack([d[k] for d in dyns]) for k in range(len(dyn))]
    # the initial states: one vmapped init over the seeds and data when several members share
    # their init values, else each member's init under its own overrides, its seeds stacked
    # (one member, as fit(seeds=...): _init_seeds, which traces the program once or twice)
    state = None
    members = {r.member for r in runs}
    if len(members) > 1 and all(_same_init(r.init, r0.init) for r in runs[1:]):
        rebuild = _rebuilder(info, leaves)
        with r0.init_scope():  # an autoguide set up inside vmap would keep tracers
            setup_eagerly(svi0.guide, r0.args, r0.kwargs, r0.seed)

        def init_one(seed, d):
            a, k = rebuild(d)
            return svi0.init(jax.random.PRNGKey(seed), *a, **k)

        try:
            with r0.init_scope():
                state = jax.vmap(init_one, in_axes=(0, data_axis))(
                    jnp.asarray([r.seed for r in runs], jnp.uint32), dyn
                )
        except Exception as e:  # a program whose init needs concrete values
            log.debug("fit (numpyro, batch): init run by run (%s)", e)
            state = None
    if state is None:
        parts, i = [], 0
        while i < R:
            j = i
            while j < R and runs[j].member == runs[i].member:
                j += 1
            with runs[i].init_scope():
                parts.append(
                    _init_seeds(svi0, [r.seed for r in runs[i:j]], runs[i].args, runs[i].kwargs)
                )
            i = j
        state = jax.tree_util.tree_map(lambda *xs: jnp.concatenate(xs), *parts)
    with r0.init_scope():  # svi0 holds concrete transforms (the vmapped init traced them)
        svi0.init(jax.random.PRNGKey(r0.seed), *r0.args, **r0.kwargs)
    state0 = jax.tree_util.tree_map(lambda x: x[0], state)
    n_params = sum(int(np.size(x)) for x in jax.tree_util.tree_leaves(svi0.get_params(state0)))
    small = n_params <= SMALL_MODEL

    lrs = jnp.asarray(
        [float(r.opt.lr) if not same_lr else 0.0 for r in runs], jnp.result_type(float)
    )
    common = (
        jax.tree_util.tree_structure(state),
        tuple((tuple(np.shape(x)), str(x.dtype)) for x in jax.tree_util.tree_leaves(state)),
        num_particles,
        skip,
        _opt_key(opt0) if same_lr else ("lr per run",) + _opt_key(opt0)[:1] + _opt_key(opt0)[2:],
        _constraints_key(),
        small,
        tuple(sorted(_CPU_OPTIONS.items())),
        ("batch", R, data_axis),
    )
    key = _cache_key(model, guide, info, common)
    runner = _CACHE.get(key) if key is not None else None
    if runner is not None:
        _CACHE.move_to_end(key)
    else:
        chunk = _build_batch(make_svi, skip, info, leaves, data_axis)
        example = (state, jnp.asarray(0, jnp.int32), jnp.asarray(1, jnp.int32), jnp.ones(R, bool))
        try:
            runner = _compile(chunk, example + (dyn, lrs), small)
        except (jax.errors.JAXTypeError, jax.errors.NonConcreteBooleanIndexError) as e:
            raise CannotVectorize(
                f"the model needs its float data as concrete values ({type(e).__name__})"
            ) from e
        if key is not None:
            _CACHE[key] = runner
            while len(_CACHE) > CACHE_SIZE:
                _CACHE.popitem(last=False)

    losses: list[list[np.ndarray]] = [[] for _ in runs]
    skipped: list[list[int]] = [[] for _ in runs]
    stopped: list[int | None] = [None] * R
    message = ""
    bar = Progress(num_steps, "numpyro", progress)
    done = 0
    size = min(num_steps, 64, CHUNK)
    try:
        while done < num_steps and any(s is None for s in stopped):
            stop = min(num_steps, done + size)
            active = jnp.asarray(np.array([s is None for s in stopped]))
            tc = time.perf_counter()
            state, ls, oks = runner(
                state, jnp.asarray(done, jnp.int32), jnp.asarray(stop, jnp.int32), active, dyn, lrs
            )
            n = stop - done
            ls, oks = np.asarray(ls)[:, :n], np.asarray(oks)[:, :n]
            dt = time.perf_counter() - tc
            for j in range(R):
                if stopped[j] is not None:
                    continue
                bad = np.nonzero(~oks[j])[0]
                if bad.size and not skip:
                    stopped[j] = done + int(bad[0])
                    losses[j].append(ls[j, : int(bad[0]) + 1])
                    continue
                losses[j].append(ls[j])
                skipped[j].extend(int(done + b) for b in bad)
            done = stop
            bar.update(n, float(np.nanmean(ls[:, -1])))
            size = int(min(CHUNK, max(64, CHUNK_SECONDS * n / max(dt, 1e-9))))
    except KeyboardInterrupt:
        message = f"interrupted after {done} steps"
        log.warning("fit (numpyro): %s; returning the params so far", message)
    finally:
        bar.close()
    params = jax.vmap(svi0.get_params)(state)
    params = {k: np.asarray(v) for k, v in params.items()}
    wall = time.perf_counter() - t0
    empty = np.zeros(0, _inputs.float_np())
    return [
        FitOutput(
            params={k: np.array(v[j]) for k, v in params.items()},
            losses=np.concatenate(losses[j]) if losses[j] else empty,
            steps_done=stopped[j] if stopped[j] is not None else done,
            wall_time=wall,
            elbo="Trace_ELBO",
            skipped=skipped[j],
            stopped_at=stopped[j],
            message=message,
        )
        for j in range(R)
    ]
