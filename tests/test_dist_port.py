"""Export and port carry the distributions added for issue 12 (the same table drives them)."""

from __future__ import annotations

from pathlib import Path

import dualguide as dg
from dualguide.porting.port import port

DATA = Path(__file__).resolve().parent / "data"


def test_shared_distributions_round_trip_through_numpyro(tmp_path):
    """Neutral -> NumPyro source -> neutral: keyword renames both ways, traces agree."""
    exported = tmp_path / "shared_numpyro.py"
    dg.export(DATA / "neutral_shared_dists.py", backend="numpyro", out=exported)
    native = exported.read_text()
    # Pyro's keywords in the neutral program, NumPyro's in the export
    assert "dist.LKJCholesky(dimension=2, concentration=w)" in native
    assert "dist.Wishart(concentration=4.0, scale_tril=chol)" in native
    assert "dist.ZeroInflatedDistribution(base, gate=0.2)" in native
    r = port(exported)
    assert r.verified, r.report()
    assert "dist.LKJCholesky(dim=2, concentration=w)" in r.source
    assert "dist.Wishart(df=4.0, scale_tril=chol)" in r.source
    assert "dist.InverseGamma(3.0, 2.0)" in r.source


def test_shared_distributions_export_to_pyro(tmp_path):
    exported = tmp_path / "shared_pyro.py"
    dg.export(DATA / "neutral_shared_dists.py", backend="pyro", out=exported)
    native = exported.read_text()
    # Pyro's LKJCholesky is dualguide's out-of-place subclass (it traces under torch.jit),
    # inlined; float arguments of classes that need tensors are written as tensors
    assert "LKJCholesky(dim=2, concentration=w)" in native
    assert "class LKJCholesky(_SupportMasked, pd.LKJCholesky):" in native
    assert "masked(dist.Wishart)(df=torch.tensor(4.0), scale_tril=chol)" in native
    compile(native, str(exported), "exec")


def test_transformed_distribution_exports(tmp_path):
    """Neutral transforms export as the framework's transform classes (table-driven)."""
    src = tmp_path / "td.py"
    src.write_text(
        "import dualguide as dg\n"
        "from dualguide import constraints\n"
        "from dualguide import distributions as dist\n\n\n"
        "def guide():\n"
        '    m = dg.param("m", 0.0)\n'
        '    s = dg.param("s", 0.5, constraint=constraints.positive)\n'
        "    t = [dist.transforms.AffineTransform(1.0, 2.0), dist.transforms.ExpTransform()]\n"
        '    dg.sample("x", dist.TransformedDistribution(dist.Normal(m, s), t))\n'
    )
    for b in ("numpyro", "pyro"):
        out = tmp_path / f"td_{b}.py"
        dg.export(src, backend=b, out=out)
        native = out.read_text()
        assert "dist.transforms.AffineTransform(1.0, 2.0), dist.transforms.ExpTransform()" in native
        compile(native, str(out), "exec")
    # and NumPyro's transform classes port back to the neutral ones
    r = port(tmp_path / "td_numpyro.py")
    assert r.verified, r.report()
    assert "dist.transforms.AffineTransform(1.0, 2.0), dist.transforms.ExpTransform()" in r.source
