"""Command-line interface: ``linksim run | validate | list | plot | weights | train``.

User errors (:class:`linksim.errors.LinksimError`) print one line to stderr and exit with status 2,
without a traceback. Any other exception (a bug, or an unsupported setup) prints one line too, with the
path of a log file that holds the traceback (``linksim-error.log`` in the output folder, or in the
current folder), and exits with status 1; ``LINKSIM_DEBUG=1`` re-raises it instead.
``linksim run`` with no file runs the quickstart scenario embedded in the package.
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


def _crash(err: BaseException, folder: Path | None) -> None:
    """An unexpected exception: the traceback goes to a log file, the terminal gets one line."""
    import os
    import traceback

    if os.environ.get("LINKSIM_DEBUG"):
        raise err
    log = None
    for where in ([folder] if folder is not None else []) + [Path.cwd()]:
        try:
            where.mkdir(parents=True, exist_ok=True)
            log = where / "linksim-error.log"
            log.write_text("".join(traceback.format_exception(err)))
            break
        except OSError:
            log = None
    first = (str(err).strip().splitlines() or [""])[0]
    where = f"; traceback in {log}" if log is not None else ""
    typer.echo(f"error: unexpected {type(err).__name__}: {first}{where} (LINKSIM_DEBUG=1 shows it here)", err=True)
    raise typer.Exit(1)


@app.command()
def validate(
    file: Path = typer.Argument(..., help="scenario YAML"),
    show: bool = typer.Option(False, "--show", help="print the scenario with every default filled in"),
) -> None:
    """Check a scenario (keys, types, names, sweep, CBR vs grid, models vs CBR, images) without running it."""
    from linksim.scenario import load_scenario
    from linksim.sweep import expand

    try:
        scn = load_scenario(file)
        n = len(expand(scn))
        notes = _set_metric_notes(scn)
    except LinksimError as err:
        _fail(err)
    except Exception as err:  # noqa: BLE001 - one line + a log, see _crash
        _crash(err, None)
    if show:
        import yaml

        typer.echo(yaml.safe_dump(scn.dump(), sort_keys=False, allow_unicode=True).rstrip())
    for note in notes:
        typer.echo(f"note: {note}", err=True)
    typer.echo(f"{file}: ok — {len(scn.methods)} method(s) x {n} point(s) = {len(scn.methods) * n} jobs")


def _set_metric_notes(scn) -> list[str]:
    """Set metrics (FID, KID) requested on fewer samples per point than they need: they will be
    reported unavailable (empty cells, reason in run.json), never a NaN or a meaningless number."""
    from linksim.configs import SET_METRIC_MIN_SAMPLES, has_image_methods
    from linksim.sources import check_images

    wanted = [m for m in scn.metrics if m in SET_METRIC_MIN_SAMPLES]
    if not wanted or scn.data is None or not has_image_methods(scn):
        return []
    samples = check_images(scn.data) * int(getattr(scn.channel, "draws", 1))
    need = SET_METRIC_MIN_SAMPLES
    return [f"metrics: {m} needs at least {need[m]} images x draws per point, this scenario has {samples}: "
            f"it will be reported unavailable" for m in wanted if samples < need[m]]


@app.command()
def run(
    file: Optional[Path] = typer.Argument(None, help="scenario YAML (default: the embedded quickstart)"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="output folder (default: the scenario's)"),
    resume: bool = typer.Option(True, "--resume/--fresh", help="skip finished points (default) or start over"),
    figures: bool = typer.Option(True, "--figures/--no-figures", help="make the figures and report.md at the end"),
    strict_metrics: bool = typer.Option(
        False, "--strict-metrics",
        help="a metric whose weight file is absent is an error (before any work) instead of empty cells",
    ),
) -> None:
    """Run a scenario: every method at every sweep point; results, summary, figures and report.md in the output folder."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from linksim.runner import run_scenario
    from linksim.scenario import load_scenario

    console = Console(stderr=True)
    try:
        scn = load_scenario(file if file is not None else quickstart_path())
        from linksim.sweep import expand

        total = len(expand(scn)) * len(scn.methods)
        bar = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                       TimeElapsedColumn(), TextColumn("{task.fields[info]}"), console=console, transient=False)
        task = bar.add_task(f"{scn.name}", total=total, info="")

        # shown from the first job on: a check that fails first (--strict-metrics) prints one line only
        def shown():
            if not bar.live.is_started:
                bar.start()
            return bar

        def on_progress(job, info):
            text = " ".join(f"{k}={v}" for k, v in info.items())
            shown().update(task, info=f"{job.method} @ {job.point.key}: {text}")

        def on_job(job, result, skipped):
            shown().advance(task)
            if skipped:
                bar.update(task, info=f"{job.method} @ {job.point.key}: resumed")

        try:
            out = run_scenario(scn, output=output, fresh=not resume, progress=on_progress, on_job=on_job,
                               strict_metrics=strict_metrics)
        finally:
            bar.stop()
        made = _plot(out) if figures else []
    except LinksimError as err:
        _fail(err)
    except Exception as err:  # noqa: BLE001 - one line + a log, see _crash
        _crash(err, output if output is not None else (scn.output_dir if "scn" in locals() else None))
    console.print(f"results in {out}" + (f"; figures: {', '.join(str(p) for p in made)}" if made else ""))


def _plot(run_dir: Path, reference: str | None = None) -> list[Path]:
    """Figures and ``report.md`` of a run folder.

    Image rows: :func:`linksim.reports.make_report` (RD-perception figures, reconstruction grids,
    tables). Rows of methods that declare a ``ber`` result column (``result_columns`` of their
    registered class, e.g. phy studies): the BER figure and a BER table in ``report.md`` (appended
    after the image report in a run that has both). A kind no longer registered (a plug-in that is
    not installed) counts as declaring ``ber`` when its rows have values there.
    """
    import pandas as pd

    from linksim.registry import METHODS
    from linksim.reports import make_report
    from linksim.studies import plot_ber

    run_dir = Path(run_dir)
    results = run_dir / "results.csv"
    if not results.exists():
        raise LinksimError(f"{run_dir}: no results.csv here (is it a linksim output folder?)")
    df = pd.read_csv(results)
    made: list[Path] = []
    has_images = "image" in df and df["image"].notna().any()
    if has_images:
        made += list(make_report(run_dir, reference=reference))
    def declares_ber(kind) -> bool:
        if kind in METHODS:
            return "ber" in getattr(METHODS.get(kind), "result_columns", ())
        return "ber" in df and bool(df.loc[df["kind"] == kind, "ber"].notna().any())

    ber_kinds = [k for k in df["kind"].dropna().unique() if declares_ber(k)] if "kind" in df else []
    phy = df[df["kind"].isin(ber_kinds)] if ber_kinds else df.iloc[0:0]
    if not phy.empty:
        figures = plot_ber(run_dir, kinds=ber_kinds)
        made += figures
        made.append(_phy_report(run_dir, phy, figures, append=has_images))
    return made


#: Columns of the BER table of report.md (those present in the rows), with their headers.
_PHY_TABLE = [("method", "method"), ("channel", "channel"), ("modulation", "modulation"), ("coding", "coding"),
              ("ebno_db", "Eb/N0 [dB]"), ("csnr_db", "CSNR [dB]"), ("ber", "BER"), ("bler", "BLER"),
              ("bit_errors", "bit errors"), ("bits", "bits"), ("block_errors", "block errors"),
              ("blocks", "blocks"), ("seconds", "seconds")]


def _phy_report(run_dir: Path, rows, figures: list[Path], append: bool) -> Path:
    """The BER section of ``report.md``: one table row per method x point, then the figure."""
    import json
    import math

    def cell(col, v):
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return "–"
        if col in ("ber", "bler"):
            return f"{float(v):.3e}"
        if col in ("ebno_db", "csnr_db"):
            return f"{float(v):g}"
        if col == "seconds":
            return f"{float(v):.2f}"
        if col in ("bits", "bit_errors", "blocks", "block_errors"):
            return f"{int(v)}"
        return str(v)

    cols = [(c, h) for c, h in _PHY_TABLE if c in rows.columns and rows[c].notna().any()]
    sort = [c for c in ("method", "channel", "ebno_db", "csnr_db") if c in rows.columns]
    lines = []
    if not append:
        name = run_dir.name
        if (run_dir / "run.json").is_file():
            name = json.loads((run_dir / "run.json").read_text()).get("name", name)
        lines += [f"# Report: {name}", ""]
    lines += ["## Bit and block error rates", "",
              "Monte-Carlo estimates; a point stops at its bit/block error targets or its block budget "
              "(results.csv has the counts).", "",
              "| " + " | ".join(h for _, h in cols) + " |", "|" + "---|" * len(cols)]
    for _, r in rows.sort_values(sort, kind="stable").iterrows():
        lines.append("| " + " | ".join(cell(c, r[c]) for c, _ in cols) + " |")
    lines.append("")
    lines += [f"![BER](figures/{p.name})" for p in figures if p.suffix == ".png"]
    lines.append("")
    report = run_dir / "report.md"
    text = "\n".join(lines)
    if append and report.exists():
        text = report.read_text().rstrip("\n") + "\n\n" + text
    report.write_text(text)
    return report


@app.command()
def plot(
    run_dir: Path = typer.Argument(..., help="an output folder of `linksim run`"),
    reference: Optional[str] = typer.Option(
        None, "--reference", help="method subtracted in the paired-difference tables (default: the first method)"),
) -> None:
    """(Re)make the figures, report.md and report.tex of a finished or partial run."""
    try:
        made = _plot(run_dir, reference)
    except LinksimError as err:
        _fail(err)
    except Exception as err:  # noqa: BLE001 - one line + a log, see _crash
        _crash(err, run_dir if run_dir.is_dir() else None)
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


def _run_training(train, config: Path, output, resume: bool, stop_at) -> None:
    """Call ``train(config, output, resume=, stop_at=)``; config errors become one line, exit 2."""
    import pydantic

    try:
        train(config, output, resume=resume, stop_at=stop_at)
    except pydantic.ValidationError as err:
        first = err.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        _fail(LinksimError(f"{config}: {key}: {first['msg']}"))
    except (FileNotFoundError, ValueError) as err:
        _fail(LinksimError(f"{config}: {err}"))


@train_app.command("jscc")
def train_jscc(
    config: Path = typer.Argument(..., help="training config YAML (e.g. configs/jscc_embedded_c2.yaml)"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="run folder (default: the config's output)"),
    resume: bool = typer.Option(True, "--resume/--fresh", help="continue from the run folder's checkpoint"),
    stop_at: Optional[int] = typer.Option(None, help="checkpoint and stop at this step (train in chunks)"),
) -> None:
    """Train an ADJSCC (DeepJSCC) model: checkpoints + resume, loss curve, PSNR-vs-CSNR table, safetensors."""
    from linksim.codecs.jscc.training import train_jscc as _train

    _run_training(_train, config, output, resume, stop_at)


@train_app.command("prior")
def train_prior(
    config: Path = typer.Argument(..., help="training config YAML (e.g. configs/prior_embedded.yaml)"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="run folder (default: the config's output)"),
    resume: bool = typer.Option(True, "--resume/--fresh", help="continue from the run folder's checkpoint"),
    stop_at: Optional[int] = typer.Option(None, help="checkpoint and stop at this step (train in chunks)"),
) -> None:
    """Train the small DDPM image prior: checkpoints + resume, EMA sample grids, loss curve, diffusers export."""
    from linksim.codecs.diffusion.training import train_prior as _train

    _run_training(_train, config, output, resume, stop_at)


@train_app.command("diffjscc")
def train_diffjscc(
    config: Path = typer.Argument(..., help="training config YAML (e.g. configs/diffjscc_embedded.yaml)"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="run folder (default: the config's output)"),
    resume: bool = typer.Option(True, "--resume/--fresh", help="continue from the run folder's checkpoint"),
    stop_at: Optional[int] = typer.Option(None, help="checkpoint and stop at this step (train in chunks)"),
) -> None:
    """Train the embedded DiffJSCC refiner (conditional DDPM on frozen stage-1 JSCC decodes): EMA, resume, grids."""
    from linksim.codecs.diffjscc.training import train_diffjscc as _train

    _run_training(_train, config, output, resume, stop_at)


@train_app.command("gesco")
def train_gesco(
    config: Path = typer.Argument(..., help="training config YAML (e.g. configs/gesco_embedded.yaml)"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="run folder (default: the config's output)"),
    resume: bool = typer.Option(True, "--resume/--fresh", help="continue from the run folder's checkpoint"),
    stop_at: Optional[int] = typer.Option(None, help="checkpoint and stop at this step (train in chunks)"),
) -> None:
    """Train GESCO's SPADE semantic diffusion model: noisy training, label dropout, EMA, sample grids, safetensors."""
    from linksim.codecs.gesco.training import train_gesco as _train

    _run_training(_train, config, output, resume, stop_at)


@train_app.command("segmenter")
def train_segmenter(
    config: Path = typer.Argument(..., help="training config YAML (e.g. configs/segmenter_embedded.yaml)"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="run folder (default: the config's output)"),
    resume: bool = typer.Option(True, "--resume/--fresh", help="continue from the run folder's checkpoint"),
    stop_at: Optional[int] = typer.Option(None, help="checkpoint and stop at this step (train in chunks)"),
) -> None:
    """Train the scene segmenter of the miou metric: cross-entropy on clean scenes, held-out mIoU, safetensors."""
    from linksim.codecs.gesco.training import train_segmenter as _train

    _run_training(_train, config, output, resume, stop_at)


@train_app.command("lrisc")
def train_lrisc(
    config: Path = typer.Argument(..., help="training config YAML (e.g. configs/lrisc_embedded_transform.yaml)"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="run folder (default: the config's output)"),
    resume: bool = typer.Option(True, "--resume/--fresh", help="continue from the run folder's checkpoint"),
    stop_at: Optional[int] = typer.Option(None, help="checkpoint and stop at this step (train in chunks)"),
) -> None:
    """Train one LRISC stage (transform + hyperprior | JSCC over the SNR range | diffusion decoder)."""
    from linksim.codecs.lrisc.training import train_lrisc as _train

    _run_training(_train, config, output, resume, stop_at)


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
