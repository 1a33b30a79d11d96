"""Sweep points, jobs, seeds and the point checks.

:func:`expand` turns the scenario's ``sweep:`` axes into the cartesian product of
:class:`SweepPoint` objects. Each point has a stable key (``cbr=1/24|csnr_db=10``, axes sorted by
name, so the order of the axes in the YAML does not matter), the resolved channel config, and a
seed derived from the scenario seed and the key alone — reruns, reordering and parallel execution
give identical numbers.

**Common random numbers.** The seed of a point is :func:`draw_seed`: the hash of its key *without*
the axes that do not change what is drawn (:data:`DRAW_NEUTRAL_KEYS`: ``channel.estimator``,
``channel.equalizer``, ``channel.clip_ratio``). Every method at a point gets that seed, and every
value of such an axis too, so at one point image ``i`` (draw ``k``) sees the same channel
realisation and the same unit noise for every method and every estimator/equaliser: differences
between them are paired (``report.md`` tabulates them), not the luck of other draws.

Saved reconstructions live in ``recon/<method>/<point folder>/``; :func:`point_dirname` names the
folder from the point's axis values and :func:`parse_point_dirname` reads it back (the one place
that knows the spelling; :func:`safe_name` makes any label a file name).

This is the planning layer (L1, docs/INTERNALS.md): what the jobs of a scenario are, their seeds and
operating points, and the checks of every method at every point. Where the jobs run is
:mod:`linksim.executors`; where one job runs is :func:`linksim.engine.run_job`.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Iterable, Iterator
from urllib.parse import quote, unquote

from pydantic import ValidationError

from linksim.codecs.point import OperatingPoint
from linksim.configs import KeyProblem, has_image_methods, sends_images
from linksim.errors import DataError
from linksim.registry import CHANNELS

__all__ = ["SweepPoint", "Job", "expand", "jobs", "point_seed", "draw_seed", "sub_seed", "check_points",
           "operating_point", "format_value", "DRAW_NEUTRAL_KEYS", "safe_name", "point_dirname",
           "parse_point_dirname", "parse_key"]

#: channel keys that change how the receiver processes what it got, never what is drawn (the channel
#: realisation, the pilots, the interleaver, the noise): points that differ only in them share seeds
DRAW_NEUTRAL_KEYS = ("estimator", "equalizer", "clip_ratio")


def format_value(value: Any) -> str:
    """Stable text of an axis value (``Fraction(1, 24)`` -> ``1/24``, ``10.0`` -> ``10``)."""
    if isinstance(value, Fraction):
        return str(value)
    if isinstance(value, float):
        return f"{value:g}" if value == float(f"{value:g}") else repr(value)
    return str(value)


def point_seed(scenario_seed: int, key: str) -> int:
    """Deterministic 63-bit seed of a point: ``sha256("<seed>|<key>")`` (independent of order).

    >>> point_seed(0, "csnr_db=10") == point_seed(0, "csnr_db=10")
    True
    """
    return sub_seed(int(scenario_seed), key)


def draw_seed(scenario_seed: int, values) -> int:
    """The seed of a point's random draws: :func:`point_seed` of its key without the
    :data:`DRAW_NEUTRAL_KEYS` axes (common random numbers across estimators and equalisers).

    :param values: ``((axis, value), ...)`` of the point

    >>> draw_seed(0, (("csnr_db", 10.0), ("channel.estimator", "ls"))) == draw_seed(0, (("csnr_db", 10.0),))
    True
    """
    kept = [(a, v) for a, v in values if not (a.startswith("channel.") and a.split(".", 1)[1] in DRAW_NEUTRAL_KEYS)]
    return point_seed(scenario_seed, "|".join(f"{a}={format_value(v)}" for a, v in sorted(kept)))


def parse_key(key: str) -> dict[str, str]:
    """``"cbr=1/24|csnr_db=10"`` -> ``{"cbr": "1/24", "csnr_db": "10"}`` (values as text)."""
    return dict(part.split("=", 1) for part in key.split("|") if "=" in part)


_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")


def safe_name(text: Any) -> str:
    """A file-name-safe spelling of any label: runs of other characters become ``-``
    (``"ofdm/lmmse"`` -> ``"ofdm-lmmse"``, ``"tdl-C/ls"`` -> ``"tdl-C-ls"``); never empty.

    >>> safe_name("ofdm/lmmse"), safe_name("a b:c"), safe_name("")
    ('ofdm-lmmse', 'a-b-c', '_')
    """
    return _UNSAFE.sub("-", str(text)).strip("-") or "_"


def point_dirname(values) -> str:
    """The folder of one sweep point's saved images (DESIGN.md §5: ``<csnr_db>_<cbr>``), then one
    ``,<axis>=<value>`` per further axis, sorted, percent-encoded (any value is a safe name):
    ``10_1-24``, ``0_1-48,channel.estimator=ls``, ``5_1-24,channel.kind=tdl,channel.tdl_model=C``.

    :param values: ``{axis: value}`` or ``((axis, value), ...)``; values as in the point key
        (numbers, :class:`~fractions.Fraction`, text)
    """
    vals = {a: format_value(v) if not isinstance(v, str) else v for a, v in dict(values).items()}
    head = f"{vals.pop('csnr_db', vals.pop('ebno_db', 'none'))}_{vals.pop('cbr', 'none').replace('/', '-')}"
    tail = "".join(f",{a}={quote(v, safe='')}" for a, v in sorted(vals.items()))
    return head + tail


def parse_point_dirname(name: str) -> dict[str, str] | None:
    """Inverse of :func:`point_dirname`: ``{axis: value text}`` (``csnr_db``, ``cbr`` as ``"a/b"`` or
    a decimal, further axes); ``None`` when ``name`` is not a point folder. Also reads the older
    spellings ``10_0.0416667`` and ``10.0_1-24``.

    >>> parse_point_dirname("0_1-48,channel.estimator=ls")
    {'csnr_db': '0', 'cbr': '1/48', 'channel.estimator': 'ls'}
    """
    head, *rest = name.split(",")
    m = re.fullmatch(r"(-?\d+(?:\.\d*)?(?:[eE][+-]?\d+)?)(?:dB)?_(\d+(?:-\d+)?|\d*\.?\d+(?:[eE][+-]?\d+)?)", head)
    if not m:
        return None
    out = {"csnr_db": format_value(float(m.group(1))), "cbr": m.group(2).replace("-", "/")}
    for part in rest:
        axis, eq, value = part.partition("=")
        if not eq:
            return None
        out[axis] = unquote(value)
    return out


def sub_seed(seed: int, *parts: Any) -> int:
    """A 63-bit seed for a named sub-stream of ``seed``: ``sha256("<seed>|<part>|...")`` (``sub_seed(s, "noise", 3)``)."""
    text = "|".join(map(str, (seed, *parts)))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") >> 1


@dataclass(frozen=True)
class SweepPoint:
    """One combination of sweep-axis values.

    :param key: stable text, ``axis=value`` pairs sorted by axis and joined by ``|`` (``""`` when
        nothing is swept)
    :param values: ``((axis, value), ...)`` in the scenario's axis order
    :param channel: the resolved :class:`linksim.channels.ChannelConfig` of this point
    :param seed: the seed of the point's draws (:func:`draw_seed`: the same for points that differ
        only in :data:`DRAW_NEUTRAL_KEYS`)
    :param index: position in the expansion (for display only; never used for numbers)
    """

    key: str
    values: tuple[tuple[str, Any], ...]
    channel: Any
    seed: int
    index: int = 0

    def get(self, axis: str, default: Any = None) -> Any:
        """The value of ``axis`` at this point, or ``default`` when it is not swept."""
        return dict(self.values).get(axis, default)

    @property
    def csnr_db(self) -> float | None:
        return self.get("csnr_db")

    @property
    def ebno_db(self) -> float | None:
        return self.get("ebno_db")

    @property
    def cbr(self) -> Fraction | None:
        return self.get("cbr")


@dataclass(frozen=True)
class Job:
    """One unit of work: one method (index into ``scenario.methods``) at one point.

    :param chunks: for image methods, the image chunks to compute, ``((index, names), ...)``
        (:meth:`linksim.store.ResultsStore.image_chunks`); ``()``: every image, as chunk 0
    """

    method_index: int
    method: str
    point: SweepPoint
    chunks: tuple = ()

    @property
    def key(self) -> tuple[str, str]:
        """``(method name, point key)`` — what the results store uses to resume."""
        return (self.method, self.point.key)


def _resolve_channel(scenario, overrides: dict[str, Any], where: dict[str, str]):
    """The channel config with ``channel.<key>`` overrides applied, validated for its kind."""
    raw = scenario.channel.model_dump()
    raw.update(overrides)
    kind = raw["kind"]
    if kind not in CHANNELS:
        raise KeyProblem(where.get("kind", "channel.kind"),
                          f"unknown channel kind {kind!r}; allowed: {', '.join(CHANNELS.names())}")
    model = CHANNELS.config(kind)
    if "kind" in overrides:  # a swept kind: base keys that this kind does not have do not apply
        raw = {k: v for k, v in raw.items() if k in model.model_fields}
    try:
        return model.model_validate(raw)
    except ValidationError as err:
        e = err.errors(include_url=False)[0]
        key = str(e["loc"][0]) if e["loc"] else "kind"
        path = where.get(key, f"channel.{key}")
        raise KeyProblem(path, f"{e['msg']} (channel kind {kind!r}); got {e.get('input')!r}") from None


def expand(scenario) -> list[SweepPoint]:
    """All sweep points of ``scenario`` (cartesian product of its axes, first axis slowest).

    :param scenario: a validated :class:`linksim.scenario.Scenario`
    :output: ``prod(len(axis))`` points (one point when nothing is swept)
    """
    axes = list(scenario.sweep.items())
    points = []
    for index, combo in enumerate(itertools.product(*[range(len(v)) for _, v in axes])):
        values = tuple((name, vals[j]) for (name, vals), j in zip(axes, combo))
        key = "|".join(f"{a}={format_value(v)}" for a, v in sorted(values))
        overrides = {a.split(".", 1)[1]: v for a, v in values if a.startswith("channel.")}
        where = {a.split(".", 1)[1]: f"sweep.{a}[{j}]" for (a, _), j in zip(axes, combo) if a.startswith("channel.")}
        channel = _resolve_channel(scenario, overrides, where)
        points.append(SweepPoint(key, values, channel, draw_seed(scenario.seed, values), index))
    return points


def jobs(scenario, points: list[SweepPoint] | None = None) -> list[Job]:
    """Every (method, point) job, methods outermost (finishes one method's curve first)."""
    points = expand(scenario) if points is None else points
    return [Job(i, m.name, p) for i, m in enumerate(scenario.methods) for p in points]


def check_points(scenario) -> None:
    """Check every method at every point before any work (called by scenario validation).

    Image methods: ``N = ρ·3·H·W`` must be an integer and fit the channel's grid
    (:meth:`linksim.channels.ChannelConfig.grid_info`); then the config model's own ``check_point(point)``
    (torch-free for the built-in methods: ``linksim validate`` imports no torch).

    :raises linksim.configs.KeyProblem: with the key path of the offending value
    """
    points = expand(scenario)
    cbrs = scenario.sweep.get("cbr", [])
    _check_data(scenario)
    for i, m in enumerate(scenario.methods):
        is_study = not sends_images(m.kind)
        if not is_study and scenario.data is None:
            raise KeyProblem(f"methods[{i}].kind", f"method kind {m.kind!r} transmits images and needs a data: section")
        if not is_study and "cbr" not in scenario.sweep and not getattr(m, "cbr", None):
            raise KeyProblem("sweep.cbr", f"method {m.name!r} transmits images: sweep a cbr axis")
        check = getattr(m, "check_point", None)  # the config model's own static checks, if it has any
        for p in points:
            op = operating_point(scenario, p)
            if not is_study and p.cbr is not None:
                j = cbrs.index(p.cbr)
                h, w = scenario.data.shape
                n = p.cbr * 3 * h * w
                if n.denominator != 1:
                    raise KeyProblem(
                        f"sweep.cbr[{j}]",
                        f"CBR {p.cbr} gives N = {n} symbols for {h}x{w} images; N = cbr·3·H·W must be an integer",
                    )
                try:
                    p.channel.grid_info(int(n))
                except ValueError as err:
                    raise KeyProblem(
                        f"sweep.cbr[{j}]", f"CBR {p.cbr} (N = {n}) does not fit the {p.channel.kind} grid: {err}"
                    ) from None
            if check is None:
                continue
            try:
                check(op)
            except ValueError as err:
                raise KeyProblem(f"methods[{i}]", f"{m.name} at point '{p.key}': {err}") from None


def operating_point(scenario, point, device: str = "cpu"):
    """The :class:`linksim.codecs.point.OperatingPoint` of ``point`` (what a method sees)."""
    return OperatingPoint(
        csnr_db=point.csnr_db,
        cbr=point.cbr,
        link=point.channel.link_config(),
        image_shape=scenario.data.shape if scenario.data is not None else None,
        device=device,
        seed=point.seed,
        ebno_db=point.ebno_db,
        layout=point.channel.grid_info,
    )


def _check_data(scenario) -> None:
    """The images load (an empty folder, a corrupt or too small file, an unknown name fail here,
    before any work, not mid-run); only for scenarios with image methods."""
    if scenario.data is None or not has_image_methods(scenario):
        return
    from linksim.sources import check_images

    try:
        check_images(scenario.data)
    except DataError as err:
        key = "data.folder" if scenario.data.source == "folder" else "data.names"
        raise KeyProblem(key, str(err)) from None


def iter_keys(rows: Iterable[dict]) -> Iterator[tuple[str, str]]:
    """``(method, point)`` keys of stored rows."""
    for r in rows:
        yield (r["method"], r["point"])
