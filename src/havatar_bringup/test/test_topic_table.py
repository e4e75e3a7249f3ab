"""topic_table: a running graph's topics as ``ros2 topic list -t`` prints them, with QoS."""
from __future__ import annotations

import subprocess
import sys

from havatar_bringup.topic_table import Endpoint, TopicRow, list_t, markdown
from havatar_testing import ros_executable

ROWS = [
    TopicRow('/tf_static', ['tf2_msgs/msg/TFMessage'], [Endpoint('/camera_node', 'reliable', 'transient local')], []),
    TopicRow('/camera/image_raw', ['sensor_msgs/msg/Image'], [Endpoint('/camera_node', 'best effort', 'volatile')],
             [Endpoint('/streaming_node', 'best effort', 'volatile'), Endpoint('/a', 'best effort', 'volatile')]),
    TopicRow('/say', ['std_msgs/msg/String'], [], [Endpoint('/speaker_node', 'reliable', 'volatile')]),
]


def test_list_is_sorted_with_types_in_brackets():
    assert list_t(ROWS) == ('/camera/image_raw [sensor_msgs/msg/Image]\n/say [std_msgs/msg/String]\n'
                            '/tf_static [tf2_msgs/msg/TFMessage]')


def test_table_names_the_nodes_and_the_offered_qos():
    lines = markdown(ROWS).splitlines()
    assert lines[2] == ('| `/camera/image_raw` | sensor_msgs/msg/Image | /camera_node | /a, /streaming_node '
                        '| best effort, volatile |')
    assert lines[3] == '| `/say` | std_msgs/msg/String | - | /speaker_node | (no publisher) |'
    assert lines[4] == '| `/tf_static` | tf2_msgs/msg/TFMessage | /camera_node | - | reliable, transient local |'


def test_a_running_camera_node_is_listed(processes, ros_env):
    camera = processes.start('camera_node', [ros_executable('havatar_drivers', 'camera_node'), '--ros-args',
                                             '-p', 'source:=test_pattern', '-p', 'width:=160', '-p', 'height:=120'])
    camera.wait_for_output('publishing', timeout=20)
    done = subprocess.run([sys.executable, '-m', 'havatar_bringup.topic_table', '--settle', '1', '--timeout', '20'],
                          capture_output=True, text=True, timeout=60, check=True, env=ros_env)
    assert '/tf_static [tf2_msgs/msg/TFMessage]\n' in done.stdout
    assert '/camera/image_raw [sensor_msgs/msg/Image]\n' in done.stdout
    assert '| `/tf_static` | tf2_msgs/msg/TFMessage | /camera_node | - | reliable, transient local |' in done.stdout
    assert '| `/camera/camera_info` | sensor_msgs/msg/CameraInfo | /camera_node | - | best effort, volatile |' \
        in done.stdout
