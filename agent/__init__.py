"""tailnet-agent: watches a small Tailscale network from the system tray."""

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
