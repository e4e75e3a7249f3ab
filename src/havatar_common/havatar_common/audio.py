"""The PCM format audio travels in between Havatar's nodes and media servers (ROS-free)."""

PCM_RATE = 48000       # Hz: what Opus, WebRTC and most USB sound devices use natively
PCM_CHANNELS = 1
PCM_SAMPLE_BYTES = 2   # signed 16-bit little-endian
