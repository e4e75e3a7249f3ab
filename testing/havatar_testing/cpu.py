"""CPU use of process trees, for the benchmarks (psutil)."""
from __future__ import annotations

import time
from typing import Iterable

import psutil


def tree(pid: int) -> list[psutil.Process]:
    """The process ``pid`` and all its descendants."""
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def cpu_seconds(pids: Iterable[int]) -> float:
    """User + system CPU seconds of the processes ``pids`` and their descendants (gone ones: 0)."""
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
    return total


class CpuMeter:
    """CPU of process trees from its creation on, in % of one core."""

    def __init__(self, pids: Iterable[int]) -> None:
        self.pids = list(pids)
        self.start, self.t0 = cpu_seconds(self.pids), time.monotonic()

    def percent(self) -> float:
        return 100 * (cpu_seconds(self.pids) - self.start) / (time.monotonic() - self.t0)


def cpu_percent(pids: Iterable[int], seconds: float) -> float:
    """CPU of the process trees ``pids`` over the next ``seconds``, in % of one core."""
    meter = CpuMeter(pids)
    time.sleep(seconds)
    return meter.percent()


def cpu_seconds_all(pids: Iterable[int]) -> float:
    """``cpu_seconds`` plus the CPU of descendants that ended and were waited for (a process
    that starts short-lived children, such as a retrying ffmpeg, pays for them too).
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
            total += times.user + times.system + times.children_user + times.children_system
    return total


def cpu_percent_all(pids: Iterable[int], seconds: float) -> float:
    """``cpu_percent`` counting ended children too (``cpu_seconds_all``)."""
    pids = list(pids)
    start, t0 = cpu_seconds_all(pids), time.monotonic()
    time.sleep(seconds)
    return 100 * (cpu_seconds_all(pids) - start) / (time.monotonic() - t0)
