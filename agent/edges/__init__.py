"""The edges that are not the desktop: everything that touches the world beyond the pure core.

    probes/           reach one service (TCP, HTTP, WebSocket, Redis, PostgreSQL) and record facts
    tailscale         run `tailscale status --json` and hand its text to core.tailnet
    topology_source   find the topology file (user, bundled or --topology) and load it
    history           the SQLite record of events and sweeps
    paths             where files go (platformdirs) and the bundled resources
    logs              the rotating log file
    single_instance   one agent per user (a lock file; a named mutex on Windows)
    stop_signals      SIGINT/SIGTERM turned into a clean stop
    event_loop        the event loop sweeps run on (uvloop from enough probes), gc.freeze once
    metrics           the opt-in Prometheus endpoint (prometheus-client), GET only

Each edge imports the core (and agent.errors), never another edge (paths aside: where files
go is one shared fact); import-linter checks it (pyproject.toml, [tool.importlinter]).
"""
