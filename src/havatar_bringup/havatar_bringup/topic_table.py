"""Every topic of a running graph with its type and QoS (executable ``topic_table``).

Prints what ``ros2 topic list -t`` prints, then a Markdown table of each topic's type,
publishers and subscribers and the QoS its publishers offer (reliability, durability, as
``ros2 topic info -v`` reports them; DDS discovery does not carry the history depth), so
docs/ros-tools.md can show the default launch's topics without the ROS CLI installed.

    topic_table [--settle 3] [--timeout 30]   # in the graph's ROS_DOMAIN_ID
"""
from __future__ import annotations

import argparse
import time
from typing import Iterable, NamedTuple, Optional

RELIABILITY = {1: 'reliable', 2: 'best effort'}
DURABILITY = {1: 'transient local', 2: 'volatile'}


class Endpoint(NamedTuple):
    node: str
    reliability: str
    durability: str


class TopicRow(NamedTuple):
    name: str
    types: list[str]
    publishers: list[Endpoint]
    subscribers: list[Endpoint]


def qos_text(endpoints: Iterable[Endpoint]) -> str:
    """The publishers' QoS, one entry per distinct profile: 'reliable, transient local'."""
    profiles = sorted({f'{e.reliability}, {e.durability}' for e in endpoints})
    return '; '.join(profiles) if profiles else '(no publisher)'


def list_t(rows: Iterable[TopicRow]) -> str:
    """As ``ros2 topic list -t`` prints: '/name [type]' per line, sorted by name."""
    return '\n'.join(f'{r.name} [{", ".join(r.types)}]' for r in sorted(rows))


def markdown(rows: Iterable[TopicRow]) -> str:
    lines = ['| topic | type | publishers | subscribers | QoS offered |', '|---|---|---|---|---|']
    for r in sorted(rows):
        nodes = [', '.join(sorted({e.node for e in side})) or '-' for side in (r.publishers, r.subscribers)]
        lines.append(f'| `{r.name}` | {", ".join(r.types)} | {nodes[0]} | {nodes[1]} | {qos_text(r.publishers)} |')
    return '\n'.join(lines)


def snapshot(node, own: str) -> list[TopicRow]:
    """The graph as ``node`` sees it now, leaving out this node's own endpoints."""
    def endpoints(infos) -> list[Endpoint]:
        return sorted(Endpoint(f'{i.node_namespace.rstrip("/")}/{i.node_name}',
                         RELIABILITY.get(int(i.qos_profile.reliability), str(i.qos_profile.reliability)),
                         DURABILITY.get(int(i.qos_profile.durability), str(i.qos_profile.durability)))
                for i in infos if i.node_name != own)
    rows = []
    for name, types in node.get_topic_names_and_types():
        pubs, subs = endpoints(node.get_publishers_info_by_topic(name)), \
            endpoints(node.get_subscriptions_info_by_topic(name))
        if pubs or subs:
            rows.append(TopicRow(name, list(types), pubs, subs))
    return rows


def watch(settle: float, timeout: float) -> list[TopicRow]:
    """The graph once it stopped changing for ``settle`` seconds (discovery is gradual)."""
    import rclpy

    rclpy.init()
    node = rclpy.create_node('topic_table')
    try:
        rows: list[TopicRow] = []
        stable_since = start = time.monotonic()
        while time.monotonic() - start < timeout:
            rclpy.spin_once(node, timeout_sec=0.2)
            now = snapshot(node, 'topic_table')
            if sorted(now) != sorted(rows):
                rows, stable_since = now, time.monotonic()
            elif rows and time.monotonic() - stable_since >= settle:
                break
        return rows
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(prog='topic_table', description=__doc__.split('\n\n')[0])
    parser.add_argument('--settle', type=float, default=3.0, help='seconds without change before printing')
    parser.add_argument('--timeout', type=float, default=30.0, help='seconds to wait at most')
    options = parser.parse_args(argv)
    rows = watch(options.settle, options.timeout)
    print('$ ros2 topic list -t')
    print(list_t(rows))
    print()
    print(markdown(rows))


if __name__ == '__main__':
    main()
