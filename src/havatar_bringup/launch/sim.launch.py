"""The robot on simulated hardware: ``ros2 launch havatar_bringup sim.launch.py``."""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource


def generate_launch_description():
    robot = os.path.join(get_package_share_directory('havatar_bringup'), 'launch', 'robot.launch.py')
    return LaunchDescription([IncludeLaunchDescription(PythonLaunchDescriptionSource(robot),
                                                       launch_arguments={'sim': 'true'}.items())])
