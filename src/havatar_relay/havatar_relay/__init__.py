"""Drive the Havatar robot from a browser: the robot relay node, the cloud relay server and the web UI."""
