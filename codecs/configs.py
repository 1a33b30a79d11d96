"""Loading the strict pydantic configs of our own files (training configs)."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)


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
