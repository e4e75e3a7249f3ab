"""What every Havatar node shares; no node logic.

ROS-free modules (importable without rclpy, so the cloud relay server can use them):
``auth`` (token checks), ``audio`` (the PCM format), ``aio_server`` (an aiohttp server on
a loop of its own), ``lifetime`` (children that die with their parent), ``secrets``.
ROS modules: ``spin``, ``parameters``, ``diagnostics``, ``qos``.
"""
