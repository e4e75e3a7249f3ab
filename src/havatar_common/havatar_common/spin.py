"""Running a node as a program: spin until Ctrl-C or SIGTERM, then stop its hardware."""
from __future__ import annotations

import signal
from typing import Any, Callable, Optional

import rclpy
from rclpy.executors import Executor, ExternalShutdownException, SingleThreadedExecutor

from .lifetime import die_with_parent, inherited_parent_pid


SPIN_WAKE_S = 0.1  # spin_once's timeout: how late a Python signal handler (SIGTERM) may run


def make_executor(events: bool = True) -> Executor:
    """The EventsExecutor of rclpy where there is one (Jazzy: ``rclpy.experimental``) if
    ``events``, else the SingleThreadedExecutor ``rclpy.spin`` uses (and Humble gets). It waits
    for events in C++ instead of rebuilding a wait set in Python for every wakeup: in
    ``drivers_benchmark.py`` it halves motor_node's CPU at 20 Hz and its cmd_vel-to-serial p99.
    """
    if not events:
        return SingleThreadedExecutor()
    try:
        from rclpy.experimental import EventsExecutor  # type: ignore[attr-defined]
    except ImportError:
        return SingleThreadedExecutor()
    return EventsExecutor()  # type: ignore[no-any-return]


def spin_executor(executor: Executor) -> None:
    """Spin until rclpy shuts down. rclpy's own executors spin as ``rclpy.spin`` does; the
    EventsExecutor (C++, no ``Executor`` subclass) with ``spin_once`` in a loop, returning to
    Python every ``SPIN_WAKE_S`` for its signal handlers: Jazzy's ``EventsExecutor.spin()``
    (rclpy 7.1.6) runs no callback at all.
    """
    if isinstance(executor, Executor):
        executor.spin()
        return
    while rclpy.ok():
        executor.spin_once(timeout_sec=SPIN_WAKE_S)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # SIGTERM (systemd, launch, docker stop) must stop like Ctrl-C


def spin_node(make_node: Callable[[], Any], name: str, args: Optional[list[str]] = None,
              events: bool = False) -> None:
    """Create and spin a node; on exit call its ``shutdown()``. Bad parameters exit with 2.

    ``events``: on rclpy's EventsExecutor where there is one (experimental in Jazzy: the motor
    node, whose latency it was measured on; it has no guard conditions, which the streaming
    and relay nodes use), else the SingleThreadedExecutor.

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
        executor = make_executor(events)
        executor.add_node(node)
        spin_executor(executor)
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


def until_shutdown(node: Any, callback: Callable[..., None]) -> Callable[..., None]:
    """``callback`` for a thread of the node's own (a capture source), skipped once the node's
    rclpy context has shut down: Ctrl-C shuts the context down before the node's ``shutdown()``
    stops its threads, and a publish in between raises.
    """
    def call(*args: Any) -> None:
        if not node.context.ok():
            return
        try:
            callback(*args)
        except Exception:
            if node.context.ok():
                raise
    return call
