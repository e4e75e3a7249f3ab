"""The floor of any rclpy motor node, for drivers_benchmark.py: a bare node whose cmd_vel
callback writes the PWM line to the port itself (no link thread, no scheduler, no deadman).

    python bare_cmd_vel_writer.py /path/to/tty

What it adds to a direct write is the DDS hop and the rclpy executor alone.
"""
from __future__ import annotations

import os
import sys
import termios
import tty

import rclpy
from geometry_msgs.msg import Twist


def main() -> int:
    fd = os.open(sys.argv[1], os.O_RDWR | os.O_NOCTTY)
    tty.setraw(fd, termios.TCSANOW)
    rclpy.init()
    node = rclpy.create_node('bare_cmd_vel_writer')

    def on_twist(msg: Twist) -> None:
        pwm = round(msg.linear.x / 0.5 * 255)  # motor_node's default kinematics, straight ahead
        os.write(fd, f'PWM {pwm} {pwm}\n'.encode())
    node.create_subscription(Twist, 'cmd_vel', on_twist, 10)
    print('driving the ESP32 (bare)', flush=True)
    try:
        rclpy.spin(node)
    except KeyboardInterrupt:
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
        os.close(fd)
    return 0


if __name__ == '__main__':
    sys.exit(main())
