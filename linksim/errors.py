"""User-facing errors.

Every error a user can cause (a bad scenario, a missing file, absent weights) is a
:class:`LinksimError` whose ``str()`` is one line naming the file, the key path, the value and
what is allowed. The CLI prints that line and exits with status 2, without a traceback.
Programming errors are ordinary exceptions and keep their tracebacks.

Every error here keeps its constructor arguments as ``args`` (and builds its line in
``__str__``), so ``type(err)(*err.args)`` is an equal error: it pickles to itself (a failure inside
a worker of the process or Ray executor reaches the CLI as the same one-line message as in-process,
not as ``BrokenProcessPool`` / ``TypeError: __init__() missing ...``), and simpy, which re-raises a
failed process's exception as ``type(exc)(*exc.args)``, re-raises it unchanged.
"""

from __future__ import annotations

from pathlib import Path


class LinksimError(Exception):
    """Base class of user errors (one clear line, exit status 2 in the CLI)."""


class ScenarioError(LinksimError):
    """A scenario file is invalid.

    :param file: the scenario file (or ``None`` for an in-memory scenario)
    :param key_path: dotted key path, e.g. ``methods[0].kind`` or ``sweep.cbr[1]``
    :param msg: what is wrong and what is allowed
    """

    def __init__(self, file: str | Path | None, key_path: str, msg: str):
        self.file = str(file) if file is not None else "<scenario>"
        self.key_path = key_path
        self.msg = msg
        super().__init__(self.file, key_path, msg)

    def __str__(self) -> str:
        return f"{self.file}: {self.key_path}: {self.msg}"


class DataError(LinksimError):
    """An input image or data folder cannot be used (corrupt file, missing folder, ...)."""

    def __init__(self, path: str | Path, msg: str):
        self.path = str(path)
        self.msg = msg
        super().__init__(self.path, msg)

    def __str__(self) -> str:
        return f"{self.path}: {self.msg}"


class WeightsUnavailable(LinksimError):
    """A model or metric weight file is not available (offline and not cached).

    :param name: the known name of the weights (e.g. ``alexnet``)
    :param path: where the file was expected
    :param hint: what the user can do (URL to download, where to put the file)
    """

    def __init__(self, name: str, path: str | Path, hint: str = ""):
        self.name = name
        self.path = str(path)
        self.hint = hint
        super().__init__(name, self.path, hint)

    def __str__(self) -> str:
        text = f"weights '{self.name}' not available: expected at {self.path}"
        return f"{text}; {self.hint}" if self.hint else text
