"""Set-up shared by both pytest suites (tests/ and clients/python/tests/): the session
gets a data directory of its own.

`any` keeps its token, server logs and hosted userscripts in `$XDG_DATA_HOME/any`
(else `~/.local/share/any`). The servers the suites start (directly, or by the Python
client's autostart) inherit this environment, so a test run neither reads nor writes the
token and logs of the person running it. Tests about the default location set `HOME`
and `XDG_DATA_HOME` for their own processes.
"""

from __future__ import annotations

import os
import shutil
import tempfile

_created: list[str] = []


def pytest_configure(config):
    data = tempfile.mkdtemp(prefix="any-test-data-")
    _created.append(data)
    os.environ["XDG_DATA_HOME"] = data


def pytest_unconfigure(config):
    for data in _created:
        shutil.rmtree(data, ignore_errors=True)
