# The robot on the official ROS 2 Humble image. Build from the repository root:
#   docker build -f docker/robot.Dockerfile -t havatar/robot .
# Run with the hardware passed in (see docs/robot-setup.md for udev rules):
#   docker run --rm -it --network host --ipc host \
#     --device /dev/serial/by-id/usb-Espressif...:/dev/ttyESP32 --device /dev/video0 \
#     --device /dev/snd --group-add dialout --group-add video --group-add audio \
#     -e HAVATAR_ACCESS_TOKEN=... havatar/robot \
#     ros2 launch havatar_bringup robot.launch.py serial_port:=/dev/ttyESP32
# --ipc host lets Fast DDS use shared memory between the robot's nodes.
FROM ros:humble-ros-base
RUN apt-get update && apt-get install -y --no-install-recommends \
      python3-pip python3-serial python3-numpy python3-pil python3-yaml python3-psutil \
      ffmpeg espeak-ng alsa-utils ros-humble-diagnostic-msgs \
    && rm -rf /var/lib/apt/lists/*
COPY scripts/requirements-robot.txt /tmp/requirements.txt
RUN pip3 install --no-cache-dir -r /tmp/requirements.txt
WORKDIR /ws
COPY src /ws/src
COPY colcon.meta /ws/colcon.meta
# the stand-in interface packages (src/tf2_msgs, src/audio_common_msgs) only where the image lacks them
COPY scripts/vendored_interfaces.py /ws/scripts/vendored_interfaces.py
RUN . /opt/ros/humble/setup.sh && python3 scripts/vendored_interfaces.py && colcon build --base-paths src
COPY docker/robot-entrypoint.sh /entrypoint.sh
ENTRYPOINT ["/entrypoint.sh"]
CMD ["ros2", "launch", "havatar_bringup", "robot.launch.py"]
