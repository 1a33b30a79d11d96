"""The scenario's section models and the facts every layer shares (layer L0, see docs/INTERNALS.md).

:class:`MethodConfig` (base of every method's config), :class:`DataConfig`, :class:`TrafficConfig`,
:class:`NumerologyConfig`, :func:`parse_cbr` (from :mod:`linksim.codecs.point`), the default metrics and :class:`KeyProblem` (a problem
at a key path; :func:`linksim.scenario.scenario_from_dict` turns it into a
:class:`~linksim.errors.ScenarioError` naming the file). The schema that puts them together is
:class:`linksim.scenario.Scenario`; the channel section models are :mod:`linksim.channels`.
Nothing here imports another linksim module but :mod:`linksim.registry` and the torch-free
:mod:`linksim.codecs.point` / :mod:`linksim.codecs.image_files` (the validator imports no torch).
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, model_validator

from linksim.codecs.point import parse_cbr  # the one reading of a CBR (codecs read it too)
from linksim.registry import METHODS

__all__ = [
    "MethodConfig", "DataConfig", "TrafficConfig", "NumerologyConfig", "KeyProblem", "parse_cbr",
    "SWEEP_AXES", "DEFAULT_METRICS", "metric_names", "sends_images", "has_image_methods",
]

#: Metrics of a scenario that names none (``metrics:`` absent or empty): cheap, no weight files.
DEFAULT_METRICS = ("psnr", "ms_ssim")


#: Sweep axes besides the dotted ``channel.<key>`` overrides.
SWEEP_AXES = ("csnr_db", "ebno_db", "cbr")


class KeyProblem(Exception):
    """A problem at a key path, turned into a ScenarioError by :func:`linksim.scenario.scenario_from_dict`."""

    def __init__(self, key_path: str, msg: str):
        super().__init__(f"{key_path}: {msg}")
        self.key_path = key_path
        self.msg = msg


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MethodConfig(_Strict):
    """Base of every method's config model.

    What the engine needs to know of a method *before* building it is declared here, on the config
    model (torch-free, read by the validator): :attr:`sends_images`, and a method's static checks at
    one operating point as an optional ``check_point(point)`` (raise ``ValueError`` with one line;
    the built-in methods' settings define it, :func:`linksim.sweep.check_points` calls it).

    :param name: the method's name in results and legends (default: its ``kind``)
    :param kind: the registered method kind
    """

    #: the method transmits images (an image method); ``False``: a phy-only study (one row per point)
    sends_images: ClassVar[bool] = True

    name: str | None = None
    kind: str

    @model_validator(mode="after")
    def _default_name(self):
        if self.name is None:
            object.__setattr__(self, "name", self.kind)
        return self


class DataConfig(_Strict):
    """``data:`` — which images (DESIGN.md §4)."""

    source: Literal["embedded", "folder", "scenes", "cityscapes", "coco_stuff", "camera"] = "embedded"
    folder: Path | None = None
    size: PositiveInt | tuple[PositiveInt, PositiveInt] = 32
    limit: PositiveInt | None = 8
    names: list[str] | None = None  # pick images by name (embedded names or file stems), in order
    on_error: Literal["raise", "skip"] = "raise"
    seed: int = 0  # source: scenes — which procedural scenes (scene i of seed S is fixed)
    # source: camera — successive frames of a camera panning across one embedded photo (limit = frames)
    photo: str = Field("chelsea", description="source: camera — the embedded photo the camera pans across")
    pan_px: PositiveInt = Field(2, description="source: camera — pixels the view moves right per frame")

    @property
    def shape(self) -> tuple[int, int]:
        """``(H, W)`` of the images after the centre crop."""
        return (self.size, self.size) if isinstance(self.size, int) else tuple(self.size)

    @model_validator(mode="after")
    def _camera(self):
        from linksim.codecs.image_files import EMBEDDED_PHOTOS

        if self.source == "camera" and self.photo not in EMBEDDED_PHOTOS:
            raise KeyProblem("data.photo", f"unknown embedded photo {self.photo!r}; allowed: {', '.join(EMBEDDED_PHOTOS)}")
        return self

    @model_validator(mode="after")
    def _folder(self):
        if self.source in ("folder", "cityscapes", "coco_stuff"):
            if self.folder is None:
                raise KeyProblem("data.folder", f"source: {self.source} needs a folder path")
            if not Path(self.folder).expanduser().is_dir():
                raise KeyProblem("data.folder", f"folder {str(self.folder)!r} does not exist")
        return self


class TrafficConfig(_Strict):
    """``traffic:`` — when messages (images, bit blocks) arrive at the transmitter (DESIGN.md §6).

    ``batch`` (default): everything at ``t = 0``, decoded in one batch (a plain Monte-Carlo point).
    ``periodic``: one message every ``interval_s``. ``poisson``: exponential inter-arrival times
    with rate ``rate_hz`` (seeded by the point seed).
    """

    kind: Literal["batch", "periodic", "poisson"] = "batch"
    interval_s: PositiveFloat | None = Field(None, description="periodic: [s] between messages")
    rate_hz: PositiveFloat | None = Field(None, description="poisson: mean arrivals per second")
    deadline_s: PositiveFloat | None = Field(None, description="latency budget per message [s]")
    max_batch: PositiveInt = Field(1, description="periodic/poisson: most messages decoded together")

    @model_validator(mode="after")
    def _params(self):
        if self.kind == "periodic" and self.interval_s is None:
            raise KeyProblem("traffic.interval_s", "periodic traffic needs interval_s [s]")
        if self.kind == "poisson" and self.rate_hz is None:
            raise KeyProblem("traffic.rate_hz", "poisson traffic needs rate_hz [1/s]")
        return self


class NumerologyConfig(_Strict):
    """``numerology:`` — how long a message occupies the air (DESIGN.md §6).

    OFDM channels: an OFDM symbol lasts ``(M + cp) / (M · Δf)`` (``M`` subcarriers, spacing ``Δf``
    from the channel section), transmissions occupy whole slots of ``symbols_per_slot`` symbols.
    Flat channels (awgn, rayleigh): single-carrier at ``symbol_rate_hz`` complex symbols per second.
    """

    symbols_per_slot: PositiveInt = 14
    symbol_rate_hz: PositiveFloat = 1.0e6
    coherence_time_s: PositiveFloat | None = Field(
        None, description="channel redrawn every coherence_time_s of simulated time (None: per message)"
    )


#: the set metrics (one value per method x point, from all its images at once) and the fewest
#: samples (images x draws) each needs; below that they are reported unavailable
SET_METRIC_MIN_SAMPLES: dict[str, int] = {"fid": 50, "kid": 10}


def metric_names(scenario) -> list[str]:
    """The metrics a run computes: the scenario's ``metrics:`` or :data:`DEFAULT_METRICS`."""
    return list(dict.fromkeys(scenario.metrics)) or list(DEFAULT_METRICS)


def sends_images(kind: str) -> bool:
    """Whether the registered method ``kind`` transmits images (its config model's ``sends_images``;
    a phy study's declares ``False``)."""
    return bool(getattr(METHODS.config(kind), "sends_images", True))


def has_image_methods(scenario) -> bool:
    """True when at least one method of ``scenario`` transmits images (not a phy study)."""
    return any(sends_images(m.kind) for m in scenario.methods)
