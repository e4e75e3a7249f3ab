"""The cloud relay server (runs without ROS)."""
