"""ros2msg schemas: the message text, then each type it uses once, as rosbag2 writes them."""
from __future__ import annotations

import pytest

from havatar_common.ros2msg import DELIMITER, field_types, full_definition, read_installed_msg

MSGS = {
    'demo/msg/Outer': '# a comment naming other/Type\nstd_msgs/Header header\nInner[] inners  # same package\n'
                      'Inner[3] fixed\nstring<=8 name\nuint8 CONSTANT = 3\n',
    'demo/msg/Inner': 'builtin_interfaces/Time stamp\nfloat64[<=4] values\n',
    'std_msgs/msg/Header': 'builtin_interfaces/Time stamp\nstring frame_id\n',
    'builtin_interfaces/msg/Time': 'int32 sec\nuint32 nanosec\n',
}


def test_field_types_qualify_same_package_names_and_skip_primitives():
    assert field_types(MSGS['demo/msg/Outer'], 'demo') == ['std_msgs/msg/Header', 'demo/msg/Inner']


def test_full_definition_lists_each_dependency_once_after_a_delimiter():
    text = full_definition('demo/msg/Outer', MSGS.__getitem__)
    parts = text.split(DELIMITER + '\n')
    assert parts[0] == MSGS['demo/msg/Outer']
    assert [p.splitlines()[0] for p in parts[1:]] == [
        'MSG: std_msgs/msg/Header', 'MSG: demo/msg/Inner', 'MSG: builtin_interfaces/msg/Time']


def compressed_image():
    from sensor_msgs.msg import CompressedImage
    msg = CompressedImage(format='rgb8; jpeg compressed bgr8', data=b'\xff\xd8')
    msg.header.frame_id = 'camera_optical_frame'
    return msg, lambda d: (d.header.frame_id, d.format, bytes(d.data))


def tf_message():
    from geometry_msgs.msg import TransformStamped
    from tf2_msgs.msg import TFMessage
    t = TransformStamped(child_frame_id='camera_link')
    t.header.frame_id = 'base_link'
    t.transform.rotation.w = 1.0
    return TFMessage(transforms=[t]), lambda d: (d.transforms[0].header.frame_id, d.transforms[0].child_frame_id,
                                                 d.transforms[0].transform.rotation.w)


@pytest.mark.parametrize('type_name, make, expected', [
    ('sensor_msgs/msg/CompressedImage', compressed_image,
     ('camera_optical_frame', 'rgb8; jpeg compressed bgr8', b'\xff\xd8')),
    ('tf2_msgs/msg/TFMessage', tf_message, ('base_link', 'camera_link', 1.0)),
])
def test_installed_definitions_let_a_decoder_without_ros_read_the_message(type_name, make, expected):
    from mcap.records import Schema
    from mcap_ros2.decoder import DecoderFactory
    from rclpy.serialization import serialize_message

    msg, fields = make()
    schema = Schema(id=1, name=type_name, encoding='ros2msg',
                    data=full_definition(type_name, read_installed_msg).encode())
    decode = DecoderFactory().decoder_for('cdr', schema)
    assert fields(decode(serialize_message(msg))) == expected
