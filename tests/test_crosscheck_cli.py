"""``dualguide crosscheck FILE``: the command on both seed examples, JSON, plot, exit codes."""

from __future__ import annotations

import json

import pytest

from dualguide.cli import main

from .conftest import ROOT

SEED = str(ROOT / "examples" / "seed_gaussian.py")
MIXTURE = str(ROOT / "examples" / "rotated_mixture.py")


def test_seed_gaussian_json(capsys):
    # short fit: the verdict may go either way, but the exit status must follow it
    rc = main(
        ["crosscheck", SEED, "--steps", "400", "--elbo-particles", "2000", "--lockstep", "--json"]
    )
    d = json.loads(capsys.readouterr().out)
    assert rc == (0 if d["ok"] else 1)
    assert d["model"] == "model_nofactor" and d["guide"] == "guide"
    # FIT_SETTINGS is used (16 particles, ClippedAdam), --steps overrides its num_steps
    assert d["settings"]["num_steps"] == 400 and d["settings"]["num_particles"] == 16
    assert d["settings"]["optim"].startswith("ClippedAdam")
    assert [p["name"] for p in d["params"]] == ["sig1_q", "sig2_q"]
    assert {"logdensity", "gradient", "lockstep", "elbo", "quadrature"} <= set(d["checks"])
    assert d["checks"]["logdensity"]["status"] == "pass"
    assert d["checks"]["lockstep"]["details"]["parted_at"] is None
    for b in ("numpyro", "pyro"):
        assert d["runs"][b]["error"] is None and d["runs"][b]["steps_per_second"] > 0


def test_rotated_mixture_table_and_plot(capsys, tmp_path):
    # (the lockstep, gradient and quadrature checks of this example run in test_crosscheck.py;
    # here the command itself, kept short)
    out = tmp_path / "mix.png"
    rc = main(
        [
            "crosscheck",
            MIXTURE,
            "--steps",
            "300",
            "--checks",
            "logdensity",
            "--reference",
            "none",
            "--elbo-particles",
            "2000",
            "--plot",
            str(out),
        ]
    )
    text = capsys.readouterr().out
    # piped (not a terminal): the plain-text table
    assert "param" in text and "theta" in text and "verdict:" in text
    assert rc == (0 if "verdict: OK" in text else 1)
    ld = next(line for line in text.splitlines() if "log-density parity" in line)
    assert " pass " in ld and "2 transformed site(s) recomputed" in ld
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"plot written to {out}" in text


def test_model_and_guide_by_name(tmp_path, capsys):
    f = tmp_path / "prog.py"
    f.write_text(
        "import dualguide as dg\n"
        "from dualguide import constraints, distributions as dist\n"
        "def target():\n    dg.sample('x', dist.Normal(1.0, 2.0))\n"
        "def q():\n"
        "    m = dg.param('m', 0.0)\n"
        "    s = dg.param('s', 1.0, constraint=constraints.positive)\n"
        "    dg.sample('x', dist.Normal(m, s))\n"
        "FIT_SETTINGS = dict(num_particles=16, optim=dg.optim.ClippedAdam(lr=0.05, lrd=0.996))\n"
    )
    rc = main(
        [
            "crosscheck",
            str(f),
            "--model",
            "target",
            "--guide",
            "q",
            "--steps",
            "1000",
            "--checks",
            "none",
            "--reference",
            "none",
            "--tol",
            "0.1",
            "--elbo-particles",
            "1000",
            "--json",
        ]
    )
    d = json.loads(capsys.readouterr().out)
    # 1000 steps x 16 particles with a decaying step size land within 0.05 of m = 1, s = 2
    # on both backends (seeds 0-4), so within 0.1 of each other
    assert rc == 0, d["failures"]
    assert d["checks"].keys() == {"doctor", "elbo"}
    vals = {p["name"]: p["values"] for p in d["params"]}
    for b in ("numpyro", "pyro"):
        assert vals["m"][b] == pytest.approx(1.0, abs=0.15)
        assert vals["s"][b] == pytest.approx(2.0, abs=0.15)


def test_fit_settings_loss_is_the_fits_loss(tmp_path, capsys):
    """The file's FIT_SETTINGS loss is the one the fits run (it was ignored: the verdict was
    about Trace_ELBO); --particles sets a loss object's particles, --loss replaces it."""
    f = tmp_path / "prog.py"
    f.write_text(
        "import dualguide as dg\n"
        "from dualguide import constraints, distributions as dist\n"
        "def model():\n    dg.sample('x', dist.Normal(1.0, 2.0))\n"
        "def guide():\n"
        "    m = dg.param('m', 0.0)\n"
        "    s = dg.param('s', 1.0, constraint=constraints.positive)\n"
        "    dg.sample('x', dist.Normal(m, s))\n"
        "FIT_SETTINGS = dict(loss=dg.infer.TraceMeanField_ELBO(num_particles=4))\n"
    )
    base = ["crosscheck", str(f), "--steps", "20", "--checks", "none", "--reference", "none"]
    base += ["--elbo-particles", "200", "--json"]

    def run(*extra):
        main(base + list(extra))
        captured = capsys.readouterr()
        assert "keys ignored" not in captured.err
        d = json.loads(captured.out)
        return d["settings"]["loss"], {b: r["elbo_estimator"] for b, r in d["runs"].items()}

    loss, est = run()
    assert loss == "TraceMeanField_ELBO(num_particles=4)"
    assert est == {"numpyro": "TraceMeanField_ELBO", "pyro": "JitTraceMeanField_ELBO"}
    assert run("--particles", "8")[0] == "TraceMeanField_ELBO(num_particles=8)"
    loss, est = run("--loss", "TraceGraph_ELBO")
    assert loss == "TraceGraph_ELBO" and est["numpyro"] == "TraceGraph_ELBO"


def test_bad_input_exits_2(tmp_path, capsys):
    assert main(["crosscheck", str(tmp_path / "missing.py")]) == 2
    assert "no such file" in capsys.readouterr().err
    f = tmp_path / "noguide.py"
    f.write_text("def model():\n    pass\n")
    assert main(["crosscheck", str(f)]) == 2
    err = capsys.readouterr().err
    assert "guide" in err and "--guide" in err
    assert main(["crosscheck", SEED, "--tol", "x=y"]) == 2
    assert main(["crosscheck", SEED, "--checks", "speed"]) == 2
