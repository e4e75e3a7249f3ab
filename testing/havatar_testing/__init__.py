"""Test infrastructure shared by every Havatar package (a pytest plugin and helpers)."""
from .isolation import free_port, ros_environment
from .mediamtx import MediaMtxServer, MediaMtxUser
from .processes import ManagedProcess, ProcessManager, port_is_open, wait_until
from .ros import MessageLog, RosTestNode, ros_executable
from .tools import WORKSPACE, find_program
from .toxiproxy import Proxy, Toxic, ToxiproxyError, ToxiproxyServer

__all__ = [
    'free_port', 'ros_environment', 'MediaMtxServer', 'MediaMtxUser', 'ManagedProcess',
    'ProcessManager', 'port_is_open', 'wait_until', 'MessageLog', 'RosTestNode',
    'ros_executable', 'WORKSPACE', 'find_program', 'Proxy', 'Toxic', 'ToxiproxyError',
    'ToxiproxyServer',
]
