"""The README stays true: every CLI option is listed, the error example reads as the real error,
the scenario reference is linked, every weight file it names is listed by `linksim weights`."""

from __future__ import annotations

import re
from pathlib import Path

import click
import typer

from linksim.cli import app, main

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def _commands(group: click.Group, prefix=()):
    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, (*prefix, name))
        else:
            yield (*prefix, name), cmd


def test_every_cli_command_and_option_is_in_the_readme():
    block = README.split("## Commands")[1].split("##")[0]
    for path, cmd in _commands(typer.main.get_command(app)):
        assert f"linksim {' '.join(path)}" in block, path
        for param in cmd.params:
            if isinstance(param, click.Option):
                for opt in param.opts + param.secondary_opts:
                    if opt != "--help":
                        assert opt in block, (path, opt)


def test_error_example_reads_as_the_real_error(tmp_path, capsys):
    example = re.search(r"^error: scenarios/x\.yaml: .*$", README, re.M).group(0)
    x = tmp_path / "scenarios" / "x.yaml"
    x.parent.mkdir()
    x.write_text("name: x\nchannel: {kind: awgn}\ndata: {size: 32}\nsweep: {csnr_db: [0], cbr: [1/24]}\n"
                 "methods: [{kind: foo}]\n")
    import os

    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        assert main(["validate", "scenarios/x.yaml"]) == 2
    finally:
        os.chdir(cwd)
    real = capsys.readouterr().err.strip()
    # exact up to the list of kinds; the README may lag a kind added since (plug-ins add kinds too)
    head, _, kinds = example.partition("allowed: ")
    assert real.startswith(head + "allowed: ")
    assert set(kinds.split(", ")) <= set(real.partition("allowed: ")[2].split(", "))


def test_reference_linked_and_no_outside_links():
    assert "](docs/scenario.md)" in README
    assert "../shared" not in README


def test_weights_named_in_the_readme_are_listed():
    from linksim.codecs.diffusion.loaders import PRIOR_SOURCES
    from linksim.weights import KNOWN

    files = {s.filename for s in KNOWN.values()}
    for name, src in PRIOR_SOURCES.items():
        assert name in KNOWN and src["filename"] in files  # `prior: <name>` files
    for name in re.findall(r"`prior: (\w+)`", README) + ["alexnet", "vgg16", "inception_fid"]:
        if name != "embedded":
            assert name in KNOWN, name
    assert {"adjscc_c2", "adjscc_c4", "ddpm_embedded"} <= set(KNOWN)
