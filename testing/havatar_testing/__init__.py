"""Test infrastructure shared by every Havatar package (a pytest plugin and helpers)."""
from havatar_bringup.processes import (ManagedProcess, ProcessManager, find_program, free_port,
                                       port_is_open, wait_until)
from .isolation import ros_environment
from .mediamtx import MediaMtxServer, MediaMtxUser
from .ros import MessageLog, RosTestNode, flat_parameters, ros_executable
from .tools import WORKSPACE
from .toxiproxy import Proxy, Toxic, ToxiproxyError, ToxiproxyServer

__all__ = [
    'free_port', 'ros_environment', 'MediaMtxServer', 'MediaMtxUser', 'ManagedProcess',
    'ProcessManager', 'port_is_open', 'wait_until', 'MessageLog', 'RosTestNode',
    'ros_executable', 'flat_parameters', 'WORKSPACE', 'find_program', 'Proxy', 'Toxic', 'ToxiproxyError',
    'ToxiproxyServer',
]
