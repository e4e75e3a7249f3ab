"""Which ROS topics the Foxglove server offers, how it subscribes to them, and when (pure)."""
from __future__ import annotations

import re
import threading
from typing import Iterable

# how a subscription is made to read what the publishers send
LATCHED, BEST_EFFORT, RELIABLE = 'latched', 'best_effort', 'reliable'


def offered(names_and_types: Iterable[tuple[str, list[str]]], pattern: str) -> dict[str, str]:
    """Topic -> type of the topics matching ``pattern`` (a full match) with one type each.

    A topic published with two types at once cannot be decoded with one schema: left out.
    """
    rx = re.compile(pattern)
    return {name: types[0] for name, types in names_and_types if len(types) == 1 and rx.fullmatch(name)}


def subscription_kind(publishers: Iterable[tuple[bool, bool]]) -> str:
    """The subscription that gets every publisher's messages, from (reliable, transient_local)
    of each: latched when all keep their last message for late subscribers (``/tf_static``,
    status topics), best effort when any is best effort (a reliable reader would not match
    it), reliable otherwise.
    """
    publishers = list(publishers)
    if publishers and all(reliable and durable for reliable, durable in publishers):
        return LATCHED
    if any(not reliable for reliable, _ in publishers):
        return BEST_EFFORT
    return RELIABLE


class Watchers:
    """How many client subscriptions each topic has; says when the ROS subscription must
    start (first watcher) and stop (last one gone). Safe across threads.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count: dict[str, int] = {}

    def add(self, topic: str) -> bool:
        """Count a watcher; True when it is the first."""
        with self._lock:
            self._count[topic] = self._count.get(topic, 0) + 1
            return self._count[topic] == 1

    def remove(self, topic: str) -> bool:
        """Forget a watcher; True when it was the last."""
        with self._lock:
            left = self._count.get(topic, 0) - 1
            if left > 0:
                self._count[topic] = left
                return False
            return self._count.pop(topic, None) is not None

    def watched(self) -> set[str]:
        with self._lock:
            return set(self._count)
