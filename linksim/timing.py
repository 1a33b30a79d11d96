"""Deterministic receiver time (layer L0, docs/INTERNALS.md): device profiles and the service-time model.

With ``receiver_time: model`` (the default) the discrete-event core (:mod:`linksim.des`) does not
use the host's measured decode time: every decode's service time is *predicted* from what the
decode did (its number of network evaluations, NFE, reported in
:attr:`linksim.codecs.base.Decoded.nfe`) and a **device profile**, so the same scenario with the
same seed gives the same timeline (``t_done``, ``latency_s``, ``queue_s``, deadline misses, age of
information) on every run and every machine. The measured wall time is still reported, in
``seconds``. ``receiver_time: measured`` uses the measured decode time instead (the timeline then
depends on the host and its load).

The model, for a batch of ``B`` images of ``H x W`` pixels decoded together by one method::

    t(B) = (s_per_image + nfe · s_per_nfe) · (H · W) / (size_h · size_w) · B ** batch_exponent   [s]

* ``s_per_image`` [s]: the per-image cost that does not scale with the NFE (a JSCC decoder, a codec
  + LDPC decode, a diffusion receiver's set-up), measured at ``size`` pixels;
* ``s_per_nfe`` [s]: one network evaluation (one reverse step of a diffusion receiver: prior
  forward, measurement operator and the backward through both) for one image at ``size``;
* pixel scaling: convolutional networks and block codecs cost in proportion to the pixel count, so
  a profile measured at 64² predicts 32² as a quarter (an approximation, stated here and in the
  README; measure at the scenario's size for exact numbers);
* ``batch_exponent`` ``α``: how a batch scales (1: linear, no batching gain, what a busy CPU
  shows; below 1 on a GPU that parallelises a batch).

A profile is a YAML file (the schema is :class:`DeviceProfile`): the shipped ones live in
``linksim/profiles/`` (package data; :func:`shipped_profiles`), ``device_profile:`` names one of
them or gives the path of a user's file, which ``benchmarks/receivers_speed.py --profile FILE``
writes from measurements on the user's device. Each entry applies to one method ``kind``, optionally
only when the method's settings match ``when`` (e.g. ``prior: ffhq_10m``) and the channel kind is in
``channels``; the first matching entry wins, and a profile may give a ``kind: default`` entry for
methods it does not list (plug-ins). A method with no matching entry is a scenario error (exit 2).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat, PositiveFloat, PositiveInt, ValidationError

__all__ = ["CostEntry", "DeviceProfile", "PROFILE_DIR", "DEFAULT_PROFILE", "ProfileError", "load_profile",
           "shipped_profiles", "service_time"]

#: where the shipped profiles are (package data)
PROFILE_DIR = Path(__file__).parent / "profiles"
#: the profile used when a scenario names none
DEFAULT_PROFILE = "cpu-2core"


class ProfileError(ValueError):
    """A device profile that cannot be found or read (the scenario layer turns it into exit 2)."""


class CostEntry(BaseModel):
    """The cost of one method kind's decode on the profile's device (see the module docstring)."""

    model_config = ConfigDict(extra="forbid")

    kind: str = Field(description="method kind (`jscc`, `hifi_diffcom`, ...) or `default` (any other kind)")
    when: dict[str, Any] = Field(default_factory=dict,
                                 description="method settings that must match, e.g. {prior: ffhq_10m}")
    channels: list[str] | None = Field(None, description="channel kinds this entry is for (None: all)")
    size: PositiveInt | tuple[PositiveInt, PositiveInt] = Field(description="image side(s) measured at [px]")
    s_per_image: NonNegativeFloat = Field(0.0, description="per-image cost without network evaluations [s]")
    s_per_nfe: NonNegativeFloat = Field(0.0, description="per image per network evaluation [s]")
    batch_exponent: PositiveFloat | None = Field(None, description="overrides the profile's batch_exponent")
    source: str = Field("", description="where the numbers come from (benchmark row, paper)")

    @property
    def pixels(self) -> int:
        h, w = (self.size, self.size) if isinstance(self.size, int) else self.size
        return h * w

    def matches(self, kind: str, settings, channel_kind: str | None) -> bool:
        if self.kind != kind:
            return False
        if self.channels is not None and channel_kind not in self.channels:
            return False
        return all(str(getattr(settings, k, None)) == str(v) for k, v in self.when.items())


class DeviceProfile(BaseModel):
    """A device profile file (YAML).

    :param status: ``measured`` (by ``benchmarks/receivers_speed.py`` on the device) or
        ``published`` (anchors from a paper; ``source`` cites it)
    :param batch_exponent: ``α`` of ``t(B) = t(1) · B^α`` for every entry that does not set its own
    """

    model_config = ConfigDict(extra="forbid")

    name: str
    status: Literal["measured", "published"]
    device: str = Field(description="the hardware and software it was measured on")
    source: str = Field(description="how the numbers were obtained (benchmark command, paper, table)")
    batch_exponent: PositiveFloat = 1.0
    entries: list[CostEntry] = Field(min_length=1)

    def entry_for(self, kind: str, settings=None, channel_kind: str | None = None) -> CostEntry | None:
        """The first entry for ``kind`` whose ``when``/``channels`` match, else the ``default`` entry,
        else ``None``."""
        for e in self.entries:
            if e.matches(kind, settings, channel_kind):
                return e
        return next((e for e in self.entries if e.kind == "default"), None)


def shipped_profiles() -> list[str]:
    """Names of the profiles shipped in ``linksim/profiles/`` (sorted)."""
    return sorted(p.stem for p in PROFILE_DIR.glob("*.yaml"))


@functools.lru_cache(maxsize=16)
def _read(path: str, mtime: float) -> DeviceProfile:
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise ProfileError(f"cannot read device profile {path}: {err}") from None
    try:
        return DeviceProfile.model_validate(raw)
    except ValidationError as err:
        e = err.errors(include_url=False)[0]
        where = ".".join(str(p) for p in e["loc"])
        raise ProfileError(f"device profile {path}: {where}: {e['msg']}") from None


def load_profile(spec: str | Path = DEFAULT_PROFILE) -> DeviceProfile:
    """A device profile by shipped name (``cpu-2core``) or by the path of a YAML file.

    >>> load_profile("cpu-2core").status
    'measured'

    :raises ProfileError: neither a shipped name nor a readable, valid profile file
    """
    text = str(spec)
    path = PROFILE_DIR / f"{text}.yaml" if "/" not in text and not text.endswith((".yaml", ".yml")) else None
    if path is None or not path.is_file():
        path = Path(text).expanduser()
        if not path.is_file():
            raise ProfileError(f"unknown device profile {text!r}; shipped: {', '.join(shipped_profiles())}, "
                               "or the path of a profile file (benchmarks/receivers_speed.py --profile FILE)")
    path = path.resolve()
    return _read(str(path), path.stat().st_mtime)


def service_time(entry: CostEntry, profile: DeviceProfile, nfe: int | None, image_shape: tuple[int, int],
                 batch: int) -> float:
    """Predicted service time [s] of one decode of ``batch`` images (the module docstring's formula).

    :param nfe: network evaluations per image of this decode (``None``: none)
    :param image_shape: ``(H, W)`` of the images [px]
    """
    alpha = entry.batch_exponent if entry.batch_exponent is not None else profile.batch_exponent
    per_image = entry.s_per_image + (nfe or 0) * entry.s_per_nfe
    scale = image_shape[0] * image_shape[1] / entry.pixels
    return per_image * scale * batch ** alpha
