"""Declaring a node's parameters from one table, with descriptions and checked ranges."""
from __future__ import annotations

from typing import Any, Optional

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.node import Node

# (name, default, description, inclusive range or None)
ParameterTable = list[tuple[str, Any, str, Optional[tuple[float, float]]]]


def _descriptor(description: str, value: Any, rng: Optional[tuple[float, float]]) -> ParameterDescriptor:
    desc = ParameterDescriptor(description=description)
    if rng is not None and isinstance(value, float):
        desc.floating_point_range = [FloatingPointRange(from_value=float(rng[0]),
                                                        to_value=float(rng[1]))]
    elif rng is not None and isinstance(value, int) and not isinstance(value, bool):
        desc.integer_range = [IntegerRange(from_value=int(rng[0]), to_value=int(rng[1]), step=1)]
    return desc


def declare_parameters(node: Node, table: ParameterTable) -> dict[str, Any]:
    """Declare ``table`` on ``node`` and return the values; raise ValueError on bad ones.

    rclpy enforces a descriptor's range only for later changes, not for values given at
    start-up (parameter files, ``-p``), so they are checked here with a clear message.
    """
    values: dict[str, Any] = {}
    for name, default, description, rng in table:
        value = node.declare_parameter(name, default, _descriptor(description, default, rng)).value
        if rng is not None and not rng[0] <= value <= rng[1]:
            raise ValueError(f'parameter {name}={value} is out of range [{rng[0]}, {rng[1]}]')
        values[name] = value
    return values


def check_choice(name: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f'parameter {name}={value!r} must be one of {", ".join(choices)}')
    return value
