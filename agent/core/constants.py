"""The few names and numbers the command line shows before anything else is loaded.

`tailnet-agent --help` and `--version` import only argparse and this package's light
modules (tests/test_cli_startup.py): the parser's help and defaults take these from here,
and their owners (agent.edges.tailscale, agent.core.share_view, agent.core.model's
Health.GREY.exit_code) use the same values.
"""

from __future__ import annotations

__all__ = ["EXIT_UNKNOWN", "SHARE_VIEW_PORT", "TAILSCALE_ENV"]

EXIT_UNKNOWN = 3  # the Nagios plugin convention's UNKNOWN: grey, or input that cannot be used
TAILSCALE_ENV = "TAILNET_AGENT_TAILSCALE"  # the tailscale CLI to run, when set
SHARE_VIEW_PORT = 41746  # the default port of the view endpoint (--share-view)
