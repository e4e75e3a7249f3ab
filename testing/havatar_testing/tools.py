"""Find the external programs the tests use: MediaMTX, ffmpeg, redis-server, chromium."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

WORKSPACE = Path(os.environ.get('HAVATAR_WORKSPACE', Path(__file__).resolve().parents[2]))


def find_program(name: str) -> Path:
    """The workspace's ``tools/bin/<name>`` if set up, else ``name`` on PATH."""
    local = WORKSPACE / 'tools' / 'bin' / name
    if local.is_file() and os.access(local, os.X_OK):
        return local
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f'{name} not found in {local.parent} or on PATH; '
                                'run scripts/setup.sh')
    return Path(found)
