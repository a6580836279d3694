"""The Tailscale CLI edge: find the `tailscale` command and run `tailscale status --json`.

`find_cli` looks in the documented order (--tailscale PATH, $TAILNET_AGENT_TAILSCALE, PATH,
then the standard install locations on Windows and macOS). `read_status` runs the command
with an argv list, bounded by a timeout, and never raises for an operational failure: a
missing command, a hang, a failing daemon or garbage output all come back as a TailnetView
whose `problem` and `detail` say what went wrong.
"""

from __future__ import annotations

import logging
import ntpath
import shutil
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from agent.core.constants import TAILSCALE_ENV
from agent.core.hints import NOT_THE_CLI, tailscale_detail, tailscale_title
from agent.core.model import TailnetView, TailscaleProblem
from agent.core.tailnet import parse_status_json
from agent.edges.child_process import StartedChild

__all__ = [
    "NOT_INSTALLED_DETAIL",
    "TAILSCALE_ENV",
    "find_cli",
    "install_locations",
    "read_status",
    "start_status",
]

log = logging.getLogger(__name__)

NOT_INSTALLED_DETAIL = tailscale_detail(
    TailscaleProblem.NOT_INSTALLED,
    f"{tailscale_title(TailscaleProblem.NOT_INSTALLED)}: no `tailscale` command found",
)

_DETAIL_MAX = 200

Which = Callable[[str], str | None]


# ==== finding the CLI ==========================================================


def install_locations(platform: str, env: Mapping[str, str]) -> tuple[str, ...]:
    """The standard places the Tailscale installers put the CLI, for `platform`.

    Windows: `%ProgramW6432%` / `%ProgramFiles%` (so a 32-bit Python still finds the
    64-bit install) and the literal `C:\\Program Files`; macOS: the GUI app's binary and
    `/usr/local/bin/tailscale` (Standalone >= 1.68). Other systems rely on PATH.
    """
    if platform == "win32":
        found: list[str] = []
        for var in ("ProgramW6432", "ProgramFiles"):
            base = _env_get(env, var)
            if base:
                found.append(ntpath.join(base, "Tailscale", "tailscale.exe"))
        found.append("C:\\Program Files\\Tailscale\\tailscale.exe")
        return tuple(dict.fromkeys(found))
    if platform == "darwin":
        return (
            "/Applications/Tailscale.app/Contents/MacOS/Tailscale",
            "/usr/local/bin/tailscale",
        )
    return ()


def find_cli(
    explicit: str | None,
    env: Mapping[str, str],
    *,
    platform: str = sys.platform,
    which: Which = shutil.which,
    candidates: Sequence[str] | None = None,
) -> str | None:
    """The `tailscale` command to run, or None when there is none.

    Order: `explicit` (--tailscale PATH, returned as given so a wrong path is reported
    when it is run), the TAILNET_AGENT_TAILSCALE variable in `env`, `tailscale` on PATH,
    then the first existing file among `candidates` (default: `install_locations`).
    """
    if explicit:
        return explicit
    from_env = env.get(TAILSCALE_ENV, "").strip()
    if from_env:
        return from_env
    on_path = which("tailscale")
    if on_path:
        return on_path
    if candidates is None:
        candidates = install_locations(platform, env)
    for candidate in candidates:
        if Path(candidate).is_file():
            return candidate
    return None


def _env_get(env: Mapping[str, str], name: str) -> str:
    """A variable from `env`, ignoring case as Windows does."""
    value = env.get(name)
    if value is None:
        folded = name.casefold()
        value = next((v for k, v in env.items() if k.casefold() == folded), None)
    return (value or "").strip()


# ==== running it ===============================================================


def start_status(cli: str | None) -> StartedChild | None:
    """`cli status --json` started now, for read_status to collect (None: no CLI). `check`
    starts it before its imports and the topology: the CLI (a Go program asking tailscaled)
    runs meanwhile. Whoever starts it kills it if it ends up unread."""
    return None if cli is None else StartedChild([cli, "status", "--json"])


async def read_status(
    cli: str | None, timeout_s: float = 5.0, *, started: StartedChild | None = None
) -> TailnetView:
    """Run `cli status --json` (or collect `started`, start_status's for the same CLI) and
    parse what it prints; never raises for a failure.

    The run (the command, its exit code, its time) and its outcome are logged at DEBUG."""
    began = time.monotonic()
    view = await _read_status(cli, timeout_s, started)
    took_ms = (time.monotonic() - began) * 1000
    if view.problem is None:
        log.debug(
            "status: %s, version %s, %d peers (%.0f ms)",
            view.backend_state.value if view.backend_state else "no state",
            view.version or "no version",
            len(view.peers),
            took_ms,
        )
    else:
        log.debug("status: %s (%.0f ms): %s", view.problem.value, took_ms, view.detail)
    return view


async def _read_status(
    cli: str | None, timeout_s: float, started: StartedChild | None
) -> TailnetView:
    if cli is None:
        log.debug("no tailscale CLI: none given, in $%s, on PATH or installed", TAILSCALE_ENV)
        return TailnetView(problem=TailscaleProblem.NOT_INSTALLED, detail=NOT_INSTALLED_DETAIL)
    asked = time.monotonic()
    try:
        child = started if started is not None else StartedChild([cli, "status", "--json"])
        result = await child.wait(timeout_s)
    except TimeoutError:  # an OSError too: first
        log.debug("ran %s status --json: no answer within %g s, killed", cli, timeout_s)
        return _problem(
            TailscaleProblem.TIMED_OUT,
            f"`tailscale status` did not answer within {timeout_s:g} s",
        )
    except FileNotFoundError:
        return _problem(
            TailscaleProblem.NOT_INSTALLED,
            f"{tailscale_title(TailscaleProblem.NOT_INSTALLED)}: {cli} does not exist",
        )
    except PermissionError:
        return _problem(
            TailscaleProblem.NOT_INSTALLED,
            f"{tailscale_title(TailscaleProblem.NOT_INSTALLED)}: {cli} cannot be run: "
            "permission denied",
            hint=NOT_THE_CLI,
        )
    except OSError as exc:
        return _problem(
            TailscaleProblem.CLI_FAILED,
            f"{cli} cannot be run: {exc.strerror or exc}",
            hint=NOT_THE_CLI,
        )
    out, err = result.out, result.err
    log.debug(
        "ran %s status --json: exit %s in %.0f ms, %d bytes out, %d bytes on stderr",
        cli,
        result.returncode,
        (time.monotonic() - asked) * 1000,
        len(out),
        len(err),
    )
    if result.returncode != 0:
        first = _first_line(err.decode("utf-8", errors="replace"))
        return _problem(
            TailscaleProblem.CLI_FAILED,
            f"`tailscale status` failed (exit {result.returncode}): {first or 'no error message'}",
        )
    view = parse_status_json(out.decode("utf-8", errors="replace"))
    if view.problem is TailscaleProblem.BAD_OUTPUT:
        log.debug("tailscale status --json printed: %r", out[:400])
    return view


def _first_line(text: str) -> str:
    for line in text.splitlines():
        line = line.strip()
        if line:
            return line[:_DETAIL_MAX]
    return ""


def _problem(problem: TailscaleProblem, fact: str, *, hint: str = "") -> TailnetView:
    """The view for a problem: the fact with the core table's one hint (see
    `tailscale_detail`), as the summary and `check --json` show it."""
    return TailnetView(problem=problem, detail=tailscale_detail(problem, fact, hint=hint))
