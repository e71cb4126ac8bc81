"""CI smoke run of the benchmark (bench/run.py --quick): every figure must be measured,
no goal is asserted. Starts its own server, `any browser --headless`, a Playwright
Chromium (/usr/bin/chromium, no browser download) and the user-like browser of figure 7.

Runs in the pytest process; bench/run.py runs as a child process (about 30 s).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

from any_e2e import ROOT


def test_quick_benchmark_measures_every_figure(built, tmp_path):
    any_bin, extension = built
    raw = tmp_path / "bench.json"
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--any", str(any_bin),
         "--extension", str(extension), "--json", str(raw)],
        capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, f"bench failed:\n{run.stdout}\n{run.stderr[-4000:]}"
    out = json.loads(raw.read_text())
    for figure in ("latency", "latency_turns", "throughput", "big", "new_page", "connect", "rss", "wasm",
                   "cpu_connected", "cpu_disconnected", "user_browser"):
        assert figure in out, f"figure {figure} missing:\n{run.stdout}"
    assert out["latency"]["any_http"]["median"] > 0
    assert out["latency_turns"]["playwright"]["median"] > 0
    assert all(rate > 0 for rate in out["throughput"]["playwright"])
    assert "ratio http" in run.stdout


def test_cpu_profile_counts_the_children_not_the_benchmark_itself():
    """The callers' own CPU is reported once, as "python (this process, clients)": the
    benchmark's process must not also appear as one of the browsers' processes."""
    spec = importlib.util.spec_from_file_location("any_bench_run", ROOT / "bench" / "run.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        snapshot = bench.CpuProfile._snap()
    finally:
        child.kill()
        child.wait()
    assert child.pid in snapshot
    assert os.getpid() not in snapshot
