"""Every endpoint of the whole stack (the simulated robot in server mode, Redis, the relay
server, MediaMTX through the relay's hook and with RTSPS only as shipped, the shipped
Caddyfile in front), tried with no token, a wrong one and the right one: nothing private
lets anyone in without the right token, the proxy routes nothing internal, and no
listening port goes untried.

The same probe core prints the table (``benchmarks/endpoint_table.py``).
"""
from __future__ import annotations

from havatar_testing import WORKSPACE
from havatar_testing.endpoints import PROBES, markdown, probe_all, start_whole_stack, unprobed_ports, violations

DOCKER = WORKSPACE / 'docker'


def test_nothing_private_answers_without_the_right_token(processes, ros_domain, tmp_path):
    work_dir = tmp_path / 'stack'
    work_dir.mkdir()
    stack = start_whole_stack(processes, work_dir, ros_domain, DOCKER)
    rows = probe_all(stack)
    table = markdown(rows)
    print('\n' + table)
    assert len(rows) == len(PROBES), 'every server of the table runs'
    assert not violations(rows), table
    # the one port left untried: the streaming node's RTSP hop, on loopback for its own user
    # (havatar_streaming.rtsp_auth_hop, tested in test_stream_password.py), in the process of
    # the streaming node: robot_container, as the demo runs the robot
    unprobed = unprobed_ports(stack, rows)
    assert all(owner == ('robot_container', '127.0.0.1') for owner in unprobed.values()), unprobed
