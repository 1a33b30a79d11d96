"""``docs/scenario.md``: the scenario reference, generated from the pydantic models and the registry.

Every key of every section (top level, ``data``, ``traffic``, ``numerology``, ``channel`` per channel
kind, ``methods`` per method kind), every metric and every results column, with type, default,
unit and meaning. Meanings come from the field's ``description`` or from the ``:param <key>:``
lines of the model's (or a base class's) docstring; units from a ``[unit]`` in that text. A test
regenerates the page and fails when the committed copy differs::

    python -m linksim.docs            # rewrite docs/scenario.md
    python -m linksim.docs --check    # exit 1 when it is out of date
"""

from __future__ import annotations

import inspect
import re
import sys
import typing
from pathlib import Path

__all__ = ["scenario_reference", "RESULTS_COLUMNS", "SUMMARY_COLUMNS", "TOP_LEVEL", "main"]

DOC_PATH = Path(__file__).resolve().parents[1] / "docs" / "scenario.md"

#: meanings of the top-level scenario keys (the Scenario model documents them in comments)
TOP_LEVEL = {
    "name": "names the run and its default output folder `results/<name>`",
    "seed": "one seed for every random draw (channel, noise, pilots, interleaver, samplers)",
    "device": "`auto` (CUDA when available) | `cpu` | `cuda`",
    "data": "which images (section below); absent for phy-only studies",
    "channel": "the channel section; its keys depend on `kind` (below)",
    "sweep": "the grid: `csnr_db` [dB] or `ebno_db` [dB], `cbr` (numbers or `a/b`), and any "
             "`channel.<key>`; every combination is one point per method",
    "methods": "list of methods, each with `name` (default: its kind) and `kind` (below)",
    "metrics": "metric names (below); empty: psnr, ms_ssim",
    "save_images": "write every reconstruction (first channel draw) to `recon/<method>/<point>/<image>.png`",
    "output": "output folder (default `results/<name>`)",
    "executor": "`inprocess` | `process` (a process pool) | `ray` (a local Ray instance bound to 127.0.0.1; "
                "`pip install 'linksim[ray]'`); at most `workers` jobs run at once, and after a failed job no "
                "new one starts",
    "workers": "jobs running at once: processes of the process executor; Ray tasks (a local Ray instance gets `num_cpus` = workers x threads)",
    "threads": "torch threads per job (and per worker); with `executor: process` set workers x threads = cores; "
               "with `executor: ray` also the CPUs each job requests (default 1)",
    "address": "`executor: ray` only: the Ray cluster to run on; absent: a private local instance on 127.0.0.1; "
               "`auto`: the cluster `ray start --head` runs on this machine; `host:port`: that cluster's GCS",
    "num_gpus": "`executor: ray` only: GPUs each job requests from Ray (its jobs then run on `cuda`); a request "
                "the cluster cannot meet is an error, not a wait",
    "traffic": "arrival process of the discrete-event core (section below)",
    "numerology": "airtime model of the discrete-event core (section below)",
}

#: meanings of keys whose models do not document them (used only when the model's field and
#: docstring say nothing; better: document the key in its model)
FALLBACK = {
    "kind": "`batch`: everything at t = 0, one Monte-Carlo batch; `periodic`: every `interval_s`; "
            "`poisson`: rate `rate_hz`",
    "symbols_per_slot": "OFDM symbols per slot; airtime is rounded up to whole slots",
    "symbol_rate_hz": "flat channels: single-carrier complex symbols per second [Hz]",
    "estimator": "channel estimate the receiver uses: `perfect` (the true channel), `ls` (least squares "
                 "on the pilots), `lmmse` (pilots + the channel's frequency covariance)",
    "equalizer": "one-tap equaliser: `zf` | `mmse` (unbiased MMSE, effective noise per symbol)",
    "tdl_model": "3GPP TR 38.901 tapped-delay-line profile A..E",
    "lr_h": "step size of the channel-tap update (published 0.2)",
    "pilot_aided": "also guide the taps with the pilot resource elements",
    "success_nmse": "tap NMSE below which a draw counts as `channel_success`",
    "gamma": "weight of HiFi-DiffCom's confirming term γ",
    "kappa": "κ of the adaptive start t_start(CSNR, CBR, κ) (published 5)",
    "start_scale": "scale of the adaptive start step t_start",
    "step_scale": "fraction of the t_start + 1 steps taken (strided schedule)",
    "codec": "`hevc` | `vvc` | `jpeg` | `jpeg2000` | `webp`",
    "chroma": "HEVC only: `420` (default) or `444`",
    "preset": "encoder preset (HEVC: x265 presets, default `veryslow`; VVC: vvenc presets)",
}

#: results.csv columns of image rows and of phy studies (DESIGN.md §5) -> meaning
RESULTS_COLUMNS = {
    "method": "the method's `name`",
    "kind": "the method's kind",
    "channel": "channel label (`awgn`, `ofdm/lmmse`, `tdl-C/ls`, ...)",
    "point": "the sweep point's key (`cbr=1/24|csnr_db=10`)",
    "csnr_db": "CSNR [dB] per complex data symbol, DESIGN.md §3",
    "ebno_db": "Eb/N0 [dB] (phy studies)",
    "cbr": "channel bandwidth ratio N / (3HW) as `a/b`",
    "image": "image name",
    "draw": "channel realisation index 0..draws-1 (`channel.draws`)",
    "psnr": "PSNR [dB] of the reconstruction",
    "ms_ssim": "MS-SSIM",
    "lpips": "LPIPS (AlexNet), lower is better",
    "lpips_vgg": "LPIPS (VGG16), lower is better",
    "dists": "DISTS, lower is better",
    "outage": "true: no image was delivered (source outage: nothing fits the budget; or a CRC failure "
              "with `crc_failure: fallback`) and the row holds the mid-grey fallback",
    "payload_bits": "source payload bits sent (separation), empty for analog methods",
    "channel_uses": "complex data symbols per image (the CBR numerator); lrisc: its per-image total "
                    "data_symbols + side_symbols (varies with `length: adaptive`); phy studies: data symbols "
                    "per example (a codeword block); pilots and cyclic prefix are never counted here",
    "overhead": "pilot and cyclic-prefix symbols as a fraction of the data symbols (0 on flat channels)",
    "seconds": "measured decode time per image [s] (wall clock of this host; a batch's time shared by its "
               "images; the only column that differs between two runs with one seed)",
    "seed": "the seed of the point's draws (equal for points that differ only in estimator/equaliser)",
    "nfe": "network function evaluations of a diffusion receiver",
    "t_arrival": "simulated arrival time [s]",
    "t_done": "simulated time the decode finished [s] (`receiver_time: model`: service time from the NFE "
              "and `device_profile`, deterministic; `measured`: the wall-clock decode time)",
    "latency_s": "t_done - t_arrival [s]",
    "queue_s": "time waiting for the channel and the receiver [s]",
    "airtime_s": "time on the air [s] (whole OFDM slots), all transmissions of the image (HARQ); feedback "
                 "waits are not air time but hold the channel (in latency_s)",
    "deadline_missed": "latency above `traffic.deadline_s` (empty without a deadline)",
    "aoi_s": "age of information at the frame's arrival [s]: its arrival time minus the arrival time of the "
             "freshest frame delivered (decoded, not in outage) by then; empty before any delivery "
             "(periodic/poisson traffic; linksim/frames.py)",
    "<metric>_in_time": "the metric of what is shown in the frame's slot: itself when delivered within "
                        "`traffic.deadline_s`, else the last frame delivered in time (mid-grey before any), "
                        "against the frame's original (per-image metrics; with a deadline)",
    "quality": "codec quality parameter chosen to fit the budget (separation, ideal)",
    "mcs": "modulation and coding scheme used (separation)",
    "crc_ok": "every codeword passed its CRC (separation)",
    "codeword_errors": "codewords that failed their CRC after their last transmission (separation)",
    "transmissions": "mean transmissions per codeword of the image (separation): 1 without `harq`, at most "
                     "`harq.max_tx`; the image's airtime is the grid's airtime times this",
    "residual_bler": "fraction of the image's codewords whose CRC still fails after the last transmission "
                     "(separation)",
    "sinr_eff_db": "effective SINR [dB] of the image's first transmission (EESM over its codeword symbols at "
                   "its MCS; separation with `phy: abstract` or `mcs: olla`; the receiver's report OLLA uses)",
    "goodput": "delivered source payload bits per channel use [bit/symbol] (separation): payload_bits of an "
               "image whose every codeword passed, / (channel_uses x transmissions); 0 if not delivered",
    "capacity_bits": "floor(rho 3HW log2(1 + snr)) error-free bits of the bound (ideal)",
    "channel_nmse": "NMSE of the sampled channel taps (blind_diffcom)",
    "channel_success": "tap NMSE below `success_nmse` (blind_diffcom)",
    "pilot_aided": "the blind receiver also used the pilots (blind_diffcom)",
    "transmit": "`analog` | `digital` | `paper` transmission mode (gesco)",
    "map_symbols": "channel symbols the semantic maps and side information occupy (gesco)",
    "side_bits": "bits of side information: the present-class list (gesco); the group lengths (lrisc)",
    "data_symbols": "complex JSCC symbols the image's groups were given, sum of the lengths k_g (lrisc)",
    "side_symbols": "channel uses of the digitally sent side information (lrisc)",
    "decoder": "`diffusion` | `synthesis`: the decoder that made the image (lrisc)",
    "pool": "average-pooling factor of the maps that fits the budget (gesco analog)",
    "downsample": "point-sampling factor of the label map that fits the budget (gesco digital)",
    "side_ok": "the side information was received correctly (gesco)",
    "cbr_defined": "false for `transmit: paper` (noise added to the maps, no channel uses) (gesco)",
    "modulation": "QAM (phy studies)",
    "coding": "`none` | `ldpc` (phy studies)",
    "coderate": "LDPC code rate (phy studies)",
    "ber": "bit error rate (phy studies)",
    "bler": "block (codeword) error rate (phy studies)",
    "bits": "bits simulated", "bit_errors": "bit errors counted",
    "blocks": "blocks simulated", "block_errors": "block errors counted",
    "stopped_early": "the point stopped at its error targets before `max_blocks`",
}

#: summary.csv columns beyond the means of the results columns (linksim.summary.summarize)
SUMMARY_COLUMNS = {
    "n": "samples of the point = images x draws",
    "images": "distinct images",
    "draws": "channel draws per image",
    "<column>": "mean over the n samples of a numeric results column",
    "<column>_ci95": "half-width of the 95 % Student-t interval of that mean (over the n samples)",
    "outage_rate": "fraction of samples in outage",
    "crc_failures": "samples whose CRC failed (separation)",
    "<metric>_no_outage": "mean of the metric over the samples not in outage",
    "fid, kid, kid_std, ...": "set metrics, one value per method x point (over all its samples)",
}


def _params(cls) -> dict[str, str]:
    """``:param name: text`` entries of the docstrings of ``cls`` and its bases (first wins)."""
    out: dict[str, str] = {}
    for klass in inspect.getmro(cls):
        doc = klass.__dict__.get("__doc__") or ""
        for m in re.finditer(r":param (\w+):(.*?)(?=\n\s*:\w|\n\s*\n|\Z)", doc, re.S):
            out.setdefault(m.group(1), " ".join(m.group(2).split()))
    return out


def _rst_to_md(text: str) -> str:
    """Docstring markup to Markdown: ````x```` -> `x`, ``:func:`f``` -> `f`."""
    text = re.sub(r":\w+:`~?([^`]+)`", r"`\1`", text)
    return text.replace("``", "`")


def _type(ann) -> str:
    """A readable type: ``int``, ``float | None``, ``'fixed' | 'adaptive'``."""
    origin = typing.get_origin(ann)
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in typing.get_args(ann))
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return " \\| ".join(_type(a) for a in typing.get_args(ann))
    if origin is typing.Annotated:
        return _type(typing.get_args(ann)[0])
    if origin in (list, tuple, dict):
        args = ", ".join(_type(a) for a in typing.get_args(ann) if a is not Ellipsis)
        return f"{origin.__name__}[{args}]"
    if ann is type(None):
        return "null"
    name = getattr(ann, "__name__", None) or str(ann)
    return {"PositiveInt": "int > 0", "PositiveFloat": "float > 0", "Path": "path", "str": "str"}.get(name, name)


def _constraints(field) -> str:
    parts = []
    for meta in field.metadata:
        for attr, sym in (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<")):
            v = getattr(meta, attr, None)
            if v is not None:
                parts.append(f"{sym} {v}")
    return f" ({', '.join(parts)})" if parts else ""


def _default(field) -> str:
    from pydantic_core import PydanticUndefined

    if field.default is PydanticUndefined:
        return "required" if field.default_factory is None else "`" + repr(field.default_factory()) + "`"
    return f"`{field.default!r}`" if field.default is not None else "`null`"


def _unit(text: str) -> str:
    m = re.search(r"\[([^\]]{1,12})\]", text or "")
    return m.group(1) if m else ""


def _table(model, meanings: dict[str, str] | None = None, skip=()) -> list[str]:
    params = _params(model)
    rows = ["| key | type | default | unit | meaning |", "|---|---|---|---|---|"]
    for key, field in model.model_fields.items():
        if key in skip:
            continue
        text = field.description or params.get(key) or (meanings or {}).get(key) or FALLBACK.get(key, "")
        text = _rst_to_md(text).replace("|", "\\|")
        rows.append(f"| `{key}` | {_type(field.annotation)}{_constraints(field)} | {_default(field)} | "
                    f"{_unit(text)} | {text} |")
    return rows + [""]


def _first_line(cls) -> str:
    doc = inspect.getdoc(cls) or ""
    return doc.split("\n\n")[0].replace("\n", " ")


def _builtin_names(registry) -> list[str]:
    """The built-in components of a registry (plug-ins document themselves)."""
    from linksim.registry import BUILTINS

    return sorted(r[0] for r in BUILTINS[registry])


def scenario_reference() -> str:
    """The text of ``docs/scenario.md`` (built-in components only)."""
    from linksim.registry import CHANNELS, METHODS, METRICS
    from linksim.scenario import DataConfig, NumerologyConfig, Scenario, TrafficConfig

    md = ["# Scenario reference", "",
          "Generated from the pydantic models and the registry by `python -m linksim.docs` (a test fails when "
          "this page is out of date). `linksim validate FILE --show` prints a scenario with every default "
          "filled in; `linksim list` names every registered component. Conventions (CBR, CSNR, power): "
          "README, *Conventions*.", "",
          "## Top level", "", *_table(Scenario, TOP_LEVEL),
          "## `data:`", "", _first_line(DataConfig), "",
          *_table(DataConfig, {
              "source": "`embedded` (scikit-image's photos) | `folder`",
              "folder": "with `source: folder`: png/jpg/bmp files, read recursively, sorted",
              "size": "side [px] of the centre crop after resizing the short side (int or [H, W])",
              "limit": "number of images (the first ones; null: all)",
              "names": "pick images by name (embedded names or file stems), in this order",
              "on_error": "`raise`: a corrupt file stops the run before any work; `skip`: skip it with a warning",
          }),
          "## `traffic:`", "", _first_line(TrafficConfig), "", *_table(TrafficConfig),
          "## `numerology:`", "", _first_line(NumerologyConfig), "", *_table(NumerologyConfig),
          "## `channel:` (by `kind`)", "",
          "Any channel key can be a sweep axis (`sweep: {channel.estimator: [perfect, ls, lmmse]}`). Points "
          "that differ only in `estimator`, `equalizer` or `clip_ratio` share their random draws (common "
          "random numbers).", ""]
    for name in _builtin_names(CHANNELS):
        model = CHANNELS.config(name)
        md += [f"### `kind: {name}`", "", CHANNELS.describe()[name] + ".", "", *_table(model, skip=("kind",))]
    md += ["## `methods:` (by `kind`)", "", "Every method has `name` (results and legends; default: its kind) "
           "and `kind`.", ""]
    for name in _builtin_names(METHODS):
        model = METHODS.config(name)
        md += [f"### `kind: {name}`", "", METHODS.describe()[name] + ".", "",
               *_table(model, skip=("kind", "name"))]
    md += ["## `metrics:`", "", "| name | meaning |", "|---|---|"]
    md += [f"| `{n}` | {METRICS.describe()[n]} |" for n in _builtin_names(METRICS)]
    md += ["", "## Results columns (`results.csv`)", "",
           "One row per image x draw x method x point (phy studies: per method x point). A value that "
           "could not be computed is empty.", "", "| column | meaning |", "|---|---|"]
    md += [f"| `{c}` | {m} |" for c, m in RESULTS_COLUMNS.items()]
    md += ["", "## Summary columns (`summary.csv`)", "", "| column | meaning |", "|---|---|"]
    md += [f"| `{c}` | {m} |" for c, m in SUMMARY_COLUMNS.items()]
    md.append("")
    return "\n".join(md)


def main(argv: list[str] | None = None) -> int:
    """Write (or with ``--check``, compare) ``docs/scenario.md``."""
    argv = sys.argv[1:] if argv is None else argv
    text = scenario_reference()
    if "--check" in argv:
        ok = DOC_PATH.is_file() and DOC_PATH.read_text() == text
        print(f"{DOC_PATH}: {'up to date' if ok else 'out of date: run python -m linksim.docs'}")
        return 0 if ok else 1
    DOC_PATH.write_text(text)
    print(f"wrote {DOC_PATH}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
