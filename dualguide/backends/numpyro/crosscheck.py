"""NumPyro side of :mod:`dualguide.crosscheck`: log densities, ELBO particles, gradients,
lockstep SVI from supplied noise, guide samples, NUTS and the quadrature objective.

Every function takes *rendered* programs (plain numpyro callables), constrained params as
numpy arrays, and returns numpy arrays; the neutral modules compare them with the Pyro side.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from numpyro import handlers
from numpyro.distributions import biject_to
from numpyro.infer import Trace_ELBO

from ... import _inputs, _noise
from . import BACKEND as B

F32 = jnp.float64 if _inputs.get_dtype() == "float64" else jnp.float32  # rebound by use_dtype


# helpers -----------------------------------------------------------------------------------
def _j(params: dict) -> dict:
    """numpy -> jax, floats in the current float dtype; integer arrays (a subsampled plate's
    indices) stay integers."""
    return {k: jnp.asarray(_as_np(v)) for k, v in params.items()}


def _as_np(v) -> np.ndarray:
    a = np.asarray(v)
    return a if a.dtype.kind in "iu" else np.asarray(a, dtype=_inputs.float_np())


def _np(tree):
    return jax.tree_util.tree_map(lambda a: np.asarray(a), tree)


def _bijectors(constraints: dict) -> dict:
    return {k: biject_to(B.constraint(c)) for k, c in constraints.items()}


def unconstrain(params: dict, constraints: dict) -> dict:
    """Constrained numpy params -> unconstrained numpy params (numpyro's bijections)."""
    bij = _bijectors(constraints)
    return {k: np.asarray(bij[k].inv(v)) for k, v in _j(params).items()}


def constrain(uparams: dict, constraints: dict) -> dict:
    """Inverse of :func:`unconstrain`."""
    bij = _bijectors(constraints)
    return {k: np.asarray(bij[k](v)) for k, v in _j(uparams).items()}


def _sample_sites(tr):
    return {n: s for n, s in tr.items() if s["type"] == "sample"}


def _site_logp(s):
    lp = s["fn"].log_prob(s["value"])
    if s.get("scale") is not None:
        lp = lp * s["scale"]
    return lp


def _run_guide(guide, params, args, kwargs, key, subs=None):
    g = handlers.substitute(handlers.seed(guide, key), data=params)
    if subs:
        g = handlers.substitute(g, data=subs)
    return handlers.trace(g).get_trace(*args, **kwargs)


def _run_model(model, params, gtr, args, kwargs, key, subs=None):
    m = handlers.substitute(handlers.seed(model, key), data=params)
    if subs is not None:
        m = handlers.substitute(m, data=subs)
    else:
        m = handlers.replay(m, trace=gtr)
    return handlers.trace(m).get_trace(*args, **kwargs)


def _set_up(guide, p, args, kwargs):
    """Run the guide once, unbatched, before any ``vmap`` calls it.

    A NumPyro autoguide sets itself up on its first call.  Inside ``vmap`` the dict of init
    locations comes back with its keys sorted (JAX's pytree order) instead of the model's
    order, so a packed guide (AutoDiagonalNormal, AutoMultivariateNormal, ...) set up there
    unpacks its latent vector in another order than the one its fitted params were packed in
    (reproduced natively with ``Trace_ELBO(num_particles=2000)`` on a fresh
    AutoDiagonalNormal: ELBO -45.8 where the right value is -20.3).  Set up here, outside any
    transform, the order is the model's, as in a fit.
    """
    g = handlers.substitute(handlers.seed(guide, jax.random.PRNGKey(0)), data=p)
    with handlers.block():
        g(*args, **kwargs)


def _chunked(fn, p, keys, chunk):
    """``fn(p, keys)`` over the keys in pieces of at most ``chunk`` (a pytree, concatenated)."""
    n = len(keys)
    chunk = max(1, int(chunk or n))
    outs = [fn(p, keys[i : i + chunk]) for i in range(0, n, chunk)]
    if len(outs) == 1:
        return _np(outs[0])
    return jax.tree_util.tree_map(lambda *a: np.concatenate([np.asarray(x) for x in a]), *outs)


def _latent_values(tr) -> dict:
    return {n: s["value"] for n, s in _sample_sites(tr).items() if not s.get("is_observed")}


def _subsamples(tr) -> dict:
    """The indices each subsampled plate of a trace drew, by plate name."""
    return {
        n: s["value"]
        for n, s in tr.items()
        if s["type"] == "plate" and s["args"][1] is not None and s["args"][1] != s["args"][0]
    }


def subsampled(model, guide, args, kwargs) -> bool:
    """Whether guide or model has a subsampled plate (one run, its minibatch drawn by
    NumPyro's generator)."""
    with handlers.block(), handlers.seed(rng_seed=0):
        gtr = handlers.trace(guide).get_trace(*args, **kwargs)
        mtr = handlers.trace(handlers.replay(model, trace=gtr)).get_trace(*args, **kwargs)
    return bool(_subsamples(gtr) or _subsamples(mtr))


# structure ---------------------------------------------------------------------------------
def inspect(model, guide, args, kwargs, seed):
    """Trace the guide, then the model replayed on the guide's values (neutral Site dicts)."""
    gsites = B.trace(guide, args, kwargs, seed)
    replay_trace = {n: s.native for n, s in gsites.items() if s.type == "sample"}

    def replayed(*a, **k):
        with handlers.replay(trace=replay_trace):
            return model(*a, **k)

    msites = B.trace(replayed, args, kwargs, seed + 1)
    return gsites, msites


# points and log densities ------------------------------------------------------------------
def sample_points(model, guide, params, n, seed, args, kwargs):
    """``n`` joint draws: guide latents from the guide, model-only latents from the model,
    and the indices each subsampled plate drew, by plate name (the guide's, which the model
    replays, or the model's own): ``(guide values, model values, subsample indices)``.  A
    point's log densities are evaluated on the minibatch it was drawn with, in both backends
    (:func:`logdensities` substitutes the indices)."""
    p = _j(params)

    def draw(key):
        k1, k2 = jax.random.split(key)
        gtr = _run_guide(guide, p, args, kwargs, k1)
        mtr = _run_model(model, p, gtr, args, kwargs, k2)
        return _latent_values(gtr), _latent_values(mtr), {**_subsamples(mtr), **_subsamples(gtr)}

    keys = jax.random.split(jax.random.PRNGKey(seed), n)
    _set_up(guide, p, args, kwargs)
    gv, mv, sub = jax.jit(jax.vmap(draw))(keys)
    return _np(gv), _np(mv), _np(sub)


def logdensities(model, guide, params, gpoints, mpoints, args, kwargs):
    """Per-site log densities of guide and model at the given points (leading axis: points).

    ``gpoints`` are substituted in the guide (its non-Delta sample sites), ``mpoints`` in the
    model; either may hold a subsampled plate's indices under the plate's name.  Returns ``{"guide": {site: (N,)}, "model": {site: (N,)}, "guide_abs": (N,),
    "model_abs": (N,), "values": {guide site: (N, ...)}}``; ``*_abs`` is the sum of the absolute
    elementwise log densities (the scale of float32 rounding).
    """
    p = _j(params)
    _set_up(guide, p, args, kwargs)

    def one(gp, mp):
        key = jax.random.PRNGKey(0)
        gtr = _run_guide(guide, p, args, kwargs, key, subs=gp)
        mtr = _run_model(model, p, gtr, args, kwargs, key, subs=mp)
        out = {}
        for what, tr in (("guide", gtr), ("model", mtr)):
            lps = {n: _site_logp(s) for n, s in _sample_sites(tr).items()}
            out[what] = {n: jnp.sum(lp) for n, lp in lps.items()}
            out[what + "_abs"] = sum(
                (jnp.sum(jnp.abs(jnp.where(jnp.isfinite(lp), lp, 0.0))) for lp in lps.values()),
                jnp.zeros((), F32),
            )
        out["values"] = _latent_values(gtr)
        return out

    return _np(jax.jit(jax.vmap(one))(_j(gpoints), _j(mpoints)))


def model_logdensity(model, params, points, args, kwargs):
    """Total log density of the model with its latent sites set to ``points`` (vectorized)."""
    p = _j(params)

    def one(pt):
        mtr = _run_model(model, p, None, args, kwargs, jax.random.PRNGKey(0), subs=pt)
        return sum(
            (jnp.sum(_site_logp(s)) for s in _sample_sites(mtr).values()), jnp.zeros((), F32)
        )

    return np.asarray(jax.jit(jax.vmap(one))(_j(points)))


# ELBO and gradients ------------------------------------------------------------------------
def elbo_particles(model, guide, params, n, seed, args, kwargs, chunk=4096, constraints=None):
    """``n`` single-particle ELBO values (native ``Trace_ELBO`` of one particle, vmapped
    ``chunk`` particles at a time; the guide set up unbatched first)."""
    elbo = Trace_ELBO(num_particles=1)

    @jax.jit
    def run(p, keys):
        return jax.vmap(lambda k: -elbo.loss(k, p, model, guide, *args, **kwargs))(keys)

    keys = jax.random.split(jax.random.PRNGKey(seed), n)
    p = _j(params)
    _set_up(guide, p, args, kwargs)
    return _chunked(run, p, keys, chunk)


def grad_batches(
    model, guide, params, constraints, num_batches, batch_size, seed, args, kwargs, chunk=None
):
    """Loss and gradient w.r.t. the (constrained) params from ``num_batches`` independent
    native ``Trace_ELBO(num_particles=batch_size)`` estimates (``chunk`` batches vmapped at a
    time). Returns (losses, grads)."""
    elbo = Trace_ELBO(num_particles=batch_size)

    def loss_fn(p, key):
        return elbo.loss(key, p, model, guide, *args, **kwargs)

    keys = jax.random.split(jax.random.PRNGKey(seed), num_batches)
    p = _j(params)
    _set_up(guide, p, args, kwargs)
    run = jax.jit(jax.vmap(jax.value_and_grad(loss_fn), in_axes=(None, 0)))
    losses, grads = _chunked(run, p, keys, chunk)
    return np.asarray(losses), grads


# lockstep ----------------------------------------------------------------------------------
def rsample_from_noise(name, d, noise, shape):
    """A reparameterized draw of ``d`` (full shape ``shape``) from standard noise arrays
    (the neutral :func:`dualguide._noise.rsample_from_noise` with this backend's mixture)."""
    from . import mixture

    return _noise.rsample_from_noise(name, d, noise, tuple(shape), mixture)


class _NoiseSubstitute(handlers.Messenger):
    """Replace each latent guide sample site's value by its draw from ``noise[site]``."""

    def __init__(self, fn, noise):
        self.noise = noise
        super().__init__(fn)

    def process_message(self, msg):
        if msg["type"] != "sample" or msg.get("is_observed") or msg.get("value") is not None:
            return
        nz = self.noise.get(msg["name"])
        if nz is None:
            return
        d = msg["fn"]
        shape = tuple(msg["kwargs"].get("sample_shape", ())) + tuple(d.shape())
        v = rsample_from_noise(msg["name"], d, nz, shape)
        if v is not None:
            msg["value"] = jnp.broadcast_to(v, shape)


def lockstep_run(model, guide, u0, constraints, noise, opt, args, kwargs):
    """SVI driven by ``noise[site][kind]`` arrays of shape (steps, particles, *site shape).

    Starts from the unconstrained params ``u0``; the update is numpyro's own optimizer for the
    neutral ``opt``; the loss is the mean of native single-particle ``Trace_ELBO`` losses.
    Returns ``{"losses": (steps,), "params": {name: (steps + 1, ...)}}`` (unconstrained).
    """
    bij = _bijectors(constraints)
    optim = B.optimizer(opt)
    elbo = Trace_ELBO(num_particles=1)
    key = jax.random.PRNGKey(0)

    def loss_fn(u, noise_t):
        p = {k: bij[k](v) for k, v in u.items()}

        def one(nz):
            return elbo.loss(key, p, model, _NoiseSubstitute(guide, nz), *args, **kwargs)

        return jnp.mean(jax.vmap(one)(noise_t))

    def step(state, noise_t):
        u = optim.get_params(state)
        loss, g = jax.value_and_grad(loss_fn)(u, noise_t)
        state = optim.update(g, state)
        return state, (loss, optim.get_params(state))

    state0 = optim.init(_j(u0))
    _, (losses, traj) = jax.jit(lambda s, xs: lax.scan(step, s, xs))(state0, _j_tree(noise))
    traj = _np(traj)
    params = {k: np.concatenate([np.asarray(u0[k], _inputs.float_np())[None], traj[k]]) for k in u0}
    return {"losses": np.asarray(losses), "params": params}


def _j_tree(tree):
    return jax.tree_util.tree_map(
        lambda a: jnp.asarray(np.asarray(a, dtype=_inputs.float_np())), tree
    )


# guide samples, NUTS, quadrature -----------------------------------------------------------
def sample_guide(guide, params, n, seed, args, kwargs, shapes=None, constraints=None, chunk=None):
    """``n`` draws of every latent guide sample site: {site: (n, *shape)} (``chunk`` at a time)."""
    p = _j(params)
    _set_up(guide, p, args, kwargs)

    @jax.jit
    def draw(p, keys):
        return jax.vmap(lambda key: _latent_values(_run_guide(guide, p, args, kwargs, key)))(keys)

    keys = jax.random.split(jax.random.PRNGKey(seed), n)
    return _chunked(draw, p, keys, chunk)


def nuts(model, params, num_warmup, num_samples, seed, args, kwargs):
    """NUTS on the model (model params fixed at ``params``): {latent site: (num_samples, ...)}."""
    from numpyro.infer import MCMC, NUTS

    m = handlers.substitute(model, data=_j(params))
    mcmc = MCMC(NUTS(m), num_warmup=num_warmup, num_samples=num_samples, progress_bar=False)
    mcmc.run(jax.random.PRNGKey(seed), *args, **kwargs)
    return _np(mcmc.get_samples())


def quadrature_objective(model, guide, constraints, points, log_w, args, kwargs):
    """The negative ELBO by quadrature over the guide's base sites, as f(u) -> (value, grad).

    ``points`` sets the guide's non-Delta latent sites on a grid (leading axis: nodes) and
    ``log_w`` holds the log quadrature weights (node volume).  With q_b the density of the base
    sites and q the guide's full log density (Delta sites carry -log|det J|),
    ELBO = sum_i w_i q_b(u_i) [log p(x(u_i)) - log q(u_i)] / sum_i w_i q_b(u_i).
    Nodes where the model density is -inf (outside its support) are dropped; the guide mass
    they carry is returned as ``aux["dropped_mass"]`` by ``f(u, aux=True)``.
    """
    bij = _bijectors(constraints)
    pts = _j(points)
    base = set(points)
    lw = jnp.asarray(np.asarray(log_w, _inputs.float_np()))

    def parts(u):
        p = {k: bij[k](v) for k, v in u.items()}

        def one(pt):
            key = jax.random.PRNGKey(0)
            gtr = _run_guide(guide, p, args, kwargs, key, subs=pt)
            mtr = _run_model(model, p, gtr, args, kwargs, key)
            gs = _sample_sites(gtr)
            lqb = sum(
                (jnp.sum(_site_logp(s)) for n, s in gs.items() if n in base), jnp.zeros((), F32)
            )
            lq = sum((jnp.sum(_site_logp(s)) for s in gs.values()), jnp.zeros((), F32))
            lp = sum(
                (jnp.sum(_site_logp(s)) for s in _sample_sites(mtr).values()), jnp.zeros((), F32)
            )
            return lqb, lq, lp

        lqb, lq, lp = jax.vmap(one)(pts)
        logw = lqb + lw
        keep = jnp.isfinite(lp) & jnp.isfinite(lq) & jnp.isfinite(logw)
        logw_k = jnp.where(keep, logw, -jnp.inf)
        wn = jnp.exp(logw_k - jax.scipy.special.logsumexp(logw_k))
        integrand = jnp.where(keep, lp - lq, 0.0)
        elbo = jnp.sum(wn * integrand)
        total = jax.scipy.special.logsumexp(jnp.where(jnp.isfinite(logw), logw, -jnp.inf))
        kept = jax.scipy.special.logsumexp(logw_k)
        return -elbo, 1.0 - jnp.exp(kept - total)

    vg = jax.jit(jax.value_and_grad(lambda u: parts(u)[0]))
    aux_fn = jax.jit(lambda u: parts(u)[1])

    def f(u, aux=False):
        uj = _j(u)
        val, g = vg(uj)
        if aux:
            return float(val), _np(g), {"dropped_mass": float(aux_fn(uj))}
        return float(val), _np(g)

    return f
