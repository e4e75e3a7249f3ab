"""The streaming node's services as coroutines for the relay node's event loop (ROS plumbing).

rclpy answers a service call on the executor's thread; ``call_service`` hands the answer to
the waiting loop with a done-callback and ``call_soon_threadsafe``, so neither side polls
or blocks the other.

A response can be lost while discovery is still matching the server's response writer to
this client's reader (Fast DDS drops it after 100 ms: "failed to send response (timeout)",
ros2/rmw_fastrtps#704), so an unanswered request is sent again every ``RESEND_S``. All
services called here are idempotent.
"""
from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from rcl_interfaces.msg import Parameter as ParameterMsg, ParameterType, ParameterValue
from rcl_interfaces.srv import GetParameters, SetParametersAtomically
from rclpy.parameter import parameter_value_to_python
from rclpy.node import Node

from havatar_msgs.srv import SetStreamMode

CALL_TIMEOUT_S = 5.0
RESEND_S = 1.0


async def call_service(client: Any, request: Any, timeout: float = CALL_TIMEOUT_S,
                       resend: float = RESEND_S) -> Any:
    """``client``'s response to ``request`` (an rclpy client; the node spins elsewhere).

    The request is sent again every ``resend`` seconds until the first answer.

    Raises RuntimeError when the service is not available or does not answer in time.
    """
    if not client.service_is_ready():
        raise RuntimeError(f'{client.srv_name} is not available')
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[Any] = loop.create_future()

    def settle(done: Any) -> None:  # on the loop
        if answer.done():  # timed out meanwhile
            return
        if done.cancelled():
            answer.set_exception(RuntimeError(f'{client.srv_name} call was cancelled'))
        elif done.exception() is not None:
            answer.set_exception(done.exception())
        else:
            answer.set_result(done.result())

    def answered(done: Any) -> None:  # on the executor's thread
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            loop.call_soon_threadsafe(settle, done)

    pending = []
    deadline = loop.time() + timeout
    try:
        while True:
            pending.append(client.call_async(request))
            pending[-1].add_done_callback(answered)
            wait = min(resend, deadline - loop.time())
            try:
                return await asyncio.wait_for(asyncio.shield(answer), wait)
            except asyncio.TimeoutError:
                if loop.time() >= deadline:
                    raise RuntimeError(f'{client.srv_name} did not answer') from None
    finally:
        for future in pending:
            if not future.done():
                client.remove_pending_request(future)


def _parameter(name: str, value: str | bool) -> ParameterMsg:
    if isinstance(value, bool):
        v = ParameterValue(type=ParameterType.PARAMETER_BOOL, bool_value=value)
    else:
        v = ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=str(value))
    return ParameterMsg(name=name, value=v)


class RosStreamingControl:
    """The streaming node's ``stream/set_mode`` and its parameters (``robot_api.StreamingControl``)."""

    def __init__(self, node: Node, streaming_node: str) -> None:
        self._mode = node.create_client(SetStreamMode, 'stream/set_mode')
        # atomically: the streaming node applies a new server in one step (one restart)
        self._parameters = node.create_client(SetParametersAtomically,
                                              f'{streaming_node}/set_parameters_atomically')
        self._get = node.create_client(GetParameters, f'{streaming_node}/get_parameters')

    async def set_mode(self, mode: str) -> tuple[bool, str]:
        try:
            response = await call_service(self._mode, SetStreamMode.Request(mode=mode))
        except RuntimeError as exc:
            return False, str(exc)
        return response.success, response.message

    async def set_parameters(self, values: dict[str, str | bool]) -> list[tuple[bool, str]]:
        request = SetParametersAtomically.Request(
            parameters=[_parameter(k, v) for k, v in values.items()])
        result = (await call_service(self._parameters, request)).result
        return [(result.successful, result.reason)]

    async def get_parameters(self, names: tuple[str, ...]) -> dict[str, Any]:
        response = await call_service(self._get, GetParameters.Request(names=list(names)))
        return {name: parameter_value_to_python(value) for name, value in zip(names, response.values)}
