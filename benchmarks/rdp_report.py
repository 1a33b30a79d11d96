"""Reproduce a rate-distortion-perception table on your own images.

Runs a scenario's image methods on a folder of images (Kodak, CLIC, ...) through the CLI
(``linksim run SCENARIO --output DIR``) and writes the report (figures + ``report.md``) with
:func:`linksim.reports.make_report`::

    python benchmarks/rdp_report.py scenarios/quickstart.yaml ~/data/kodak --output results/kodak \\
        --size 256 --limit 24

The scenario is copied with ``data.source: folder``, ``data.folder`` (and optionally ``data.size``,
``data.limit``, ``save_images``, ``metrics``) overridden; the copy is saved as
``<output>/scenario.input.yaml`` so that the run can be repeated exactly. Methods of kind
``phy_ber`` (no images) are dropped from the copy. Re-running resumes finished sweep points.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import yaml


def build_scenario(base: dict, folder: Path, output: Path, args) -> dict:
    """The base scenario with the data folder and the options of ``args`` overridden."""
    scn = dict(base)
    data = dict(scn.get("data") or {})
    data.update(source="folder", folder=str(folder.resolve()))
    if args.size is not None:
        data["size"] = args.size
    if args.limit is not None:
        data["limit"] = args.limit
    scn["data"] = data
    scn["methods"] = [m for m in scn.get("methods", []) if m.get("kind") != "phy_ber"]
    if args.methods:
        wanted = set(args.methods.split(","))
        scn["methods"] = [m for m in scn["methods"] if m.get("name") in wanted]
    if not scn["methods"]:
        raise SystemExit("no image methods left in the scenario (check --methods)")
    if args.metrics:
        scn["metrics"] = args.metrics.split(",")
    if args.save_images:
        scn["save_images"] = True
    scn["output"] = str(output)
    return scn


def linksim_command() -> list[str]:
    """The ``linksim`` console script of this environment (or the module, if not installed)."""
    exe = Path(sys.executable).with_name("linksim")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("linksim")
    return [found] if found else [sys.executable, "-c", "from linksim.cli import main; main()"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("scenario", type=Path, help="scenario YAML whose image methods are run")
    p.add_argument("folder", type=Path, help="folder of png/jpg/bmp images (read recursively, sorted)")
    p.add_argument("--output", type=Path, required=True, help="output folder of the run and the report")
    p.add_argument("--size", type=int, default=None, help="centre-crop side [px] (default: the scenario's)")
    p.add_argument("--limit", type=int, default=None, help="number of images (default: the scenario's)")
    p.add_argument("--methods", default=None, help="comma-separated method names to keep")
    p.add_argument("--metrics", default=None, help="comma-separated metrics (default: the scenario's)")
    p.add_argument("--save-images", action="store_true", help="save reconstructions (for the grids)")
    p.add_argument("--fresh", action="store_true", help="start over instead of resuming")
    p.add_argument("--report-only", action="store_true", help="only (re)make the report of an existing run")
    args = p.parse_args(argv)

    if not args.folder.is_dir():
        raise SystemExit(f"{args.folder}: not a folder")
    args.output.mkdir(parents=True, exist_ok=True)
    if not args.report_only:
        base = yaml.safe_load(args.scenario.read_text())
        scn = build_scenario(base, args.folder, args.output, args)
        scn_path = args.output / "scenario.input.yaml"
        scn_path.write_text(yaml.safe_dump(scn, sort_keys=False))
        cmd = [*linksim_command(), "run", str(scn_path), "--output", str(args.output), "--no-figures"]
        if args.fresh:
            cmd.append("--fresh")
        print("+", " ".join(cmd), flush=True)
        rc = subprocess.call(cmd)
        if rc != 0:
            return rc

    from linksim.reports import make_report

    paths = make_report(args.output, strict=True)
    print(f"report: {args.output / 'report.md'} ({len(paths) - 1} figure files in {args.output / 'figures'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
