"""The tray's About notification: the version, the files in use, Tailscale's version."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from agent import __version__
from agent.app import AgentOptions, about_text
from agent.core.model import TailnetView, TailscaleProblem
from tests.core.test_menu import healthy


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    for name in ("TAILNET_AGENT_TOPOLOGY", "XDG_CONFIG_HOME", "XDG_STATE_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(home))
    return home


def test_about_under_home_reads_short(home: Path) -> None:
    topology = home / "nets" / "sparklio.toml"
    topology.parent.mkdir(parents=True)
    topology.write_text("version = 1\n", encoding="utf-8")
    snapshot = healthy()
    snapshot = replace(snapshot, tailnet=replace(snapshot.tailnet, version="1.76.1-tabc-gdef"))
    title, body = about_text(AgentOptions(topology=str(topology)), {}, snapshot, home=home)
    assert title == f"tailnet-agent {__version__}"
    assert body.splitlines() == [
        "Topology: ~/nets/sparklio.toml",
        "Log folder: ~/.local/state/tailnet-agent/log",
        "History: ~/.local/state/tailnet-agent/history.sqlite3",
        "Tailscale 1.76.1",
    ]


def test_about_with_the_bundled_topology_and_no_sweep_yet(home: Path) -> None:
    _, body = about_text(AgentOptions(), {}, None, home=home)
    assert body.splitlines()[0] == (
        "Topology: the bundled default (Open topology file makes your own copy)"
    )
    assert len(body.splitlines()) == 3  # Tailscale's version is not known yet: no line


def test_about_says_when_tailscale_is_missing(home: Path) -> None:
    missing = TailnetView(problem=TailscaleProblem.NOT_INSTALLED)
    _, body = about_text(AgentOptions(), {}, replace(healthy(), tailnet=missing), home=home)
    assert body.splitlines()[-1] == "Tailscale: not found on this machine"


def test_about_names_a_topology_that_went_missing(home: Path) -> None:
    gone = home / "gone.toml"
    _, body = about_text(AgentOptions(topology=str(gone)), {}, None, home=home)
    first = body.splitlines()[0]
    assert first.startswith("Topology: ") and "gone.toml" in first
