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


ACCESS_TOKEN_ENV = 'HAVATAR_ACCESS_TOKEN'
ACCESS_TOKEN_FILE_HELP = "Where a generated access token is kept; '' = ~/.config/havatar/access_token"


def config_dir() -> Path:
    """Havatar's per-user configuration directory (``$XDG_CONFIG_HOME/havatar``)."""
    return Path(os.environ.get('XDG_CONFIG_HOME') or Path.home() / '.config') / 'havatar'


def access_token_file(value: str) -> Path:
    """The file of the robot's generated access token: ``value``, else the shared default
    (every node that serves something resolves the same file, so they share one token).
    """
    return Path(value).expanduser() if value else config_dir() / 'access_token'


def resolve_token(value: str, env: str, path: Path) -> str:
    """A configured token (parameter, then ``env``), else the one kept in ``path``, else a
    new one generated and kept there (0600).

    Race-free: a new token is written completely to a private temporary file, then linked
    to ``path`` only if ``path`` does not exist yet; a process that loses that race reads
    the winner's token. Nodes starting at once therefore end with the same token.
    """
    configured = secret(value, env)
    if configured:
        return configured
    kept = _read_token(path)
    if kept:
        return kept
    token = secrets.token_urlsafe(24)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix='.' + path.name)
    try:
        with os.fdopen(fd, 'w') as f:
            f.write(token + '\n')
        os.chmod(tmp, 0o600)
        os.link(tmp, path)  # fails if another process created path first
    except FileExistsError:
        kept = _read_token(path)
        if kept:
            return kept
        write_private(path, token + '\n')  # an empty file was there: replace it
    finally:
        os.unlink(tmp)
    return token


def _read_token(path: Path) -> str:
    return path.read_text().strip() if path.is_file() else ''
