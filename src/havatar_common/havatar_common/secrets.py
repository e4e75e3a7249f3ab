"""Secrets from parameters or the environment, and files only their owner reads (ROS-free).

A secret is never a default in the repository and never appears in a log line: callers log
where it came from (a file path, a variable name), never the value.
"""
from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path


def secret(value: str, env: str) -> str:
    """The parameter's ``value`` if set, else the environment variable ``env`` (or '')."""
    return value or os.environ.get(env, '')


def write_private(path: Path, text: str) -> None:
    """Replace ``path`` atomically with ``text``, readable only by its owner (0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix='.' + path.name)
    with os.fdopen(fd, 'w') as f:
        f.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def resolve_token(value: str, env: str, path: Path) -> str:
    """A configured token (parameter, then ``env``), else the one kept in ``path``, else a
    new one generated and kept there (0600).
    """
    configured = secret(value, env)
    if configured:
        return configured
    if path.is_file():
        kept = path.read_text().strip()
        if kept:
            return kept
    token = secrets.token_urlsafe(24)
    write_private(path, token + '\n')
    return token
