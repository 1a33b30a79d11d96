"""Mutation testing of the convention modules, on demand (not in CI): ``python tools/mutation.py``.

Uses cosmic-ray (``pip install 'cosmic-ray==8.7.0'``; it runs on Python 3.11). cosmic-ray mutates a
module *in place* and runs a test command per mutant, so everything runs in a scratch copy of the
working tree (``--scratch``, default ``/tmp/linksim-mutation``) with a venv of its own (an editable
install of the copy on top of this interpreter's site-packages): the working tree is never touched.

Each target is a module, optionally restricted to some functions (their line ranges, found with
``ast`` at run time, go to cosmic-ray's line filter), and the fast tests that pin it. A mutant
*survives* when those tests still pass. Results: one line per target, and every survivor (line,
operator, diff) in ``--out`` (default ``benchmarks/results/mutation.md``); survivors that are
equivalent (no test could tell them apart) are explained in the README's testing section.

    python tools/mutation.py                     # every target (hours on 2 shared cores)
    python tools/mutation.py conventions mcs     # some targets
    python tools/mutation.py --resume            # continue after an interruption
"""

from __future__ import annotations

import argparse
import ast
import os
import shutil
import sqlite3
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: operators left out: a binary operator replaced by a bitwise or shift one, and comparisons
#: replaced by identity tests. On the float arithmetic of these modules they raise a TypeError or
#: give absurd values at once (every test dies), so they only cost time (each mutant is a pytest start)
EXCLUDED = [r"core/ReplaceBinaryOperator_.*_(BitOr|BitAnd|BitXor|LShift|RShift)$",
            r"core/ReplaceComparisonOperator_.*_(Is|IsNot)$"]
PYTEST = "python -m pytest -x -q -p no:cacheprovider -p no:randomly"

#: name -> (module file, functions to mutate (None: the whole module), test node ids). The tests are
#: the light ones that pin the module (a test module that imports the engine costs ~3x per mutant)
TARGETS = {  # in run order (cheapest first)
    "hifi_t_start": ("codecs/diffusion/hifi.py", ["t_start", "HiFiDiffCom.__init__", "HiFiDiffCom.timesteps"],
                     ["tests/codecs/test_hifi_t_start.py"]),
    "ms_ssim_scales": ("linksim/metrics/pixel.py", ["ms_ssim_scales", "ms_ssim_betas", "ms_ssim"],
                       ["tests/linksim/test_ms_ssim_scales.py"]),
    "conventions": ("phy/conventions.py", None, ["tests/phy/test_conventions.py"]),
    "store_recovery": ("linksim/store.py",
                       ["_complete_part", "read_points", "ResultsStore._truncate_torn", "ResultsStore._recover"],
                       ["tests/linksim/test_store_recovery.py", "tests/linksim/test_store.py::TestAddingImages",
                        "tests/linksim/test_store_crash.py::TestTornFixtures"]),
    "mcs": ("codecs/mcs.py", ["codeword_layout", "BlerTable.bler", "BlerTable.required_csnr_db", "select_mcs"],
            ["tests/codecs/test_mcs_table.py"]),
}


def function_lines(path: Path, names: list[str]) -> list[str]:
    """``["a-b", ...]``: the line ranges of the named functions/classes (``Class.method`` too)."""
    tree = ast.parse(path.read_text())
    found = {}

    def visit(node, prefix=""):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = prefix + child.name
                found[name] = f"{child.lineno}-{child.end_lineno}"
                visit(child, name + ".")

    visit(tree)
    missing = [n for n in names if n not in found]
    if missing:
        raise SystemExit(f"{path}: no function or class {', '.join(missing)}")
    return [found[n] for n in names]


def make_scratch(scratch: Path) -> Path:
    """A copy of the working tree (tracked and untracked, not ignored files) with its own venv;
    returns the venv's python."""
    if scratch.exists():
        shutil.rmtree(scratch)
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True,
                           capture_output=True).stdout.decode().split("\0")
    for f in filter(None, files):
        src = ROOT / f
        if src.is_file():
            (scratch / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, scratch / f)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(scratch / ".venv")], check=True)
    site = Path(sysconfig.get_paths()["purelib"])
    venv_site = next((scratch / ".venv" / "lib").glob("python3*/site-packages"))
    # this interpreter's packages (torch, cosmic-ray, ...) as plain path entries, then the copy itself
    extra = [str(site)] + [line.strip() for p in site.glob("*.pth") for line in p.read_text().splitlines()
                           if line.strip().startswith("/") and Path(line.strip()).is_dir()]
    (venv_site / "_linksim_base.pth").write_text("\n".join(extra) + "\n")
    py = scratch / ".venv" / "bin" / "python"
    # the copy's packages, mapped as pyproject.toml maps them (linksim.phy -> phy/, linksim.codecs ->
    # codecs/), ahead of everything else (an editable install would need a wheel build here)
    (venv_site / "_linksim_scratch_finder.py").write_text(f"""
import importlib.abc, importlib.util, sys

ROOTS = {{"linksim": {str(scratch / "linksim")!r}, "linksim.phy": {str(scratch / "phy")!r},
          "linksim.codecs": {str(scratch / "codecs")!r}}}


class Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name in ROOTS:
            return importlib.util.spec_from_file_location(name, ROOTS[name] + "/__init__.py",
                                                          submodule_search_locations=[ROOTS[name]])
        return None


sys.meta_path.insert(0, Finder())
""")
    (venv_site / "_linksim_scratch.pth").write_text("import _linksim_scratch_finder\n")
    where = subprocess.run([str(py), "-c", "import linksim.phy; print(linksim.phy.__file__)"], cwd="/",
                           check=True, capture_output=True, text=True).stdout.strip()
    assert where.startswith(str(scratch)), f"the scratch venv imports linksim from {where}"
    return py


def run_target(name: str, scratch: Path, py: Path, timeout: float, sessions: Path, resume: bool,
               recheck: bool = False) -> dict:
    module, funcs, tests = TARGETS[name]
    tests = [t for t in tests if (scratch / t.split("::")[0]).exists()]
    cfg = scratch / f"mutation-{name}.toml"
    lines = f'"{module}" = {function_lines(scratch / module, funcs)!r}'.replace("'", '"') if funcs else ""
    cmd = f"{PYTEST} {' '.join(tests)}"
    cfg.write_text(f"""[cosmic-ray]
module-path = "{module}"
timeout = {timeout}
excluded-modules = []
test-command = "{cmd}"

[cosmic-ray.distributor]
name = "local"

[cosmic-ray.filters.operators-filter]
exclude-operators = {EXCLUDED!r}

[cosmic-ray.filters.line-filter.lines]
{lines}
""".replace("'", '"'))
    session = sessions / f"mutation-{name}.sqlite"
    resume = resume and session.exists()
    if resume and recheck:
        db = sqlite3.connect(session)
        db.execute("DELETE FROM work_results WHERE test_outcome = 'SURVIVED'")
        db.commit()
        db.close()
    if not resume:
        session.unlink(missing_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE", PATH=f"{py.parent}:{os.environ['PATH']}")
    entry = {"cosmic-ray": "from cosmic_ray.cli import main",
             "cr-filter-lines": "from cosmic_ray.tools.filters.line_filter import main",
             "cr-filter-operators": "from cosmic_ray.tools.filters.operators_filter import main"}

    def cr(*args):  # cosmic-ray's console scripts, run by the scratch venv's python
        code = f"import sys; sys.argv[0] = {args[0]!r}; {entry[args[0]]}; sys.exit(main())"
        subprocess.run([str(py), "-c", code, *args[1:]], cwd=scratch, env=env, check=True)

    t0 = time.time()
    base = subprocess.run(cmd, shell=True, cwd=scratch, env=env, capture_output=True, text=True)
    if base.returncode != 0:
        raise SystemExit(f"{name}: the tests fail unmutated:\n{base.stdout[-2000:]}")
    if not resume:  # (a resumed session keeps its mutants and results; exec runs the pending ones)
        cr("cosmic-ray", "init", str(cfg), str(session))
        cr("cr-filter-operators", str(session), str(cfg))
        if funcs:
            cr("cr-filter-lines", "--config", str(cfg), str(session))
    cr("cosmic-ray", "exec", str(cfg), str(session))
    return session_stats(name, session, round(time.time() - t0))


def session_stats(name: str, session: Path, seconds: int | None = None) -> dict:
    """Counts and survivors of a target's session (``pending``: mutants not run yet)."""
    db = sqlite3.connect(session)
    rows = db.execute(
        "SELECT m.start_pos_row, m.operator_name, r.test_outcome, r.worker_outcome, r.diff "
        "FROM mutation_specs m LEFT JOIN work_results r ON r.job_id = m.job_id").fetchall()
    stats = {"target": name, "module": TARGETS[name][0], "seconds": seconds, "killed": 0, "survived": [],
             "skipped": 0, "other": 0, "pending": 0}
    for line, op, test_outcome, worker_outcome, diff in rows:
        if worker_outcome is None:
            stats["pending"] += 1
        elif worker_outcome == "SKIPPED":
            stats["skipped"] += 1
        elif test_outcome == "KILLED":
            stats["killed"] += 1
        elif test_outcome == "SURVIVED":
            stats["survived"].append((line, op, diff))
        else:
            stats["other"] += 1  # incompetent (timeout, crash): counted apart
    return stats


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("targets", nargs="*", help=f"default: all ({', '.join(TARGETS)})")
    ap.add_argument("--scratch", type=Path, default=Path("/tmp/linksim-mutation"))
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds per mutant's test run")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "mutation.md")
    ap.add_argument("--sessions", type=Path, default=Path("/tmp/linksim-mutation-sessions"),
                    help="cosmic-ray session files (kept between runs)")
    ap.add_argument("--resume", action="store_true", help="continue the targets' sessions (pending mutants only)")
    ap.add_argument("--report", action="store_true", help="only write --out from the sessions there are")
    ap.add_argument("--recheck", action="store_true",
                    help="with --resume: run the survivors again (after adding tests that should kill them)")
    args = ap.parse_args(argv)
    names = args.targets or list(TARGETS)
    unknown = [n for n in names if n not in TARGETS]
    if unknown:
        ap.error(f"unknown target(s) {', '.join(unknown)}; known: {', '.join(TARGETS)}")
    if args.report:
        results = [session_stats(n, args.sessions / f"mutation-{n}.sqlite") for n in names
                   if (args.sessions / f"mutation-{n}.sqlite").exists()]
        write_results(results, args.out)
        print(f"wrote {args.out}")
        return 0
    py = make_scratch(args.scratch)
    results = []
    for n in names:  # the results file is rewritten after each target (a long run can be read as it goes)
        args.sessions.mkdir(parents=True, exist_ok=True)
        results.append(run_target(n, args.scratch, py, args.timeout, args.sessions, args.resume, args.recheck))
        r = results[-1]
        print(f"{r['target']}: {r['killed']} killed, {len(r['survived'])} survived, {r['other']} incompetent, "
              f"{r['seconds']} s", flush=True)
        write_results(results, args.out)
    print(f"wrote {args.out}")
    return 0


def _kept_sections(path: Path, names: set[str]) -> tuple[list[str], list[list[str]]]:
    """From an earlier ``--out`` file: the table rows and survivor sections of the targets *not* in
    ``names``, so a run of some targets keeps the others' results (their sessions may be gone)."""
    if not path.exists():
        return [], []
    rows, sections, current = [], [], None
    for line in path.read_text().splitlines():
        cells = [c.strip() for c in line.split("|")]
        if line.startswith("| ") and len(cells) > 2 and cells[1] in TARGETS and cells[1] not in names:
            rows.append(line)
        if line.startswith("## survivor: "):
            target = line[len("## survivor: "):].split(",")[0]
            current = [] if target not in names else None
            if current is not None:
                sections.append(current)
        if current is not None:
            current.append(line)
    return rows, [[ln for ln in sec] for sec in sections]


def write_results(results: list[dict], path: Path) -> None:
    kept_rows, kept_sections = _kept_sections(path, {r["target"] for r in results})
    out = ["# Mutation testing (cosmic-ray 8.7.0, `python tools/mutation.py`)", "",
           "Generated; equivalent survivors are explained in the README's testing section.", "",
           "| target | module | killed | survived | incompetent | not run yet | left out (lines, operators) |",
           "|---|---|---:|---:|---:|---:|---:|"]
    for r in results:
        out.append(f"| {r['target']} | `{r['module']}` | {r['killed']} | {len(r['survived'])} | {r['other']} | "
                   f"{r['pending']} | {r['skipped']} |")
    out += kept_rows
    for sec in kept_sections:
        while sec and not sec[-1].strip():
            sec = sec[:-1]
        out += [""] + sec
    for r in results:
        for line, op, diff in r["survived"]:
            out += ["", f"## survivor: {r['target']}, line {line}, {op}", "", "```diff", (diff or "").strip(), "```"]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(out) + "\n")


if __name__ == "__main__":
    sys.exit(main())
