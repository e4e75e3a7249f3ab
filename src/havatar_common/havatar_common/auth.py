"""The one token check of every Havatar server (ROS-free).

Tokens are compared in constant time; an expected token may be written ``sha256:<hex>``
(so a configuration file need not hold the token itself). HTTP requests carry a token as
``Authorization: Bearer <token>`` or, where a header cannot be set (an ``<img>`` of the
MJPEG stream, a WebSocket from a browser), as ``?token=<token>``.
"""
from __future__ import annotations

import hashlib
import hmac
from typing import Any, Mapping


def token_matches(given: str, expected: str) -> bool:
    """Whether ``given`` is ``expected`` (constant time); an empty ``expected`` matches nothing."""
    if not expected:
        return False
    if expected.startswith('sha256:'):
        digest = hashlib.sha256(given.encode()).hexdigest()
        return hmac.compare_digest(digest, expected[7:].lower())
    return hmac.compare_digest(given.encode(), expected.encode())


def request_token(headers: Mapping[str, str], query: Mapping[str, Any]) -> str:
    """The token an HTTP request carries: its Bearer header, else its ``token`` query."""
    header = headers.get('Authorization', '')
    if header.startswith('Bearer '):
        return header[7:].strip()
    return str(query.get('token', ''))
