"""Media bridge of the Havatar robot: local MJPEG over HTTP, or H.264 and Opus to a MediaMTX
server, switchable at run time with automatic fallback.
"""
