#!/usr/bin/env python3
"""Benchmark: the frozen Linux bundle's size and start times, beside the source install.

    .venv/bin/pyinstaller build.spec --noconfirm --clean
    .venv/bin/python tests/bench/frozen.py [--bundle dist/tailnet-agent] [--runs 5]

Prints (figures, not a test; docs/benchmarks.md keeps the latest):

  * the bundle's size on disk (allocated blocks) and its file bytes, the largest parts,
    and the size of the tar.gz the release ships (installer/linux/build_tarball.sh when
    present, else the same folder through tarfile at gzip's default level);
  * `check --json` start to exit over a loopback network (2 services of this machine, the
    stand-in `tailscale`): frozen `tailnet-agent-cli` and the source install's console
    script, interleaved, median / min / max of --runs;
  * the tray, from spawn to the icon docked in its first finished sweep's colour (green)
    on a private desktop (Xvfb + trayer + D-Bus, PYSTRAY_BACKEND=gtk): frozen
    `tailnet-agent` and the source install, interleaved, median / min / max.

"Cold" here means a new process each run; the page cache is dropped before each run when
/proc/sys/vm/drop_caches is writable (then the line says "caches dropped"), else it is warm.
Loopback only.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from agent.core.model import Health  # noqa: E402
from tests.frozen_smoke import STATUS_JSON, Smoke, http_service, tcp_service, topology_text  # noqa: E402
from tests.helpers.desktop import find_named_colour, start_desktop, wait_for  # noqa: E402

SOURCE_AGENT = Path(sys.executable).parent / "tailnet-agent"
DROP_CACHES = Path("/proc/sys/vm/drop_caches")


def mib(n: float) -> str:
    return f"{n / 2**20:.1f} MiB"


def drop_caches() -> bool:
    try:
        os.sync()
        DROP_CACHES.write_text("3\n")
    except OSError:
        return False
    return True


def sizes(bundle: Path, out: Path) -> None:
    files = [p for p in bundle.rglob("*") if p.is_file() and not p.is_symlink()]
    on_disk = sum(p.stat().st_blocks * 512 for p in files)
    content = sum(p.stat().st_size for p in files)
    print(f"bundle {bundle}: {mib(on_disk)} on disk, {mib(content)} in {len(files)} files")
    parts: dict[str, int] = {}
    internal = bundle / "_internal"
    for p in files:
        rel = p.relative_to(internal if internal in p.parents else bundle)
        key = rel.parts[0] if len(rel.parts) > 1 else rel.name
        parts[key] = parts.get(key, 0) + p.stat().st_size
    largest = sorted(parts.items(), key=lambda kv: -kv[1])[:8]
    print("  largest: " + ", ".join(f"{k} {mib(v)}" for k, v in largest))
    script = ROOT / "installer" / "linux" / "build_tarball.sh"
    archive: Path | None = None
    if script.exists():
        done = subprocess.run(
            ["bash", str(script), str(bundle), str(out)], capture_output=True, text=True
        )
        found = sorted(out.glob("*.tar.gz"))
        if done.returncode == 0 and found:
            archive = found[-1]
            how = script.relative_to(ROOT)
        else:
            print(f"  {script.name} failed ({done.returncode}): {done.stderr.strip()[-300:]}")
    if archive is None:
        archive = out / "bundle.tar.gz"
        with tarfile.open(archive, "w:gz") as tar:
            tar.add(bundle, arcname=bundle.name)
        how = "tarfile, gzip level 9"
    print(f"tar.gz: {mib(archive.stat().st_size)} ({archive.name}, {how})")


def timed_runs(label: str, runs: int, commands: dict[str, Callable[[], float]]) -> None:
    results: dict[str, list[float]] = {name: [] for name in commands}
    dropped = True
    for _ in range(runs):
        for name, run in commands.items():  # interleaved: the machine's noise hits both
            dropped = drop_caches() and dropped
            results[name].append(run())
    cache = "caches dropped before each run" if dropped else "page cache warm"
    print(f"{label} ({runs} runs each, {cache}):")
    for name, values in results.items():
        print(
            f"  {name:<8} median {statistics.median(values):.3f} s"
            f"  min {min(values):.3f}  max {max(values):.3f}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=ROOT / "dist" / "tailnet-agent")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="tailnet-frozen-bench-"))
    smoke = Smoke(args.bundle.resolve(), root)
    (root / "out").mkdir()
    sizes(args.bundle.resolve(), root / "out")

    with http_service() as web, tcp_service() as tcp_port:
        topology = root / "topology.toml"
        topology.write_text(topology_text(web.server_address[1], tcp_port), encoding="utf-8")
        argv_tail = ["check", "--json", "--topology", str(topology)]
        argv_tail += ["--tailscale", str(smoke.tailscale)]

        def check(exe: Path) -> Callable[[], float]:
            def once() -> float:
                began = time.perf_counter()
                done = smoke.run(exe, *argv_tail)
                elapsed = time.perf_counter() - began
                if done.returncode != 0:
                    raise SystemExit(f"{exe} check exited {done.returncode}: {done.stderr}")
                return elapsed

            return once

        timed_runs(
            "check --json, spawn to exit",
            args.runs,
            {"frozen": check(smoke.gui.parent / smoke.cli.name), "source": check(SOURCE_AGENT)},
        )

        with start_desktop() as desk:
            strip = desk.start_tray_host()
            desk.start_notification_server()
            env = {k: v for k, v in smoke.env.items() if k not in ("HOME", "XDG_CONFIG_HOME")}
            env.update(desk.env)
            env.update(PYSTRAY_BACKEND="gtk", FAKE_TAILSCALE_JSON=str(STATUS_JSON))
            frozen_env = {k: v for k, v in env.items() if k != "PYTHONPATH"}

            def green() -> bool:
                count, _ = find_named_colour(desk.screenshot(), Health.GREEN.value, strip)
                return count >= 20

            def tray(exe: Path, tray_env: dict[str, str]) -> Callable[[], float]:
                def once() -> float:
                    wait_for(lambda: not green(), 15, message="an icon is still docked")
                    began = time.perf_counter()
                    proc = subprocess.Popen(
                        [
                            str(exe),
                            "--topology",
                            str(topology),
                            "--tailscale",
                            str(smoke.tailscale),
                        ],
                        env=tray_env,
                        stdin=subprocess.DEVNULL,
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                    try:
                        wait_for(green, 60, interval=0.01, message=f"{exe} never docked green")
                        return time.perf_counter() - began
                    finally:
                        proc.terminate()
                        with contextlib.suppress(subprocess.TimeoutExpired):
                            proc.wait(10)
                        if proc.poll() is None:
                            proc.kill()
                            proc.wait(10)

                return once

            timed_runs(
                "tray, spawn to the first sweep's icon docked (gtk, Xvfb)",
                args.runs,
                {"frozen": tray(smoke.gui, frozen_env), "source": tray(SOURCE_AGENT, env)},
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
