"""The ESP32 motor controller: its serial protocol, the link to it, and a simulator."""
