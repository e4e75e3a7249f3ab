"""Camera frame sources: a V4L2 device through ffmpeg, and the moving test pattern."""
