"""ROS 2 helpers for tests: a node in the test process, and the nodes' executables."""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Callable

from havatar_bringup.processes import wait_until


class TwistSource:
    """Publishes a geometry_msgs/Twist ``command`` on ``topic`` at ``rate_hz`` from a thread
    until stopped (``command`` may be changed meanwhile); ``clock`` stamps ``last_publish``.
    """

    def __init__(self, ros_node: 'RosTestNode', topic: str, command: tuple[float, float],
                 rate_hz: float = 20.0, clock: Callable[[], float] = time.monotonic) -> None:
        from geometry_msgs.msg import Twist
        self._twist = Twist
        self.pub = ros_node.node.create_publisher(Twist, topic, 10)
        self.command, self.rate_hz, self.clock = command, rate_hz, clock
        self.last_publish = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            msg = self._twist()
            msg.linear.x, msg.angular.z = self.command
            self.pub.publish(msg)
            self.last_publish = self.clock()
            self._stop.wait(1.0 / self.rate_hz)

    def stop(self) -> float:
        """Fall silent; when it last published (``clock``)."""
        self._stop.set()
        self._thread.join()
        return self.last_publish


def flat_parameters(tree: dict[str, Any], prefix: str = '') -> dict[str, Any]:
    """Nested parameters of a YAML file (twist_mux's ``topics: {web: {topic: ...}}``) as ROS
    names them (``topics.web.topic``).
    """
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(flat_parameters(value, f'{prefix}{key}.'))
        else:
            flat[f'{prefix}{key}'] = value
    return flat


def ros_executable(package: str, executable: str) -> Path:
    """Path of an installed executable, found the way ``ros2 run`` finds it."""
    from ament_index_python.packages import get_package_prefix

    path = Path(get_package_prefix(package)) / 'lib' / package / executable
    if not path.is_file():
        raise FileNotFoundError(f'{package} has no executable {executable!r} at {path}; '
                                'is the workspace built?')
    return path


class MessageLog:
    """Messages received on one topic, with their arrival times, safe across threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[tuple[float, Any]] = []

    def __call__(self, msg: Any) -> None:
        with self._lock:
            self._items.append((time.monotonic(), msg))

    @property
    def messages(self) -> list[Any]:
        with self._lock:
            return [m for _, m in self._items]

    @property
    def timed(self) -> list[tuple[float, Any]]:
        with self._lock:
            return list(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def wait_for(self, predicate: Callable[[Any], bool] = lambda m: True,
                 timeout: float = 10.0, what: str = 'a matching message') -> Any:
        """Wait until a received message satisfies ``predicate``; return it."""
        def find() -> Any:
            for msg in self.messages:
                if predicate(msg):
                    return msg
            return None
        return wait_until(find, timeout, what)


class RosTestNode:
    """An rclpy node of the test itself, in its own context and domain, spun in a thread.

    Publishers, subscriptions and clients are made with ``node`` as usual; callbacks run on
    the executor thread, so tests read results through thread-safe helpers (``MessageLog``).
    """

    def __init__(self, domain_id: int, name: str = 'havatar_test') -> None:
        import rclpy
        from rclpy.context import Context
        from rclpy.executors import MultiThreadedExecutor

        self.context = Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = MultiThreadedExecutor(num_threads=2, context=self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, name=f'{name}-spin', daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        from rclpy.executors import ExternalShutdownException

        try:
            self.executor.spin()
        except ExternalShutdownException:
            pass

    def subscribe(self, msg_type: Any, topic: str, qos: Any = 10) -> MessageLog:
        """Subscribe to ``topic`` and return the log its messages go to."""
        log = MessageLog()
        self.node.create_subscription(msg_type, topic, log, qos)
        return log

    def wait_for_subscribers(self, publisher: Any, count: int = 1, timeout: float = 10.0) -> None:
        wait_until(lambda: publisher.get_subscription_count() >= count, timeout,
                   f'{count} subscriber(s) on {publisher.topic_name}')

    def wait_for_publishers(self, topic: str, count: int = 1, timeout: float = 10.0) -> None:
        wait_until(lambda: self.node.count_publishers(topic) >= count, timeout,
                   f'{count} publisher(s) on {topic}')

    def call(self, client: Any, request: Any, timeout: float = 10.0, resend: float = 2.0) -> Any:
        """Call a service and wait for its response.

        The request is sent again every ``resend`` seconds: a response is lost when the server
        has not yet matched this client's reader (ros2/rmw_fastrtps#704), so call only
        idempotent services this way.
        """
        if not client.wait_for_service(timeout_sec=timeout):
            raise TimeoutError(f'service {client.srv_name} not available after {timeout} s')
        deadline = time.monotonic() + timeout
        while True:
            future = client.call_async(request)
            try:
                wait_until(future.done, min(resend, max(0.0, deadline - time.monotonic())),
                           f'response from {client.srv_name}')
                return future.result()
            except TimeoutError:
                client.remove_pending_request(future)
                if time.monotonic() >= deadline:
                    raise

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=2.0)
        self.node.destroy_node()
        self.context.try_shutdown()
        self._thread.join(timeout=5.0)
