"""The robot's nodes in one process with one executor (executable ``robot_container``).

ROS 2 composes C++ nodes in a component container; rclpy has no such loader, so this is
its Python equivalent for Havatar's nodes. Each node is given the command line it would
have as a process of its own (``graph.command_line`` after the executable), ``--``-ended::

    robot_container [--executor single] motor_node --ros-args -r __node:=motor_node \
        --params-file robot.yaml -p serial_port:=/dev/ttyUSB0 -- camera_node --ros-args ... --

Those arguments are the node's own (``cli_args``, ``use_global_arguments=False``), so rcl
applies its name, namespace, parameter files, overrides and remappings exactly as it would
in a separate process. A node is named by its executable (``COMPOSABLE``) or, for tests,
``module:Class``.

Failure policy: the container is one unit. A node that cannot start (a parameter out of
range) exits the container with 2 and names the node; an exception escaping any
node's callback stops the executor, every node is shut down (the motor node writes STOP)
and the container exits with 1, so its supervisor (``ros2 launch`` respawn, ``run_robot``,
systemd) starts it again. A Python exception can leave threads and state shared by the
other nodes half-changed, and rclpy's executor cannot drop one node's failing callback and
go on; a clean restart of the whole container is the predictable choice. motor_guard
still writes STOP if the process dies without its ``finally`` (SIGKILL).
"""
from __future__ import annotations

import argparse
import importlib
import signal
import sys
import traceback
from typing import Any, Optional

import rclpy
from rclpy.exceptions import ParameterException
from rclpy.executors import Executor, ExternalShutdownException, MultiThreadedExecutor, \
    SingleThreadedExecutor

from havatar_common.lifetime import die_with_parent, inherited_parent_pid
from havatar_common.spin import spin_executor

from .graph import COMPOSABLE, EXECUTORS

NAME = 'robot_container'
EXIT_BAD_PARAMETER = 2
EXIT_NODE_FAILED = 1


def split_nodes(argv: list[str]) -> list[tuple[str, list[str]]]:
    """``exe --ros-args ... -- exe2 ...`` -> ``[(exe, ['--ros-args', ..., '--']), ...]``."""
    groups: list[tuple[str, list[str]]] = []
    rest = list(argv)
    while rest:
        spec = rest.pop(0)
        if spec.startswith('-'):
            raise ValueError(f'expected a node (executable or module:Class), got {spec!r}')
        args: list[str] = []
        while rest and rest[0] != '--':
            args.append(rest.pop(0))
        if rest:
            rest.pop(0)
        groups.append((spec, args + ['--'] if args else []))
    return groups


def node_class(spec: str) -> Any:
    """The Node class of an executable name in ``COMPOSABLE`` or of ``module:Class``."""
    module, sep, cls = COMPOSABLE.get(spec, spec).partition(':')
    if not sep:
        raise ValueError(f'{spec!r} is neither one of {", ".join(COMPOSABLE)} nor module:Class')
    return getattr(importlib.import_module(module), cls)


def make_executor(kind: str) -> Executor:
    """``single``: SingleThreadedExecutor; ``multi``: MultiThreadedExecutor (one thread per node).

    Not the EventsExecutor the motor node spins on alone: rclpy 7.1.6's raises "Guard
    conditions not supported" for the streaming and relay nodes.
    """
    if kind == 'multi':
        return MultiThreadedExecutor(num_threads=len(COMPOSABLE))
    return SingleThreadedExecutor()


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # SIGTERM stops like Ctrl-C, as in spin_node


def run(groups: list[tuple[str, list[str]]], executor_kind: str) -> int:
    """Create the nodes in order, spin them on one executor; the container's exit code."""
    die_with_parent(signal.SIGTERM, inherited_parent_pid())
    rclpy.init(args=[NAME])
    signal.signal(signal.SIGTERM, _interrupt)
    logger = rclpy.logging.get_logger(NAME)
    nodes: list[Any] = []
    code = 0
    executor: Optional[Executor] = None
    try:
        try:
            for spec, args in groups:
                nodes.append(node_class(spec)(cli_args=args, use_global_arguments=False))
        except (ValueError, ParameterException) as exc:  # a parameter out of range or not a choice
            logger.fatal(f'{groups[len(nodes)][0]}: {exc}')
            return EXIT_BAD_PARAMETER
        executor = make_executor(executor_kind)
        for node in nodes:
            executor.add_node(node)
        logger.info(f'{len(nodes)} nodes in one process ({executor_kind} executor): '
                    + ', '.join(n.get_fully_qualified_name() for n in nodes))
        spin_executor(executor)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:  # noqa: BLE001 - any node's failure ends the container: see the module doc
        logger.fatal(f'a node failed; stopping every node:\n{traceback.format_exc()}')
        code = EXIT_NODE_FAILED
    finally:
        if executor is not None:
            executor.shutdown(timeout_sec=1.0)
        for node in reversed(nodes):
            try:
                node.shutdown()
            except Exception:  # noqa: BLE001 - the others must still stop (the motor: STOP)
                logger.error(f'{node.get_name()} shutdown failed:\n{traceback.format_exc()}')
            node.destroy_node()
        rclpy.try_shutdown()
    return code


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog=NAME, description=__doc__.split('\n\n')[0])
    parser.add_argument('--executor', choices=EXECUTORS, default='single',
                        help='the one executor spinning every node')
    parser.add_argument('nodes', nargs=argparse.REMAINDER,
                        help='executable --ros-args ... -- (one group per node)')
    options = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        groups = split_nodes(options.nodes)
    except ValueError as exc:
        parser.error(str(exc))
    if not groups:
        parser.error('no nodes given')
    return run(groups, options.executor)


if __name__ == '__main__':
    sys.exit(main())
