"""The gallery must not regress (issue 16): per model, what the scoreboard recorded still holds.

``examples/gallery/expected.json`` is written by the regeneration command
(``python examples/gallery/scoreboard.py``): per model, the status of ``port`` on each native
version and the verdict of a short crosscheck of the ported program at the CI settings
(``scoreboard.CI``: 60 steps, 2 particles; ``scoreboard.ci_verdict``: both backends fit without
error and the deterministic checks -- log-density and gradient parity -- pass; fitted params
are not compared after so few steps).  A model recorded as porting
("ok") must keep porting, and one whose CI crosscheck was "ok" must keep passing it.  A model
that improves does not fail; regenerate the scoreboard to record it.  The full comparison
with the native originals runs only in the regeneration command.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

GALLERY = Path(__file__).resolve().parent.parent / "examples" / "gallery"
EXPECTED = json.loads((GALLERY / "expected.json").read_text(encoding="utf-8"))

pytestmark = pytest.mark.gallery


def _scoreboard():
    spec = importlib.util.spec_from_file_location("gallery_scoreboard", GALLERY / "scoreboard.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


SB = _scoreboard()


def test_every_model_is_written_twice_and_recorded():
    names = SB.models()
    assert len(names) >= 20
    assert sorted(names) == sorted(EXPECTED), "regenerate: python examples/gallery/scoreboard.py"
    for n in names:
        st = SB.settings(n)
        assert {"steps", "particles", "lr"} <= set(st), n
        for fw in SB.FILES:
            tree = ast.parse((GALLERY / n / SB.FILES[fw]).read_text(encoding="utf-8"))
            doc = ast.get_docstring(tree) or ""
            assert "Follows" in doc, f"{n}/{SB.FILES[fw]}: say which tutorial/example it follows"
            assert any(isinstance(s, ast.FunctionDef) and s.name == "run" for s in tree.body)
            SB.svi_parts(GALLERY / n / SB.FILES[fw])  # the SVI call the scoreboard reads


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_no_regression(name, tmp_path):
    want = EXPECTED[name]
    mods = {}
    for fw in SB.FILES:
        status, mods[fw] = SB.port_one(name, fw, tmp_path / f"{fw}_neutral.py")
        if want[f"port_{fw}"] == "ok":
            assert status.status == "ok", (
                f"{name}: port of {SB.FILES[fw]} regressed: {status.lines}"
            )
    if want["ci_crosscheck"] != "ok":
        return
    mod = mods[want["ci_crosscheck_from"]]
    assert mod is not None, f"{name}: the ported program to cross-check is gone"
    report = SB.run_crosscheck(mod, SB.settings(name), ci=True)
    verdict, failures = SB.ci_verdict(report)
    assert verdict == "ok", f"{name}: the CI crosscheck regressed: {failures}"


def test_posterior_comparison_for_network_guides(tmp_path):
    # a flow guide's weights differ from fit to fit, so the scoreboard compares the posterior
    # its native original reports with the one dualguide's fit gives (neutra_flow).  Here on
    # the coin at alpha = beta = 15: Beta(15, 15) has mean 0.5 and sd 0.0898 exactly; 4000
    # draws give them to ~0.0014 and ~0.001, far inside the limit 0.15 + 0.1 |value|
    _status, mod = SB.port_one("coin", "numpyro", tmp_path / "coin.py")
    params = {"alpha_q": 15.0, "beta_q": 15.0}
    exact = {"latent_fairness": {"mean": 0.5, "sd": (15 * 15 / (30**2 * 31)) ** 0.5}}
    for b in SB.FILES:
        ours = SB.posterior_summary(mod, params, b, ["latent_fairness"])
        assert abs(ours["latent_fairness"]["mean"] - 0.5) < 0.01, b
        assert abs(ours["latent_fairness"]["sd"] - exact["latent_fairness"]["sd"]) < 0.01, b
        assert SB.compare_posterior(exact, ours).startswith("ok"), b
    off = {"latent_fairness": {"mean": 0.8, "sd": 0.0898}}
    assert "latent_fairness mean" in SB.compare_posterior(off, ours)
    # the native neutra_flow files report the posterior the scoreboard compares
    for fw in SB.FILES:
        src = (GALLERY / "neutra_flow" / SB.FILES[fw]).read_text(encoding="utf-8")
        assert 'out["posterior"]' in src, fw


def test_loss_comparison_for_network_models(tmp_path):
    # a VAE's weights are not identifiable, so the scoreboard compares its final loss (the mean
    # of the last 10% of the steps) with the native original's; limit LOSS_REL |loss| + 4 sd
    losses = [300.0] * 90 + [100.0, 102.0, 98.0, 100.0, 101.0, 99.0, 100.0, 100.0, 102.0, 98.0]
    near = {"loss": {"mean": 103.0, "sd": 1.0}}  # |diff| 3 <= 0.02 * 100 + 4 * 1.26
    far = {"loss": {"mean": 110.0, "sd": 1.0}}  # |diff| 10 > 7.0
    assert SB.compare_loss(near, losses).startswith("ok")
    assert SB.compare_loss(far, losses).startswith("FAIL")
    # the native VAE files report the loss the scoreboard compares, and the scoreboard uses
    # dualguide's own fit of the port (the original's settings, seed and init)
    for fw in SB.FILES:
        src = (GALLERY / "vae" / SB.FILES[fw]).read_text(encoding="utf-8")
        assert 'out["loss"]' in src, fw
    fit = SB.own_fit(
        SB.port_one("coin", "numpyro", tmp_path / "coin.py")[1], SB.settings("coin"), "numpyro"
    )
    assert fit is not None and len(fit.losses) == SB.settings("coin")["steps"]


def test_agreement_limit_from_the_originals_seed_spread():
    # the params' limit is ABS + REL |b| + SPREAD_K s, s the original's own seed spread: here
    # |diff| 0.2 at b = 1.2 is over the floor 0.05 + 0.06 = 0.11; a spread s = 0.03 (limit
    # 0.11 + 5.66 * 0.03 = 0.28) admits it, s = 0.01 (limit 0.167) does not
    native = {"params": {"x": [1.0, 2.0]}}
    fit = {"x": np.array([1.2, 2.0])}
    assert SB.compare(native, fit).startswith("FAIL: x differ")
    assert SB.compare(native, fit, {"x": [0.03, 0.0]}).startswith("ok (max |diff| 0.2")
    assert SB.compare(native, fit, {"x": [0.01, 0.5]}).startswith("FAIL: x differ")
    # the spread is the per-element sd (ddof 1) over the runs; a failed run is left out
    runs = [{"params": {"x": [1.0, 2.0]}}, {"params": {"x": [1.2, 2.0]}}, {"error": "boom"}]
    assert SB.seed_spread(runs)["x"] == pytest.approx([0.2 / 2**0.5, 0.0])
    assert SB.seed_spread(runs[:1]) == {}
    # each native original takes the seed: on both frameworks the same seed repeats its params
    # exactly and another seed moves them (the spread is measured, not 0)
    st = {"steps": 20, "particles": 2, "lr": 0.01}
    for fw in SB.FILES:
        a, b, c = (SB.run_native("coin", fw, st, seed=i) for i in (0, 0, 1))
        assert SB.seed_spread([a, b]) == {"alpha_q": 0.0, "beta_q": 0.0}, fw
        assert all(v > 0 for v in SB.seed_spread([a, c]).values()), fw
