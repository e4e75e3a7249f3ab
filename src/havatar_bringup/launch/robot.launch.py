"""Start the Havatar robot: ``ros2 launch havatar_bringup robot.launch.py [sim:=true] ...``.

The arguments (``--show-args`` lists them) and the node graph are described once in
havatar_bringup.graph (``GraphArgs``, ``robot_graph``), which the demo runs too.
"""
import os

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess, OpaqueFunction, SetEnvironmentVariable
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from havatar_bringup.graph import ARGUMENTS, GraphArgs, command_line, dds_profile, find_executable, robot_graph
from havatar_common.lifetime import PARENT_PID_ENV


def _nodes(context, *args, **kwargs):
    values = {name: LaunchConfiguration(name).perform(context) for name, _, _ in ARGUMENTS}
    actions = []
    for entry in robot_graph(GraphArgs.from_strings(values)):
        if not entry.ros:  # the ESP32 simulator, motor_guard: plain programs
            actions.append(ExecuteProcess(cmd=command_line(entry, find_executable(entry) or entry.executable),
                                          name=entry.name, output='screen', respawn=entry.respawn,
                                          respawn_delay=entry.respawn_delay))
            continue
        actions.append(Node(
            package=entry.package, executable=entry.executable, name=entry.name,
            namespace=entry.namespace, parameters=list(entry.parameters),
            remappings=list(entry.remappings), respawn=entry.respawn, respawn_delay=entry.respawn_delay,
            output='screen'))
    return actions


def generate_launch_description():
    profile = dds_profile()
    return LaunchDescription(
        [DeclareLaunchArgument(name, default_value=default, description=description)
         for name, default, description in ARGUMENTS]
        + [SetEnvironmentVariable('FASTRTPS_DEFAULT_PROFILES_FILE', profile),  # Humble
           SetEnvironmentVariable('FASTDDS_DEFAULT_PROFILES_FILE', profile),   # Jazzy
           # this process starts the nodes: each dies with it, also if it died before the
           # node could ask for that (spin_node, havatar_common.lifetime)
           SetEnvironmentVariable(PARENT_PID_ENV, str(os.getpid())),
           OpaqueFunction(function=_nodes)])
