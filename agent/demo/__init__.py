"""`tailnet-agent demo`: the Sparklio network simulated on loopback, watched by the real agent.

    standins  the stand-in services (Ollama, ComfyUI, FastAPI, PostgreSQL, Redis, MinIO,
              Next.js) answering in the real programs' shapes on 127.0.0.x
    network   the simulated network: its loopback addresses, the topology made from the
              bundled default, and `tailscale status --json` in Tailscale's own format
    walk      the scripted walk (all green, DERP, FastAPI down, Mac mini offline, green)
    runner    puts them together around the real agent (monitor, tray or log, notifier,
              history) with its files in a folder of its own

A layer between the command line and the agent's wiring: the agent itself never knows it
watches a demo; it is handed a topology file, a Tailscale reader and a folder.
"""

__all__: list[str] = []
