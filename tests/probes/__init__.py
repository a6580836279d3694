"""Tests of the service probes against real servers on loopback."""
