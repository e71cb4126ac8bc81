#!/usr/bin/env python3
"""The user's original scenario: call `pageInfo` with `{"delay": 500}` on a page in the
real browser and print the page's title and URL.

Runs as a plain Python script. Needs the `any_browser` package
(`pip install ./clients/python`), the `any` binary on PATH or given with `--any` (the
server is started for you when none answers on the port), and a browser with the any
extension where a userscript defines `globalThis.__any__.pageInfo` (see the README).

    python3 examples/run.py [URL] [--port 8765] [--any PATH] [--timeout SECS]
"""

from __future__ import annotations

import argparse
import sys

import any_browser


def main() -> int:
    parser = argparse.ArgumentParser(description="Print a page's title and URL via pageInfo.")
    parser.add_argument("page", nargs="?", default="https://example.com",
                        help="the page to call pageInfo on (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8765,
                        help="the any server's port (default: %(default)s)")
    parser.add_argument("--any", dest="binary", metavar="PATH",
                        help="the any binary to start a server with (default: any on PATH)")
    parser.add_argument("--timeout", type=float, default=30.0,
                        help="seconds until the call fails (default: %(default)s)")
    args = parser.parse_args()
    try:
        info = any_browser.call(args.page, "pageInfo", {"delay": 500}, port=args.port,
                                binary=args.binary, timeout=args.timeout)
    except any_browser.AnyError as e:
        print(f"run.py: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print(f"title: {info['title']}")
    print(f"url:   {info['url']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
