"""Service probes (edge): one async probe per check kind, run concurrently."""
