"""The strict pydantic configs of our own files (training configs): base models and the loader.

Both trainings (``codecs/jscc/training.py``, ``codecs/diffusion/training.py``) describe a run with
the fields of :class:`TrainRunConfig`; each subclass only changes defaults and adds its sections.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field

__all__ = ["StrictModel", "TrainRunConfig", "Count", "load_config"]

M = TypeVar("M", bound=BaseModel)
#: an integer >= 1; a subclass overriding a default writes ``steps: Count = 50000`` and keeps the bound
Count = Annotated[int, Field(ge=1)]


class StrictModel(BaseModel):
    """A config section: unknown keys are errors (a typo must not silently fall back to a default)."""

    model_config = ConfigDict(extra="forbid")


class TrainRunConfig(StrictModel):
    """The run fields every training config has (top level of ``configs/<training>_*.yaml``).

    Subclasses override defaults only (``steps: Count = 50000``), keeping types and bounds.

    :param name: run name (default output folder ``runs/<name>``)
    :param seed: seeds the parameter init and the data / noise generators
    :param steps: optimiser steps of the whole run
    :param batch_size: images (crops) per step
    :param checkpoint_every: steps between checkpoints (a killed run loses at most this many)
    :param device: ``auto`` (CUDA when available), ``cpu`` or ``cuda``
    :param amp: bf16 autocast on CUDA (never on CPU: slower there, and runs would not resume bit-exactly)
    :param num_threads: torch intra-op threads during the run (``None`` or 0: leave as is)
    :param output: default output folder (the CLI's ``--output`` overrides it)
    """

    name: str = "run"
    seed: int = 0
    steps: Count = 1000
    batch_size: Count = 32
    checkpoint_every: Count = 100
    device: Literal["auto", "cpu", "cuda"] = "auto"
    amp: bool = True
    num_threads: int | None = None
    output: str | None = None


def load_config(model: type[M], config) -> M:
    """``config`` (a YAML path, a dict or already a ``model``) validated as ``model``.

    :raises FileNotFoundError: the YAML file does not exist
    :raises TypeError: ``config`` is of another type
    :raises pydantic.ValidationError: unknown keys, wrong types (our files are strict)
    """
    if isinstance(config, model):
        return config
    if isinstance(config, (str, Path)):
        path = Path(config)
        if not path.is_file():
            raise FileNotFoundError(f"training config not found: {path}")
        config = yaml.safe_load(path.read_text()) or {}
    if not isinstance(config, dict):
        raise TypeError(f"config must be a path, dict or {model.__name__}; got {type(config).__name__}")
    return model.model_validate(config)
