"""Is the process that stamped something (a running session, a work folder) still alive?

A stamp is ``host:pid:start``, where ``start`` names one run of one process: the kernel's boot id
and the process's start time in clock ticks since boot (``/proc/<pid>/stat``). The pid alone is not
enough: a pid is reused after a process dies, and a container's command is always pid 1, so a
session written by a killed container would look alive forever in the next container with the same
host name (``docker restart``, a pod restarted in place). Where ``/proc`` is missing (macOS) the
start part is empty and the pid is all there is.

Only this host can be judged by its processes; a stamp from another host is judged by the caller
from how recently it wrote (a heartbeat, a file's time).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from functools import cache


@cache
def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as fh:
            return fh.read().strip()
    except OSError:
        return ""


def start_id(pid: int | str) -> str | None:
    """``boot-id/start-ticks`` of a live process on this host, "" where /proc is missing, None when gone.

    ``"self"`` is this process, right even where /proc belongs to another pid namespace."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            stat = fh.read()
    except FileNotFoundError:
        if not os.path.isdir("/proc/self"):
            return "" if pid == "self" or _pid_exists(int(pid)) else None
        return None
    except OSError:
        return ""
    fields = stat[stat.rfind(")") + 2 :].split()  # after "pid (comm) ": the comm may hold spaces
    if len(fields) < 20 or fields[0] == "Z":  # a zombie has ended
        return None
    return f"{_boot_id()}/{fields[19]}"


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class Stamp:
    host: str
    pid: int
    start: str | None  # None: an old stamp (host:pid) that did not record it

    def __str__(self) -> str:
        return f"{self.host}:{self.pid}" + ("" if self.start is None else f":{self.start}")

    def here(self) -> bool:
        """Whether the stamp was written on this host (so its process can be looked up)."""
        return self.host == socket.gethostname()

    def alive(self) -> bool | None:
        """On this host: whether that very process still runs (None: another host, judge otherwise).

        An old stamp without a start id is alive while its pid exists, except pid 1, which always
        exists in a container: that one cannot be judged here (None)."""
        if not self.here():
            return None
        now = start_id(self.pid)
        if now is None:
            return False
        if self.start is None:
            return None if self.pid == 1 else True
        return now == self.start or not now or not self.start  # "" on either side: no /proc to compare


def stamp(pid: int | None = None) -> Stamp:
    """The stamp of this process (or of ``pid`` on this host)."""
    if pid is None:
        return Stamp(socket.gethostname(), os.getpid(), start_id("self") or "")
    return Stamp(socket.gethostname(), pid, start_id(pid) or "")


def parse(text: str | None) -> Stamp | None:
    """A stamp from its text (``host:pid`` or ``host:pid:start``), None when unreadable."""
    if not text:
        return None
    parts = text.split(":")
    for cut in (len(parts) - 2, len(parts) - 1):  # host:pid:start first (a start id holds no ":")
        if cut >= 1 and parts[cut].isdigit():
            host, pid, rest = ":".join(parts[:cut]), int(parts[cut]), parts[cut + 1 :]
            return Stamp(host, pid, rest[0] if rest else None)
    return None
