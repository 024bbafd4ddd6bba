"""The README's promises: exactly two fresh-machine commands, CI runs the test one, the quickstart runs."""

from __future__ import annotations

import re
import subprocess
import sys

from .conftest import ROOT

README = (ROOT / "README.md").read_text()


def _fresh_commands() -> list[str]:
    section = README.split("## Fresh machine", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.*?)\n```", section, re.S)


def test_exactly_two_fresh_machine_commands():
    cmds = _fresh_commands()
    assert len(cmds) == 2
    demo, tests = cmds
    assert "examples/seed_gaussian.py" in demo and "-c constraints-dev.txt" in demo
    assert "pytest" in tests and "-c constraints-dev.txt" in tests
    # lint, format and types are part of the test run (CI fails on any of them)
    assert "ruff check ." in tests and "ruff format --check ." in tests and "mypy" in tests


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert _fresh_commands()[1] in ci.splitlines()


def test_constraints_file_pins_torch_for_dev_only():
    assert "torch==2.13.0" in (ROOT / "constraints-dev.txt").read_text()
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert "torch==" not in pyproject


def test_quickstart_runs_on_both_backends():
    code = README.split("## Quickstart", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    lines = [ln.split() for ln in r.stdout.strip().splitlines()]
    assert [ln[0] for ln in lines] == ["numpyro", "pyro"]
    for ln in lines:
        # same settings as the seed example: within its bounds
        assert abs(float(ln[1]) - 1.0) < 0.05 and abs(float(ln[2]) - 2.0) < 0.1


def test_transformed_latents_snippet_traces_on_both_backends():
    import dualguide as dg

    section = README.split("## Transformed latents", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    ns: dict = {}
    exec(compile(code, "README.md", "exec"), ns)
    for backend in ("numpyro", "pyro"):
        sites = dg.trace(ns["guide"], backend=backend)
        assert sites["x"].dist == "Delta" and sites["u1"].infer.get("is_auxiliary")
        # the first Delta carries -log|det J| of the map: det = 1 / sin(2 theta) at theta = 0.3
        import math

        assert float(sites["x"].log_prob) == __import__("pytest").approx(
            math.log(abs(math.sin(0.6))), rel=1e-4
        )
