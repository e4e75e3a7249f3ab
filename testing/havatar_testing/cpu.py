"""CPU use of process trees, for the benchmarks (psutil)."""
from __future__ import annotations

import time
from typing import Iterable

import psutil


def tree(pid: int) -> list[psutil.Process]:
    """The process ``pid`` and all its descendants."""
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def cpu_seconds(pids: Iterable[int], ended_children: bool = False) -> float:
    """User + system CPU seconds of the processes ``pids`` and their descendants (gone ones: 0);
    with ``ended_children`` also of descendants that ended and were waited for (a process that
    starts short-lived children, such as a retrying ffmpeg, pays for them too).
    """
    total = 0.0
    for pid in pids:
        try:
            processes = tree(pid)
        except psutil.NoSuchProcess:
            continue
        for process in processes:
            try:
                times = process.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system
            if ended_children:
                total += times.children_user + times.children_system
    return total


class CpuMeter:
    """CPU of process trees from its creation on, in % of one core (``ended_children``: see
    ``cpu_seconds``).
    """

    def __init__(self, pids: Iterable[int], ended_children: bool = False) -> None:
        self.pids, self.ended_children = list(pids), ended_children
        self.start, self.t0 = self._seconds(), time.monotonic()

    def _seconds(self) -> float:
        return cpu_seconds(self.pids, self.ended_children)

    def percent(self) -> float:
        return 100 * (self._seconds() - self.start) / (time.monotonic() - self.t0)


def cpu_percent(pids: Iterable[int], seconds: float, ended_children: bool = False) -> float:
    """CPU of the process trees ``pids`` over the next ``seconds``, in % of one core."""
    meter = CpuMeter(pids, ended_children)
    time.sleep(seconds)
    return meter.percent()
