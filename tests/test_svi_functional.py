"""NumPyro's functional SVI spelling on dg.infer.SVI (init / update / get_params / run, and
the scan / fori_loop / PRNGKey helpers ported NumPyro loops use), on both backends."""

from __future__ import annotations

import numpy as np
import pytest

import dualguide as dg
from dualguide.errors import SpecError

#: every test runs with an empty param store (the fixture clears it)
pytestmark = pytest.mark.usefixtures("conjugate")


def make(c, backend):
    return dg.infer.SVI(
        c.model,
        c.guide,
        dg.optim.ClippedAdam(lr=0.05, lrd=0.99),
        loss=dg.infer.Trace_ELBO(num_particles=8),
        backend=backend,
    )


def test_init_update_loop_reaches_the_posterior(backend, conjugate):
    Y, MEAN, PREC = conjugate.Y, conjugate.MEAN, conjugate.PREC
    svi = make(conjugate, backend)
    state = svi.init(dg.infer.PRNGKey(0), Y)
    init = svi.get_params(state)
    assert float(init["m"]) == 0.0 and float(init["s"]) == pytest.approx(1.0)
    losses = []
    for _ in range(400):
        state, loss = svi.update(state, Y)
        losses.append(loss)
    assert state.step == 400 and isinstance(losses[0], float)
    p = svi.get_params(state)
    assert isinstance(p["m"], np.ndarray)
    # exact posterior; lr decayed to 0.05 * 0.99**400 = 0.001 with 8 particles: ~0.01 noise
    assert float(p["m"]) == pytest.approx(MEAN, abs=0.05)
    assert float(p["s"]) == pytest.approx(PREC**-0.5, abs=0.04)
    assert np.isfinite(svi.evaluate(state, Y))


def test_init_draws_nothing_the_first_update_is_the_first_step(backend, conjugate):
    """init creates the params without using the seed's noise: init + update gives the loss
    of a plain first step with the same seed."""
    Y, model, guide = conjugate.Y, conjugate.model, conjugate.guide
    a = make(conjugate, backend)
    state = a.init(7, Y)
    _, loss_a = a.update(state, Y)
    dg.clear_param_store()
    b = dg.infer.SVI(
        model,
        guide,
        dg.optim.ClippedAdam(lr=0.05, lrd=0.99),
        loss=dg.infer.Trace_ELBO(num_particles=8),
        backend=backend,
        seed=7,
    )
    assert loss_a == pytest.approx(b.step(Y), rel=1e-6)


def test_run_scan_and_fori_loop_give_numpy_results(backend, conjugate):
    Y, MEAN = conjugate.Y, conjugate.MEAN
    svi = make(conjugate, backend)
    res = svi.run(dg.infer.PRNGKey(0), 300, Y, progress_bar=False)
    assert res.losses.shape == (300,) and res.losses.dtype == np.float32
    assert float(res.params["m"]) == pytest.approx(MEAN, abs=0.05)
    assert res.state.step == 300

    dg.clear_param_store()
    state = svi.init(dg.infer.PRNGKey(1), Y)

    def body(state, _):
        return svi.update(state, Y)

    state, losses = dg.infer.scan(body, state, None, length=300)
    assert isinstance(losses, np.ndarray) and losses.shape == (300,)
    assert float(svi.get_params(state)["m"]) == pytest.approx(MEAN, abs=0.05)

    dg.clear_param_store()
    state = svi.init(dg.infer.PRNGKey(2), Y)
    update = dg.infer.jit(svi.update)
    state = dg.infer.fori_loop(0, 300, lambda i, s: update(s, Y)[0], state)
    assert state.step == 300
    assert float(svi.get_params(state)["m"]) == pytest.approx(MEAN, abs=0.05)


def test_a_stale_state_or_a_key_is_a_spec_error(backend, conjugate):
    Y = conjugate.Y
    svi = make(conjugate, backend)
    s0 = svi.init(0, Y)
    s1, _ = svi.update(s0, Y)
    with pytest.raises(SpecError, match="not the SVI object's latest"):
        svi.update(s0, Y)
    dg.clear_param_store()
    with pytest.raises(SpecError, match="param store cleared"):
        svi.update(s1, Y)
    with pytest.raises(SpecError, match="int seed"):
        svi.init(np.array([0, 1], dtype=np.uint32), Y)
    with pytest.raises(SpecError, match="expected the state"):
        svi.update({"params": {}}, Y)
    with pytest.raises(SpecError, match="num_steps"):
        svi.run(0, 0, Y)


def test_init_restarts_from_the_init_values_step_continues(backend, conjugate):
    """NumPyro's init / run restart from the init values; Pyro's step on a new object
    continues from the param store (each spelling keeps its framework's meaning)."""
    Y, model, guide = conjugate.Y, conjugate.model, conjugate.guide
    svi = make(conjugate, backend)
    res = svi.run(0, 100, Y)
    m = float(res.params["m"])
    assert m > 0.5
    state = svi.init(1, Y)
    assert float(svi.get_params(state)["m"]) == 0.0  # restarted
    assert float(dg.get_param_store()["m"]) == 0.0
    m2 = float(svi.run(0, 100, Y).params["m"])
    other = dg.infer.SVI(model, guide, dg.optim.Adam(lr=1e-6), backend=backend, seed=0)
    other.step(Y)
    assert float(other.params["m"]) == pytest.approx(m2, abs=1e-4)  # continued from the store


def test_the_docs_functional_example_runs(backend, backend_state, capsys):
    """docs/handlers.md: the functional-spelling block, after the page's first block."""
    from pathlib import Path

    dg.set_backend(backend)
    doc = (Path(__file__).resolve().parents[1] / "docs" / "handlers.md").read_text()
    blocks = [b.split("```", 1)[0] for b in doc.split("```python\n")[1:]]
    first = blocks[0]
    functional = next(b for b in blocks if "svi.init(dg.infer.PRNGKey(0), y)" in b)
    ns = {"__name__": "docs_handlers"}
    exec(compile(first, "docs/handlers.md", "exec"), ns)
    capsys.readouterr()
    exec(compile(functional, "docs/handlers.md", "exec"), ns)
    printed = doc.split(functional + "```\n\nprints `", 1)[1].split("`", 1)[0]
    assert capsys.readouterr().out.strip() == printed
