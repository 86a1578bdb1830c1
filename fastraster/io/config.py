"""The one reader of PDG viz configurations (a dict, or a JSON file)."""

from __future__ import annotations

import json
import os


def read_config(config) -> dict:
    """A PDG configuration as a dict: ``config`` itself (a dict) or the JSON file it names.

    Raises
    ------
    ValueError
        If the file is not JSON or does not hold an object (the message names the file).
    TypeError
        If ``config`` is neither a dict nor a path.
    """
    if isinstance(config, dict):
        return config
    if not isinstance(config, (str, os.PathLike)):
        raise TypeError("config must be a dict or a path to a JSON file")
    path = os.fspath(config)
    with open(path) as fh:
        try:
            data = json.load(fh)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not a JSON configuration: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a configuration must be a JSON object, not "
                         f"{type(data).__name__}")
    return data


def config_statistics(config) -> list | None:
    """The ``statistics`` of a configuration (None when absent or ``config`` is None)."""
    if config is None:
        return None
    return read_config(config).get("statistics")
