"""The command line: `tailnet-agent [check|run|tray|topology|history] ...`.

Plain `tailnet-agent` starts the tray; where no display or tray can run it says
so and how to run headless.

Parses arguments, wires the edges together and maps outcomes to exit codes:
0 green, 1 amber, 2 red, 3 grey or unusable input (the Nagios plugin
convention). Usage errors exit 3 too, so a monitoring system never reads a bad
command line as "critical".
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, NoReturn, TextIO

from agent import __version__, paths
from agent.core.model import Health
from agent.core.report import render_table, snapshot_to_dict
from agent.core.topology import describe_topology
from agent.errors import AgentError, UsageError
from agent.logs import setup_logging
from agent.sweep import run, sweep
from agent.tailscale import TAILSCALE_ENV, find_cli
from agent.topology_source import load_topology, locate_topology

if TYPE_CHECKING:
    from agent.app import AgentOptions

__all__ = ["build_parser", "main"]

EXIT_UNUSABLE = Health.GREY.exit_code


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_UNUSABLE, f"{self.prog}: error: {message}\n")


def _add_topology_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--topology",
        metavar="PATH",
        help="topology file (default: $TAILNET_AGENT_TOPOLOGY, the user config, "
        "else the bundled default)",
    )


def _add_sweep_options(parser: argparse.ArgumentParser) -> None:
    _add_topology_option(parser)
    parser.add_argument(
        "--node", metavar="ID", help="which topology node this machine is (default: ask Tailscale)"
    )
    parser.add_argument(
        "--tailscale",
        metavar="PATH",
        help=f"the tailscale CLI (default: ${TAILSCALE_ENV}, PATH, the standard install places)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="tailnet-agent",
        description="Watch a small Tailscale network: peers, links and services.",
    )
    parser.add_argument("--version", action="version", version=f"tailnet-agent {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging on stderr")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    check = commands.add_parser(
        "check", help="one sweep: a table (or JSON); exit 0 green, 1 amber, 2 red, 3 grey"
    )
    _add_sweep_options(check)
    check.add_argument("--json", action="store_true", help="print JSON instead of a table")

    topology = commands.add_parser("topology", help="validate or show the topology file")
    topology_commands = topology.add_subparsers(
        dest="topology_command", metavar="ACTION", required=True, parser_class=_Parser
    )
    validate = topology_commands.add_parser("validate", help="check a topology file")
    validate.add_argument("path", nargs="?", help="file to check (default: the one in use)")
    show = topology_commands.add_parser("show", help="the topology in use and where it came from")
    _add_topology_option(show)

    run = commands.add_parser(
        "run", help="the monitor; with --headless no tray (servers, tests): events to the log"
    )
    _add_sweep_options(run)
    run.add_argument("--headless", action="store_true", help="no tray icon")

    tray = commands.add_parser("tray", help="the tray icon and menu (the default command)")
    _add_sweep_options(tray)

    history = commands.add_parser("history", help="events recorded by the monitor")
    history.add_argument("--json", action="store_true", help="print JSON instead of a list")
    history.add_argument(
        "--since", default="24h", metavar="WHEN", help="how far back: 24h, 30m, 7d or a date"
    )
    return parser


def _use_color(stream: TextIO, env: os._Environ[str] | dict[str, str]) -> bool:
    if env.get("NO_COLOR"):
        return False
    return stream.isatty()


def _check(args: argparse.Namespace) -> int:
    topology = load_topology(args.topology, os.environ)
    if args.node is not None and topology.node(args.node) is None:
        known = ", ".join(n.id for n in topology.nodes)
        raise UsageError(f"--node {args.node}: no such node in {topology.source} (known: {known})")
    cli = find_cli(args.tailscale, os.environ)
    probes = sum(len(node.services) for node in topology.nodes)
    snapshot = run(sweep(topology, tailscale_cli=cli, node_override=args.node), probes=probes)
    if args.json:
        json.dump(snapshot_to_dict(snapshot), sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render_table(snapshot, color=_use_color(sys.stdout, os.environ)))
    return snapshot.overall.exit_code


def _topology(args: argparse.Namespace) -> int:
    if args.topology_command == "validate":
        if args.path is None:
            topology = load_topology(None, os.environ)
        else:
            topology = load_topology(args.path, {})
        services = sum(len(n.services) for n in topology.nodes)
        print(f"OK: {topology.source}: {len(topology.nodes)} nodes, {services} services")
        return 0
    location = locate_topology(args.topology, os.environ)
    topology = load_topology(args.topology, os.environ)
    print(f"# from {location.origin}: {location.path}")
    print(describe_topology(topology))
    return 0


def _history(args: argparse.Namespace) -> int:
    from agent import history

    now = time.time()
    since = history.parse_since(args.since, now)
    path = paths.history_path()
    if not path.exists():
        records = []
    else:
        with history.History(path) as store:
            records = store.events(since=since)
    if args.json:
        json.dump(history.history_to_json(records), sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    else:
        color = _use_color(sys.stdout, os.environ)
        sys.stdout.write(history.render_history(records, color=color, since=since))
    return 0


def _agent_options(args: argparse.Namespace) -> AgentOptions:
    from agent.app import AgentOptions

    return AgentOptions(
        topology=getattr(args, "topology", None),
        node=getattr(args, "node", None),
        tailscale=getattr(args, "tailscale", None),
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "check":
            setup_logging(None, verbose=args.verbose)
            return _check(args)
        if args.command == "topology":
            return _topology(args)
        if args.command == "history":
            return _history(args)
        # The monitor and the tray load only when used: `check` starts fast.
        from agent.app import run_headless, run_tray

        if args.command == "run" and args.headless:
            setup_logging(paths.log_dir(), verbose=args.verbose, console_level=logging.INFO)
            return run_headless(_agent_options(args))
        setup_logging(paths.log_dir(), verbose=args.verbose)
        return run_tray(_agent_options(args))
    except AgentError as error:
        if args.command in (None, "run", "tray"):
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
