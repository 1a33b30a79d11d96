"""Command-line interface: ``linksim run | validate | list | plot | weights | train``.

User errors (:class:`linksim.errors.LinksimError`) print one line to stderr and exit with status 2,
without a traceback. ``linksim run`` with no file runs the quickstart scenario embedded in the package.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from linksim.errors import LinksimError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="linksim: end-to-end wireless image link simulator")
#: ``linksim train ...`` — training commands are added here by the model owners
#: (``train_app.command()(fn)``).
train_app = typer.Typer(help="Train the embedded models (commands are registered by their modules).", no_args_is_help=True)
app.add_typer(train_app, name="train")


def quickstart_path() -> Path:
    """The quickstart scenario shipped inside the package (``linksim/scenarios/quickstart.yaml``)."""
    return Path(__file__).resolve().parent / "scenarios" / "quickstart.yaml"


def _fail(err: Exception) -> None:
    typer.echo(f"error: {err}", err=True)
    raise typer.Exit(2)


@app.command()
def validate(file: Path = typer.Argument(..., help="scenario YAML")) -> None:
    """Check a scenario (keys, types, names, sweep, CBR vs grid, data folder) without running it."""
    from linksim.scenario import load_scenario
    from linksim.sweep import expand

    try:
        scn = load_scenario(file)
    except LinksimError as err:
        _fail(err)
    n = len(expand(scn))
    typer.echo(f"{file}: ok — {len(scn.methods)} method(s) x {n} point(s) = {len(scn.methods) * n} jobs")


@app.command()
def run(
    file: Optional[Path] = typer.Argument(None, help="scenario YAML (default: the embedded quickstart)"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="output folder (default: the scenario's)"),
    resume: bool = typer.Option(True, "--resume/--fresh", help="skip finished points (default) or start over"),
    figures: bool = typer.Option(True, "--figures/--no-figures", help="make the figures at the end"),
) -> None:
    """Run a scenario: every method at every sweep point; results, summary and figures in the output folder."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from linksim.engine import run_scenario
    from linksim.scenario import load_scenario

    console = Console(stderr=True)
    try:
        scn = load_scenario(file if file is not None else quickstart_path())
        from linksim.sweep import expand

        total = len(expand(scn)) * len(scn.methods)
        with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                      TimeElapsedColumn(), TextColumn("{task.fields[info]}"), console=console,
                      transient=False) as bar:
            task = bar.add_task(f"{scn.name}", total=total, info="")

            def on_progress(job, info):
                text = " ".join(f"{k}={v}" for k, v in info.items())
                bar.update(task, info=f"{job.method} @ {job.point.key}: {text}")

            def on_job(job, result, skipped):
                bar.advance(task)
                if skipped:
                    bar.update(task, info=f"{job.method} @ {job.point.key}: resumed")

            out = run_scenario(scn, output=output, fresh=not resume, progress=on_progress, on_job=on_job)
        made = _plot(out) if figures else []
    except LinksimError as err:
        _fail(err)
    console.print(f"results in {out}" + (f"; figures: {', '.join(str(p) for p in made)}" if made else ""))


def _plot(run_dir: Path) -> list[Path]:
    """BER figure for phy rows, ``linksim.reports.make_report`` for image rows (when available)."""
    import pandas as pd

    from linksim.studies import plot_ber

    results = Path(run_dir) / "results.csv"
    if not results.exists():
        raise LinksimError(f"{run_dir}: no results.csv here (is it a linksim output folder?)")
    df = pd.read_csv(results)
    made: list[Path] = []
    if "kind" in df and (df["kind"] == "phy_ber").any():
        made += plot_ber(run_dir)
    if "image" in df and df["image"].notna().any():
        try:
            from linksim.reports import make_report
        except ImportError:
            return made
        made += list(make_report(Path(run_dir)))
    return made


@app.command()
def plot(run_dir: Path = typer.Argument(..., help="an output folder of `linksim run`")) -> None:
    """(Re)make the figures of a finished or partial run."""
    try:
        made = _plot(run_dir)
    except LinksimError as err:
        _fail(err)
    for p in made:
        typer.echo(str(p))


@app.command("list")
def list_cmd() -> None:
    """Everything registered: channels, methods, metrics, with one-line descriptions."""
    from rich.console import Console
    from rich.table import Table

    from linksim.registry import CHANNELS, METHODS, METRICS

    table = Table(title="linksim components")
    for col in ("kind", "name", "description"):
        table.add_column(col)
    for reg in (CHANNELS, METHODS, METRICS):
        for name, desc in reg.describe().items():
            table.add_row(reg.kind, name, desc)
    Console(width=140).print(table)


@app.command()
def weights() -> None:
    """Known weight files: where they are, or where to put them."""
    from rich.console import Console

    from linksim.weights import weights_table

    Console(width=160).print(weights_table())


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point; ``main([...])`` runs in-process and returns the exit status."""
    try:
        app(args=argv, prog_name="linksim", standalone_mode=True)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if argv is None:
            sys.exit(code)
        return code
    return 0


if __name__ == "__main__":  # pragma: no cover
    main()
