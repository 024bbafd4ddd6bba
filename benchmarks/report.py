"""Turn the benchmark results into the console summary, docs/benchmarks.md and the plot."""

from __future__ import annotations

import datetime as _dt
import math
from pathlib import Path

#: the targets of issue 17 (ratios of medians, taken side by side in one worker)
TARGETS = {
    "numpyro rendered/hand": 1.05,
    "pyro rendered/hand": 1.05,
    "fit/floor": 1.15,
    # sequential / vectorized time of 32 fits (fit(seeds=...)): at least this
    "numpyro seeds speed-up": 10.0,
    "pyro seeds speed-up": 4.0,
    # sequential / one-program time of 32 members (fit(batch=[...]): datasets or lrs)
    "numpyro batch speed-up": 10.0,
    "pyro batch speed-up": 4.0,
    # peak memory above the pre-step level, D=100,000, 16 particles: fit / floor at most
    "memory fit/floor": 1.2,
}
RH_NP, RH_PY, FF = (
    TARGETS["numpyro rendered/hand"],
    TARGETS["pyro rendered/hand"],
    TARGETS["fit/floor"],
)
MEM = TARGETS["memory fit/floor"]


def _at_least(label: str) -> bool:
    """Targets that are lower bounds (speed-ups); the others are upper bounds."""
    return "speed-up" in label


def _fmt(x: float | None) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    ax = abs(x)
    if ax >= 1000:
        return f"{x:,.0f}"
    if ax >= 100:
        return f"{x:.0f}"
    if ax >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def _cell(s: dict | None) -> str:
    """``median (q25-q75)``."""
    if not s:
        return "n/a"
    return f"{_fmt(s['median'])} ({_fmt(s['q25'])}–{_fmt(s['q75'])})"


def _ratio(a: dict | None, b: dict | None) -> float | None:
    if not a or not b or not b["median"]:
        return None
    return a["median"] / b["median"]


def _rcell(r: float | None, target: float | None = None) -> str:
    if r is None:
        return "n/a"
    if target is None:
        return f"{r:.2f}"
    return f"{r:.2f} {'✓' if r <= target else '✗'}"


def _fixed_cell(value, r, digits: int) -> str:
    """A fit's fixed seconds per call, estimated as a call's time minus its steps: shown only
    where it stands above the steps' own noise (half the per-step IQR times the steps; at
    D=100,000 with 16 particles a call of 200 steps varies by seconds)."""
    if value is None:
        return "n/a"
    fit = r["us_per_step"].get("fit") or {}
    n = (r.get("N") or {}).get("fit") if isinstance(r.get("N"), dict) else r.get("N")
    noise = (fit.get("q75", 0) - fit.get("q25", 0)) / 2 * 1e-6 * (n or 0)
    if value < noise:
        return f"below the steps' noise (± {noise:.1f})"
    return f"{value:.{digits}f}"


def _svi(data, backend):
    rows = [
        r
        for r in data["results"]
        if r.get("kind") == "svi"
        and r.get("backend") == backend
        and not r.get("skipped")
        and "error" not in r
    ]
    order = {"seed": 0, "mixture": 1}
    return sorted(rows, key=lambda r: (order.get(r["problem"], 2), r.get("size", 0), r["P"]))


def checks(data) -> list[tuple[str, float, float, bool]]:
    """Every targeted ratio: (label, ratio, target, holds)."""
    out = []
    for r in _svi(data, "numpyro"):
        u = r["us_per_step"]
        lab = f"numpyro {r['problem']} P={r['P']}"
        x = _ratio(u.get("rendered"), u.get("hand"))
        if x is not None:
            out.append((f"{lab}: rendered/hand", x, RH_NP, x <= RH_NP))
        x = _ratio(u.get("fit"), u.get("floor"))
        if x is not None:
            out.append((f"{lab}: fit/floor", x, FF, x <= FF))
        c = r["compile_s"]
        if "fit_first_call" in c and "svi.run_per_call" in c:
            out.append(
                (
                    f"{lab}: fit compile / svi.run compile",
                    c["fit_first_call"] / max(c["svi.run_per_call"], 1e-9),
                    1.0,
                    c["fit_first_call"] <= c["svi.run_per_call"],
                )
            )
    for r in _svi(data, "pyro"):
        u = r["us_per_step"]
        lab = f"pyro {r['problem']} P={r['P']}"
        for kind in ("trace", "jit"):
            x = _ratio(u.get(f"rendered_{kind}"), u.get(f"hand_{kind}"))
            if x is not None:
                out.append((f"{lab}: rendered/hand ({kind})", x, RH_PY, x <= RH_PY))
        x = _ratio(u.get("fit"), u.get("floor"))
        if x is not None:
            out.append((f"{lab}: fit/floor", x, FF, x <= FF))
    for kind in ("seeds", "batch"):
        for r in _kind(data, kind):
            t = TARGETS[f"{r['backend']} {kind} speed-up"]
            x = r["speedup"]
            what = f"x{r['seeds']} seeds" if kind == "seeds" else f"x{r['members']} {r['varies']}"
            how = "one program" if kind == "seeds" else "batch"
            out.append((f"{r['backend']} {r['problem']} {what}: speed-up ({how})", x, t, x >= t))
    for b, (fit, floor) in _memory_pairs(data).items():
        x = fit / floor if floor > 0 else math.inf
        out.append((f"{b} plated100000 P=16: peak memory fit/floor", x, MEM, x <= MEM))
    return out


def _kind(data, kind: str) -> list[dict]:
    rows = [r for r in data["results"] if r.get("kind") == kind and "error" not in r]
    return sorted(rows, key=lambda r: (r.get("backend", ""), r.get("problem", "")))


def _memory_pairs(data) -> dict[str, tuple[float, float]]:
    """backend -> (fit peak MB, floor peak MB), medians."""
    got: dict[str, dict[str, float]] = {}
    for r in _kind(data, "memory"):
        got.setdefault(r["backend"], {})[r["variant"]] = r["peak_mb"]["median"]
    return {b: (v["fit"], v["floor"]) for b, v in got.items() if "fit" in v and "floor" in v}


def console(data) -> str:
    lines = []
    for label, x, target, ok in checks(data):
        cmp = ">=" if _at_least(label) else "<="
        lines.append(
            f"{label:<58} {x:6.2f}  (target {cmp} {target:.2f})  {'holds' if ok else 'FAILS'}"
        )
    imp = _import(data)
    if imp:
        s = imp["import_s"]
        for fw in ("numpyro", "pyro"):
            a, b = s.get(f"dualguide[{fw}]"), s.get(fw)
            if a and b:
                lines.append(
                    f"import dualguide + {fw} backend / import {fw}: "
                    f"{a['median']:.2f}s / {b['median']:.2f}s = {a['median'] / b['median']:.2f}"
                )
        if "dualguide" in s:
            lines.append(f"import dualguide alone: {s['dualguide']['median'] * 1e3:.0f} ms")
    errors = [r for r in data["results"] if "error" in r]
    for r in errors:
        lines.append(f"ERROR in {':'.join(r['argv'])}: {r['error'].splitlines()[-1]}")
    n_fail = sum(1 for c in checks(data) if not c[3])
    lines.append(f"{len(checks(data)) - n_fail} of {len(checks(data))} targeted ratios hold")
    return "\n".join(lines)


def _import(data):
    for r in data["results"]:
        if r.get("kind") == "import":
            return r
    return None


def markdown(data, png_name: str = "bench_us_per_step.png") -> str:
    info = data["info"]
    # when the results were taken (a --report-only re-render keeps their date)
    when = info.get("when") or _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    md = []
    md.append("# Benchmarks\n")
    md.append(
        "Generated by `" + info.get("command", "python benchmarks/run.py") + f"` on {when} "
        "(do not edit by hand: rerun the command).  Every row comes from one worker process "
        "in which the variants compared ran interleaved, round after round; figures are "
        "µs per SVI step in steady state, **median (25th–75th percentile)** over the rounds.  "
        "Ratios are ratios of medians.  ✓/✗: whether the issue's target holds.\n"
    )
    md.append(
        "## Running them\n\n"
        "```\n"
        "python benchmarks/run.py              # full run, ~10 min on 2 cores; rewrites this file\n"
        "python benchmarks/run.py --quick      # 1-2 min smoke run, noisier\n"
        "python benchmarks/run.py --threads 1  # one intra-op thread: steadier on a shared machine\n"
        "python benchmarks/run.py --only 'pyro:seed'   # a subset (regex on backend:problem:P)\n"
        "```\n\n"
        "Not part of the test suite.  The raw results are in `docs/benchmarks.json` "
        "(`--report-only` re-renders this page from them).\n"
    )
    md.append("## Machine\n")
    md.append(
        f"- CPU: {info.get('cpu', '?')}, {info.get('cores', '?')} cores; "
        f"load average {info.get('load_start', float('nan')):.1f} at start, "
        f"{info.get('load_end', float('nan')):.1f} at the end "
        "(other jobs share the machine: absolute figures are noisy, ratios taken side by "
        "side much less so)\n"
        f"- Python {info.get('python')}, numpy {info.get('numpy')}, jax {info.get('jax')} "
        f"(jaxlib {info.get('jaxlib')}), numpyro {info.get('numpyro')}, torch {info.get('torch')}, "
        f"pyro-ppl {info.get('pyro-ppl')}, dualguide {info.get('dualguide')}\n"
        f"- mode: {info.get('mode')}, intra-op threads: {info.get('threads', 'framework default')}, "
        f"total {info.get('total_s', 0) / 60:.1f} min\n"
    )
    md.append(
        "## What is compared\n\n"
        "- **hand**: the program written by hand in the framework (`benchmarks/problems.py`); "
        "**rendered**: the dualguide program rendered for it (`dg.render`); both run by the "
        "framework's own `SVI` with `Trace_ELBO` (NumPyro: `svi.update` under `jit` + "
        "`lax.scan`; Pyro: `svi.step`, with `Trace_ELBO` and with `JitTrace_ELBO`), "
        "`Adam(lr=0.01)`.\n"
        "- **floor**: the same ELBO step written directly in pure JAX (`jit` + `lax.scan`, "
        "hand-written Adam, JAX's default PRNG) or pure PyTorch (autograd + `torch.optim.Adam`) "
        "— `benchmarks/floors.py`.\n"
        "- **fit**: `dualguide.fit` (its own loops, see `docs/benchmarks.md#how-fit-runs`), "
        "marginal µs per step from fits of N and 2N steps (`check=False`; the guide doctor's "
        "cost is listed apart).\n"
        "- Problems: `seed` (the seed Gaussian, 2 latents), `mixture` (the rotated mixture "
        "with `dg.transformed`; hand-written guides write the log-det in closed form, Pyro's "
        "uses `MixtureOfDiagNormals`), `platedD` (mean-field Normal over D latents in a "
        "plate, D observations). P = particles (vectorized).\n"
    )
    md.append("## NumPyro\n")
    md.append(
        f"| problem | P | hand | rendered | rendered/hand (≤ {RH_NP}) | floor (pure JAX) | "
        f"SVI/floor | dualguide.fit | fit/floor (≤ {FF}) |\n"
        "|---|---|---|---|---|---|---|---|---|"
    )
    for r in _svi(data, "numpyro"):
        u = r["us_per_step"]
        md.append(
            f"| {r['problem']} | {r['P']} | {_cell(u.get('hand'))} | {_cell(u.get('rendered'))} | "
            f"{_rcell(_ratio(u.get('rendered'), u.get('hand')), RH_NP)} | {_cell(u.get('floor'))} | "
            f"{_rcell(_ratio(u.get('hand'), u.get('floor')))} | {_cell(u.get('fit'))} | "
            f"{_rcell(_ratio(u.get('fit'), u.get('floor')), FF)} |"
        )
    md.append("")
    md.append(
        "Compile and per-call costs, seconds (NumPyro's `SVI.run` compiles on every call; "
        "`dualguide.fit` compiles once per model, guide, shapes and settings and then reuses it):\n"
    )
    md.append(
        "| problem | P | jit(scan of svi.update), hand | rendered | pure JAX | `SVI.run` per call | "
        "fit, first call | fit, later calls | guide doctor (`check=True`) |\n"
        "|---|---|---|---|---|---|---|---|---|"
    )
    for r in _svi(data, "numpyro"):
        c = r["compile_s"]
        md.append(
            f"| {r['problem']} | {r['P']} | {c.get('hand', 0):.2f} | {c.get('rendered', 0):.2f} | "
            f"{c.get('floor', 0):.2f} | {c.get('svi.run_per_call', 0):.2f} | "
            f"{c.get('fit_first_call', 0):.2f} | {_fixed_cell(c.get('fit_warm_call'), r, 3)} | "
            f"{c.get('fit_check_s', 0):.3f} |"
        )
    md.append("\n## Pyro\n")
    md.append(
        f"| problem | P | hand Trace_ELBO | rendered Trace_ELBO | ratio (≤ {RH_PY}) | hand "
        f"JitTrace_ELBO | rendered JitTrace_ELBO | ratio (≤ {RH_PY}) | floor (pure torch) | "
        f"JitTrace/floor | dualguide.fit | fit/floor (≤ {FF}) |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|"
    )
    notes = []
    for r in _svi(data, "pyro"):
        u = r["us_per_step"]
        for k, why in (r.get("unavailable") or {}).items():
            notes.append(f"- {r['problem']} P={r['P']}: {k} unavailable ({why})")
        jit_ref = u.get("hand_jit") or u.get("rendered_jit")
        md.append(
            f"| {r['problem']} | {r['P']} | {_cell(u.get('hand_trace'))} | "
            f"{_cell(u.get('rendered_trace'))} | "
            f"{_rcell(_ratio(u.get('rendered_trace'), u.get('hand_trace')), RH_PY)} | "
            f"{_cell(u.get('hand_jit'))} | {_cell(u.get('rendered_jit'))} | "
            f"{_rcell(_ratio(u.get('rendered_jit'), u.get('hand_jit')), RH_PY)} | "
            f"{_cell(u.get('floor'))} | {_rcell(_ratio(jit_ref, u.get('floor')))} | "
            f"{_cell(u.get('fit'))} | {_rcell(_ratio(u.get('fit'), u.get('floor')), FF)} |"
        )
    md.append("")
    if notes:
        md.append("\n".join(sorted(set(notes))) + "\n")
    md.append(
        "Per-call costs, seconds: `JitTrace_ELBO`'s first step (it traces), and "
        "`dualguide.fit`'s fixed cost per call (a call's time minus its steps: param setup, "
        "the trace and, in fits of more than `RECORD_MIN_STEPS` steps, the recording; nothing "
        "is compiled once per process on Pyro, so the first call costs about what later ones "
        "do):\n"
    )
    md.append(
        "| problem | P | hand JitTrace first step | rendered JitTrace first step | "
        "fit, first call | fit, later calls | guide doctor (`check=True`) |\n|---|---|---|---|---|---|---|"
    )
    for r in _svi(data, "pyro"):
        c = r["compile_s"]
        md.append(
            f"| {r['problem']} | {r['P']} | {c.get('hand_jit', float('nan')):.2f} | "
            f"{c.get('rendered_jit', float('nan')):.2f} | "
            f"{_fixed_cell(c.get('fit_first_fixed'), r, 2)} | "
            f"{_fixed_cell(c.get('fit_warm_call'), r, 3)} | {c.get('fit_check_s', 0):.3f} |"
        )
    _many_fits_table(
        md,
        _kind(data, "seeds"),
        "seeds",
        "Many fits in one program",
        "`dualguide.fit(seeds=range(32))` (one compiled program: `jax.vmap` of the fit loop "
        "on NumPyro, `torch.func.vmap` of the traced ELBO on Pyro) against 32 calls "
        "`dualguide.fit(seed=s)`, both warm (compiled / traced once before), interleaved; "
        "seconds per batch of 32 fits, median (25th–75th percentile).  1 particle, "
        "Adam(0.01).\n",
    )
    _many_fits_table(
        md,
        _kind(data, "batch"),
        "batch",
        "A batch of datasets or settings in one program",
        "`dualguide.fit(batch=[32 members])` (docs/batch.md: one program over the members' "
        "data or learning rates) against the 32 separate `dualguide.fit` calls, both warm, "
        "interleaved; seconds per 32 fits, median (25th–75th percentile).  1 particle, "
        "Adam; seed: 32 learning rates 0.005–0.02, plated1000: 32 datasets.\n",
    )
    mem = _kind(data, "memory")
    if mem:
        md.append("\n## Memory\n")
        md.append(
            "Peak resident memory while running steps, above the resident memory just before "
            "them (sampled every ms; glibc's mmap threshold pinned at 64 KiB so freed arrays "
            "leave at once), plated D=100,000 with 16 particles, MiB, median over repeats. "
            "**floor**: the pure JAX / pure torch step (`benchmarks/floors.py`); **fit**: "
            "`dualguide.fit` with the same settings (Pyro: the steps of a fit long enough for "
            "its step to be recorded as one program, from its second step on; **whole call**: "
            "the peak of the whole `fit` call, with the first step's trace and the "
            "recording).\n"
        )
        md.append(
            f"| backend | floor | dualguide.fit | fit/floor (≤ {MEM}) | whole call |\n"
            "|---|---|---|---|---|"
        )
        pairs = _memory_pairs(data)
        for b in sorted({r["backend"] for r in mem}):
            rows = {r["variant"]: r["peak_mb"] for r in mem if r["backend"] == b}
            for r in mem:
                if r["backend"] == b and "call_peak_mb" in r:
                    rows["fit_call"] = r["call_peak_mb"]
            ratio = pairs[b][0] / pairs[b][1] if b in pairs and pairs[b][1] > 0 else None
            md.append(
                f"| {b} | {_cell(rows.get('floor'))} | {_cell(rows.get('fit'))} | "
                f"{_rcell(ratio, MEM)} | {_cell(rows.get('fit_call'))} |"
            )
    imp = _import(data)
    if imp:
        s = imp["import_s"]
        md.append("\n## Import time\n")
        md.append(
            "Fresh interpreter per measurement; seconds, median (25th–75th percentile).\n\n"
            "| what | seconds | vs the framework alone |\n|---|---|---|"
        )
        for k, stmt in (
            ("numpyro", "import numpyro (+ distributions, infer)"),
            ("dualguide[numpyro]", "import dualguide; set_backend('numpyro')"),
            ("pyro", "import pyro (+ distributions, infer)"),
            ("dualguide[pyro]", "import dualguide; set_backend('pyro')"),
            ("dualguide", "import dualguide (no backend loaded)"),
        ):
            if k not in s:
                continue
            fw = k[len("dualguide[") : -1] if k.startswith("dualguide[") else None
            rel = f"{s[k]['median'] / s[fw]['median']:.2f}" if fw and fw in s else ""
            md.append(f"| `{stmt}` | {_cell(s[k])} | {rel} |")
    md.append("\n## Targets\n")
    md.append(
        "A target that does not hold names its cause, with the profile that shows it "
        "(`benchmarks/profiles/`).\n"
    )
    md.append("| ratio | value | target | holds | cause where it does not |\n|---|---|---|---|---|")
    for label, x, target, ok in checks(data):
        cmp = "≥" if _at_least(label) else "≤"
        why = "" if ok else cause(label)
        md.append(
            f"| {label} | {x:.2f} | {cmp} {target:.2f} | {'yes' if ok else '**no**'} | {why} |"
        )
    md.append(f"\n## µs per step against D\n\n![µs per step against D]({png_name})\n")
    md.append(HOW_FIT_RUNS)
    return "\n".join(md) + "\n"


#: (pattern on a target's label, its measured cause and the profile showing it); the first
#: match names the cause of a target that does not hold
CAUSES = [
    (
        r"^numpyro (seed|mixture|plated10) P=16: fit/floor",
        "NumPyro's `Trace_ELBO` draws each particle's each site with its own split key (the "
        "draws `SVI.run` makes, which fit keeps draw for draw); the floor draws all particles "
        "with one `normal(key, (P, 2))`.  Seed P=16: fit's loop HLO holds 105 `shift_right_logical` "
        "ops (threefry rounds, bits to floats), the floor's 11; fit 5.1-5.4 us vs "
        "floor 4.5-4.8 us, NumPyro's own `SVI.run` 9.6 us — NumPyro's RNG scheme, outside "
        "dualguide",
    ),
    (
        r"^numpyro .*: fit/floor",
        "NumPyro's own `Trace_ELBO` step has about twice the floor's full-size ops (each "
        "site's full `Normal.log_prob` and its gradient); fit runs `SVI.update` step for step "
        "at NumPyro's own speed (fit/hand 1.00-1.09) — `profiles/numpyro_fit_floor.txt` §2",
    ),
    (
        r"^pyro .*: fit/floor",
        "Pyro's ELBO graph has about twice the floor's full-size ops; the smallest loss equal "
        "to `Trace_ELBO` in eager torch, without Pyro or Adam, already takes 1.86x the floor "
        "with Adam — `profiles/README.md` (Pyro plated D=100,000)",
    ),
    (
        r"^numpyro mixture .*: fit compile / svi\.run compile",
        "`SVI.run` here runs the hand-written guide; on the rendered one its scan compiles "
        "longer than fit's first call (see the table: rendered vs hand).  The rendered "
        "guide's log-det comes from autodiff (`dg.transformed`: a JVP per column, "
        "differentiated again by the ELBO's gradient), the hand one's in closed form: HLO "
        "1236 vs 1060 lines, 10-20 % more compile (one JVP per column unrolled instead of "
        "vmapped was tried: 1268 lines, no faster) — `profiles/numpyro_first_call.py`",
    ),
    (
        r"^numpyro .*: fit compile / svi\.run compile",
        "fit's loop compiles 12-16 % longer than `SVI.run`'s bare `scan` on large models "
        "(plated1000 P=1: 0.54 vs 0.48 s, interleaved): its outer `cond` and extra outputs "
        "carry it.  They buy step speed: a `while_loop` without them (built and measured) "
        "compiles as the scan but steps as the scan too (plated1000 P=1 45.9 vs 31-37 us, "
        "plated100000 P=1 +4 %), and did not lower this ratio in a run; XLA's faster-"
        "compiling CPU options: -25 % compile, +17-37 % per step.  A trade inside dualguide, "
        "kept for step speed — `profiles/README.md` (2026-12-03), "
        "`profiles/numpyro_first_call.py`",
    ),
    (
        r"^numpyro plated1000 x32 .*: speed-up",
        "32 fits of D=1,000 are the arithmetic of one D=32,000 fit, and one D=1,000 step is "
        "already compute-bound on 2 cores: a program at the pure-JAX floor would be only "
        "2.6-4.9x faster than 32 sequential fits — `profiles/numpyro_seeds_floor.py`",
    ),
]


def cause(label: str) -> str:
    """The named cause (with its profile) of the target ``label``, or a plain "not named"."""
    import re

    for pattern, text in CAUSES:
        if re.search(pattern, label):
            return text
    return "not named yet"


HOW_FIT_RUNS = """
## How fit runs

`dualguide.fit` keeps each framework's ELBO and dualguide's one Adam update, but runs its
own loop around them:

- **NumPyro** (`dualguide/backends/numpyro/fitloop.py`): each step *is* `SVI.update`
  with `Trace_ELBO` and NumPyro's Adam carrying dualguide's update, so a fit reproduces
  `SVI.run`'s losses to float rounding.  The steps run in a `lax.scan` of static length,
  each inside a `lax.cond` (skipping the steps past the chunk's end, and after a bad step
  with `on_nonfinite="stop"`), with a second `cond` that keeps the state on a non-finite
  step.  One compilation serves every `num_steps`, and it is cached per (model, guide,
  argument shapes, settings): a second fit of the same program does not compile again,
  and data passed in `model_args` may change between fits.  `svi.init` is one compiled
  program too (eagerly it compiles a kernel per op and shape), taking the params' init
  values as arguments (so it is kept as well), compiled in a thread while the loop
  compiles.  The `cond` boundary also
  changes how XLA's CPU backend fuses the step: on small models the step runs 2-4x faster
  than the same `svi.update` in `SVI.run`'s plain `scan`.  Small models (≤ 256 param
  numbers) also get key splits from an unrolled threefry (`fastrng.py`: bit-for-bit JAX's
  generator, one fused kernel where JAX's CPU lowering runs a small loop per split; with
  one particle only in fits of 50,000 steps or more, as it compiles slower there) and
  XLA's older CPU fusion emitters (faster compile); on large arrays both would cost time,
  so large models keep JAX's defaults.
- **Pyro** (`dualguide/backends/pyro/fitloop.py`): the first step is Pyro's
  `JitTrace_ELBO` (it traces model and guide); later steps call that trace directly with
  all params in one flat tensor, with the trace's constants folded (TorchScript's own
  passes), and gradient, non-finite check and Adam run in one TorchScript call.  Same
  draws, losses and params as `SVI.step` with `JitTrace_ELBO` and dualguide's Adam.
  Programs that cannot be traced fall back to `Trace_ELBO` step by step, with a
  `JitFallbackWarning` saying why.  `dg.transformed` maps keep the JIT: while tracing, the
  ops whose torch gradient saves its output (`exp`, `expm1`, `tanh`, `sigmoid`/`expit`,
  `sqrt`, `tan`, `softmax`, `log_softmax`, `logsumexp`, `1 / x`, `c ** x`, `power`) run
  through input-saving autograd functions, so their Jacobian is recorded as plain ops; the
  few left (`prod`, `cumprod`, `norm`, matrix ops) warn naming the op and the site.
  With several particles, the traced particle runs under `torch.func.vmap` (the model
  never sees a particle dimension, `docs/particles.md`); op by op, functorch's batching
  layer and autograd's engine cost microseconds per op whatever the sizes, which made
  P = 16 2-3x the floor.  A fit of more than `RECORD_MIN_STEPS` (200) steps therefore
  records, once, the vmapped step and its gradient as the ATen ops they run (a
  `TorchDispatchMode` below vmap and autograd: the same batched kernels, the same draws
  in the same order, eager autograd's own backward ops) and traces them into one
  TorchScript program with no autograd at run time, each value dropped after its last
  use.  Before use, one step of it is checked bit for bit against the op-by-op step from
  the same draws; a program it cannot replay (a Python number read back mid-step, an
  explicit generator) keeps the op-by-op step (logged at DEBUG).  Recording costs about
  0.1-0.3 s per fit call (hence the threshold).
- **Many seeds** (`fit(seeds=[...])`): NumPyro `vmap`s the chunk's step over one SVI
  state per seed, with the `scan` and its `cond` on the chunk's end left unbatched (a
  batched predicate would run every step of the static-length scan): each seed's fit
  equals `fit(seed=s)` to float32 rounding.  Pyro traces one particle once and
  `torch.func.vmap`s it over the particles and over one row of flat params per seed, with
  Adam on the `(seeds, params)` table (each seed its own step count): each fit starts
  where `fit(seed=s)` starts and equals it in distribution (one batched noise stream).

Where a floor ratio does not hold, the remaining cost is the framework's own ELBO graph
(per-site densities, per-particle key splitting in NumPyro, Pyro's trace bookkeeping in
the traced graph): the hand-written floor computes the same estimator with fewer
operations.  `dualguide.fit` runs that graph; it does not rewrite it.
"""


def _many_fits_table(md: list[str], rows: list[dict], kind: str, title: str, intro: str) -> None:
    """The table of a "many fits in one program" kind (``seeds`` or ``batch``, whose rows
    also say what the members vary) against the sequential fits, appended to ``md``."""
    if not rows:
        return
    vary = kind == "batch"
    md.append(f"\n## {title}\n")
    md.append(intro)
    cols = ["backend", "problem", *(["members vary"] if vary else []), "steps"]
    cols += ["32 sequential fits", "one program", "speed-up", "target"]
    cols += ["first call of the program"]
    md.append(f"| {' | '.join(cols)} |\n|{'---|' * len(cols)}")
    for r in rows:
        t = TARGETS[f"{r['backend']} {kind} speed-up"]
        sec = r["seconds"]
        varies = f"{r['varies']} | " if vary else ""
        md.append(
            f"| {r['backend']} | {r['problem']} | {varies}{r['steps']} | "
            f"{_cell(sec.get('sequential'))} | {_cell(sec.get('vectorized'))} | "
            f"{r['speedup']:.1f} {'✓' if r['speedup'] >= t else '✗'} | ≥ {t:.0f} | "
            f"{r.get('vectorized_first_call_s', float('nan')):.2f} s |"
        )


def plot(data, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes3 = plt.subplots(1, 3, figsize=(17, 4.6))
    axes = axes3[:2]
    _plot_targets(axes3[2], data)
    series = {
        "numpyro": [
            ("hand", "NumPyro SVI, hand"),
            ("rendered", "NumPyro SVI, rendered"),
            ("floor", "pure JAX"),
            ("fit", "dualguide.fit"),
        ],
        "pyro": [
            ("hand_trace", "Trace_ELBO, hand"),
            ("rendered_trace", "Trace_ELBO, rendered"),
            ("hand_jit", "JitTrace_ELBO, hand"),
            ("rendered_jit", "JitTrace_ELBO, rendered"),
            ("floor", "pure torch"),
            ("fit", "dualguide.fit"),
        ],
    }
    for ax, backend in zip(axes, ("numpyro", "pyro")):
        rows = [r for r in _svi(data, backend) if r["problem"].startswith("plated")]
        for P, style in ((1, "-"), (16, "--")):
            rs = sorted((r for r in rows if r["P"] == P), key=lambda r: r["size"])
            if not rs:
                continue
            for k, (key, label) in enumerate(series[backend]):
                pts = [
                    (r["size"], r["us_per_step"][key]["median"])
                    for r in rs
                    if r["us_per_step"].get(key)
                ]
                if not pts:
                    continue
                xs, ys = zip(*pts)
                ax.plot(
                    xs, ys, style, marker="o", color=f"C{k}", label=f"{label}" if P == 1 else None
                )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("D (latents in the plate)")
        ax.set_ylabel("µs per step (median)")
        ax.set_title(
            f"{'NumPyro / JAX' if backend == 'numpyro' else 'Pyro / PyTorch'}"
            " — solid: 1 particle, dashed: 16"
        )
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_targets(ax, data) -> None:
    """Every targeted ratio as a fraction of its target (1 = at the target; below holds)."""
    cs = checks(data)
    if not cs:
        ax.set_visible(False)
        return
    vals = [(t / x if x else math.inf) if _at_least(lab) else x / t for lab, x, t, _ in cs]
    ys = range(len(cs))
    ax.barh(list(ys), vals, color=["C2" if ok else "C3" for *_, ok in cs])
    ax.axvline(1.0, color="k", lw=1)
    ax.set_yticks(list(ys))
    ax.set_yticklabels([lab for lab, *_ in cs], fontsize=5)
    ax.invert_yaxis()
    ax.set_xlabel("ratio / target (speed-ups: target / speed-up); ≤ 1 holds")
    ax.set_title("every targeted ratio against its target")
