"""Isolation between test runs on one machine: ROS domains, DDS leftovers."""
from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import IO

# Domain IDs 1..101 are usable on Linux without port clashes (0 is everyone's default).
_DOMAIN_IDS = range(1, 102)
_LOCK_DIR = Path(tempfile.gettempdir()) / 'havatar-test-locks'


class DomainLease:
    """An exclusive ROS_DOMAIN_ID held through a file lock until ``release``.

    The lock is visible to every process on the machine, so parallel test runs (and
    parallel tests within a run) never share a domain.
    """

    def __init__(self) -> None:
        _LOCK_DIR.mkdir(exist_ok=True)
        start = os.getpid() % len(_DOMAIN_IDS)
        for offset in range(len(_DOMAIN_IDS)):
            domain_id = _DOMAIN_IDS[(start + offset) % len(_DOMAIN_IDS)]
            handle: IO[str] = open(_LOCK_DIR / f'domain-{domain_id}.lock', 'w')
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            self.domain_id = domain_id
            self._handle: IO[str] | None = handle
            return
        raise RuntimeError('all ROS domain IDs are in use by other test runs')

    def release(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def ros_environment(domain_id: int) -> dict[str, str]:
    """Environment variables that keep ROS 2 traffic in one domain on this host only."""
    env = {
        'ROS_DOMAIN_ID': str(domain_id),
        'PYTHONUNBUFFERED': '1',
        'RCUTILS_COLORIZED_OUTPUT': '0',
    }
    if os.environ.get('ROS_DISTRO') == 'humble':
        env['ROS_LOCALHOST_ONLY'] = '1'  # Humble has no discovery range
    else:
        env['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'  # Jazzy and newer
    return env


def shm_profile_environment() -> dict[str, str]:
    """Use the bringup's Fast DDS profile (16 MB shared memory), as the robot does."""
    from .tools import WORKSPACE
    profile = str(WORKSPACE / 'src' / 'havatar_bringup' / 'config' / 'fastdds_shm.xml')
    return {'FASTRTPS_DEFAULT_PROFILES_FILE': profile, 'FASTDDS_DEFAULT_PROFILES_FILE': profile}


def clean_dds_shared_memory() -> None:
    """Remove Fast DDS shared-memory segments left by killed processes.

    ``fastdds shm clean`` only removes segments whose owners are gone, so it is safe while
    other runs are active.
    """
    fastdds = shutil.which('fastdds')
    if fastdds is None:
        return
    subprocess.run([fastdds, 'shm', 'clean'], stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=30, check=False)
