"""Running a node as a program: spin until Ctrl-C or SIGTERM, then stop its hardware."""
from __future__ import annotations

import signal
from typing import Any, Callable, Optional

import rclpy
from rclpy.executors import Executor, ExternalShutdownException, SingleThreadedExecutor

from .lifetime import die_with_parent, inherited_parent_pid


def make_executor() -> Executor:
    """The EventsExecutor of rclpy where there is one (Jazzy: ``rclpy.experimental``), else the
    SingleThreadedExecutor ``rclpy.spin`` uses (Humble). It waits for events in C++ instead
    of rebuilding a wait set in Python for every wakeup: the executor's share of a
    ``cmd_vel``'s way to the serial line (``drivers_benchmark.py``).
    """
    try:
        from rclpy.experimental import EventsExecutor  # type: ignore[attr-defined]
    except ImportError:
        return SingleThreadedExecutor()
    return EventsExecutor()  # type: ignore[no-any-return]


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # SIGTERM (systemd, launch, docker stop) must stop like Ctrl-C


def spin_node(make_node: Callable[[], Any], name: str, args: Optional[list[str]] = None) -> None:
    """Create and spin a node; on exit call its ``shutdown()``. Bad parameters exit with 2.

    The node dies with whatever started it (``ros2 launch``, the demo), even when that is
    SIGKILLed: the kernel sends SIGTERM, which stops the node like Ctrl-C (the motor node
    still sends STOP). SIGTERM rather than SIGINT: a shell starting a program in the
    background sets SIGINT to ignored, and SIGTERM is what launch and systemd escalate to.
    The launcher forks from its main thread (launch's event loop, the demo's ``main``), so
    the signal comes when the launcher ends. Set before ``rclpy.init`` and our handler:
    a launcher that died already ends this process at once, before it touched anything.
    """
    die_with_parent(signal.SIGTERM, inherited_parent_pid())
    rclpy.init(args=args)
    signal.signal(signal.SIGTERM, _interrupt)  # Humble's rclpy leaves SIGTERM unhandled
    node = None
    try:
        node = make_node()
        executor = make_executor()
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except ValueError as exc:  # a parameter out of range or not one of the choices
        rclpy.logging.get_logger(name).fatal(str(exc))
        raise SystemExit(2) from None
    finally:
        if node is not None:
            node.shutdown()
            node.destroy_node()
        rclpy.try_shutdown()
