"""axe-core accessibility checks of a page in the test browser.

axe-core comes from npm (scripts/setup.sh installs it into tools/node); ``HAVATAR_AXE_JS``
may point at another axe.min.js. Nothing is downloaded at run time.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .tools import WORKSPACE

AXE_JS = Path('node_modules') / 'axe-core' / 'axe.min.js'
RUN_AXE = """async () => {
  const result = await axe.run(document, { resultTypes: ['violations'] });
  return result.violations.map((v) => `${v.id} (${v.impact}): ${v.help}: `
    + v.nodes.map((n) => n.target.join(' ') + ' ' + (n.failureSummary || '').replace(/\\s+/g, ' ')).join(' | '));
}"""


def axe_script() -> Path:
    """The axe.min.js the tests inject; fails the test with what to run when it is missing."""
    import pytest

    path = Path(os.environ.get('HAVATAR_AXE_JS') or WORKSPACE / 'tools' / 'node' / AXE_JS)
    if not path.is_file():
        pytest.fail(f'axe-core is not installed at {path}: run scripts/setup.sh --no-run')
    return path


def axe_violations(page: Any) -> list[str]:
    """axe-core's violations on ``page`` as it is now, one line each (empty: none)."""
    if not page.evaluate("typeof window.axe === 'object'"):
        page.add_script_tag(path=str(axe_script()))
    return page.evaluate(RUN_AXE)
