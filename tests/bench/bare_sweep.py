#!/usr/bin/env python3
"""The floor for the start-up bench: a bare standard-library asyncio sweep (no HTTP library,
no topology, no Tailscale, no report), as ../shared/bench/RESULTS.md's "yardstick" row.

Reads ../shared/bench's targets TSV (id check host port path url), opens every connection at
once, sends a GET (or only connects, for tcp) and prints `id up|refused|timeout` per target.
It is not tailnet-agent: it shows what plain Python reaches on the machine, in the same run.

    python3 tests/bench/bare_sweep.py TARGETS.tsv [--timeout 2]
"""

from __future__ import annotations

import asyncio
import sys

__all__ = ["main"]


async def _one(host: str, port: int, path: str, check: str, timeout: float) -> str:
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port)
            try:
                if check != "http":
                    return "up"
                writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
                line = await reader.readline()
                return "up" if line.split(b" ")[1:2] == [b"200"] else "down"
            finally:
                writer.close()
    except ConnectionRefusedError:
        return "refused"
    except TimeoutError:
        return "timeout"


async def _sweep(rows: list[list[str]], timeout: float) -> list[str]:
    return await asyncio.gather(
        *(_one(row[2], int(row[3]), row[4], row[1], timeout) for row in rows)
    )


def main() -> int:
    timeout = float(sys.argv[sys.argv.index("--timeout") + 1]) if "--timeout" in sys.argv else 2.0
    with open(sys.argv[1], encoding="utf-8") as tsv:
        rows = [line.rstrip("\n").split("\t") for line in tsv if line.strip()]
    states = asyncio.run(_sweep(rows, timeout))
    sys.stdout.write(
        "".join(f"{row[0]} {state}\n" for row, state in zip(rows, states, strict=True))
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
