"""tailnet-agent: watches a small Tailscale network from the system tray."""

import sys as _sys
from typing import Final

__all__ = ["APP_ID", "APP_NAME", "CLI_EXECUTABLE", "GUI_EXECUTABLE", "__version__"]

# The one place: pyproject.toml, build.spec, About and the installer scripts read this line as is.
__version__ = "0.1.0"

# The product's names, decided once and never changed.
APP_NAME: Final = "tailnet-agent"  # folders, the Run value, the .desktop file, notifications
# Reverse-DNS identity: the macOS bundle identifier (which notifications and signing key on),
# the LaunchAgent label, and the Windows named mutex that the installer's AppMutex waits for.
APP_ID: Final = "io.github.tailnet-agent"
# The two executables of a frozen build, side by side in one folder (like Tailscale's
# tailscale-ipn.exe and tailscale.exe): the windowed tray and its console twin.
GUI_EXECUTABLE: Final = "tailnet-agent"
CLI_EXECUTABLE: Final = "tailnet-agent-cli"

# httpx imports its own command line (httpx._main: click, rich and pygments, ~40 ms and
# 8 MiB) whenever those happen to be installed; the agent never runs it. A None entry makes
# that optional import fail at once, as it does where they are not installed.
_sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
