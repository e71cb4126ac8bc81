"""The short version of the real-chain soak (tests/soak_real.py) that CI runs: 1,000
calls across 8 pages of real headless Chromium while tabs are closed and
reloaded, the extension reloaded and the server restarted, checked against the pages'
own record of every run.

Runs the soak as a child process (it starts and stops its own page server, `any serve`
and `any browser`) and reads its JSON summary.
"""

from __future__ import annotations

import json
import subprocess
import sys

from any_e2e import ROOT


def test_every_call_ends_once_and_runs_at_most_once_under_faults(built):
    any_bin, extension = built
    done = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "soak_real.py"), "--calls", "1000", "--pages", "8",
         "--fault-every", "0.4", "--json", "--any", str(any_bin), "--extension", str(extension)],
        capture_output=True, text=True, timeout=600)
    assert done.returncode in (0, 1), done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"\n{summary}")
    assert summary["violation_count"] == 0, summary["violations"]
    assert done.returncode == 0
    # The faults really happened, and calls succeeded around them.
    assert sum(n for f, n in summary["faults"].items() if "not made" not in f) >= 5, summary
    assert summary["outcomes"].get("ok", 0) >= 500, summary
    assert sum(summary["outcomes"].values()) == 1000
