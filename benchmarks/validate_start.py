"""Start time of ``linksim validate`` (and ``linksim list``) in fresh interpreters: two installs
(e.g. before / after a change) timed alternately in the same run, median of repeats, and the ratio.

    python benchmarks/validate_start.py --before /path/to/old/.venv/bin/python --repeats 7

Each timing is one ``python -m linksim.cli validate <scenario>`` subprocess, wall clock, run from
``/`` (so neither tree's files are on ``sys.path`` by accident); the two pythons alternate so that
machine load affects both alike. Prints one header line, then a table with the ratio after/before.
No pass/fail threshold.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _time(python: str, args: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run([python, "-m", "linksim.cli", *args], cwd="/", check=True, capture_output=True)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", required=True, help="python of the reference install")
    ap.add_argument("--after", default=sys.executable, help="python of the install under test (default: this one)")
    ap.add_argument("--scenario", default=str(ROOT / "scenarios" / "quickstart.yaml"))
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    print(f"validate_start: python={platform.python_version()} repeats={a.repeats} scenario={a.scenario}")
    print("| command | before [s] | after [s] | after / before |\n|---|---|---|---|")
    for name, args in (("validate", ["validate", a.scenario]), ("list", ["list"])):
        before, after = [], []
        _time(a.before, args), _time(a.after, args)  # warm the file cache for both
        for _ in range(a.repeats):
            before.append(_time(a.before, args))
            after.append(_time(a.after, args))
        b, f = statistics.median(before), statistics.median(after)
        print(f"| {name} | {b:.2f} | {f:.2f} | {f / b:.2f} |")


if __name__ == "__main__":
    main()
