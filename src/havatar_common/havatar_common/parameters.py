"""Declaring a node's parameters from one table, with descriptions and checked ranges.

A parameter the node does not apply while running is declared read-only, so that
``ros2 param set`` refuses it with a reason instead of accepting a change that does
nothing; the node names the ones it does apply (``dynamic``) and handles their changes.
"""
from __future__ import annotations

from typing import Any, Collection, Optional

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.node import Node

# (name, default, description, inclusive range or None)
ParameterTable = list[tuple[str, Any, str, Optional[tuple[float, float]]]]


def _descriptor(description: str, value: Any, rng: Optional[tuple[float, float]],
                read_only: bool) -> ParameterDescriptor:
    desc = ParameterDescriptor(description=description, read_only=read_only)
    if rng is not None and isinstance(value, float):
        desc.floating_point_range = [FloatingPointRange(from_value=float(rng[0]),
                                                        to_value=float(rng[1]))]
    elif rng is not None and isinstance(value, int) and not isinstance(value, bool):
        desc.integer_range = [IntegerRange(from_value=int(rng[0]), to_value=int(rng[1]), step=1)]
    return desc


def declare_parameters(node: Node, table: ParameterTable, dynamic: Collection[str] = ()) -> dict[str, Any]:
    """Declare ``table`` on ``node`` and return the values; raise ValueError on bad ones.

    Every parameter not named in ``dynamic`` is read-only once declared.

    rclpy enforces a descriptor's range only for later changes, not for values given at
    start-up (parameter files, ``-p``), so they are checked here with a clear message.
    """
    values: dict[str, Any] = {}
    unknown = set(dynamic) - {row[0] for row in table}
    if unknown:
        raise ValueError(f'no such parameters: {", ".join(sorted(unknown))}')
    for name, default, description, rng in table:
        descriptor = _descriptor(description, default, rng, read_only=name not in dynamic)
        value = node.declare_parameter(name, default, descriptor).value
        if rng is not None and not rng[0] <= value <= rng[1]:
            raise ValueError(f'parameter {name}={value} is out of range [{rng[0]}, {rng[1]}]')
        values[name] = value
    return values


def check_choice(name: str, value: str, choices: tuple[str, ...]) -> str:
    """``value`` if it is one of ``choices``; ValueError naming the parameter otherwise."""
    if value not in choices:
        raise ValueError(f'parameter {name}={value!r} must be one of {", ".join(choices)}')
    return value
