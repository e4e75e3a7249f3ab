"""Where the workspace is: its files, and the programs ``scripts/setup.sh`` put in tools/bin.

``find_program`` (``havatar_bringup.processes``) looks in ``$HAVATAR_WORKSPACE/tools/bin``;
``scripts/env.sh`` sets it, and so does this module (to this checkout) when it is unset.
"""
from __future__ import annotations

import os
from pathlib import Path

WORKSPACE = Path(os.environ.setdefault('HAVATAR_WORKSPACE', str(Path(__file__).resolve().parents[2])))
