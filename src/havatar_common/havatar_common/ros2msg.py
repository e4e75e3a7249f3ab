"""A message type's complete definition in the ``ros2msg`` encoding (pure but for the lookup).

What rosbag2 stores in MCAP files and foxglove_bridge sends as a channel's schema, so a
client without the ROS packages (Foxglove, the ``mcap`` readers) can decode CDR messages:
the type's ``.msg`` text, then each type it uses, recursively, once, after a line of 80
``=`` and a line ``MSG: <package>/msg/<Name>`` (rosbag2's docs/message_definition_encoding.md).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Callable

DELIMITER = '=' * 80
PRIMITIVES = {'bool', 'byte', 'char', 'float32', 'float64', 'int8', 'uint8', 'int16', 'uint16',
              'int32', 'uint32', 'int64', 'uint64', 'string', 'wstring'}


def field_types(text: str, package: str) -> list[str]:
    """The message types (``pkg/msg/Name``) of the fields in ``text``, in order."""
    found: list[str] = []
    for line in text.splitlines():
        line = line.split('#', 1)[0].strip()
        if not line:
            continue
        base = re.sub(r'\[.*\]$', '', line.split()[0])   # Type[], Type[3], Type[<=3]
        base = re.sub(r'<=\d+$', '', base)                # string<=10
        if base in PRIMITIVES:
            continue
        pkg, _, name = base.rpartition('/')
        full = f'{pkg.split("/")[0] or package}/msg/{name}'
        if full not in found:
            found.append(full)
    return found


def full_definition(type_name: str, read_msg: Callable[[str], str]) -> str:
    """The ``ros2msg`` schema of ``type_name`` ('pkg/msg/Name'); ``read_msg`` gives one ``.msg`` text."""
    top = read_msg(type_name)
    parts, seen, queue = [top], {type_name}, field_types(top, type_name.split('/')[0])
    while queue:
        dependency = queue.pop(0)
        if dependency in seen:
            continue
        seen.add(dependency)
        text = read_msg(dependency)
        parts.append(f'{DELIMITER}\nMSG: {dependency}\n{text}')
        queue += field_types(text, dependency.split('/')[0])
    return '\n'.join(part.rstrip('\n') for part in parts) + '\n'


def read_installed_msg(type_name: str) -> str:
    """The ``.msg`` file of an installed type (``share/<pkg>/msg/<Name>.msg``)."""
    from ament_index_python.packages import get_package_share_directory

    package, _, name = type_name.split('/')
    return (Path(get_package_share_directory(package)) / 'msg' / f'{name}.msg').read_text()
