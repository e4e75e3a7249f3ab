"""The fault table: stop and recovery time for every fault of the fault suite.

    . scripts/env.sh && python src/havatar_relay/benchmarks/fault_table.py [--runs 3]
    python src/havatar_relay/benchmarks/fault_table.py --report before.jsonl --report after.jsonl

Runs the fault tests (``src/havatar_relay/test/test_faults_*.py``: relay SIGKILL and
SIGSTOP, Redis kill/restart, MediaMTX kill/restart, robot link black-holed, delayed,
bandwidth-limited and cut mid-message, relay-to-Redis black hole) ``--runs`` times with
``HAVATAR_FAULT_REPORT`` set, and prints per fault the median stop time (the fault to the
STOP line at the ESP32 simulator) and recovery time (see each test for where it starts).
With ``--report`` it only prints the table of reports made earlier, side by side.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1] / 'test'
WORKSPACE = Path(__file__).resolve().parents[3]


def load(path: Path) -> dict[str, dict[str, list[float]]]:
    """Fault -> {'stop_s': [...], 'recovery_s': [...]} from a report file."""
    rows: dict[str, dict[str, list[float]]] = {}
    for line in path.read_text().splitlines():
        row = json.loads(line)
        entry = rows.setdefault(row['fault'], {'stop_s': [], 'recovery_s': []})
        for key in ('stop_s', 'recovery_s'):
            if row.get(key) is not None:
                entry[key].append(row[key])
    return rows


def cell(values: list[float]) -> str:
    if not values:
        return '-'
    text = f'{statistics.median(values):.2f} s'
    return text + (f' ({min(values):.2f}-{max(values):.2f})' if len(values) > 1 else '')


def table(reports: list[tuple[str, dict[str, dict[str, list[float]]]]]) -> str:
    faults = list(dict.fromkeys(f for _, rows in reports for f in rows))
    header = ['fault'] + [f'{name} {kind}' for name, _ in reports for kind in ('stop', 'recovery')]
    lines = [header]
    for fault in faults:
        line = [fault]
        for _, rows in reports:
            entry = rows.get(fault, {'stop_s': [], 'recovery_s': []})
            line += [cell(entry['stop_s']), cell(entry['recovery_s'])]
        lines.append(line)
    widths = [max(len(row[i]) for row in lines) for i in range(len(header))]
    return '\n'.join('  '.join(c.ljust(w) for c, w in zip(row, widths)) for row in lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--runs', type=int, default=1, help='runs of the fault suite')
    parser.add_argument('--report', type=Path, action='append', help='print these reports only')
    options = parser.parse_args()
    if options.report:
        print(table([(path.stem, load(path)) for path in options.report]))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / 'faults.jsonl'
        env = {**os.environ, 'HAVATAR_FAULT_REPORT': str(report)}
        for run in range(options.runs):
            print(f'run {run + 1}/{options.runs} of the fault suite...', flush=True)
            result = subprocess.run(
                [sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider',
                 *sorted(str(p) for p in TESTS.glob('test_faults_*.py'))],
                cwd=WORKSPACE, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            print(result.stdout.strip().splitlines()[-1] if result.stdout.strip() else 'no output')
        if not report.exists():
            print('no figures were reported', file=sys.stderr)
            return 1
        print()
        print(table([('', load(report))]))
    return 0


if __name__ == '__main__':
    sys.exit(main())
