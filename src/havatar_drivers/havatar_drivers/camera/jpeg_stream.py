"""Whole JPEG images out of a byte stream of back-to-back JPEGs (pure: no I/O).

An MJPEG camera read with ``ffmpeg -c:v copy -f mjpeg`` writes its JPEGs one after
another. ``JpegSplitter`` walks each image's segments (lengths, then the entropy-coded data
up to the next real marker) and hands out an image the moment its EOI arrives: it never
waits for the next image's start, so no frame is held back. Garbage between images is
skipped; an image cut short by the next SOI is dropped.
"""
from __future__ import annotations

SOI, EOI, SOS = 0xD8, 0xD9, 0xDA
MAX_FRAME_BYTES = 16 * 1024 * 1024  # a longer "image" is garbage: dropped


def _standalone(marker: int) -> bool:
    """Markers without a length field: RSTn, SOI, EOI, TEM."""
    return 0xD0 <= marker <= 0xD9 or marker == 0x01


class JpegSplitter:
    """Feed bytes as they come; get complete JPEG images back."""

    def __init__(self, max_frame_bytes: int = MAX_FRAME_BYTES) -> None:
        self.max_frame_bytes = max_frame_bytes
        self._buf = bytearray()
        self._started = False   # the buffer begins with an SOI
        self._pos = 0           # where scanning resumes
        self._entropy = False   # inside entropy-coded data (after an SOS header)
        self.dropped = 0        # broken or oversized images skipped

    def feed(self, data: bytes) -> list[bytes]:
        """Add ``data``; return the images it completed, oldest first."""
        self._buf += data
        frames = []
        while True:
            frame = self._next()
            if frame is None:
                break
            frames.append(frame)
        if len(self._buf) > self.max_frame_bytes:
            self._restart(len(self._buf))
            self.dropped += 1
        return frames

    def _restart(self, at: int) -> None:
        del self._buf[:at]
        self._started = self._entropy = False
        self._pos = 0

    def _next(self) -> bytes | None:
        buf = self._buf
        if not self._started:
            start = buf.find(b'\xff\xd8')
            if start < 0:
                keep = 1 if buf.endswith(b'\xff') else 0  # half an SOI
                del buf[:len(buf) - keep]
                return None
            del buf[:start]
            self._started, self._entropy, self._pos = True, False, 2
        pos, size = self._pos, len(buf)
        while True:
            if self._entropy:
                found = buf.find(b'\xff', pos)
                if found < 0 or found + 1 >= size:
                    self._pos = size if found < 0 else found
                    return None
                marker = buf[found + 1]
                if marker == 0x00 or 0xD0 <= marker <= 0xD7:  # stuffed byte, restart marker
                    pos = found + 2
                    continue
                self._entropy, pos = False, found
            if pos + 1 >= size:
                self._pos = pos
                return None
            if buf[pos] != 0xFF:  # not a marker where one must be: resynchronise
                self.dropped += 1
                self._restart(pos)
                return self._next()
            marker = buf[pos + 1]
            if marker == 0xFF:  # fill byte
                pos += 1
            elif marker == EOI:
                frame = bytes(buf[:pos + 2])
                self._restart(pos + 2)
                return frame
            elif marker == SOI:  # the next image began before this one ended
                self.dropped += 1
                self._restart(pos)
                return self._next()
            elif _standalone(marker):
                pos += 2
            else:
                if pos + 3 >= size:
                    self._pos = pos
                    return None
                length = (buf[pos + 2] << 8) | buf[pos + 3]
                if length < 2:
                    self.dropped += 1
                    self._restart(pos + 2)
                    return self._next()
                if pos + 2 + length > size:
                    self._pos = pos
                    return None
                pos += 2 + length
                self._entropy = marker == SOS
