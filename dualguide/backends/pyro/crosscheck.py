"""Pyro side of :mod:`dualguide.crosscheck`: log densities, ELBO particles, gradients,
lockstep SVI from supplied noise and guide samples.

Same interface as ``dualguide.backends.numpyro.crosscheck``.  Everything runs in a fresh
param-store scope and a torch RNG fork, so the user's global Pyro state is left alone.
Particles are vectorized with a plate at dim ``-(max_plate_nesting + 1)``, as Pyro's own
``Trace_ELBO(vectorize_particles=True)`` does; a model that cannot broadcast over that
dimension runs its particles one after another (the model never sees a particle dimension,
as in a fit).
"""

from __future__ import annotations

import contextlib
import warnings

import numpy as np
import pyro
import torch
from pyro import poutine
from pyro.infer import Trace_ELBO
from pyro.poutine.messenger import Messenger
from torch.distributions import transform_to

from ... import _inputs, _noise
from . import BACKEND as B
from .optim import make_optimizer

F32 = torch.float64 if _inputs.get_dtype() == "float64" else torch.float32  # rebound by use_dtype
PARTICLES = "_dualguide_particles"


# helpers -----------------------------------------------------------------------------------
def _t(x, index: bool = False) -> torch.Tensor:
    """numpy -> torch: floats in the current float dtype (a discrete latent's values too, as
    Pyro's own samplers give them), or, with ``index``, int64 (a subsampled plate's indices)."""
    if index:
        return torch.as_tensor(np.asarray(x).astype(np.int64))
    return torch.tensor(np.asarray(x, dtype=_inputs.float_np()))


def _n(x) -> np.ndarray:
    return x.detach().cpu().numpy()


@contextlib.contextmanager
def _scope(params: dict, constraints: dict, seed: int = 0, unconstrained: bool = False):
    """A fresh param store holding ``params`` (as unconstrained leaves) and an RNG fork.

    Only params with a known constraint are put in the store; the others are created by the
    program from the param hook's init values (the neutral layer sets the hook).
    """
    state = {"params": {}, "constraints": {}}
    for k, v in params.items():
        if k not in constraints:
            continue  # created by the program itself, from the param hook's value
        c = B.constraint(constraints[k])
        v = _t(v)
        u = v if unconstrained else transform_to(c).inv(v)
        state["params"][k] = u.detach().clone().contiguous().requires_grad_(True)
        state["constraints"][k] = c
    store = pyro.get_param_store()
    with store.scope(state), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield store


def unconstrain(params: dict, constraints: dict) -> dict:
    """Constrained numpy params -> unconstrained numpy params (torch's bijections)."""
    return {k: _n(transform_to(B.constraint(constraints[k])).inv(_t(v))) for k, v in params.items()}


def constrain(uparams: dict, constraints: dict) -> dict:
    """Inverse of :func:`unconstrain`."""
    return {k: _n(transform_to(B.constraint(constraints[k]))(_t(v))) for k, v in uparams.items()}


def _plate_nesting(model, guide, args, kwargs) -> int:
    """Plate dims used by either program (and batch dims outside plates), like Pyro's guess."""
    n = 0
    with poutine.block():
        gtr = poutine.trace(guide).get_trace(*args, **kwargs)
        mtr = poutine.trace(poutine.replay(model, trace=gtr)).get_trace(*args, **kwargs)
    for tr in (gtr, mtr):
        for s in tr.nodes.values():
            if s["type"] != "sample" or _is_subsample(s):
                continue
            for f in s["cond_indep_stack"]:
                if f.vectorized and f.dim is not None:
                    n = max(n, -f.dim)
            n = max(n, len(s["fn"].batch_shape))
    return n


def _subsample_sites(model, guide, args, kwargs) -> dict:
    """The ``_Subsample`` sites (one per plate, by plate name) of one run of guide and model."""
    with poutine.block():
        gtr = poutine.trace(guide).get_trace(*args, **kwargs)
        mtr = poutine.trace(poutine.replay(model, trace=gtr)).get_trace(*args, **kwargs)
    return {
        name: s
        for tr in (gtr, mtr)
        for name, s in tr.nodes.items()
        if s["type"] == "sample" and _is_subsample(s)
    }


def _subsampled(model, guide, args, kwargs) -> bool:
    """Whether either program has a subsampled plate.  Inside Pyro's particle plate such a
    plate draws one minibatch for all the particles; dualguide's particle rule (NumPyro's,
    ``docs/particles.md``) is one minibatch per particle, so those programs run their
    particles one after another."""
    return any(
        s["fn"].subsample_size not in (None, s["fn"].size)
        for s in _subsample_sites(model, guide, args, kwargs).values()
    )


def subsampled(model, guide, args, kwargs) -> bool:
    """Whether guide or model has a subsampled plate (the neutral name of :func:`_subsampled`)."""
    return _subsampled(model, guide, args, kwargs)


def _vectorizes(model, guide, nest, args, kwargs) -> bool:
    """Whether Pyro's particle plate at ``-(nest + 1)`` runs these programs as independent
    particles: no subsampled plate (:func:`_subsampled`) and two particles traced in the
    plate give every site one leading particle dimension (:func:`_per_particle`)."""
    if _subsampled(model, guide, args, kwargs):
        return False
    try:
        with torch.random.fork_rng(), torch.no_grad(), poutine.block():
            return _faithful(model, guide, nest, args, kwargs)
    except Exception:
        return False


def _faithful(model, guide, nest, args, kwargs, num: int = 2) -> bool:
    """Whether ``num`` particles in the particle plate give each particle the value that one
    run of the programs at that particle's latent values gives.  Shapes alone cannot tell: a
    model that reduces over every dimension (``dg.factor("f", (z * z).sum())``) sums all the
    particles into one term, which the plate then broadcasts to every particle."""
    dim = -(nest + 1)
    gtr = poutine.trace(_vectorized(guide, num, dim)).get_trace(*args, **kwargs)
    mtr = poutine.trace(poutine.replay(_vectorized(model, num, dim), trace=gtr)).get_trace(
        *args, **kwargs
    )
    vec = _per_particle(mtr, num, nest) - _per_particle(gtr, num, nest)
    latent = {
        k: s
        for k, s in gtr.nodes.items()
        if s["type"] == "sample" and not s["is_observed"] and not _is_subsample(s)
    }
    shapes = {
        k: s["value"].shape
        for k, s in poutine.trace(guide).get_trace(*args, **kwargs).nodes.items()
    }
    for j in range(num):
        data = {}
        for k, s in latent.items():
            v, batch = s["value"], s["value"].dim() - s["fn"].event_dim
            at = batch + dim  # the particle dim's position in the value
            if at >= 0 and v.shape[at] == num:
                v = v.select(at, j)
            data[k] = v.reshape(shapes[k]) if v.numel() == shapes[k].numel() else v
        g1 = poutine.trace(poutine.condition(guide, data=data)).get_trace(*args, **kwargs)
        m1 = poutine.trace(poutine.replay(model, trace=g1)).get_trace(*args, **kwargs)
        one = float(_per_particle(m1, 1, nest) - _per_particle(g1, 1, nest))
        if not abs(one - float(vec[j])) <= 1e-3 * (1.0 + abs(one)):
            return False
    return True


def _vectorized(fn, num, dim, scale=None):
    def wrapped(*args, **kwargs):
        with pyro.plate(PARTICLES, num, dim=dim):
            if scale is None:
                return fn(*args, **kwargs)
            with poutine.scale(scale=scale):
                return fn(*args, **kwargs)

    return wrapped


def _per_particle(tr, num: int, nesting: int) -> torch.Tensor:
    """Sum of every sample site's log density per particle (scale and mask applied).

    ``num`` particles along the particle plate's dim ``-(nesting + 1)``; with ``num == 1``
    (one particle, with or without that plate) everything sums to the one particle."""
    tr.compute_log_prob(site_filter=lambda _name, site: not _is_subsample(site))
    total = torch.zeros(num)
    for s in tr.nodes.values():
        if s["type"] != "sample" or _is_subsample(s):
            continue
        lp = s["log_prob"]
        if num == 1:
            total = total + lp.sum()
            continue
        if lp.dim() < nesting + 1:
            lp = lp.reshape((1,) * (nesting + 1 - lp.dim()) + tuple(lp.shape))
        if lp.dim() > nesting + 1 or lp.shape[0] != num:
            # a dimension left of the particle plate's: the model used a latent's event
            # dimension as a batch dimension (f ~ MVN, y ~ Bernoulli(logits=f) in a plate),
            # so f's particles, at dim -(nesting + 2) of its value, crossed the plate's and
            # every particle summed the others' terms; the caller runs the particles one
            # after another
            raise _CrossedParticles(
                f"site {s['name']!r}: log_prob shape {tuple(lp.shape)} under a particle "
                f"plate of {num} at dim {-(nesting + 1)}"
            )
        total = total + lp.reshape(lp.shape[0], -1).sum(-1)
    return total


class _CrossedParticles(ValueError):
    """The particle plate did not give every site one leading particle dimension."""


def _is_subsample(site) -> bool:
    """The sample site a ``pyro.plate`` records for its indices (not a random variable)."""
    return type(site["fn"]).__name__ == "_Subsample"


def _latent(tr) -> dict:
    return {
        n: s["value"]
        for n, s in tr.nodes.items()
        if s["type"] == "sample" and not s["is_observed"] and not _is_subsample(s)
    }


# structure ---------------------------------------------------------------------------------
def inspect(model, guide, args, kwargs, seed):
    """Trace the guide, then the model replayed on the guide's values (neutral Site dicts)."""
    gsites = B.trace(guide, args, kwargs, seed)
    tr = poutine.Trace()
    for n, s in gsites.items():
        if s.type == "sample":
            tr.add_node(n, **{k: v for k, v in s.native.items() if k != "name"})

    def replayed(*a, **k):
        with poutine.replay(trace=tr):
            return model(*a, **k)

    return gsites, B.trace(replayed, args, kwargs, seed + 1)


# log densities -----------------------------------------------------------------------------
def logdensities(model, guide, params, gpoints, mpoints, args, kwargs, constraints=None):
    """Per-site log densities of guide and model at the given points (a loop over points).

    A subsampled plate's indices in the points (by plate name) condition the plate's
    ``_Subsample`` site: the point's minibatch, not a fresh one."""
    n = len(next(iter(gpoints.values()))) if gpoints else len(next(iter(mpoints.values())))
    rows = []
    with _scope(params, constraints or {}), torch.no_grad():
        plates = _subsample_sites(model, guide, args, kwargs)
        for i in range(n):
            gp = {k: _t(v[i], k in plates) for k, v in gpoints.items()}
            mp = {k: _t(v[i], k in plates) for k, v in mpoints.items()}
            gtr = poutine.trace(poutine.condition(guide, data=gp)).get_trace(*args, **kwargs)
            mtr = poutine.trace(poutine.condition(model, data=mp)).get_trace(*args, **kwargs)
            row = {"values": {k: _n(v) for k, v in _latent(gtr).items()}}
            for k in gp:  # conditioned sites count as latent values too
                if not _is_subsample(gtr.nodes[k]):
                    row["values"][k] = _n(gtr.nodes[k]["value"])
            for what, tr in (("guide", gtr), ("model", mtr)):
                tr.compute_log_prob()
                sums, tot_abs = {}, 0.0
                for name, s in tr.nodes.items():
                    if s["type"] != "sample" or _is_subsample(s):
                        continue
                    lp = s["log_prob"]
                    sums[name] = float(lp.sum())
                    tot_abs += float(torch.where(lp.isfinite(), lp, 0.0).abs().sum())
                row[what] = sums
                row[what + "_abs"] = tot_abs
            rows.append(row)
    out = {"guide": {}, "model": {}, "values": {}}
    for what in ("guide", "model", "values"):
        for k in rows[0][what]:
            out[what][k] = np.stack(
                [np.asarray(r[what][k], dtype=_inputs.float_np()) for r in rows]
            )
    out["guide_abs"] = np.array([r["guide_abs"] for r in rows], dtype=_inputs.float_np())
    out["model_abs"] = np.array([r["model_abs"] for r in rows], dtype=_inputs.float_np())
    return out


def model_logdensity(model, params, points, args, kwargs, constraints=None):
    """Total log density of the model with its latent sites set to ``points`` (a loop)."""
    n = len(next(iter(points.values())))
    out = np.empty(n, dtype=_inputs.float_np())
    with _scope(params, constraints or {}), torch.no_grad():
        for i in range(n):
            mp = {k: _t(v[i]) for k, v in points.items()}
            tr = poutine.trace(poutine.condition(model, data=mp)).get_trace(*args, **kwargs)
            out[i] = float(tr.log_prob_sum())
    return out


# ELBO and gradients ------------------------------------------------------------------------
def elbo_particles(model, guide, params, n, seed, args, kwargs, chunk=4096, constraints=None):
    """``n`` single-particle ELBO values: log p - log q per particle.

    Particles are vectorized with a plate; a model that cannot broadcast over that extra
    dimension (e.g. ``X @ w`` with a drawn ``w``: dualguide's particle rule is that the model
    never sees a particle dimension), or that subsamples a plate (each particle draws its own
    minibatch, :func:`_subsampled`), is run one particle at a time instead."""
    outs = []
    with _scope(params, constraints or {}, seed), torch.no_grad():
        nest = _plate_nesting(model, guide, args, kwargs)
        vectorized = _vectorizes(model, guide, nest, args, kwargs)
        for i in range(0, n, chunk):
            k = min(chunk, n - i)
            if vectorized:
                try:
                    outs.append(_chunk(model, guide, k, nest, args, kwargs))
                    continue
                except Exception:  # the model does not broadcast over particles
                    vectorized = False
            # one particle per run of the programs, which never see a particle dim
            outs += [_chunk(model, guide, None, nest, args, kwargs) for _ in range(k)]
    return np.concatenate(outs)


def _chunk(model, guide, k, nest, args, kwargs) -> np.ndarray:
    """``log p - log q`` per particle, from one trace of the guide and of the model replayed
    on it: ``k`` particles in a particle plate at dim ``-(nest + 1)``, or (``k`` None) one
    particle of the programs as they are."""
    if k is not None:
        guide, model = _vectorized(guide, k, -(nest + 1)), _vectorized(model, k, -(nest + 1))
    gtr = poutine.trace(guide).get_trace(*args, **kwargs)
    mtr = poutine.trace(poutine.replay(model, trace=gtr)).get_trace(*args, **kwargs)
    num = 1 if k is None else k
    return _n(_per_particle(mtr, num, nest) - _per_particle(gtr, num, nest))


def grad_batches(
    model, guide, params, constraints, num_batches, batch_size, seed, args, kwargs, chunk=None
):
    """Loss and gradient w.r.t. the (constrained) params from ``num_batches`` independent
    native ``Trace_ELBO(num_particles=batch_size, vectorize_particles=True)`` estimates
    (one batch at a time: ``chunk`` is accepted for the common signature; a program with a
    subsampled plate with ``vectorize_particles=False``, a minibatch per particle).

    The params enter as leaf tensors substituted for the param sites, so the gradient is with
    respect to their constrained values (as on the NumPyro side).  A Pyro autoguide reads
    its plain ``nn.Parameter`` s (e.g. ``AutoDiagonalNormal.loc``) from the module and
    ignores what a ``param`` site returns: those leaves are put into the module instead."""
    losses = np.empty(num_batches, dtype=_inputs.float_np())
    leaves = {k: _t(v).requires_grad_(True) for k, v in params.items()}
    grads: dict[str, list] = {k: [] for k in leaves}
    with _scope({}, {}, seed):
        nest = _plate_nesting(model, guide, args, kwargs)
        _module_leaves(guide, leaves)
        elbo = Trace_ELBO(
            num_particles=batch_size,
            vectorize_particles=_vectorizes(model, guide, nest, args, kwargs),
            max_plate_nesting=nest,
        )
        m = poutine.substitute(model, data=leaves)
        g = poutine.substitute(guide, data=leaves)
        names = list(leaves)
        for b in range(num_batches):
            with warnings.catch_warnings():  # model and guide each use only some of the params
                warnings.filterwarnings("ignore", message="pyro.module data did not find params")
                try:
                    loss = elbo.differentiable_loss(m, g, *args, **kwargs)
                except Exception:
                    if not elbo.vectorize_particles:
                        raise
                    # the model does not broadcast over particles (it never sees a particle
                    # dimension in a fit): the particles one after another
                    elbo = Trace_ELBO(num_particles=batch_size, max_plate_nesting=nest)
                    loss = elbo.differentiable_loss(m, g, *args, **kwargs)
            if loss.requires_grad:
                gs = torch.autograd.grad(loss, [leaves[k] for k in names], allow_unused=True)
            else:  # no param reaches the loss
                gs = [None] * len(names)
            losses[b] = float(loss.detach())
            for k, gk in zip(names, gs):
                grads[k].append(
                    np.zeros(tuple(leaves[k].shape), _inputs.float_np())
                    if gk is None
                    else _n(gk).copy()
                )
    return losses, {k: np.stack(v) for k, v in grads.items()}


def _module_leaves(guide, leaves: dict) -> None:
    """Make the set-up module's plain ``nn.Parameter`` s named in ``leaves`` the leaves."""
    if not isinstance(guide, torch.nn.Module):
        return
    for mod in guide.modules():
        prefix = getattr(mod, "_pyro_name", None)
        if prefix is None:
            continue
        owned = [
            (mod, pname, f"{prefix}.{pname}" if prefix else pname) for pname in mod._parameters
        ]
        # a plain nn.Module child (an IAF's transform): pyro.module's "{owner}$$${path}" names
        for cname, child in mod._modules.items():
            if child is None or hasattr(child, "_pyro_name"):  # PyroModules come on their own
                continue
            owner = f"{prefix}.{cname}" if prefix else cname
            for sub, leaf in child.named_modules():
                for pname in leaf._parameters:
                    owned.append((leaf, pname, f"{owner}$$${sub + '.' if sub else ''}{pname}"))
        for owner_mod, pname, full in owned:
            if full in leaves and not pname.endswith("_unconstrained"):
                p = torch.nn.Parameter(leaves[full].detach().clone())
                owner_mod._parameters[pname] = p
                leaves[full] = p


# lockstep ----------------------------------------------------------------------------------
def rsample_from_noise(name, d, noise, shape):
    """A reparameterized draw of ``d`` (full shape ``shape``) from standard noise arrays
    (the neutral :func:`dualguide._noise.rsample_from_noise` with this backend's mixture)."""
    from . import mixture

    return _noise.rsample_from_noise(name, d, noise, tuple(shape), mixture)


class _NoiseMessenger(Messenger):
    """Set each latent guide sample site's value to its draw from ``noise[site]``.

    Wraps the particle plate, so it sees distributions already broadcast by every plate.
    """

    def __init__(self, noise):
        super().__init__()
        self.noise = noise

    def _pyro_sample(self, msg):
        if msg["is_observed"] or msg["value"] is not None:
            return
        nz = self.noise.get(msg["name"])
        if nz is None:
            return
        d = msg["fn"]
        shape = tuple(d.shape())
        v = rsample_from_noise(msg["name"], d, nz, shape)
        if v is not None:
            msg["value"] = v.expand(shape)


def lockstep_run(model, guide, u0, constraints, noise, opt, args, kwargs):
    """SVI driven by ``noise[site][kind]`` arrays of shape (steps, particles, *site shape).

    Starts from the unconstrained params ``u0``; updates with dualguide's torch Adam (the
    same update as jax's); the loss is native ``Trace_ELBO`` on the particle-vectorized
    programs scaled by 1/particles.  Returns ``{"losses": (steps,), "params": {name:
    (steps + 1, ...)}}`` (unconstrained).
    """
    first = next(iter(noise.values()))
    steps, num = next(iter(first.values())).shape[:2]
    losses = np.empty(steps, dtype=_inputs.float_np())
    traj = {k: [np.asarray(v, _inputs.float_np())] for k, v in u0.items()}
    tnoise = {
        s: {k: torch.from_numpy(np.asarray(v, _inputs.float_np())) for k, v in d.items()}
        for s, d in noise.items()
    }
    with _scope(u0, constraints, 0, unconstrained=True) as store:
        nest = _plate_nesting(model, guide, args, kwargs)
        dim = -(nest + 1)
        m = _vectorized(model, num, dim, scale=1.0 / num)
        g = _vectorized(guide, num, dim, scale=1.0 / num)
        elbo = Trace_ELBO(num_particles=1, max_plate_nesting=nest + 1)
        optim = make_optimizer(opt)
        leaves = dict(store.named_parameters())
        for t in range(steps):
            nz = {s: {k: v[t] for k, v in d.items()} for s, d in tnoise.items()}
            with _NoiseMessenger(nz):
                losses[t] = elbo.loss_and_grads(m, g, *args, **kwargs)
            optim(list(leaves.values()))
            for k, p in leaves.items():
                p.grad = None
                traj[k].append(_n(p).copy())
    return {"losses": losses, "params": {k: np.stack(v) for k, v in traj.items()}}


# guide samples -----------------------------------------------------------------------------
def sample_guide(guide, params, n, seed, args, kwargs, shapes=None, constraints=None, chunk=None):
    """``n`` draws of every latent guide sample site: {site: (n, *shape)} (``chunk`` at a time)."""
    chunk = max(1, int(chunk or n))
    parts: dict[str, list] = {}
    with _scope(params, constraints or {}, seed), torch.no_grad():
        nest = _plate_nesting(guide, guide, args, kwargs)
        for i in range(0, n, chunk):
            k = min(chunk, n - i)
            tr = poutine.trace(_vectorized(guide, k, -(nest + 1))).get_trace(*args, **kwargs)
            for name, v in _latent(tr).items():
                shape = (shapes or {}).get(name)
                a = _n(v)
                a = a.reshape((k,) + tuple(shape)) if shape is not None else a.reshape(k, -1)
                parts.setdefault(name, []).append(a)
    return {name: np.concatenate(v) for name, v in parts.items()}
