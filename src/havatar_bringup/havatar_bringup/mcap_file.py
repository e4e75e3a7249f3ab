"""Writing serialized ROS 2 messages to an MCAP file as rosbag2 does (no rclpy).

Schemas are ``ros2msg``: the type's ``.msg`` text followed by each type it uses, separated
by a line of 80 ``=`` and ``MSG: pkg/Type`` (rosbag2's message definition format); messages
are the CDR bytes as they came off the wire (``cdr``), so ``ros2 bag`` and Foxglove read
them. ``rotate`` keeps a directory of such files under a size bound.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Callable, Iterable, Mapping

from mcap.well_known import MessageEncoding, SchemaEncoding
from mcap.writer import CompressionType, Writer

from .incidents import Record

PRIMITIVES = {'bool', 'byte', 'char', 'float32', 'float64', 'int8', 'uint8', 'int16', 'uint16', 'int32',
              'uint32', 'int64', 'uint64', 'string', 'wstring'}
SEPARATOR = '=' * 80
# offered_qos_profiles as rosbag2 (Jazzy) writes a reliable, volatile publisher's; readers that
# find none use the defaults, so one profile for every channel is fine
QOS_YAML = ('- history: 3\n  depth: 0\n  reliability: 1\n  durability: 2\n  deadline:\n    sec: 2147483647\n'
            '    nsec: 4294967295\n  lifespan:\n    sec: 2147483647\n    nsec: 4294967295\n  liveliness: 1\n'
            '  liveliness_lease_duration:\n    sec: 2147483647\n    nsec: 4294967295\n'
            '  avoid_ros_namespace_conventions: false\n')


def msg_file(share_dir: Callable[[str], str], type_name: str) -> Path:
    """The ``.msg`` file of ``pkg/msg/Type`` (or ``pkg/Type``) in the package's share directory."""
    package, _, name = type_name.replace('/msg/', '/').partition('/')
    return Path(share_dir(package)) / 'msg' / f'{name}.msg'


def _dependencies(text: str, package: str) -> list[str]:
    """The non-primitive field types of a .msg text, as ``pkg/Type``, in order."""
    found = []
    for line in text.splitlines():
        line = line.split('#', 1)[0].strip()
        if not line:
            continue
        field_type = re.split(r'\s+', line, maxsplit=1)[0]
        if '=' in line.split(None, 1)[-1] and field_type in PRIMITIVES:
            continue  # a constant
        base = re.sub(r'\[.*\]$', '', field_type)
        base = re.sub(r'<=\d+$', '', base)
        if base in PRIMITIVES:
            continue
        if base == 'Header':
            base = 'std_msgs/Header'
        found.append(base if '/' in base else f'{package}/{base}')
    return found


def message_definition(type_name: str, share_dir: Callable[[str], str]) -> str:
    """The full ``ros2msg`` definition of ``pkg/msg/Type`` as rosbag2 writes it."""
    root = type_name.replace('/msg/', '/')
    text = msg_file(share_dir, root).read_text()
    parts, seen = [text.rstrip('\n')], {root}
    queue = _dependencies(text, root.split('/')[0])
    while queue:
        dep = queue.pop(0)
        if dep in seen:
            continue
        seen.add(dep)
        dep_text = msg_file(share_dir, dep).read_text()
        parts.append(f'{SEPARATOR}\nMSG: {dep}\n{dep_text.rstrip(chr(10))}')
        queue += _dependencies(dep_text, dep.split('/')[0])
    return '\n'.join(parts) + '\n'


def write_mcap(path: Path, records: Iterable[Record], definitions: Mapping[str, str],
               metadata: Mapping[str, Mapping[str, str]]) -> None:
    """Write ``records`` (with every type's definition in ``definitions``) and metadata records."""
    tmp = path.with_suffix('.mcap.part')
    with tmp.open('wb') as stream:
        writer = Writer(stream, compression=CompressionType.ZSTD)
        writer.start(profile='ros2', library='havatar incident_recorder')
        schemas: dict[str, int] = {}
        channels: dict[str, int] = {}
        sequence: dict[int, int] = {}
        for record in sorted(records, key=lambda r: r.time_ns):
            if record.type_name not in schemas:
                schemas[record.type_name] = writer.register_schema(
                    record.type_name, SchemaEncoding.ROS2, definitions[record.type_name].encode())
            if record.topic not in channels:
                channels[record.topic] = writer.register_channel(
                    record.topic, MessageEncoding.CDR, schemas[record.type_name],
                    {'offered_qos_profiles': QOS_YAML})
            channel = channels[record.topic]
            sequence[channel] = sequence.get(channel, 0) + 1
            writer.add_message(channel, log_time=record.time_ns, data=record.data,
                               publish_time=record.time_ns, sequence=sequence[channel])
        for name, data in metadata.items():
            writer.add_metadata(name, dict(data))
        writer.finish()
    tmp.replace(path)  # a reader never sees half a file


def rotate(directory: Path, max_bytes: int, keep: Path | None = None) -> list[Path]:
    """Delete the oldest ``*.mcap`` files until the rest fit in ``max_bytes``; return those deleted.

    ``keep`` (the file just written) is never deleted, even alone over the bound.
    """
    files = sorted(directory.glob('*.mcap'), key=lambda p: (p.stat().st_mtime, p.name))
    total = sum(p.stat().st_size for p in files)
    deleted = []
    for old in files:
        if total <= max_bytes:
            break
        if keep is not None and old == keep:
            continue
        total -= old.stat().st_size
        old.unlink()
        deleted.append(old)
    return deleted
