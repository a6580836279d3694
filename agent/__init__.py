"""tailnet-agent: watches a small Tailscale network from the system tray."""

__version__ = "0.1.0"
__all__ = ["__version__"]
