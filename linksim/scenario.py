"""Scenario YAML -> typed, validated :class:`Scenario` (DESIGN.md §4).

Validation happens once, here, before any work: YAML syntax, unknown keys, wrong types, unknown
channel / method / metric names (the allowed names come from :mod:`linksim.registry`), sweep axes,
CBR values that are not positive or do not give an integer number of symbols or do not fit the OFDM
grid, a missing data folder. Every problem becomes one :class:`~linksim.errors.ScenarioError` line
naming the file, the key path (``methods[0].kind``, ``sweep.cbr[1]``), the value and what is allowed.

The ``channel:`` section and each entry of ``methods:`` are dispatched on their ``kind`` to the config
model registered for that kind; :func:`scenario_from_dict` builds a scenario from a plain dict.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    Field,
    NonNegativeFloat,
    PositiveInt,
    SerializeAsAny,
    ValidationError,
    field_validator,
    model_validator,
)

from linksim.channels import ChannelConfig
from linksim.configs import (
    SWEEP_AXES,
    DataConfig,
    KeyProblem,
    MethodConfig,
    NumerologyConfig,
    TrafficConfig,
    _Strict,
    has_image_methods,
    parse_cbr,
)
from linksim.errors import ScenarioError
from linksim.registry import CHANNELS, METHODS, METRICS
from linksim.sweep import check_points as _check_points
from linksim.timing import DEFAULT_PROFILE, ProfileError, load_profile

__all__ = [
    "Scenario",
    "MethodConfig",
    "DataConfig",
    "TrafficConfig",
    "NumerologyConfig",
    "load_scenario",
    "scenario_from_dict",
    "parse_cbr",
    "SWEEP_AXES",
]

class Scenario(_Strict):
    """A validated scenario (DESIGN.md §4). Build with :func:`load_scenario` or
    :func:`scenario_from_dict`; the ``channel`` and ``methods`` entries are instances of the config
    models registered for their ``kind``.
    """

    name: str = Field(pattern=r"^[A-Za-z0-9_.\-]+$")
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    data: DataConfig | None = None
    channel: SerializeAsAny[ChannelConfig]
    sweep: dict[str, list[Any]] = Field(default_factory=dict)
    methods: list[SerializeAsAny[MethodConfig]] = Field(min_length=1)
    metrics: list[str] = Field(default_factory=list)
    save_images: bool = False
    output: Path | None = None
    executor: Literal["inprocess", "process", "ray"] = "inprocess"
    workers: PositiveInt = 1
    # torch intra-op threads per job (None: torch's default). With executor: process, set
    # workers x threads = cores: oversubscribed cores make torch's thread pools spin.
    threads: PositiveInt | None = None
    # executor: ray only. address: the Ray cluster to run on (None: a local instance on 127.0.0.1;
    # "auto": the one `ray start --head` started on this machine; "host:port": that cluster's GCS).
    # num_gpus: GPUs each job requests from Ray (its jobs then run on cuda).
    address: str | None = None
    num_gpus: NonNegativeFloat = 0.0
    traffic: TrafficConfig = Field(default_factory=TrafficConfig)
    numerology: NumerologyConfig = Field(default_factory=NumerologyConfig)
    # simulated receiver time (linksim/timing.py): `model` predicts each decode's service time from
    # its NFE and the device profile (deterministic); `measured` uses the host's wall clock
    receiver_time: Literal["model", "measured"] = Field(
        "model", description="model: decode service time from NFE + device profile (same seed, same "
                             "timeline); measured: the host's wall-clock decode time")
    device_profile: str = Field(
        DEFAULT_PROFILE, description="shipped profile name (linksim/profiles/) or the path of a profile "
                                     "file (benchmarks/receivers_speed.py --profile FILE)")

    @model_validator(mode="before")
    @classmethod
    def _dispatch(cls, data: Any) -> Any:
        """Validate ``channel`` and ``methods[i]`` with the config model of their ``kind``."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if isinstance(data.get("channel"), dict):
            data["channel"] = _validate_section(data["channel"], "channel", CHANNELS)
        if isinstance(data.get("methods"), list):
            data["methods"] = [
                _validate_section(m, f"methods[{i}]", METHODS) if isinstance(m, dict) else m
                for i, m in enumerate(data["methods"])
            ]
        sweep = data.get("sweep")
        if isinstance(sweep, dict):  # a scalar axis value is a one-point axis
            data["sweep"] = {k: (v if isinstance(v, list) else [v]) for k, v in sweep.items()}
        return data

    @field_validator("sweep")
    @classmethod
    def _sweep_axes(cls, sweep: dict[str, list[Any]]) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {}
        for axis, values in sweep.items():
            where = f"sweep.{axis}"
            if not values:
                raise KeyProblem(where, "empty sweep axis; give at least one value")
            if axis == "cbr":
                vals = []
                for j, v in enumerate(values):
                    try:
                        vals.append(parse_cbr(v))
                    except ValueError as err:
                        raise KeyProblem(f"sweep.cbr[{j}]", f"CBR {err}") from None
                out[axis] = vals
            elif axis in ("csnr_db", "ebno_db"):
                for j, v in enumerate(values):
                    if isinstance(v, bool) or not isinstance(v, (int, float)):
                        raise KeyProblem(f"{where}[{j}]", f"must be a number [dB]; got {v!r}")
                out[axis] = [float(v) for v in values]
            elif axis.startswith("channel.") and axis.count(".") == 1:
                out[axis] = list(values)
            else:
                raise KeyProblem(
                    where, f"unknown sweep axis {axis!r}; allowed: {', '.join(SWEEP_AXES)}, channel.<key>"
                )
            if len(set(map(repr, out[axis]))) != len(out[axis]):
                raise KeyProblem(where, f"repeated values in {values!r}")
        if "csnr_db" in out and "ebno_db" in out:
            raise KeyProblem("sweep.ebno_db", "sweep either csnr_db or ebno_db, not both")
        return out

    @field_validator("metrics")
    @classmethod
    def _metrics(cls, metrics: list[str]) -> list[str]:
        for j, m in enumerate(metrics):
            if m not in METRICS:
                raise KeyProblem(
                    f"metrics[{j}]", f"unknown metric {m!r}; allowed: {', '.join(METRICS.names()) or '(none registered)'}"
                )
        return metrics

    @model_validator(mode="after")
    def _cross_checks(self):
        names = [m.name for m in self.methods]
        for i, n in enumerate(names):
            if names.index(n) != i:
                raise KeyProblem(f"methods[{i}].name", f"method name {n!r} is used twice; names must be unique")
        self._resolve_jscc_references()
        self._check_pilots()
        self._check_coherence()
        self._check_profile()
        for key, unset in (("address", None), ("num_gpus", 0.0)):
            if getattr(self, key) != unset and self.executor != "ray":
                raise KeyProblem(key, f"{key} is a setting of executor: ray (executor is {self.executor})")
        if "cbr" in self.sweep and self.data is None:
            raise KeyProblem("sweep.cbr", "a cbr axis needs a data: section (N = cbr·3·H·W)")
        for axis in self.sweep:
            if axis.startswith("channel.") and axis != "channel.kind":
                key = axis.split(".", 1)[1]
                kinds = self.sweep.get("channel.kind", [self.channel.kind])
                if not any(key in CHANNELS.config(k).model_fields for k in kinds if k in CHANNELS):
                    raise KeyProblem(f"sweep.{axis}", f"{key!r} is not a setting of channel kind(s) {kinds}")
        return self

    def _check_coherence(self) -> None:
        """A moving channel (``channel.speed > 0``) sets its own coherence (a continuous Doppler
        process); a block length in ``numerology.coherence_time_s`` would contradict it."""
        speeds = [getattr(self.channel, "speed", 0.0), *self.sweep.get("channel.speed", [])]
        if self.numerology.coherence_time_s is not None and any(
                isinstance(v, (int, float)) and v > 0 for v in speeds):
            raise KeyProblem("numerology.coherence_time_s", "channel.speed > 0 makes the channel a continuous "
                             "Doppler process (coherence 0.423 / f_D); drop coherence_time_s, or use speed 0 "
                             "for block fading every coherence_time_s")

    def _check_pilots(self) -> None:
        """``pilot_symbols: 0`` leaves no channel estimate (unless ``estimator: perfect``): refuse it
        when a method needs one (class attribute ``needs_channel_estimate``, default True)."""
        pilots = [getattr(self.channel, "pilot_symbols", 1), *self.sweep.get("channel.pilot_symbols", [])]
        if 0 not in pilots or getattr(self.channel, "estimator", "perfect") == "perfect":
            return
        for i, m in enumerate(self.methods):
            cls = METHODS.get(m.kind) if m.kind in METHODS else None
            if getattr(cls, "needs_channel_estimate", True):
                raise KeyProblem("channel.pilot_symbols", f"pilot_symbols 0 gives no channel estimate, which "
                                  f"methods[{i}] {m.name!r} (kind {m.kind}) needs; use >= 1 pilot symbol, "
                                  f"estimator: perfect, or only methods that need no estimate (blind_diffcom)")

    def _check_profile(self) -> None:
        """``device_profile`` names a readable profile; with ``receiver_time: model`` it has an entry
        for every image method on every swept channel kind (:meth:`cost_model`)."""
        try:
            load_profile(self.device_profile)
        except ProfileError as err:
            raise KeyProblem("device_profile", str(err)) from None
        if self.receiver_time != "model":
            return
        for i, m in enumerate(self.methods):
            if not m.sends_images:
                continue  # phy studies keep their measured seconds; they have no timeline
            for kind in self.sweep.get("channel.kind", [self.channel.kind]):
                if self.cost_model(m, kind) is None:
                    raise KeyProblem(f"methods[{i}].kind", f"device profile {self.device_profile!r} has no entry "
                                     f"for method kind {m.kind!r} on channel {kind!r}; add one to the profile "
                                     "(README: device profiles) or use receiver_time: measured")

    def cost_model(self, method, channel_kind: str):
        """``(CostEntry, DeviceProfile)`` that times ``method``'s decodes on ``channel_kind``, or
        ``None`` when the profile has no entry for it."""
        profile = load_profile(self.device_profile)
        entry = profile.entry_for(method.kind, method, channel_kind)
        return None if entry is None else (entry, profile)

    def _resolve_jscc_references(self) -> None:
        """``jscc: <name of a kind: jscc method>`` (DESIGN.md §4) -> that method's ``model``, so a
        diffusion receiver runs on the very encoder the DeepJSCC baseline uses."""
        jscc_models = {m.name: m.model for m in self.methods if m.kind == "jscc"}
        for i, m in enumerate(self.methods):
            ref = getattr(m, "jscc", None)
            if m.kind != "jscc" and ref in jscc_models:
                self.methods[i] = m.model_copy(update={"jscc": jscc_models[ref]})

    @property
    def output_dir(self) -> Path:
        """Where results go: ``output`` or ``results/<name>``."""
        return Path(self.output) if self.output is not None else Path("results") / self.name

    def is_phy_only(self) -> bool:
        """True when no method transmits images (every one is a phy-only study)."""
        return not has_image_methods(self)

    def dump(self) -> dict:
        """The resolved scenario as plain YAML-able data."""
        d = self.model_dump(mode="json", exclude_none=False)
        d["sweep"] = {k: [str(v) if isinstance(v, Fraction) else v for v in vals] for k, vals in self.sweep.items()}
        return d


def _validate_section(raw: dict, where: str, registry) -> Any:
    """Validate one ``kind``-dispatched section with its registered config model."""
    kind = raw.get("kind")
    if kind is None:
        raise KeyProblem(f"{where}.kind", f"missing; allowed: {', '.join(registry.names())}")
    if not isinstance(kind, str) or kind not in registry:
        raise KeyProblem(
            f"{where}.kind", f"unknown {registry.kind} kind {kind!r}; allowed: {', '.join(registry.names())}"
        )
    model = registry.config(kind)
    try:
        return model.model_validate(raw)
    except ValidationError as err:
        key_path, msg = _first_error(err, where, model)
        e = err.errors(include_url=False)[0]
        if e["type"] == "extra_forbidden" and len(e["loc"]) == 1:
            # a key of another kind (harq on a JSCC method): say whose key it is
            owners = [k for k in registry.names() if e["loc"][0] in getattr(registry.config(k), "model_fields", {})]
            if owners:
                msg = f"{msg} ({e['loc'][0]!r} is a key of kind {', '.join(owners)}, not of {kind})"
        raise KeyProblem(key_path, msg) from None


def _path(prefix: str, loc: tuple) -> str:
    out = prefix
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _model_at(model: Any, loc: tuple) -> Any:
    """The pydantic model that owns the field at ``loc`` (best effort, for 'allowed keys' lists)."""
    for part in loc:
        if isinstance(part, int) or model is None or not hasattr(model, "model_fields"):
            continue
        field = model.model_fields.get(part)
        if field is None:
            return None
        ann = field.annotation
        nxt = None
        for cand in (ann, *getattr(ann, "__args__", ())):
            if isinstance(cand, type) and issubclass(cand, BaseModel):
                nxt = cand
        model = nxt
    return model


def _first_error(err: ValidationError, prefix: str, model: Any) -> tuple[str, str]:
    """``(key_path, message)`` of the first pydantic error, with what is allowed."""
    e = err.errors(include_url=False)[0]
    loc = tuple(e["loc"])
    # pydantic appends the union member or validator name to the location; keep the user's keys.
    loc = tuple(p for p in loc if not (isinstance(p, str) and ("[" in p or p.startswith("function-"))))
    key_path = _path(prefix, loc)
    if e["type"] == "extra_forbidden":
        owner = _model_at(model, loc[:-1])
        allowed = ", ".join(owner.model_fields) if owner is not None else "see the documentation"
        return key_path, f"unknown key {loc[-1]!r}; allowed: {allowed}"
    if e["type"] == "missing":
        return key_path, "required key is missing"
    value = e.get("input")
    return key_path, f"{e['msg']}; got {value!r}"


def scenario_from_dict(raw: Any, file: str | Path | None = None, check_points: bool = True) -> Scenario:
    """Validate a scenario given as plain data (what ``yaml.safe_load`` returns).

    :param raw: the scenario mapping
    :param file: the file it came from (named in errors)
    :param check_points: also expand the sweep and check every method at every point (CBR fits
        the grid, the method accepts the channel); on by default
    :raises ScenarioError: on the first problem found
    """
    if not isinstance(raw, dict):
        raise ScenarioError(file, "<top>", f"a scenario is a mapping of keys; got {type(raw).__name__}")
    try:
        scn = Scenario.model_validate(raw)
    except KeyProblem as p:
        raise ScenarioError(file, p.key_path, p.msg) from None
    except ValidationError as err:
        raise ScenarioError(file, *_first_error(err, "", Scenario)) from None
    if check_points:
        try:
            _check_points(scn)
        except KeyProblem as p:
            raise ScenarioError(file, p.key_path, p.msg) from None
    return scn


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario YAML file.

    :raises ScenarioError: unreadable file, YAML syntax error, or any validation problem
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ScenarioError(path, "<file>", f"cannot read the scenario: {err.strerror or err}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "<yaml>"
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ScenarioError(path, where, f"YAML syntax error: {problem}") from None
    return scenario_from_dict(raw, file=path)
