"""Hardware boundary of the Havatar robot: camera, microphone, speaker and ESP32 motor nodes, and an ESP32 simulator."""
