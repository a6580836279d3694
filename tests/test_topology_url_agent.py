"""The real agent (`run --headless`, then `check` and `topology show`) fed its topology over
HTTP by a loopback web server: it keeps working through the server going away, a bad
document being served, and a restart while the server is down."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import AgentSandbox
from tests.helpers.running_agent import running_agent
from tests.helpers.servers import http_server
from tests.helpers.topology_server import TopologyServer

DOC = """
version = 1
name = "{name}"

[defaults]
interval = "1s"
timeout = "1s"

[[nodes]]
id = "desktop"
name = "Desktop"
hostname = "sweetlife"
ip = "127.0.0.1"

  [[nodes.services]]
  name = "Web"
  port = {port}
  check = "http"
  path = "/"
"""


def _lines_after(text: str, marker: str) -> list[str]:
    return text[text.index(marker) :].splitlines()


def test_an_agent_fed_over_http_survives_outage_bad_document_and_restart(
    sandbox: AgentSandbox,
) -> None:
    sandbox.use_fake_tailscale("loopback_all_direct.json")
    config = Path(sandbox.env["XDG_CONFIG_HOME"]) / "tailnet-agent"
    config.mkdir(parents=True)
    (config / "config.toml").write_text('refresh = "1s"\n', encoding="utf-8")

    with http_server({"/": "ok"}) as (_, web_port):
        server = TopologyServer(DOC.format(name="Served v1", port=web_port))
        server.start()
        try:
            with running_agent(sandbox, server.url(), node=None) as agent:
                agent.wait_line("watching 'Served v1' from http://127.0.0.1")
                agent.wait_line("state green")

                # 1. the server goes away: the last good topology stays, the error is told
                server.stop()
                agent.wait_line("event topology_error")
                assert "cannot connect" in agent.said()
                assert agent.process.poll() is None
                assert not any(
                    "state grey" in line
                    for line in _lines_after(agent.said(), "event topology_error")
                )

                # 2. it comes back serving a bad document: refused, the copy stays
                server.serve(DOC.format(name="Served v1", port=web_port) + 'chek = "x"\n')
                server.start()
                agent.wait_line("the document served is refused")
                assert agent.process.poll() is None

                # 3. a good new document: accepted and watched
                server.serve(DOC.format(name="Served v2", port=web_port))
                agent.wait_line("watching 'Served v2'")
                agent.wait_line("event topology_fixed")
                etag = server.etag
        finally:
            server.stop()

        # 4. a restart while the server is down: the cached copy, at once
        with running_agent(sandbox, server.url(), node=None) as agent:
            agent.wait_line("state green")
            assert "watching 'Served v2' from http://127.0.0.1" in agent.said()
            # the source is asked on a thread of its own, beside the first sweep of the copy:
            # its failure may be logged before or after that sweep's green
            agent.wait_line("cannot connect")

        # a one-shot check uses the copy too, with one request that fails; show names it
        check = sandbox.run("check", "--topology", server.url())
        assert check.returncode == 0, check.stderr
        assert "cannot connect" in check.stderr
        show = sandbox.run("topology", "show", "--topology", server.url())
        assert show.returncode == 0, show.stderr
        assert f"# from --topology: {server.url()}" in show.stdout
        assert f"ETag {etag}" in show.stdout and "fetched" in show.stdout

        # back up: one conditional request per check, answered 304
        seen = len(server.requests)
        with server.running():
            check = sandbox.run("check", "--topology", server.url())
        assert check.returncode == 0, check.stderr
        assert len(server.requests) == seen + 1
        assert server.requests[-1]["if-none-match"] == etag
    assert sandbox.outside_connections() == []
