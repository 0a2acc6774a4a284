"""Hot swap: follow state/champions.json and switch champion models without a restart.

`kyodo promote` / `kyodo rollback` rewrite the pointer file atomically. Requests call
`ChampionWatcher.poll`, which costs a clock read except once every `interval_s`, when it stats
the file. On a change a background thread loads the new model completely and only then
replaces the task's entry in the models dict, one reference assignment: a request already
holding the old model finishes with it, the next one gets the new model, none fails.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from models.configs import task_names

log = logging.getLogger("kyodo.lifecycle")
Stamp = tuple[int, int, int]
TASKS: tuple[str, ...] = task_names()


class ChampionWatcher:
    """Keeps a models dict in step with the champions pointer file."""

    def __init__(self, pointer: Path, interval_s: float, load: Callable[[str, str], Any]):
        self.pointer = pointer
        self.interval_s = interval_s
        self.load = load
        self.entries: dict[str, dict[str, Any]] = {}  # the pointer content now served
        self.swaps = 0
        self.problems: dict[str, str] = {}  # task -> why its champion is not (newly) served
        self._seen: Stamp | None = None
        self._next = 0.0
        self._lock = threading.Lock()

    def stamp(self) -> Stamp | None:
        """(mtime, size, inode) of the pointer; an atomic replace changes the inode."""
        try:
            st = os.stat(self.pointer)
        except FileNotFoundError:
            return None
        return st.st_mtime_ns, st.st_size, st.st_ino

    def poll(self, models: dict[str, Any]) -> None:
        """Cheap per-request check; starts a background reload when the pointer changed."""
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + self.interval_s
        stamp = self.stamp()
        if stamp == self._seen or not self._lock.acquire(blocking=False):
            return  # unchanged, or another thread is already loading it
        threading.Thread(target=self._reload_locked, args=(models, stamp), daemon=True,
                         name="kyodo-champion-reload").start()

    def _reload_locked(self, models: dict[str, Any], stamp: Stamp | None) -> None:
        try:
            self.sync(models, stamp)
        finally:
            self._lock.release()

    def sync(self, models: dict[str, Any], stamp: Stamp | None = None) -> None:
        """Load every champion whose tag changed, then swap it in; keep the old on failure.

        A pointer file of the wrong shape, or one bad entry, disables only what is bad (logged
        once per change of the file, kept in `problems` for /readyz); the rest still loads.
        """
        stamp = stamp if stamp is not None else self.stamp()
        try:
            raw = json.loads(self.pointer.read_text()) if stamp is not None else {}
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            log.warning("cannot read %s (%s); serving the current champions", self.pointer, exc)
            return
        entries, problems = parse_pointer(raw, self.pointer)
        complete = True
        for task, entry in entries.items():
            current = models.get(task)
            if current is not None and current.tag == entry["tag"]:
                continue
            try:
                fresh = self.load(task, entry["tag"])
            except Exception as exc:  # a broken package must not take the serving model down
                log.exception("cannot load %s for %s; still serving %s", entry["tag"], task,
                              current.tag if current else "nothing")
                problems[task] = f"cannot load {entry['tag']}: {exc}"
                complete = False
                continue
            models[task] = fresh  # one reference assignment: atomic for readers
            self.swaps += 1
            log.info("%s: now serving %s (was %s)", task, entry["tag"],
                     current.tag if current else "nothing")
        self.entries = entries
        self.problems = problems
        if complete:
            self._seen = stamp

    def history(self, task: str) -> list[dict[str, Any]]:
        """Champion history of a task as written by promote/rollback (oldest first)."""
        return list(self.entries.get(task, {}).get("history", []))


class ChampionEntry(BaseModel):
    """One task's entry in state/champions.json as `kyodo promote` writes it."""

    model_config = ConfigDict(extra="allow")
    tag: str = Field(min_length=1, max_length=300)
    version: str | int | None = None
    history: list[dict[str, Any]] = Field(default_factory=list)


def parse_pointer(raw: Any, where: Path) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """(valid entries by task, problem by task) of the pointer file's content; each problem is
    logged as an error naming the file, the task and what was expected. A wrong top-level shape
    is the problem of every task ("*")."""
    if not isinstance(raw, dict):
        why = (f"{where}: expected an object {{task: {{\"tag\": ..., \"version\": ...}}}}, "
               f"got {type(raw).__name__}; no champion is loaded from it")
        log.error(why)
        return {}, {"*": why}
    entries: dict[str, dict[str, Any]] = {}
    problems: dict[str, str] = {}
    for task, entry in raw.items():
        if task not in TASKS:
            problems[str(task)] = f"{where}: unknown task {task!r} (tasks: {', '.join(TASKS)})"
        else:
            try:
                entries[task] = ChampionEntry.model_validate(entry).model_dump()
                continue
            except ValidationError as exc:
                first = exc.errors()[0]
                problems[task] = (f"{where}: {task}.{'.'.join(map(str, first['loc']))}: "
                                  f"{first['msg']}; {task} is disabled until it is fixed "
                                  f"(`kyodo promote {task}` rewrites it)")
        log.error(problems[str(task)])
    return entries, problems
