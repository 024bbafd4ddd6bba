"""dualguide's own NumPyro fitting loop: NumPyro's ``Trace_ELBO``, a fused compiled loop.

What one step computes is exactly ``numpyro.infer.SVI.update`` with ``Trace_ELBO``:
the rng key is split as ``SVI.update`` splits it, the loss is
``Trace_ELBO(num_particles).loss(key, constrain(params), model, guide, *args)``
(vectorized particles), and the update is jax's Adam (``numpyro.optim.Adam`` /
``ClippedAdam``: the neutral update of :mod:`dualguide.optim`).  What differs is
how the steps run:

* **One compiled loop.**  Steps run inside one ``lax.while_loop`` per chunk,
  with the Adam update inline on one flat vector of all unconstrained params
  (one fused kernel instead of several per param), the non-finite check inline,
  and the loss written into a buffer.  The chunk length is dynamic, so one
  compilation serves any ``num_steps``; chunks are sized to about a quarter of a
  second, which keeps the progress bar and Ctrl-C responsive.
* **A cheaper PRNG kernel.**  The key is :mod:`.fastrng`'s threefry2x32, bit-for-bit
  JAX's default generator with the hash unrolled (JAX loops it on CPU).
* **Compile caching.**  The compiled loop is kept (up to :data:`CACHE_SIZE`
  entries) and reused by later fits of the same model and guide functions with
  the same argument shapes and settings.  Values the model or guide read from
  globals or closures are part of the cache key by identity (rebinding a global
  recompiles); an array changed *in place* is not noticed -- pass data through
  ``model_args`` (the loop takes them as arguments, never as constants).
"""

from __future__ import annotations

import logging
import time
import types
from collections import OrderedDict

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.flatten_util import ravel_pytree

from ..._progress import Progress
from . import fastrng

log = logging.getLogger("dualguide")

#: static length of the compiled scan: the most steps one call runs (shorter chunks skip the rest)
CHUNK = 4096
#: wall time one chunk aims at (progress updates and Ctrl-C are checked between chunks)
CHUNK_SECONDS = 0.25
#: PRNG kernels (:mod:`.fastrng`; the same random bits in every mode): "split" unrolls the
#: hash of key splits only, "full" also of the draws, "default" is JAX's own kernel
RNG_MODE = "split"
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
def _build(model, guide, elbo, constrain_fn, unravel, opt, skip, treedef_info, leaves,
           has_mutable):
    """The chunk function: run steps ``start <= i < stop`` (at most CHUNK) from ``carry``."""
    treedef, _, is_arr = treedef_info
    b1, b2 = opt.betas
    eps, clip = opt.eps, opt.clip_norm
    lr_at = opt.lr_at
    const_lr = None if (callable(opt.lr) or opt.lrd != 1.0) else opt.lr

    def rebuild(dyn):
        it = iter(dyn)
        full = [next(it) if a else leaf for a, leaf in zip(is_arr, leaves)]
        return jax.tree_util.tree_unflatten(treedef, full)

    def step(carry, args, kwargs):
        flat, m, v, t, key, mutable = carry
        key, key_step = jax.random.split(key)

        def loss_fn(x):
            params = constrain_fn(unravel(x))
            if has_mutable:
                params.update(lax.stop_gradient(mutable))
                res = elbo.loss_with_mutable_state(key_step, params, model, guide, *args, **kwargs)
                return res["loss"], res["mutable_state"]
            return elbo.loss(key_step, params, model, guide, *args, **kwargs), mutable

        (loss, new_mutable), g = jax.value_and_grad(loss_fn, has_aux=True)(flat)
        ok = jnp.isfinite(loss) & jnp.all(jnp.isfinite(g))
        if clip is not None:
            g = jnp.clip(g, -clip, clip)
        # jax.example_libraries.optimizers.adam (what numpyro.optim.Adam runs), on one vector
        m_new = (1 - b1) * g + b1 * m
        v_new = (1 - b2) * jnp.square(g) + b2 * v
        mhat = m_new / (1 - jnp.asarray(b1, m.dtype) ** (t + 1))
        vhat = v_new / (1 - jnp.asarray(b2, m.dtype) ** (t + 1))
        lr = const_lr if const_lr is not None else lr_at(t)
        flat_new = flat - lr * mhat / (jnp.sqrt(vhat) + eps)
        # the key advances on every step, accepted or not.  (A cond, not jnp.where: with a
        # select here XLA's CPU fusion recomputes the ELBO in several kernels, ~3x slower.)
        new = lax.cond(
            ok,
            lambda: (flat_new, m_new, v_new, t + 1, key, new_mutable),
            lambda: (flat, m, v, t, key, mutable),
        )
        return new, loss.astype(jnp.float32), ok

    def chunk(carry, start, stop, dyn):
        """Steps ``start <= i < stop`` (at most CHUNK) of a scan of static length CHUNK.

        Steps outside the range (and, with on_nonfinite="stop", after a bad step) are
        skipped by a ``cond``, so one compilation serves every chunk length.
        """
        args, kwargs = rebuild(dyn)

        def run(c):
            return step(c, args, kwargs)

        def idle(c):
            return c, jnp.asarray(jnp.nan, jnp.float32), jnp.asarray(True)

        def body(sc, i):
            c, stopped = sc
            c, loss, ok = lax.cond((i < stop) & ~stopped, run, idle, c)
            if not skip:
                stopped = stopped | ~ok
            return (c, stopped), (loss, ok)

        (carry, _), (losses, oks) = lax.scan(
            body, (carry, jnp.asarray(False)), start + jnp.arange(CHUNK, dtype=jnp.int32)
        )
        return carry, losses, oks

    return chunk


#: XLA CPU options tried for the loop (fewer, larger kernels compile faster here);
#: dropped silently where this jaxlib does not know them
_CPU_OPTIONS = {"xla_cpu_use_fusion_emitters": False}
_options_ok: bool | None = None


def _compile(fn, example):
    global _options_ok
    lowered = jax.jit(fn).lower(*example)
    if jax.default_backend() == "cpu" and _options_ok is not False:
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
def fit(backend, model, guide, args, kwargs, opt, *, num_steps, num_particles, seed,
        on_nonfinite, progress, jit) -> dict:
    """The NumPyro backend's ``fit`` (see :func:`dualguide.fit` for the contract)."""
    import numpyro.optim
    from numpyro.infer import SVI, Trace_ELBO

    t0 = time.perf_counter()
    skip = on_nonfinite == "skip"
    elbo = Trace_ELBO(num_particles=num_particles)
    svi = SVI(model, guide, numpyro.optim.Adam(1e-3), elbo)
    # init with JAX's default key (its eager kernels are compiled once per process), then
    # carry on with the same key bits under the unrolled implementation when it pays off
    state = svi.init(jax.random.PRNGKey(seed), *args, **kwargs)
    params0 = svi.optim.get_params(state.optim_state)
    flat0, unravel = ravel_pytree(params0)
    mutable0 = state.mutable_state
    has_mutable = mutable0 is not None
    zeros = jnp.zeros_like(flat0)
    rng_key = state.rng_key
    mode = RNG_MODE
    if mode == "split" and fastrng.IMPL_SPLIT is not None:
        rng_key = fastrng.rewrap(rng_key, fastrng.IMPL_SPLIT)
    elif mode == "full" and fastrng.IMPL is not None:
        rng_key = fastrng.rewrap(rng_key, fastrng.IMPL)
    carry = (flat0, zeros, zeros, jnp.asarray(0, jnp.int32), rng_key, mutable0)
    common = (
        jax.tree_util.tree_structure(carry),
        tuple((tuple(np.shape(x)), str(x.dtype)) for x in jax.tree_util.tree_leaves(carry)),
        num_particles,
        skip,
        _opt_key(opt),
        jax.tree_util.tree_structure(params0),
        tuple((tuple(np.shape(x)), str(jnp.result_type(x))) for x in jax.tree_util.tree_leaves(params0)),
        jax.tree_util.tree_structure(mutable0),
        _constraints_key(),
        tuple(sorted(_CPU_OPTIONS.items())),
    )
    make = lambda dyn, info, leaves: _build(  # noqa: E731
        model, guide, elbo, svi.constrain_fn, unravel, opt, skip, info, leaves, has_mutable
    )
    runner, dyn = None, None
    for all_static in (False, True):
        dyn, info, leaves = _split_args(args, kwargs, all_static)
        if not jit:
            runner = make(dyn, info, leaves)
            break
        key = _cache_key(model, guide, info, common)
        runner = _CACHE.get(key) if key is not None else None
        if runner is not None:
            _CACHE.move_to_end(key)
            break
        example = (carry, jnp.asarray(0, jnp.int32), jnp.asarray(1, jnp.int32), dyn)
        try:
            runner = _compile(make(dyn, info, leaves), example)
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

    losses, skipped, stopped_at, message = [], [], None, ""
    bar = Progress(num_steps, "numpyro", progress)
    done = 0
    size = min(num_steps, 64, CHUNK)
    try:
        while done < num_steps:
            stop = min(num_steps, done + size)
            tc = time.perf_counter()
            new_carry, ls, oks = runner(
                carry, jnp.asarray(done, jnp.int32), jnp.asarray(stop, jnp.int32), dyn
            )
            n = stop - done
            ls, oks = np.asarray(ls)[:n], np.asarray(oks)[:n]  # waits for the chunk
            dt = time.perf_counter() - tc
            carry = new_carry
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
    params = {k: np.asarray(v) for k, v in svi.constrain_fn(unravel(carry[0])).items()}
    return {
        "params": params,
        "losses": np.concatenate(losses) if losses else np.zeros(0, np.float32),
        "steps_done": done,
        "wall_time": time.perf_counter() - t0,
        "elbo": "Trace_ELBO",
        "skipped": skipped,
        "stopped_at": stopped_at,
        "message": message,
    }
