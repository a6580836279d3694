"""The command line: `tailnet-agent [check|audit|acl|run|tray|demo|topology|init|history|...]`.

Plain `tailnet-agent` starts the tray, and so do the sweep options with no command
(`tailnet-agent --topology P --node ID`: what start at login registers); where no
display or tray can run it says so and how to run headless.

Parses arguments, wires the edges together and maps outcomes to exit codes:
0 green, 1 amber, 2 red, 3 grey or unusable input (the Nagios plugin
convention). Usage errors exit 3 too, so a monitoring system never reads a bad
command line as "critical". `autostart` follows the same scale: 0 done (status:
enabled), 1 status says disabled, 3 unsupported here or failed. `demo` (agent.demo) runs
the real agent over a simulated network on loopback, with files of its own.
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, TextIO, TypeAlias

from agent import __version__
from agent.core.constants import EXIT_UNKNOWN, SHARE_VIEW_PORT, TAILSCALE_ENV
from agent.errors import AgentError, TopologyError, UsageError

# Only argparse and light modules at the top: `--version` and `--help` load nothing else
# (tests/test_cli_startup.py). Each command imports what it uses.
if TYPE_CHECKING:
    from agent.app import AgentOptions
    from agent.core.model import Topology
    from agent.desktop.autostart import AutostartState
    from agent.edges.child_process import StartedChild
    from agent.edges.topology_source import TopologyLocation

__all__ = ["build_parser", "main"]

EXIT_UNUSABLE = EXIT_UNKNOWN  # Health.GREY.exit_code


class _Parser(argparse.ArgumentParser):
    """Usage errors exit 3."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_UNUSABLE, f"{self.prog}: error: {message}\n")


class _CommandParser(_Parser):
    """A command's (or sub-action's) parser: it takes -v/--verbose too, so -v works before
    or after the command."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _add_verbose(self, default=argparse.SUPPRESS)


def _add_verbose(parser: argparse.ArgumentParser, default: Any = False) -> None:
    # SUPPRESS after the command: a command without -v leaves the top level's value alone.
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=default,
        help="debug logging on stderr: the topology, the node, the tailscale CLI, each probe",
    )


SWEEP_OPTIONS = ("topology", "node", "tailscale")
MONITOR_OPTIONS = ("metrics",)  # the running agent's own: `run` and `tray`
_TOP = "top_"  # dest prefix of the sweep options given before any command


def _add_topology_option(parser: argparse.ArgumentParser, prefix: str = "") -> None:
    parser.add_argument(
        "--topology",
        metavar="PATH|URL",
        dest=f"{prefix}topology",
        help="topology file, or an http(s) URL serving it (default: $TAILNET_AGENT_TOPOLOGY, "
        "config.toml's source, the user config, else the bundled default)",
    )


def _add_sweep_options(parser: argparse.ArgumentParser, prefix: str = "") -> None:
    _add_topology_option(parser, prefix)
    parser.add_argument(
        "--node",
        metavar="ID",
        dest=f"{prefix}node",
        help="which topology node this machine is (default: ask Tailscale)",
    )
    parser.add_argument(
        "--tailscale",
        metavar="PATH",
        dest=f"{prefix}tailscale",
        help=f"the tailscale CLI (default: ${TAILSCALE_ENV}, PATH, the standard install places)",
    )


def _add_metrics_option(parser: argparse.ArgumentParser, prefix: str = "") -> None:
    parser.add_argument(
        "--metrics",
        metavar="HOST:PORT",
        dest=f"{prefix}metrics",
        help="serve Prometheus metrics at http://HOST:PORT/metrics; HOST is 127.0.0.1, [::1] or "
        "this node's Tailscale IP (default: $TAILNET_AGENT_METRICS, `metrics` in config.toml "
        "in the user config folder, else off)",
    )


def _speed(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: the speed must be more than 0")
    return value


ExitCodes = Sequence[tuple[int, str]]
_USAGE = (EXIT_UNUSABLE, "a command line that cannot be used")
_Commands: TypeAlias = "argparse._SubParsersAction[_CommandParser]"
ALL_COMMANDS = "*"  # build_parser's `only` for every command (no command is named so)


def _command(
    actions: _Commands,
    name: str,
    summary: str,
    description: str,
    exits: ExitCodes,
) -> _CommandParser:
    """A command with its one-line `summary` (in its parent's list), a `description` and its
    exit codes (in its own --help)."""
    import textwrap  # here: --version and a line naming no command build no command's parser

    lines = [f"  {code}  {meaning}" for code, meaning in exits]
    return actions.add_parser(
        name,
        help=summary,
        description=textwrap.fill(description, 88),  # the formatter keeps both as written
        epilog="exit codes:\n" + "\n".join(lines),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def _add_check(commands: _Commands) -> None:
    check = _command(
        commands,
        "check",
        "one sweep: a table (or JSON); exit 0 green, 1 amber, 2 red, 3 grey",
        "Read Tailscale here, probe every service of the topology once and print the "
        "result by node, with why each failure happened and what to do about it. The exit "
        "code follows the Nagios plugin convention, so it plugs into Nagios or Icinga.",
        [
            (0, "green: all good"),
            (1, "amber: degraded (a relayed or slow link, a degraded service down)"),
            (2, "red: Tailscale unusable here, an always-on peer offline, a critical service down"),
            (3, "grey: nothing could be judged, an unusable topology or command line"),
        ],
    )
    _add_sweep_options(check)
    check.add_argument("--json", action="store_true", help="print JSON instead of a table")
    check.add_argument(
        "--nagios",
        action="store_true",
        help="print one Nagios/Icinga plugin line with perfdata (docs/nagios.md)",
    )
    check.add_argument(
        "--target",
        metavar="NODE",
        help="with --nagios: judge only this node (--node still says which node this is)",
    )
    check.add_argument(
        "--service", metavar="NAME", help="with --nagios: judge only this service (by name)"
    )


def _add_audit(commands: _Commands) -> None:
    audit = _command(
        commands,
        "audit",
        "which services of this node listen beyond Tailscale, and the fix",
        "List this machine's listening sockets and judge each service of its node: exposed "
        "when it listens on an address other than loopback or this node's Tailscale IPs "
        "(0.0.0.0, :: or a LAN address), with the setting that binds it to the Tailscale IP. "
        'With access = "tailscale" a loopback listener is flagged too. Sends no traffic.',
        [
            (0, "nothing listens beyond what its access allows"),
            (1, "a service is exposed (or on loopback against access = tailscale)"),
            (EXIT_UNUSABLE, "this machine is no node, the sockets are unreadable, or bad input"),
        ],
    )
    _add_sweep_options(audit)
    audit.add_argument("--json", action="store_true", help="print JSON instead of text")


def _add_acl(commands: _Commands) -> None:
    acl = _command(
        commands,
        "acl",
        "a least-privilege Tailscale policy file (HuJSON) from the topology",
        "Print a Tailscale policy file for the topology: hosts aliases for the nodes, one "
        "grant per service group from its consumers (`consumers`, else every other node), and "
        "tests that Tailscale runs on save. Paste it into the admin console's Access controls.",
        [(0, "printed"), (EXIT_UNUSABLE, "the topology is missing or refused, or bad input")],
    )
    _add_topology_option(acl)
    acl.add_argument("--json", action="store_true", help="strict JSON (no comments)")


def _add_topology(commands: _Commands) -> None:
    topology = _command(
        commands,
        "topology",
        "validate or show the topology file",
        "The topology file: the network's nodes, their Tailscale IPs and their services.",
        [(0, "done"), (EXIT_UNUSABLE, "the file is missing or refused, or a bad command line")],
    )
    topology_commands = topology.add_subparsers(
        dest="topology_command", metavar="ACTION", required=True, parser_class=_CommandParser
    )
    validate = _command(
        topology_commands,
        "validate",
        "check a topology file",
        "Check a topology file before you hand it out: every problem is listed with the "
        "file, the line, the node or service and why. The file is PATH or --topology PATH "
        "(default: the one in use).",
        [(0, "the file is valid"), (EXIT_UNUSABLE, "refused or missing, or a bad command line")],
    )
    validate.add_argument("path", nargs="?", help="file to check (default: the one in use)")
    _add_topology_option(validate)
    show = _command(
        topology_commands,
        "show",
        "the topology in use and where it came from",
        "Print the topology in use (nodes, services, defaults) and which file it came from.",
        [(0, "shown"), (EXIT_UNUSABLE, "refused or missing, or a bad command line")],
    )
    _add_topology_option(show)


def _add_init(commands: _Commands) -> None:
    init = _command(
        commands,
        "init",
        "write a starter topology.toml from this machine's tailnet",
        "Write a starter topology from `tailscale status --json`: one node per machine "
        "(this one and its peers) with its hostname, Tailscale IP and OS, and commented "
        "service examples. --discover also CONNECTS TO EVERY ONLINE PEER over Tailscale to "
        "try a short list of well-known ports (Ollama 11434, ComfyUI 8188, Next.js 3000, "
        "FastAPI 8000, PostgreSQL 5432, Redis 6379, MinIO 9000 and 9001, and each --port) "
        "and adds the services that answer. An existing file is never replaced without "
        "--force.",
        [
            (0, "written"),
            (
                EXIT_UNUSABLE,
                "the file exists (no --force), Tailscale unreadable, or a bad command line",
            ),
        ],
    )
    init.add_argument(
        "path",
        nargs="?",
        metavar="PATH",
        help="where to write (default: topology.toml in the user config folder, where the "
        "agent looks)",
    )
    init.add_argument(
        "--discover",
        action="store_true",
        help="connect to the peers to find services on well-known ports (opt-in)",
    )
    init.add_argument(
        "--port",
        type=_port,
        action="append",
        default=[],
        metavar="N",
        help="with --discover, try this port too (repeat for more)",
    )
    init.add_argument("--force", action="store_true", help="replace an existing file")
    init.add_argument(
        "--tailscale",
        metavar="PATH",
        help=f"the tailscale CLI (default: ${TAILSCALE_ENV}, PATH, the standard install places)",
    )


def _add_run(commands: _Commands) -> None:
    run = _command(
        commands,
        "run",
        "the monitor; with --headless no tray (servers, tests): events to the log",
        "Run the monitor until stopped: sweeps on the topology's interval, notifications, "
        "the history. With --headless no tray: state and events go to the log (and the "
        "console); SIGINT or SIGTERM stop it cleanly.",
        [
            (0, "stopped cleanly (SIGINT, SIGTERM, or Quit in the tray)"),
            (1, "the monitor stopped on an unexpected error"),
            (
                EXIT_UNUSABLE,
                "already running, no tray possible here, a refused --metrics or a bad command line",
            ),
        ],
    )
    _add_sweep_options(run)
    _add_metrics_option(run)
    run.add_argument("--headless", action="store_true", help="no tray icon")
    _add_share_view_option(run)


def _add_tray(commands: _Commands) -> None:
    tray = _command(
        commands,
        "tray",
        "the tray icon and menu (the default command)",
        "The tray icon (green, amber, red, grey) and its menu, with the monitor behind it.",
        [
            (0, "quit from the menu, or stopped by SIGINT or SIGTERM"),
            (
                EXIT_UNUSABLE,
                "no display or tray, already running, a refused --metrics or a bad command line",
            ),
        ],
    )
    _add_sweep_options(tray)
    _add_metrics_option(tray)
    _add_share_view_option(tray)


def _add_demo(commands: _Commands) -> None:
    demo = _command(
        commands,
        "demo",
        "a simulated Sparklio network on loopback, watched by the real agent (try it first)",
        "Start stand-ins of the network's services on 127.0.0.x and a simulated Tailscale, "
        "and the real agent watching them, in a folder of its own (a real agent may run "
        "meanwhile). A scripted walk of about two minutes follows: all green, the desktop's "
        "link relayed through DERP, direct again, FastAPI down, back, the Mac mini offline, "
        "back, green. Nothing leaves this machine. With --headless (or where no tray can "
        "run) each step and notification is printed, and the demo ends with the walk.",
        [
            (0, "the walk is over (headless), or Quit in the tray, SIGINT or SIGTERM"),
            (1, "the monitor stopped on an unexpected error"),
            (
                EXIT_UNUSABLE,
                "a demo already runs, the stand-ins cannot start, or a bad command line",
            ),
        ],
    )
    demo.add_argument("--headless", action="store_true", help="no tray icon: print the walk")
    demo.add_argument(
        "--speed",
        type=_speed,
        default=1.0,
        metavar="X",
        help="play the walk X times faster (default 1: about two minutes)",
    )


def _add_history(commands: _Commands) -> None:
    history = _command(
        commands,
        "history",
        "events recorded by the monitor",
        "The events the monitor recorded (downs, recoveries, offline peers, relayed links), "
        "newest last.",
        [(0, "listed (also when there is nothing to list)"), _USAGE],
    )
    history.add_argument("--json", action="store_true", help="print JSON instead of a list")
    history.add_argument(
        "--since", default="24h", metavar="WHEN", help="how far back: 24h, 30m, 7d or a date"
    )


def _add_autostart(commands: _Commands) -> None:
    autostart = _command(
        commands,
        "autostart",
        "start the tray at login: enable, disable or status",
        "Start the tray at login, with the options it runs with: the Run key on Windows, a "
        "LaunchAgent on macOS, an XDG autostart entry on Linux.",
        [(0, "done"), (1, "status: disabled"), (EXIT_UNUSABLE, "unsupported here, or failed")],
    )
    autostart_actions = autostart.add_subparsers(
        dest="autostart_command", metavar="ACTION", required=True, parser_class=_CommandParser
    )
    enable = _command(
        autostart_actions,
        "enable",
        "start the tray at login, with these options; exit 0 when registered",
        "Register the tray to start at login with these options (the file and the node are "
        "checked first, so nothing fails at every login).",
        [(0, "registered"), (EXIT_UNUSABLE, "unsupported here, refused or failed")],
    )
    _add_sweep_options(enable)
    disable = _command(
        autostart_actions,
        "disable",
        "do not start at login any more; exit 0 when removed",
        "Remove the start-at-login entry (nothing registered is fine).",
        [(0, "nothing is registered any more"), (EXIT_UNUSABLE, "unsupported here, or failed")],
    )
    status = _command(
        autostart_actions,
        "status",
        "what is registered and where; exit 0 enabled, 1 disabled, 3 unsupported",
        "What is registered to start at login, where, and the command the OS will run.",
        [(0, "enabled"), (1, "disabled"), (EXIT_UNUSABLE, "unsupported here, or unreadable")],
    )
    for action in (enable, disable, status):
        action.add_argument("--json", action="store_true", help="print JSON instead of text")


_COMMANDS: dict[str, Callable[[_Commands], None]] = {
    "check": _add_check,
    "audit": _add_audit,
    "acl": _add_acl,
    "topology": _add_topology,
    "init": _add_init,
    "run": _add_run,
    "tray": _add_tray,
    "demo": _add_demo,
    "history": _add_history,
    "autostart": _add_autostart,
}
"""Each command and what adds its parser, in the order `--help` lists them."""


def build_parser(only: str | None = ALL_COMMANDS) -> argparse.ArgumentParser:
    """The command line's parser: every command's, or `only` this one's (None: no
    command's, for a command line that names none)."""
    parser = _Parser(
        prog="tailnet-agent",
        description="Watch a small Tailscale network: peers, links and services. "
        "With no command: the tray, so `tailnet-agent --topology P --node ID` (what start at "
        "login registers) starts it.",
    )
    parser.add_argument("--version", action="version", version=f"tailnet-agent {__version__}")
    _add_verbose(parser)
    # Before a command they count for the tray (no command) or for a command that takes them.
    _add_sweep_options(parser, _TOP)
    _add_metrics_option(parser, _TOP)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_CommandParser)
    for name, add in _COMMANDS.items():
        if only in (ALL_COMMANDS, name):
            add(commands)
    return parser


def _add_share_view_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--share-view",
        nargs="?",
        type=_port,
        const=SHARE_VIEW_PORT,
        default=None,
        metavar="PORT",
        help="share this node's view read-only on its own Tailscale IP and read the peers' "
        f"(default port {SHARE_VIEW_PORT}; docs/share-view.md)",
    )


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is out of range (1..65535)")
    return port


def _merge_top_level_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Fold `tailnet-agent --node ID COMMAND` into COMMAND's own --node (refused if it has
    none, or if it was given on both sides); with no command they are the tray's options."""
    for name in (*SWEEP_OPTIONS, *MONITOR_OPTIONS):
        value = getattr(args, f"{_TOP}{name}")
        delattr(args, f"{_TOP}{name}")
        if args.command is None:
            setattr(args, name, value)
            continue
        if value is None:
            continue
        where = " ".join(
            word for word in (args.command, getattr(args, f"{args.command}_command", None)) if word
        )
        if not hasattr(args, name):
            parser.error(f"--{name} does not go with `{where}`")
        if getattr(args, name) is not None:
            parser.error(f"--{name} given both before and after `{where}`")
        setattr(args, name, value)


def _use_color(stream: TextIO, env: os._Environ[str] | dict[str, str]) -> bool:
    if env.get("NO_COLOR"):
        return False
    return stream.isatty()


def _require_node(topology: Topology, node: str | None) -> None:
    """UsageError unless `--node` is absent or names a node of `topology`."""
    if node is not None and topology.node(node) is None:
        known = ", ".join(n.id for n in topology.nodes)
        raise UsageError(f"--node {node}: no such node in {topology.source} (known: {known})")


def _load_for_command(explicit: str | None) -> tuple[TopologyLocation, Topology]:
    """The topology in use for a one-shot command. A URL is asked once (a conditional
    request); when its source fails, the cached copy serves and a warning says so."""
    from agent.edges.topology_source import load_location, locate_topology

    location = locate_topology(explicit, os.environ)
    if location.url is not None:
        from agent.edges.topology_fetch import RemoteTopology  # httpx: only for a URL

        remote = RemoteTopology(location.url, location.path, refresh_s=location.refresh_s)
        remote.refresh()  # a failure is logged (on stderr): the cached copy serves
        warning = remote.warning()
        if warning is not None and not location.path.exists():
            raise TopologyError(location.source, warning.removeprefix(f"{location.source}: "))
    return location, load_location(location)


def _print_json(data: Any) -> None:
    """A --json answer: one whole write (json.dump writes each token, 27,000 writes at 500
    services), laid out by the one json_text."""
    from agent.core.report.json_text import json_text

    _write_out(json_text(data))


def _write_out(text: str) -> None:
    """Write all of `text` to stdout. Unbuffered (PYTHONUNBUFFERED, `python -u`), stdout is a
    raw file: a write to a full pipe that a signal interrupts returns short, and the text
    layer drops the rest (a `check --json` read slowly lost all but its first 64 KiB)."""
    out = sys.stdout
    buffer = getattr(out, "buffer", None)
    if buffer is None:  # a text stream without bytes under it (a test's StringIO)
        out.write(text)
        return
    out.flush()
    data = memoryview(text.encode(out.encoding or "utf-8", out.errors or "strict"))
    while data:
        data = data[buffer.write(data) or 0 :]
    buffer.flush()


def _check(args: argparse.Namespace) -> int:
    if (args.target is not None or args.service is not None) and not args.nagios:
        raise UsageError("--target and --service go with --nagios")
    if args.nagios and args.json:
        raise UsageError("choose one output: --nagios or --json")
    from agent.edges.tailscale import find_cli, start_status

    _, topology = _load_for_command(args.topology)
    _require_node(topology, args.node)
    if args.nagios:
        from agent.core.report.nagios import selection_error  # the plugin line: --nagios only

        if error := selection_error(topology, args.target, args.service):
            raise UsageError(error)
    cli = find_cli(args.tailscale, os.environ)
    # Asked before the probes are imported: the CLI (a Go program asking tailscaled)
    # answers meanwhile, instead of after. A refused command line never runs it.
    status = start_status(cli)
    try:
        return _check_with(args, topology, cli, status)
    finally:
        if status is not None:
            status.kill()  # a check that stopped before reading it leaves no CLI behind


def _check_with(
    args: argparse.Namespace, topology: Topology, cli: str | None, status: StartedChild | None
) -> int:
    # Imported here: the probes (and httpx) are loaded only by the command that probes, so
    # `--help`, `topology`, `history` and `autostart` start without them.
    from agent.core.first_run import first_run_words
    from agent.core.health import with_snoozes
    from agent.core.report.check import render_table, snapshot_to_dict
    from agent.core.snooze import active_keys
    from agent.edges import event_loop, paths
    from agent.edges.snooze_file import load_snoozes
    from agent.edges.topology_source import is_bundled_topology
    from agent.sweep import sweep

    probes = topology.service_count
    snapshot = event_loop.run(
        sweep(topology, tailscale_cli=cli, node_override=args.node, started_status=status),
        probes=probes,
    )
    # what the monitor snoozed (its state file) is shown as such and colours nothing
    snoozes = load_snoozes(paths.snooze_path())
    snoozes = {k: v for k, v in snoozes.items() if k in active_keys(snoozes, time.time())}
    snapshot = with_snoozes(snapshot, snoozes.keys())
    first_run = first_run_words(snapshot, bundled=is_bundled_topology(topology))
    # Without a running Tailscale, "Tailscale is not running here" (red) is this machine's
    # own problem, the news to give first; nothing of the example was probed either way.
    if first_run is not None and snapshot.tailnet.running:
        return _first_run_check(args, first_run, snapshot_to_dict(snapshot, snoozes=snoozes))
    if args.nagios:
        from agent.core.report.nagios import render_nagios

        result = render_nagios(snapshot, target=args.target, service=args.service)
        print(result.line)
        return result.exit_code
    if args.json:
        data = snapshot_to_dict(snapshot, snoozes=snoozes)
        _print_json(data)
    else:
        color = _use_color(sys.stdout, os.environ)
        _write_out(render_table(snapshot, color=color, snoozes=snoozes))
    return snapshot.overall.exit_code


def _first_run_check(args: argparse.Namespace, words: str, data: dict[str, Any]) -> int:
    """`check` on the bundled example where this machine is none of its nodes: nothing was
    probed, which says nothing of this network — grey, exit 3 (core.first_run)."""
    from agent.core.first_run import first_run_check
    from agent.core.model import Health

    verdict, instead = first_run_check(words)
    if args.nagios:
        from agent.core.report.nagios import nagios_unknown

        print(nagios_unknown(verdict).line)
    elif args.json:
        data.update(overall=Health.GREY.value, exit_code=Health.GREY.exit_code, summary=verdict)
        data["first_run"] = words
        _print_json(data)
    else:
        print(f"{data['topology']['name']}: {Health.GREY.value.upper()} — {verdict}")
        print(instead)
    return Health.GREY.exit_code


def _audit(args: argparse.Namespace) -> int:
    from agent.core.report.audit import audit_to_dict, render_audit
    from agent.edges import event_loop
    from agent.edges.tailscale import find_cli
    from agent.edges.topology_source import load_topology
    from agent.sweep import audit_here

    topology = load_topology(args.topology, os.environ)
    _require_node(topology, args.node)
    cli = find_cli(args.tailscale, os.environ)
    audit = event_loop.run(
        audit_here(topology, tailscale_cli=cli, node_override=args.node), probes=0
    )
    if args.json:
        _print_json(audit_to_dict(audit))
    else:
        _write_out(render_audit(audit, color=_use_color(sys.stdout, os.environ)))
    return audit.exit_code


def _acl(args: argparse.Namespace) -> int:
    from agent.core.acl import acl_policy, render_hujson
    from agent.edges.topology_source import load_topology

    topology = load_topology(args.topology, os.environ)
    acl = acl_policy(topology)
    if args.json:
        _print_json(acl.policy)
    else:
        _write_out(render_hujson(acl, topology))
    return 0


def _topology(args: argparse.Namespace) -> int:
    from agent.core.topology import describe_topology
    from agent.core.topology_url import topology_url
    from agent.edges.topology_source import load_topology

    if args.topology_command == "validate":
        if args.path is not None and args.topology is not None:
            raise UsageError(
                "give the file once: `topology validate PATH` or `--topology PATH`, not both"
            )
        given = args.path or args.topology
        url = topology_url(given, "the command line") if given else None
        if url is not None:  # fetched and checked, never cached: it is not in use yet
            from agent.edges.topology_fetch import fetch_document

            topology = fetch_document(url)
        elif given is None:
            _, topology = _load_for_command(None)
        else:
            topology = load_topology(given, {})
        services = topology.service_count
        print(f"OK: {topology.source}: {len(topology.nodes)} nodes, {services} services")
        return 0
    location, topology = _load_for_command(args.topology)
    if location.url is None:
        print(f"# from {location.origin}: {location.path}")
    else:
        print(f"# from {location.origin}: {location.source}")
        print(f"# {_cached_copy_line(location)}")
    print(describe_topology(topology))
    return 0


def _cached_copy_line(location: TopologyLocation) -> str:
    """ "cached copy: PATH, fetched 3 min ago, ETag "abc", last asked 10 s ago"."""
    from agent.core.figures import format_duration
    from agent.edges.topology_fetch import RemoteTopology

    copy = RemoteTopology(location.url or "", location.path).cached()
    if copy is None:
        return "no cached copy"
    now = time.time()
    etag = f"ETag {copy.etag}" if copy.etag else "no ETag"
    return (
        f"cached copy: {location.path}, fetched {format_duration(now - copy.fetched_at)} ago, "
        f"{etag}, last asked {format_duration(now - copy.checked_at)} ago"
    )


def _init(args: argparse.Namespace) -> int:
    from pathlib import Path

    from agent.edges import paths
    from agent.edges.tailscale import find_cli
    from agent.init import init_topology

    if args.port and not args.discover:
        raise UsageError("--port goes with --discover")
    path = Path(args.path) if args.path else paths.user_topology_path()
    cli = find_cli(args.tailscale, os.environ)
    result = init_topology(
        path,
        tailscale_cli=cli,
        discover_ports=args.port if args.discover else None,
        force=args.force,
    )
    me = next((n.id for n in result.nodes if n.is_self), None)
    services = sum(len(v) for v in (result.found or {}).values())
    found = f", {services} services found by --discover" if result.found is not None else ""
    print(
        f"Wrote {result.path}: {len(result.nodes)} nodes"
        + (f" (this machine: {me})" if me else "")
        + found
    )
    for line in (*result.skipped, *result.not_probed):
        print(f"  {line if line.startswith('Not probed') else 'Left out: ' + line}")
    print(
        "Share it: put this same file on every machine of the network, as topology.toml in "
        f"each one's config folder (here: {paths.config_dir()}), or start each agent with "
        "--topology PATH; every agent finds which node it is from Tailscale. Review the "
        f"always_on guesses and the services, then check it: tailnet-agent topology "
        f"validate {result.path}"
    )
    return 0


def _history(args: argparse.Namespace) -> int:
    from agent.core.report.history import history_to_json, render_history
    from agent.edges import history, paths

    now = time.time()
    since = history.parse_since(args.since, now)
    path = paths.history_path()
    if not path.exists():
        records = []
    else:
        with history.History(path) as store:
            records = store.events(since=since)
    if args.json:
        _print_json(history_to_json(records))
    else:
        color = _use_color(sys.stdout, os.environ)
        _write_out(render_history(records, color=color, since=since))
    return 0


def _agent_options(args: argparse.Namespace) -> AgentOptions:
    from agent.app import AgentOptions

    return AgentOptions(
        topology=getattr(args, "topology", None),
        node=getattr(args, "node", None),
        tailscale=getattr(args, "tailscale", None),
        metrics=getattr(args, "metrics", None),
        share_view=getattr(args, "share_view", None),
    )


def _started_at_login_while_running(error: AgentError) -> bool:
    from agent.desktop import autostart
    from agent.edges.single_instance import AlreadyRunning

    return isinstance(error, AlreadyRunning) and autostart.launched_at_login(os.environ)


def _print_autostart(state: AutostartState) -> None:
    from agent.desktop.autostart import format_command

    if not state.supported:
        print(f"Start at login: not supported here ({state.detail})")
        return
    print(f"Start at login: {'enabled' if state.enabled else 'disabled'}")
    print(f"  where:   {state.location}")
    if state.command is not None:
        print(f"  command: {format_command(state)}")
    if state.detail:
        print(f"  note:    {state.detail}")


def _autostart(args: argparse.Namespace) -> int:
    """enable / disable / status: exit 0 done or enabled, 1 disabled (status), 3 unsupported
    or failed (AutostartError, raised to main)."""
    from agent.desktop import autostart

    action = args.autostart_command
    if action == "enable":
        if args.topology is not None or args.node is not None:
            # Refuse now what would fail at every login: a missing file, an unknown node.
            _require_node(_load_for_command(args.topology)[1], args.node)
        command = autostart.login_command(
            topology=args.topology, node=args.node, tailscale=args.tailscale
        )
        state = autostart.enable(command)
    elif action == "disable":
        state = autostart.disable()
    else:
        state = autostart.status()
    if args.json:
        _print_json(state.to_dict())
    else:
        _print_autostart(state)
    if not state.supported:
        return EXIT_UNUSABLE
    if action == "status":
        return 0 if state.enabled else 1
    if action == "enable" and not state.enabled:  # written, but read back as off
        return EXIT_UNUSABLE
    return 0


def _command_named(argv: Sequence[str]) -> str | None:
    """The command `argv` names, for `build_parser(only=...)`: building every command's
    parser is most of the command line's cost (~8 ms of each start). Read by a parser of
    the top-level options alone, so an option's value is never taken for a command. None:
    it names none; ALL_COMMANDS when in doubt (a help flag, "--", an unknown command, a line
    that does not parse), so what argparse says about those stays what the whole parser says."""
    if any(_is_help_flag(word) or word == "--" for word in argv):
        return ALL_COMMANDS
    top = _PreParser(add_help=False)
    _add_verbose(top)
    _add_sweep_options(top, _TOP)
    _add_metrics_option(top, _TOP)
    top.add_argument("command", nargs="?")
    try:
        named: str | None = top.parse_known_args(argv)[0].command
    except _Unparsed:
        return ALL_COMMANDS
    return named if named is None or named in _COMMANDS else ALL_COMMANDS


def _is_help_flag(word: str) -> bool:
    """-h (alone or among short flags: -vh), or --help as argparse takes it (--he too)."""
    if word.startswith("--"):
        return len(word) > 2 and "--help".startswith(word)
    return word.startswith("-") and "h" in word


class _Unparsed(Exception):
    """A command line the top-level options alone do not parse."""


class _PreParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _Unparsed(message)


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(_command_named(argv))
    args = parser.parse_args(argv)
    _merge_top_level_options(parser, args)
    import logging  # after parsing: --help and --version load neither logging nor the edges

    from agent.edges import paths
    from agent.edges.logs import setup_logging

    try:
        if args.command in ("check", "audit", "acl", "topology", "init", "history", "autostart"):
            setup_logging(None, verbose=args.verbose)  # the console only: one-shot commands
        if args.command == "check":
            # One sweep, then the process ends: the cyclic collector would only spend time
            # (about 5 % of a 505-service check, walking the imports' and the sweep's objects)
            # to free little that the exit does not (peak RSS +0.4 MiB without it).
            gc.disable()
            try:
                return _check(args)
            finally:
                gc.enable()
        if args.command == "audit":
            return _audit(args)
        if args.command == "acl":
            return _acl(args)
        if args.command == "topology":
            return _topology(args)
        if args.command == "init":
            return _init(args)
        if args.command == "history":
            return _history(args)
        if args.command == "autostart":
            return _autostart(args)
        if args.command == "demo":
            from agent.demo.runner import demo_files, run_demo

            setup_logging(demo_files().log_dir, verbose=args.verbose, console_level=logging.INFO)
            return run_demo(headless=args.headless, speed=args.speed)
        # The monitor and the tray load only when used: `check` starts fast.
        from agent.app import run_headless, run_tray

        if args.command == "run" and args.headless:
            setup_logging(paths.log_dir(), verbose=args.verbose, console_level=logging.INFO)
            return run_headless(_agent_options(args))
        setup_logging(paths.log_dir(), verbose=args.verbose)
        return run_tray(_agent_options(args))
    except AgentError as error:
        if args.command in (None, "tray") and _started_at_login_while_running(error):
            # launchd started us (at login, or on `autostart enable`) while an agent runs: the
            # wanted state already, and exit 0 keeps KeepAlive from restarting us every 10 s.
            logging.getLogger("agent").info("%s; started at login: nothing to do", error.message)
            return 0
        if args.command == "check" and args.nagios:
            from agent.core.report.nagios import nagios_unknown

            print(nagios_unknown(error.message).line)  # Nagios reads stdout alone
            return EXIT_UNUSABLE
        if args.command in (None, "run", "tray", "demo"):
            # The log reaches the file too: a windowed build has no stderr.
            logging.getLogger("agent").error("%s", error.message)
        else:
            print(f"tailnet-agent: {error.message}", file=sys.stderr)
        return EXIT_UNUSABLE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `tailnet-agent history | head`: the reader left; say nothing more.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
