"""Chaos testing: make the task of a named item misbehave, to exercise the fault tolerance.

Set ``FASTRASTER_CHAOS`` in the environment of the process that starts a run (the parent;
it is read once per run, by :mod:`fastraster.execution` only, and handed to the workers with
their tasks, so a pool started earlier obeys it too)::

    FASTRASTER_CHAOS="<pattern>=<action>[+<action>...][@<attempt>][;<pattern>=...]"

* ``pattern``: a substring of the item's path — the staged file for ``rasterize_dir``, the
  parent GeoTIFF for ``build_pyramid``, the GeoTIFF for ``render_web_tiles``;
* ``action``, done in order just before the item's task runs: a signal name (``SIGKILL``,
  ``SIGSEGV``, ``SIGTERM``, ...) sends that signal to the worker's own process (as the OOM
  killer or a crash would end it); ``exit<N>`` ends it with ``os._exit(N)``; ``raise``
  raises ``RuntimeError``; ``sleep<S>`` sleeps S seconds; ``wait<text>`` waits (up to 60 s)
  until the chaos log (below) shows an action on an item whose path contains ``<text>`` —
  it orders faults across workers ("die while that other item is running");
* ``@<attempt>``: only on that attempt of the item (``@1``: the first try only, so a retry
  succeeds); default every attempt (a poison tile).

Actions that would end the process are refused (``RuntimeError``) when the task runs in the
process that started the run (``n_jobs=1``, the threading backend): chaos must never kill a
test runner. With ``FASTRASTER_CHAOS_LOG=<file>`` each action first appends
``<pid> <action> <path>`` to that file, so a test can find the worker holding a tile (to kill
it from outside, for example).

This is a testing tool: it costs one substring test per item when set, nothing when not.
"""

from __future__ import annotations

import os
import re
import signal
import time

ENV = "FASTRASTER_CHAOS"
LOG_ENV = "FASTRASTER_CHAOS_LOG"

_ACTION = re.compile(r"^(SIG[A-Z0-9]+|exit\d+|raise|sleep[0-9.]+|wait[A-Za-z0-9_./-]+)$")


def parse(spec: str | None) -> tuple:
    """``((pattern, (action, ...), attempt or None), ...)`` of a ``FASTRASTER_CHAOS`` value.

    Raises
    ------
    ValueError
        Naming the entry that does not follow the syntax.
    """
    rules = []
    for entry in (spec or "").split(";"):
        if not entry.strip():
            continue
        pattern, sep, rest = entry.rpartition("=")
        attempt = None
        if "@" in rest:
            rest, _, n = rest.partition("@")
            if not n.isdigit():
                raise ValueError(f"{ENV}: {entry!r}: '@' must be followed by an attempt number")
            attempt = int(n)
        actions = tuple(a.strip() for a in rest.split("+"))
        if not sep or not pattern or not all(_ACTION.match(a) for a in actions):
            raise ValueError(f"{ENV}: {entry!r} is not <pattern>=<action>[+<action>][@<n>] "
                             "with actions SIG<NAME>, exit<N>, raise, sleep<S>, wait<text>")
        for a in actions:
            if a.startswith("SIG") and not hasattr(signal, a):
                raise ValueError(f"{ENV}: {entry!r}: unknown signal {a}")
        rules.append((pattern, actions, attempt))
    return tuple(rules)


def from_environment() -> tuple:
    """The parsed ``FASTRASTER_CHAOS`` of this process (empty when unset)."""
    return parse(os.environ.get(ENV)), os.environ.get(LOG_ENV)


def strike(rules: tuple, log: str | None, path: str, attempt: int, parent_pid: int) -> None:
    """Do the actions of the first rule matching ``path`` (and ``attempt``), if any."""
    for pattern, actions, only in rules:
        if pattern in path and (only is None or only == attempt):
            for action in actions:
                _do(action, log, path, parent_pid)
            return


def _do(action, log, path, parent_pid):
    if log:
        with open(log, "a") as fh:
            fh.write(f"{os.getpid()} {action} {path}\n")
    if action == "raise":
        raise RuntimeError(f"chaos: {ENV} raised for {path}")
    if action.startswith("sleep"):
        time.sleep(float(action[5:]))
        return
    if action.startswith("wait"):
        _wait_for(log, action[4:])
        return
    if os.getpid() == parent_pid:
        raise RuntimeError(f"chaos: {ENV} refused to {action} the process that started the "
                           "run (the task runs in it: n_jobs=1 or threads)")
    if action.startswith("exit"):
        os._exit(int(action[4:]))
    os.kill(os.getpid(), getattr(signal, action))
    time.sleep(10)  # a signal that does not end the process at once (SIGTERM handled late)


def _wait_for(log, text, timeout=60.0):
    if not log:
        raise RuntimeError(f"chaos: {ENV} wait<text> needs {LOG_ENV}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(log) as fh:
            if any(text in line.split(" ", 2)[-1] for line in fh):
                return
        time.sleep(0.01)
