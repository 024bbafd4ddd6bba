"""The rotated mixture (the b/theta problem): a Delta-mapped guide fitted on NumPyro and on Pyro.

Target (unnormalized), with b* = 1.5, theta* = 0.6 and the seed user's map::

    p(x, y) ~ [exp(-(u1 - b*)^2) + exp(-(u1 + b*)^2)] / (1 + u2^2)
    u1 = cos(theta*) x - sin(theta*) y,   u2 = cos(theta*) x + sin(theta*) y

The map's determinant is sin(2 theta*), not 1, so log Z = log(2 pi^(3/2)) - log|sin 1.2|
= 2.4806.  The guide draws u1 from an equal-weight mixture of Normal(-b, 1/sqrt 2)
and Normal(b, 1/sqrt 2), u2 from Cauchy(0, 1), and maps them to (x, y) with the
inverse map through ``dg.transformed``, which adds log|det|.  At the optimum
(b, theta) = (b*, theta*) the guide equals the target, so the ELBO equals log Z;
``guide_no_jacobian`` (Delta sites written by hand, no log-det) reaches the same
params but its ELBO is 2.4103, off by log|sin 1.2|.

    python examples/rotated_mixture.py --backend both
    python examples/rotated_mixture.py --backend both --proper-rotation

``--proper-rotation`` uses u2 = sin(theta*) x + cos(theta*) y instead (a rotation,
determinant 1, log Z = log(2 pi^(3/2)) = 2.4102); with it the Jacobian term is 0.
"""

from __future__ import annotations

import argparse
import math
import sys

import dualguide as dg
from dualguide import constraints, ops
from dualguide import distributions as dist

B_TRUE = 1.5
THETA_TRUE = 0.6
#: log normalizer of the target with the seed's map (det sin 2 theta*)
LOG_Z = math.log(2 * math.pi**1.5) - math.log(abs(math.sin(2 * THETA_TRUE)))
#: log normalizer with the proper rotation (det 1)
LOG_Z_PROPER = math.log(2 * math.pi**1.5)
#: ELBO of the exact guide when the log-det is left out (seed's map)
ELBO_NO_JACOBIAN = LOG_Z + math.log(abs(math.sin(2 * THETA_TRUE)))
B_INIT, THETA_INIT = 0.5, 0.3

_C, _S = math.cos(THETA_TRUE), math.sin(THETA_TRUE)


def _log_target(u1, u2):
    return ops.logaddexp(-((u1 - B_TRUE) ** 2), -((u1 + B_TRUE) ** 2)) - ops.log1p(u2**2)


def _latents():
    x = dg.sample("x", dist.ImproperUniform(constraints.real, (), ()))
    y = dg.sample("y", dist.ImproperUniform(constraints.real, (), ()))
    return x, y


def model():
    """Improper flat priors on x, y and the target as a factor (the seed's map)."""
    x, y = _latents()
    dg.factor("target", _log_target(_C * x - _S * y, _C * x + _S * y))


def model_proper_rotation():
    """The same target with the proper rotation u2 = sin(theta*) x + cos(theta*) y."""
    x, y = _latents()
    dg.factor("target", _log_target(_C * x - _S * y, _S * x + _C * y))


def _params_and_base():
    b = dg.param("b", B_INIT, constraint=constraints.positive)
    theta = dg.param("theta", THETA_INIT, constraint=constraints.interval(0.0, math.pi / 2))
    mix = dist.MixtureSameFamily(
        dist.Categorical(probs=ops.asarray([0.5, 0.5])),
        dist.Normal(ops.stack([-b, b]), 1.0 / math.sqrt(2.0)),
    )
    return theta, {"u1": mix, "u2": dist.Cauchy(0.0, 1.0)}


def guide():
    """u1 ~ mixture, u2 ~ Cauchy, (x, y) = inverse of the seed's map, with log|det|."""
    theta, base = _params_and_base()
    c, s = ops.cos(theta), ops.sin(theta)
    dg.transformed(("x", "y"), base, lambda u1, u2: ((u1 + u2) / (2 * c), (u2 - u1) / (2 * s)))


def guide_no_jacobian():
    """The trap: the same map with x, y recorded by hand as Delta sites, no log-det."""
    theta, base = _params_and_base()
    c, s = ops.cos(theta), ops.sin(theta)
    u1 = dg.sample("u1", base["u1"], infer={"is_auxiliary": True})
    u2 = dg.sample("u2", base["u2"], infer={"is_auxiliary": True})
    dg.sample("x", dist.Delta((u1 + u2) / (2 * c)))
    dg.sample("y", dist.Delta((u2 - u1) / (2 * s)))


def guide_proper_rotation():
    """Guide for the proper rotation: (x, y) = R(-theta) (u1, u2), log|det| = 0."""
    theta, base = _params_and_base()
    c, s = ops.cos(theta), ops.sin(theta)
    dg.transformed(("x", "y"), base, lambda u1, u2: (c * u1 + s * u2, -s * u1 + c * u2))


#: settings that reach b = 1.5 +- 0.05, theta = 0.6 +- 0.02 on both backends for any seed tried
FIT_SETTINGS = dict(
    num_steps=2000,
    num_particles=32,
    optim=dg.optim.ClippedAdam(lr=0.05, lrd=0.997),
)

#: particles for the ELBO estimate at the fitted params (see docs/transformed_latents.md: off the
#: exact theta the ELBO has heavy tails, so more particles do not make it more precise)
ELBO_PARTICLES = 20_000


def fit_and_score(backend: str, seed: int = 0, proper: bool = False) -> dict:
    """Fit the guide (and, for the seed's map, the no-Jacobian guide); estimate ELBOs.

    The ELBOs of both guides are estimated at the Jacobian guide's fitted params and at the
    exact optimum, with the same draws, so they differ by exactly the log-det term.
    """
    from dualguide.crosscheck import elbo_estimate

    m = model_proper_rotation if proper else model
    g = guide_proper_rotation if proper else guide
    out = {"fit": dg.fit(m, g, backend=backend, seed=seed, progress=False, **FIT_SETTINGS)}
    guides = {"jacobian": g}
    if not proper:
        guides["no jacobian"] = guide_no_jacobian
        out["fit no jacobian"] = dg.fit(
            m, guide_no_jacobian, backend=backend, seed=seed, progress=False, **FIT_SETTINGS
        )
    at = {"fitted": out["fit"].params, "optimum": {"b": B_TRUE, "theta": THETA_TRUE}}
    for label, gg in guides.items():
        for where, params in at.items():
            out[(label, where)] = elbo_estimate(
                m, gg, params, backend=backend, num_particles=ELBO_PARTICLES, seed=seed + 1
            )
    return out


def _optim_text(opt) -> str:
    return f"{opt.name}(lr={opt.lr}, lrd={opt.lrd}, clip_norm={opt.clip_norm})"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backend", choices=["numpyro", "pyro", "both"], default="both")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--proper-rotation",
        action="store_true",
        help="use u2 = sin(t) x + cos(t) y (determinant 1)",
    )
    a = p.parse_args(argv)
    backends = ["numpyro", "pyro"] if a.backend == "both" else [a.backend]
    log_z = LOG_Z_PROPER if a.proper_rotation else LOG_Z
    res = {b: fit_and_score(b, a.seed, a.proper_rotation) for b in backends}
    what = "proper rotation (det 1)" if a.proper_rotation else "seed's map (det sin 2 theta)"
    print(f"rotated mixture, {what}: truth b = {B_TRUE}, theta = {THETA_TRUE}, log Z = {log_z:.4f}")
    print(
        f"fits: {FIT_SETTINGS['num_steps']} steps, {FIT_SETTINGS['num_particles']} particles, "
        f"{_optim_text(FIT_SETTINGS['optim'])}\n"
    )
    fits = ["fit"] + ([] if a.proper_rotation else ["fit no jacobian"])
    print(f"{'fit':<19}{'backend':<9}{'b':>8}{'theta':>9}{'ELBO estimator':>16}{'time':>8}")
    ok = True
    for key in fits:
        for b in backends:
            r = res[b][key]
            bb, th = float(r.params["b"]), float(r.params["theta"])
            if key == "fit":
                ok &= abs(bb - B_TRUE) <= 0.05 and abs(th - THETA_TRUE) <= 0.02
            label = "guide" if key == "fit" else "no-Jacobian guide"
            print(f"{label:<19}{b:<9}{bb:>8.4f}{th:>9.5f}{r.elbo:>16}{r.wall_time:>7.1f}s")
    print(f"\nELBO ({ELBO_PARTICLES} draws; same draws for both guides)")
    print(f"{'guide':<13}{'params':<9}{'backend':<9}{'ELBO':>9}{'+-':>8}{'ELBO - log Z':>14}")
    labels = ["jacobian"] + ([] if a.proper_rotation else ["no jacobian"])
    for where in ("fitted", "optimum"):
        for label in labels:
            for b in backends:
                e, se = res[b][(label, where)]
                if label == "jacobian":
                    tol = 1e-3 if where == "optimum" else 4.5 * se + 0.003
                    ok &= abs(e - log_z) <= tol
                print(f"{label:<13}{where:<9}{b:<9}{e:>9.4f}{se:>8.4f}{e - log_z:>14.4f}")
    if not a.proper_rotation:
        print(
            f"\nwithout the log-det the ELBO misses log Z by log|sin 1.2| = "
            f"{math.log(abs(math.sin(2 * THETA_TRUE))):.4f} (ELBO {ELBO_NO_JACOBIAN:.4f}); "
            "the fitted params barely move.\nOff the exact theta the ELBO estimate has heavy "
            "tails (Cauchy u2), hence its larger error bars at fitted params."
        )
    print("fits within b +- 0.05, theta +- 0.02 and ELBO = log Z:", "yes" if ok else "NO")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
