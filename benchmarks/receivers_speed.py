"""Speed of the diffusion receivers (DiffCom, HiFi-DiffCom, Blind-DiffCom) against the DeepJSCC decode.

For each device (CPU, and CUDA when ``torch.cuda.is_available()``), channel (AWGN; OFDM with 8
taps, PDP decay 4, CP 12, LMMSE estimation, MMSE equalisation) and receiver, one CSV row with:

- ``nfe``: the receiver's real number of prior evaluations per image for a full run
  (``len(receiver.timesteps())``: ``T`` for DiffCom / Blind-DiffCom, ``t_start + 1`` for
  HiFi-DiffCom at the chosen CSNR and CBR);
- ``steps_timed``: the reverse steps actually run (the first ``--steps`` of the real schedule, so
  consecutive/strided steps and the adaptive start are the receiver's own), ``nfe_timed`` the
  sampler's count and ``net_calls`` the prior network calls counted by a forward hook (they agree
  when the loop takes one prior evaluation per step);
- ``prep_s`` (JSCC decode of the received signal and the receiver's set-up), ``s_per_step``
  (one guided step for the whole batch: prior forward + ``A`` + backward through both);
- ``s_per_image`` = ``(prep_s + nfe · s_per_step) / images`` — the projected full run —,
  ``images_per_s`` and ``x_jscc`` = ``s_per_image`` over the DeepJSCC decode's, measured in the
  same run on the same received signal (the ``deepjscc`` row, ``nfe`` 0);
- ``proj_9_s`` / ``proj_171_s``: projected seconds per image for 9 and 171 steps, the two
  HiFi-DiffCom operating points whose cost is published (0.67 s and 10.8 s on an RTX 4090 with the
  ``ffhq_10m`` ADM at 256², ``shared/reference/receivers.md``).

Two model sets:

- ``embedded``: the project's DDPM prior (``--prior``; default ``embedded``, i.e.
  ``codecs/diffusion/embedded/ddpm/``) with the embedded ADJSCC for CBR 1/48, at ``--size``
  (default 64: the smallest side whose 256 symbols fill an OFDM grid with CP 12);
- ``adm256``: the ``ffhq_10m`` ADM UNet (~94 M parameters) with *random* weights and a
  paper-size ADJSCC (C=2, F=256, random weights) at 256² — weights do not change the cost. Its
  steps are set apart (``--adm-steps``; on CPU 2 by default, 0 = skip, and skipped under
  ``--quick`` unless given), and only ``--adm-receivers`` (default HiFi-DiffCom) run.

Decoders (``--decoders``, default ``jscc separation ideal diffjscc lrisc``; ``none`` to skip):
every other shipped image method kind, built from the registry with its default settings at
``--size`` on AWGN (CSNR ``--csnr``), its ``decode`` timed
as the engine times it (one row per kind, ``model_set`` ``decode``; CBR per kind in
:data:`DECODERS`): ``s_per_image`` at batch 1,
``batch_exponent`` ``α = log(t(4)/t(1)) / log 4`` from batch 4, and for kinds with ``num_steps``
the NFE slope ``s_per_step = (t(n₂) − t(n₁)) / (n₂ − n₁)`` from two step counts (``prep_s`` is
then the intercept: the per-image cost without network evaluations).

Device profile (``--profile FILE``): the rows become a profile file of the receiver-time model
(:mod:`linksim.timing`; ``device_profile: FILE`` in a scenario): per receiver and channel
``s_per_nfe = s_per_step / images``, ``s_per_image = prep_s / images``; ``--from-csv CSV`` builds
it from a CSV written earlier (and the decoders timed now) instead of timing the receivers again.
``linksim/profiles/cpu-2core.yaml`` was made so.

Timings are medians over ``--repeats`` after one untimed one-step warm-up (none for ``adm256`` on
CPU, where a step costs tens of seconds). The received signal is drawn once per channel from
seeded random images (content does not change the cost). Writes ``--output`` (CSV, overwritten)
and the same table as markdown next to it (``.md``), and prints it.

    .venv/bin/python benchmarks/receivers_speed.py --threads 1 --quick --prior runs/prior_dev/ddpm
    .venv/bin/python benchmarks/receivers_speed.py --device cuda --images 4 --steps 20 --adm-steps 20
    .venv/bin/python benchmarks/receivers_speed.py --threads 1 --profile my-device.yaml --profile-name my-gpu
"""

from __future__ import annotations

import argparse
import csv
import datetime
import math
import platform
import statistics
import sys
import time
from fractions import Fraction
from pathlib import Path

import torch

from linksim.codecs.base import OperatingPoint
from linksim.codecs.diffusion.method import (BlindDiffComMethod, BlindDiffComSettings, DiffComMethod,
                                             DiffComSettings, HiFiDiffComMethod, HiFiDiffComSettings, load_prior)
from linksim.phy import LinkConfig

__all__ = ["RECEIVERS", "CHANNELS", "COLUMNS", "measure_case", "run", "main"]

CSV = Path(__file__).parent / "results" / "receivers_speed.csv"

#: receiver name -> (method class, settings class); the settings keep the published defaults
RECEIVERS = {
    "diffcom": (DiffComMethod, DiffComSettings),
    "hifi_diffcom": (HiFiDiffComMethod, HiFiDiffComSettings),
    "blind_diffcom": (BlindDiffComMethod, BlindDiffComSettings),
}

#: the two links of the issue; OFDM as the paper: 8 taps, p_l ∝ exp(-l/4), CP 12, LMMSE + MMSE
CHANNELS = {
    "awgn": LinkConfig(kind="awgn"),
    "ofdm": LinkConfig(kind="ofdm", paths=8, decay=4.0, cp=12, estimator="lmmse", equalizer="mmse"),
}

#: the CSV columns, in order
COLUMNS = ["model_set", "device", "threads", "size", "channel", "receiver", "prior", "prior_params_m", "images",
           "nfe", "steps_timed", "nfe_timed", "net_calls", "prep_s", "s_per_step", "s_per_image", "images_per_s",
           "x_jscc", "proj_9_s", "proj_171_s", "batch_exponent", "csnr_db", "cbr", "date", "torch", "notes"]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, device: torch.device):
    """``(seconds, result)`` of one call of ``fn`` (CUDA work finished before and after)."""
    _sync(device)
    t0 = time.perf_counter()
    out = fn()
    _sync(device)
    return time.perf_counter() - t0, out


class _CallCounter:
    """Counts forward calls of a module (one per prior evaluation of the whole batch)."""

    def __init__(self, module: torch.nn.Module):
        self.calls = 0
        self._handle = module.register_forward_hook(self._hook)

    def _hook(self, module, args, output):
        self.calls += 1

    def remove(self) -> None:
        self._handle.remove()


def _capped(receiver, steps: int | None) -> list[int]:
    """Restrict ``receiver`` to the first ``steps`` of its own schedule; return the full schedule.

    The cap keeps the receiver's real step sequence (start step, consecutive vs strided steps),
    so the per-step cost is the one of a full run. It is set on the instance: the receivers have
    no option that truncates a schedule without respacing it.
    """
    full = list(receiver.timesteps())
    if steps is not None and steps < len(full):
        kept = full[:steps]
        receiver.timesteps = lambda: list(kept)
    return full


def measure_case(method, rx, images: int, steps: int | None, repeats: int, warmup: bool,
                 generator_seed: int = 0) -> dict:
    """Time one receiver on one received signal.

    :param method: a built :class:`~linksim.codecs.diffusion.method.DiffComMethod` (or subclass)
    :param rx: :class:`~linksim.codecs.base.RxSignal` from ``method.channel``
    :param images: batch size ``B`` of ``rx``
    :param steps: reverse steps timed (``None``: the full run)
    :param repeats: timed repetitions (median)
    :param warmup: run one untimed one-step sample first (lazy set-up, CUDA kernels)
    :return: the timing fields of a row (``nfe``, ``steps_timed``, ``nfe_timed``, ``net_calls``,
        ``prep_s``, ``s_per_step``, ``s_per_image``, ``images_per_s``, ``proj_9_s``, ``proj_171_s``)
    """
    device = torch.device(method.point.device)
    receiver = method.receiver
    full = _capped(receiver, steps)
    nfe = len(full)
    if warmup:
        kept = receiver.timesteps
        receiver.timesteps = lambda: full[:1]
        receiver.sample(receiver.prepare(rx, rx.state), torch.Generator(device).manual_seed(generator_seed))
        receiver.timesteps = kept
    counter = _CallCounter(receiver.prior.net)
    prep, samp, nfe_timed, net_calls = [], [], None, None
    try:
        for _ in range(repeats):
            g = torch.Generator(device).manual_seed(generator_seed)
            t_prep, ctx = _timed(lambda: receiver.prepare(rx, rx.state), device)
            counter.calls = 0
            t_samp, res = _timed(lambda: receiver.sample(ctx, g), device)
            prep.append(t_prep)
            samp.append(t_samp)
            nfe_timed, net_calls = res.nfe, counter.calls
    finally:
        counter.remove()
    steps_timed = len(receiver.timesteps())
    prep_s, s_step = statistics.median(prep), statistics.median(samp) / steps_timed
    per_image = (prep_s + nfe * s_step) / images
    return {"nfe": nfe, "steps_timed": steps_timed, "nfe_timed": nfe_timed, "net_calls": net_calls,
            "prep_s": prep_s, "s_per_step": s_step, "s_per_image": per_image, "images_per_s": 1.0 / per_image,
            "proj_9_s": (prep_s + 9 * s_step) / images, "proj_171_s": (prep_s + 171 * s_step) / images}


@torch.no_grad()
def measure_jscc(model, rx, csnr_db: float, image_shape, device: torch.device, repeats: int,
                 min_seconds: float = 0.2) -> float:
    """Seconds per call of the DeepJSCC decode as ``kind: jscc`` runs it (with ``no_eff``).

    Median over ``repeats`` rounds; each round averages enough calls to last ``min_seconds``
    (one call can be sub-millisecond, below the timer's useful resolution).
    """
    def call():
        return model.decode(rx.y, csnr_db, no_eff=rx.state.no_eff, image_size=image_shape,
                            tx_scale=rx.tx_meta["tx_scale"])

    call()  # warm-up
    rounds = []
    for _ in range(max(repeats, 1)):
        n, t0 = 0, time.perf_counter()
        _sync(device)
        while True:
            call()
            n += 1
            _sync(device)
            el = time.perf_counter() - t0
            if el >= min_seconds or n >= 1000:
                break
        rounds.append(el / n)
    return statistics.median(rounds)


def _adm_models(device: torch.device, seed: int):
    """The ``ffhq_10m`` ADM prior and a paper-size ADJSCC (C=2, F=256), random weights (seeded)."""
    from linksim.codecs.diffusion.adm_unet import ADMUNet
    from linksim.codecs.diffusion.loaders import PRIOR_CONFIGS
    from linksim.codecs.diffusion.prior import Prior
    from linksim.codecs.diffusion.schedules import linear_betas
    from linksim.codecs.jscc.adjscc import ADJSCC

    # module constructors draw their init from torch's global generator: seed it for reproducibility
    torch.manual_seed(seed)
    net = ADMUNet(**PRIOR_CONFIGS["ffhq_10m"]).to(device).eval().requires_grad_(False)
    prior = Prior(net, linear_betas(1000), learned_sigma=net.learn_sigma).to(device)
    jscc = ADJSCC(channels=2, filters=256).to(device).eval()
    return prior, jscc


def _params_m(prior) -> float:
    return sum(p.numel() for p in prior.net.parameters()) / 1e6


def run(args) -> list[dict]:
    """All rows for the parsed ``args`` (see :func:`main`)."""
    from linksim.codecs.jscc.method import load_jscc

    devices = ([torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
               if args.device == "auto" else [torch.device(args.device)])
    cbr = Fraction(1, 48)
    stamp = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "torch": torch.__version__,
             "threads": torch.get_num_threads(), "csnr_db": args.csnr, "cbr": str(cbr)}
    extra = f"; {args.note}" if args.note else ""
    rows = []
    for device in devices:
        sets = [("embedded", args.size, args.steps, args.receivers)]
        adm_steps = args.adm_steps
        if adm_steps is None:
            adm_steps = 0 if (args.quick and device.type == "cpu") else (2 if device.type == "cpu" else 10)
        if adm_steps > 0:
            sets.append(("adm256", 256, adm_steps, args.adm_receivers))
        for model_set, size, steps, receivers in sets:
            if model_set == "embedded":
                try:
                    prior = load_prior(args.prior, device)
                except FileNotFoundError as exc:
                    sys.exit(f"receivers_speed: {exc}; pass --prior runs/prior_dev/ddpm (the development export)")
                jscc = load_jscc("embedded", cbr, device)
                prior_name = args.prior
            else:
                prior, jscc = _adm_models(device, args.seed)
                prior_name = "ffhq_10m (random weights)"
            prior.eval()
            # the CPU ADM step costs tens of seconds: no warm-up there
            warmup = not (model_set == "adm256" and device.type == "cpu")
            g = torch.Generator().manual_seed(args.seed)
            images = torch.rand(args.images, 3, size, size, generator=g).to(device)
            for channel in args.channels:
                point = OperatingPoint(csnr_db=args.csnr, cbr=cbr, link=CHANNELS[channel], image_shape=(size, size),
                                       device=str(device), seed=args.seed)
                rx, ref = None, None
                for name in receivers:
                    if name == "blind_diffcom" and channel != "ofdm":
                        continue  # Blind-DiffCom works on the raw OFDM grid only
                    cls, settings = RECEIVERS[name]
                    method = cls(settings(prior=prior_name, autocast=args.autocast), point, prior=prior, jscc=jscc)
                    if rx is None:
                        # one received signal per channel, shared by every receiver and the reference
                        gc = torch.Generator(device).manual_seed(args.seed + 1)
                        gn = torch.Generator(device).manual_seed(args.seed + 2)
                        rx = method.channel(method.encode(images), gc, gn)
                        t_ref = measure_jscc(jscc, rx, args.csnr, (size, size), device, args.repeats)
                        ref = {"nfe": 0, "steps_timed": 0, "nfe_timed": 0, "net_calls": 0, "prep_s": t_ref,
                               "s_per_step": 0.0, "s_per_image": t_ref / args.images,
                               "images_per_s": args.images / t_ref, "x_jscc": 1.0,
                               "proj_9_s": float("nan"), "proj_171_s": float("nan")}
                        rows.append(_row(stamp, model_set, device, size, channel, "deepjscc", prior_name, prior,
                                         args.images, ref, "ADJSCC decode with no_eff (kind: jscc)" + extra))
                    m = measure_case(method, rx, args.images, steps, args.repeats, warmup, args.seed)
                    m["x_jscc"] = m["s_per_image"] / ref["s_per_image"]
                    note = f"timed {m['steps_timed']} of {m['nfe']} steps x {args.repeats} repeats, projected"
                    rows.append(_row(stamp, model_set, device, size, channel, name, prior_name, prior, args.images, m,
                                     note + ("; quick" if args.quick else "") + extra))
                    print(_fmt_line(rows[-1]), file=sys.stderr)
    return rows


def _row(stamp, model_set, device, size, channel, receiver, prior_name, prior, images, m, notes) -> dict:
    row = {"model_set": model_set, "device": device.type, "size": size, "channel": channel, "receiver": receiver,
           "prior": prior_name, "prior_params_m": round(_params_m(prior), 2) if prior is not None else float("nan"),
           "images": images, "batch_exponent": float("nan"), **m, **stamp, "notes": notes}
    for k in ("prep_s", "s_per_step", "s_per_image", "images_per_s", "x_jscc", "proj_9_s", "proj_171_s",
              "batch_exponent"):
        v = row[k]
        row[k] = v if isinstance(v, float) and math.isnan(v) else float(f"{v:.4g}")
    return {c: row[c] for c in COLUMNS}


#: decoders timed by :func:`decoder_rows`: kind -> CBR of the timed point (one the embedded models
#: have, and at which HEVC + LDPC delivers an image at 64²); the settings are the kind's defaults
DECODERS = {"jscc": "1/24", "separation": "1/12", "ideal": "1/12", "diffjscc": "1/96", "lrisc": "1/24"}
#: step counts of the NFE slope of kinds with ``num_steps``
DECODER_STEPS = (2, 6)


def _decode_seconds(cls, config, point, images, repeats: int, seed: int) -> tuple[float, int | None]:
    """``(median seconds of method.decode, Decoded.nfe)`` for one batch, as the engine times it."""
    method = cls(config, point)
    device = torch.device(point.device)

    def gen(k):
        return torch.Generator(device).manual_seed(seed + k)

    rx = method.channel(method.encode(images, gen(0)), gen(1), gen(2))
    with torch.no_grad():
        method.decode(rx, gen(3))  # warm-up (lazy loads, first-call set-up)
        times, nfe = [], None
        for _ in range(max(repeats, 1)):
            t, dec = _timed(lambda: method.decode(rx, gen(3)), device)
            times.append(t)
            nfe = dec.nfe
    return statistics.median(times), nfe


def decoder_rows(args, device: torch.device, stamp: dict) -> list[dict]:
    """One row per kind of :data:`DECODERS` (``--decoders``): batch-1 cost, batch exponent, NFE slope."""
    from linksim.registry import METHODS

    rows = []
    size = args.size
    g = torch.Generator().manual_seed(args.seed)
    batch4 = torch.rand(4, 3, size, size, generator=g).to(device)
    for kind in args.decoders:
        cbr = Fraction(DECODERS.get(kind, "1/24"))
        point = OperatingPoint(csnr_db=args.csnr, cbr=cbr, link=CHANNELS["awgn"], image_shape=(size, size),
                               device=str(device), seed=args.seed)
        cfg_model, cls = METHODS.config(kind), METHODS.get(kind)
        base = {"name": kind, "kind": kind}
        stepped = "num_steps" in cfg_model.model_fields
        n1, n2 = DECODER_STEPS
        cfg1 = cfg_model.model_validate({**base, **({"num_steps": n1} if stepped else {})})
        t1, nfe1 = _decode_seconds(cls, cfg1, point, batch4[:1], args.repeats, args.seed)
        t4, _ = _decode_seconds(cls, cfg1, point, batch4, args.repeats, args.seed)
        s_step, prep, nfe = 0.0, t1, nfe1
        if stepped and nfe1:
            cfg2 = cfg_model.model_validate({**base, "num_steps": n2})
            t2, nfe2 = _decode_seconds(cls, cfg2, point, batch4[:1], args.repeats, args.seed)
            s_step = max(t2 - t1, 0.0) / max((nfe2 or n2) - nfe1, 1)
            prep = max(t1 - nfe1 * s_step, 0.0)
        m = {"nfe": nfe or 0, "steps_timed": nfe or 0, "nfe_timed": nfe or 0, "net_calls": 0, "prep_s": prep,
             "s_per_step": s_step, "s_per_image": t1, "images_per_s": 1.0 / t1, "x_jscc": float("nan"),
             "proj_9_s": float("nan"), "proj_171_s": float("nan"),
             "batch_exponent": max(math.log(t4 / t1) / math.log(4), 0.05)}
        note = (f"decode timed at batch 1 and 4 x {args.repeats} repeats, default settings, CBR {cbr}"
                + (f"; NFE slope from num_steps {n1} and {n2}" if stepped and nfe1 else ""))
        row = _row({**stamp, "cbr": str(cbr)}, "decode", device, size, "awgn", kind, "", None, 1, m, note)
        rows.append(row)
        print(_fmt_line(row), file=sys.stderr)
    return rows


#: flat channel kinds share the awgn rows, multipath kinds the ofdm rows
PROFILE_CHANNELS = {"awgn": ["awgn", "rayleigh"], "ofdm": ["ofdm", "tdl"]}


def _number(v) -> float:
    return float(v) if v not in ("", None) else float("nan")


def profile_from_rows(rows: list[dict], name: str, device_text: str, source: str) -> dict:
    """A device profile (:class:`linksim.timing.DeviceProfile` as plain data) from benchmark rows.

    Receiver rows (``model_set`` embedded / adm256): ``s_per_nfe = s_per_step / images`` and
    ``s_per_image = prep_s / images`` per channel family (the embedded ones when ``prior: embedded``); the
    decoder rows come first (a kind timed as a whole decode wins); the ``adm256`` rows apply to the
    ``ffhq_10m`` prior (``when: {prior: ffhq_10m}``, listed first so they win). Decoder rows:
    ``s_per_image = prep_s``, ``s_per_nfe = s_per_step``, their own ``batch_exponent``. A
    ``default`` entry (methods the profile does not list, e.g. plug-ins) costs a DeepJSCC decode
    plus the embedded prior's per-NFE cost (the HiFi-DiffCom AWGN row).
    """
    entries, default = [], {}
    order = sorted(rows, key=lambda r: (r["model_set"] != "decode", r["model_set"] != "adm256"))
    for r in order:
        images = int(r["images"]) or 1
        if r["model_set"] == "decode":
            e = {"kind": r["receiver"], "size": int(r["size"]), "s_per_image": float(f"{_number(r['prep_s']):.4g}"),
                 "s_per_nfe": float(f"{_number(r['s_per_step']):.4g}"),
                 "batch_exponent": float(f"{_number(r['batch_exponent']):.3g}"),
                 "source": f"receivers_speed.py decode row ({r['date']}): {r['notes']}"}
            if r["receiver"] == "jscc":
                default.setdefault("s_per_image", e["s_per_image"])
            if r["receiver"] == "ideal":
                # the same codec's decode without LDPC: what a separation receiver spends when its
                # LDPC decoding is in the HARQ loop (or abstracted away); listed before `separation`
                sep = next((i for i, x in enumerate(entries) if x["kind"] == "separation"), len(entries))
                entries.insert(sep, dict(e, kind="separation", when={"ldpc_in_service": False},
                                         source=f"the ideal decode row ({r['date']}): the source decode alone, for "
                                                "separation with harq or phy: abstract (LDPC decoded in the HARQ "
                                                "loop or not at all)"))
            entries.append(e)
            continue
        kind = "jscc" if r["receiver"] == "deepjscc" else r["receiver"]
        if kind == "jscc" and r["model_set"] == "adm256":
            continue  # a random paper-size ADJSCC no scenario runs (the embedded one is the jscc entry)
        if kind == "jscc" and any(e["kind"] == "jscc" and "channels" not in e for e in entries):
            continue  # the decoder row (batch 1, own exponent) is the jscc entry
        e = {"kind": kind, "channels": list(PROFILE_CHANNELS[r["channel"]]), "size": int(r["size"]),
             "s_per_image": float(f"{_number(r['prep_s']) / images:.4g}"),
             "s_per_nfe": float(f"{_number(r['s_per_step']) / images:.4g}"),
             "source": f"receivers_speed.py {r['model_set']}/{r['channel']}/{r['receiver']} row ({r['date']})"}
        if r["model_set"] == "adm256":
            e["when"] = {"prior": "ffhq_10m"}
        else:
            e["when"] = {"prior": "embedded"}
            if kind == "hifi_diffcom" and r["channel"] == "awgn":
                default["s_per_nfe"] = e["s_per_nfe"]
            if kind == "jscc":
                del e["when"]
                default.setdefault("s_per_image", e["s_per_image"])
        entries.append(e)
    size = next((e["size"] for e in entries if e["kind"] == "jscc"), 64)
    entries.append({"kind": "default", "size": size, "s_per_image": default.get("s_per_image", 0.0),
                    "s_per_nfe": default.get("s_per_nfe", 0.0),
                    "source": "methods this profile does not list: a DeepJSCC decode + the embedded prior's "
                              "per-NFE cost (an approximation)"})
    return {"name": name, "status": "measured", "device": device_text, "source": source, "batch_exponent": 1.0,
            "entries": entries}


def write_profile(path: Path, profile: dict) -> None:
    """Write ``profile`` as YAML and check that linksim reads it back."""
    import yaml

    from linksim.timing import DeviceProfile

    DeviceProfile.model_validate(profile)
    head = ("# Device profile of linksim's receiver-time model (linksim/timing.py), written by\n"
            "# benchmarks/receivers_speed.py --profile. Seconds per image at `size` pixels.\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(head + yaml.safe_dump(profile, sort_keys=False, width=110))


def _read_csv(path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _fmt_line(r: dict) -> str:
    return (f"{r['model_set']}/{r['device']}/{r['channel']}/{r['receiver']}: nfe {r['nfe']}, "
            f"{r['s_per_step']} s/step, {r['s_per_image']} s/image, x{r['x_jscc']} DeepJSCC")


#: columns of the printed / markdown table (the CSV has all of :data:`COLUMNS`)
TABLE = ["model_set", "device", "size", "channel", "receiver", "nfe", "steps_timed", "s_per_step", "s_per_image",
         "images_per_s", "x_jscc", "proj_9_s", "proj_171_s"]


def markdown(rows: list[dict]) -> str:
    """The rows as a GitHub markdown table (columns :data:`TABLE`)."""
    lines = ["| " + " | ".join(TABLE) + " |", "|" + "---|" * len(TABLE)]
    for r in rows:
        lines.append("| " + " | ".join("" if isinstance(r[c], float) and math.isnan(r[c]) else str(r[c])
                                      for c in TABLE) + " |")
    return "\n".join(lines)


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto", help="auto (CPU, plus CUDA if available) | cpu | cuda")
    ap.add_argument("--prior", default="embedded", help="embedded | a diffusers directory | a known name")
    ap.add_argument("--size", type=int, default=64, help="image side of the embedded set (multiple of 4)")
    ap.add_argument("--images", type=int, default=None, help="images per batch (default 2, quick 1)")
    ap.add_argument("--steps", type=int, default=None, help="reverse steps timed per run (default 10, quick 2)")
    ap.add_argument("--adm-steps", type=int, default=None,
                    help="steps timed with the 256² ADM (0: skip; default: CPU 2, CUDA 10, quick on CPU 0)")
    ap.add_argument("--receivers", nargs="+", default=list(RECEIVERS), choices=list(RECEIVERS))
    ap.add_argument("--adm-receivers", nargs="+", default=["hifi_diffcom"], choices=list(RECEIVERS))
    ap.add_argument("--channels", nargs="+", default=list(CHANNELS), choices=list(CHANNELS))
    ap.add_argument("--csnr", type=float, default=10.0, help="CSNR [dB] (sets HiFi-DiffCom's start)")
    ap.add_argument("--repeats", type=int, default=None, help="timed repetitions, median (default 3, quick 1)")
    ap.add_argument("--autocast", action="store_true", help="prior in reduced precision (bf16 CPU / fp16 CUDA)")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="1 image, 2 steps, 1 repeat, no ADM on CPU")
    ap.add_argument("--note", default="", help="free text appended to every row's notes (machine load, ...)")
    ap.add_argument("--output", default=str(CSV), help="CSV path (overwritten; a .md table is written beside it)")
    ap.add_argument("--decoders", nargs="+", default=list(DECODERS),
                    help="other method kinds whose decode is timed (none: skip)")
    ap.add_argument("--profile", default=None, help="also write a device profile (YAML) for device_profile:")
    ap.add_argument("--profile-name", default="my-device", help="the profile's name")
    ap.add_argument("--from-csv", default=None,
                    help="take the receiver rows from this CSV (written earlier) instead of timing them")
    args = ap.parse_args(argv)
    quick = args.quick
    args.images = args.images or (1 if quick else 2)
    args.steps = args.steps or (2 if quick else 10)
    args.repeats = args.repeats or (1 if quick else 3)
    if args.size % 4:
        ap.error(f"--size must be a multiple of 4 (ADJSCC downsamples by 4); got {args.size}")
    return args


def main(argv=None) -> list[dict]:
    """Run the benchmark; write the CSV and the markdown table; return the rows."""
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"receivers_speed: {platform.processor() or platform.machine()}, threads={torch.get_num_threads()}, "
          f"torch {torch.__version__}, prior={args.prior}, size={args.size}, images={args.images}, "
          f"steps={args.steps}, repeats={args.repeats}, csnr={args.csnr} dB, cbr=1/48", file=sys.stderr)
    decoders = [] if args.decoders == ["none"] else args.decoders
    args.decoders = decoders
    rows = _read_csv(args.from_csv) if args.from_csv else run(args)
    if decoders:
        stamp = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "torch": torch.__version__,
                 "threads": torch.get_num_threads(), "csnr_db": args.csnr}
        device = torch.device("cpu" if args.device == "auto" else args.device)
        extra = f"; {args.note}" if args.note else ""
        rows = [r for r in rows if r.get("model_set") != "decode"] + [
            {**r, "notes": r["notes"] + extra} for r in decoder_rows(args, device, stamp)]
    if args.profile:
        text = (f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
                f"{torch.get_num_threads()} thread(s){'; ' + args.note if args.note else ''}")
        write_profile(Path(args.profile), profile_from_rows(
            rows, args.profile_name, text, "benchmarks/receivers_speed.py " + " ".join(sys.argv[1:])))
        print(args.profile, file=sys.stderr)
    rows = [{c: r.get(c, "") for c in COLUMNS} for r in rows]
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        # a number that does not apply (the reference's projections) is empty, not "nan"
        w.writerows({k: "" if isinstance(v, float) and math.isnan(v) else v for k, v in r.items()} for r in rows)
    table = markdown(rows)
    out.with_suffix(".md").write_text(table + "\n")
    print(table)
    print(out, file=sys.stderr)
    return rows


if __name__ == "__main__":
    main()
