"""Run the dualguide benchmarks and write docs/benchmarks.md (+ the plot).

    python benchmarks/run.py            # full run (about 10 minutes on 2 cores)
    python benchmarks/run.py --quick    # smoke run (1-2 minutes), noisier figures
    python benchmarks/run.py --only 'numpyro:seed'      # a subset (regex on backend:problem:P)
    python benchmarks/run.py --only '^seeds|^memory'    # the many-seeds and memory rows
    python benchmarks/run.py --only '^batch' --no-write  # fit(batch=[...]) rows, print only
    python benchmarks/run.py --report-only              # re-render docs from docs/benchmarks.json
    python benchmarks/run.py --threads 1                # one intra-op thread (steadier when shared)

Every comparison runs in its own worker process (``benchmarks/worker.py``), in
which the variants it compares run interleaved, round after round, so each ratio
comes from one process under the same machine conditions.  Not part of the test
suite.  Prints each ratio with its target and whether it holds; writes
``docs/benchmarks.md``, ``docs/benchmarks.json`` (the raw results) and
``docs/bench_us_per_step.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import report  # noqa: E402

PARTICLES = (1, 16)
#: problems of the "many fits in one program" rows (32 seeds each)
SEED_PROBLEMS = ("seed", "plated1000")


def comparisons() -> list[list[str]]:
    import problems

    out = []
    for backend in ("numpyro", "pyro"):
        for name in problems.all_names():
            for P in PARTICLES:
                out.append([backend, name, str(P)])
    for backend in ("numpyro", "pyro"):
        for name in SEED_PROBLEMS:
            out.append(["seeds", backend, name])
    for backend in ("numpyro", "pyro"):
        for name in SEED_PROBLEMS:  # seed: 32 learning rates; plated1000: 32 datasets
            out.append(["batch", backend, name])
    for backend in ("numpyro", "pyro"):
        for variant in ("fit", "floor"):
            out.append(["memory", backend, variant])
    out.append(["import"])
    return out


def run_worker(argv: list[str], quick: bool, timeout: float, threads: int | None) -> dict:
    cmd = [sys.executable, str(HERE / "worker.py"), *argv] + (["--quick"] if quick else [])
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    env.pop("DUALGUIDE_BACKEND", None)
    if argv[0] == "memory":  # freed arrays leave the resident set at once (see worker.py)
        env["MALLOC_MMAP_THRESHOLD_"] = "65536"
    if threads:
        env["DG_BENCH_THREADS"] = str(threads)
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("{")]
    if res.returncode != 0 or not lines:
        tail = "\n".join(res.stderr.strip().splitlines()[-8:])
        return {"argv": argv, "error": f"worker exited {res.returncode}:\n{tail}"}
    out = json.loads(lines[-1])
    out["argv"] = argv
    return out


def machine_info() -> dict:
    import platform

    info = {"python": platform.python_version(), "platform": platform.platform()}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        info["cpu"] = platform.processor()
    info["cores"] = os.cpu_count()
    try:
        info["load_start"] = os.getloadavg()[0]
    except OSError:
        pass
    from importlib.metadata import PackageNotFoundError, version

    for pkg in ("dualguide", "numpy", "jax", "jaxlib", "numpyro", "torch", "pyro-ppl"):
        try:
            info[pkg] = version(pkg)
        except PackageNotFoundError:
            info[pkg] = "not installed"
    return info


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="dualguide benchmarks (not part of the tests)")
    p.add_argument("--quick", action="store_true", help="short smoke run (noisier)")
    p.add_argument("--only", default=None, help="regex on 'backend:problem:P' (or 'import')")
    p.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    p.add_argument("--report-only", action="store_true", help="re-render from the saved JSON")
    p.add_argument("--no-write", action="store_true", help="print only; leave docs/ alone")
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="intra-op threads for torch and XLA (default: the frameworks' own); "
        "1 gives steadier figures on a shared machine",
    )
    a = p.parse_args(argv)
    out_md = Path(a.out)
    out_json = out_md.with_suffix(".json")
    out_png = out_md.parent / "bench_us_per_step.png"

    if a.report_only:
        data = json.loads(out_json.read_text())
    else:
        todo = comparisons()
        if a.only:
            todo = [c for c in todo if re.search(a.only, ":".join(c))]
        info = machine_info()
        info["mode"] = "quick" if a.quick else "full"
        info["command"] = (
            "python benchmarks/run.py"
            + (" --quick" if a.quick else "")
            + (f" --threads {a.threads}" if a.threads else "")
        )
        info["threads"] = a.threads or "framework default"
        info["when"] = time.strftime("%Y-%m-%d %H:%M")
        results = []
        t0 = time.perf_counter()
        for k, c in enumerate(todo, 1):
            label = ":".join(c)
            print(f"[{k}/{len(todo)}] {label} ...", end="", flush=True)
            t = time.perf_counter()
            r = run_worker(c, a.quick, timeout=300 if a.quick else 900, threads=a.threads)
            results.append(r)
            status = "ERROR" if "error" in r else ("skipped" if r.get("skipped") else "")
            print(f" {time.perf_counter() - t:.1f}s {status}", flush=True)
            if "error" in r:
                print(r["error"], file=sys.stderr)
        info["total_s"] = time.perf_counter() - t0
        try:
            info["load_end"] = os.getloadavg()[0]
        except OSError:
            pass
        data = {"info": info, "results": results}

    print()
    print(report.console(data))
    if not a.no_write:
        out_md.parent.mkdir(parents=True, exist_ok=True)
        if not a.report_only:
            out_json.write_text(json.dumps(data, indent=1))
        out_md.write_text(report.markdown(data, png_name=out_png.name))
        report.plot(data, out_png)
        print(
            f"wrote {out_md.relative_to(ROOT) if out_md.is_relative_to(ROOT) else out_md}, "
            f"{out_png.name}, {out_json.name}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
