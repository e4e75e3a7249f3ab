"""The endpoint table of the whole stack, as markdown.

    . scripts/env.sh && python src/havatar_bringup/benchmarks/endpoint_table.py

Starts the demo's stack (the simulated robot in server mode, Redis, the relay server,
MediaMTX authenticating through the relay) with the relay's admin token set, MediaMTX
speaking RTSPS only as shipped (a certificate from ``docker/media-cert.sh``), and the
shipped ``docker/Caddyfile`` in front (Debian's caddy, plain HTTP on loopback), then tries
every endpoint with no token, a wrong one and the right one (``havatar_testing.endpoints``,
the probe core ``test_endpoint_table.py`` asserts on). Prints the table, the rows that
break their access class (none expected), the listening ports no row tried, and how long
the probe took.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / 'testing'))

from havatar_testing import ProcessManager, WORKSPACE  # noqa: E402
from havatar_testing.endpoints import markdown, probe_all, start_whole_stack, unprobed_ports, violations  # noqa: E402
from havatar_testing.isolation import DomainLease, ros_environment  # noqa: E402


def main() -> int:
    lease = DomainLease()
    work_dir = Path(tempfile.mkdtemp(prefix='havatar-endpoints-'))
    processes = ProcessManager(work_dir, {**os.environ, **ros_environment(lease.domain_id)})
    try:
        started = time.monotonic()
        stack = start_whole_stack(processes, work_dir, lease.domain_id, WORKSPACE / 'docker')
        probing = time.monotonic()
        rows = probe_all(stack)
        done = time.monotonic()
        print(markdown(rows))
        broken = violations(rows)
        print('\nrows breaking their access class:', '; '.join(broken) if broken else 'none')
        unprobed = unprobed_ports(stack, rows)
        print('listening ports no row tried:',
              ', '.join(f'{port} ({name} on {address})' for port, (name, address) in sorted(unprobed.items()))
              or 'none')
        print(f'stack started in {probing - started:.1f} s; {len(rows)} endpoints x 3 tokens probed in '
              f'{done - probing:.1f} s; logs in {work_dir}')
        return 1 if broken else 0
    finally:
        processes.stop_all()
        lease.release()


if __name__ == '__main__':
    sys.exit(main())
