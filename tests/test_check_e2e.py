"""End to end: the installed `tailnet-agent check` over a loopback copy of the Sparklio network.

The network is real: an HTTP "FastAPI", a real Redis and a real PostgreSQL on
127.0.0.3 (the Mac mini), an HTTP "Ollama" on 127.0.0.1 (this machine, the
desktop), a "Next.js" on 127.0.0.2 (the laptop). Tailscale is the stand-in
executable printing recorded-format JSON whose IPs are those loopback addresses.
Every run checks that the agent tried no address outside loopback.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.core.snooze import Snooze, SnoozeKind
from agent.edges import paths
from agent.edges.snooze_file import save_snoozes
from tests.conftest import FAKE_TAILSCALE_DIR, AgentSandbox
from tests.helpers.servers import (
    black_hole,
    closed_port,
    http_server,
    postgres_server,
    redis_server,
)

DESKTOP, LAPTOP, MACMINI = "127.0.0.1", "127.0.0.2", "127.0.0.3"


def topology_text(ports: dict[str, int], *, timeout: str = "1s") -> str:
    return f"""
version = 1
name = "Sparklio (loopback)"

[defaults]
timeout = "{timeout}"

[[nodes]]
id = "desktop"
name = "Desktop — GPU Worker"
hostname = "sweetlife"
ip = "{DESKTOP}"
os = "windows"

  [[nodes.services]]
  name = "Ollama"
  port = {ports["ollama"]}
  check = "http"
  path = "/api/tags"

[[nodes]]
id = "laptop"
name = "Laptop — Frontend Dev"
hostname = "desktop-ecmkau8"
ip = "{LAPTOP}"
os = "windows"
always_on = false

  [[nodes.services]]
  name = "Next.js"
  port = {ports["next"]}
  check = "http"
  impact = "info"

[[nodes]]
id = "macmini"
name = "Mac mini — Backend Server"
hostname = "woosuns-mac-mini"
ip = "{MACMINI}"
os = "macos"

  [[nodes.services]]
  name = "FastAPI"
  port = {ports["fastapi"]}
  check = "http"
  path = "/health"
  expect_body = "ok"
  impact = "critical"

  [[nodes.services]]
  name = "PostgreSQL"
  port = {ports["postgres"]}
  check = "postgres"
  impact = "critical"

  [[nodes.services]]
  name = "Redis"
  port = {ports["redis"]}
  check = "redis"
"""


@contextlib.contextmanager
def loopback_network(*, fastapi_up: bool = True) -> Iterator[dict[str, int]]:
    with contextlib.ExitStack() as stack:
        ports = {
            "ollama": stack.enter_context(http_server({"/api/tags": '{"models":[]}'}, DESKTOP))[1],
            "next": stack.enter_context(http_server({"/": "<html>"}, LAPTOP))[1],
            "postgres": stack.enter_context(postgres_server(MACMINI))[1],
            "redis": stack.enter_context(redis_server(host=MACMINI))[1],
        }
        if fastapi_up:
            ports["fastapi"] = stack.enter_context(
                http_server({"/health": '{"status":"ok"}'}, MACMINI)
            )[1]
        else:
            ports["fastapi"] = closed_port(MACMINI)
        yield ports


def write_topology(sandbox: AgentSandbox, ports: dict[str, int], **kw: str) -> Path:
    path = sandbox.root / "topology.toml"
    path.write_text(topology_text(ports, **kw), encoding="utf-8")
    return path


def check_json(sandbox: AgentSandbox, *args: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    done = sandbox.run("check", "--json", *args)
    assert done.stdout, done.stderr
    return done.returncode, json.loads(done.stdout)


def by_id(data: dict) -> dict[str, dict]:  # type: ignore[type-arg]
    return {n["id"]: n for n in data["nodes"]}


def test_all_up_and_direct_is_green(sandbox: AgentSandbox) -> None:
    sandbox.use_fake_tailscale("loopback_all_direct.json")
    with loopback_network() as ports:
        code, data = check_json(sandbox, "--topology", str(write_topology(sandbox, ports)))
    assert (code, data["overall"]) == (0, "green"), data["summary"]
    nodes = by_id(data)
    assert data["self_node"] == "desktop"
    assert [nodes[i]["link"] for i in ("desktop", "laptop", "macmini")] == [
        "self", "direct", "direct",
    ]  # fmt: skip
    states = {(n, s["name"]): s["state"] for n, node in nodes.items() for s in node["services"]}
    assert set(states.values()) == {"up"}, states
    assert len(states) == 5
    assert nodes["macmini"]["latency_ms"] is not None
    assert sandbox.outside_connections() == []
    calls = (sandbox.root / "fake-tailscale.log").read_text().splitlines()
    # One status, then one ping of each online peer (at its Tailscale IP), in any order.
    assert json.loads(calls[0]) == ["status", "--json"]
    pings = sorted(json.loads(c) for c in calls[1:])
    ping = ["ping", "--c", "1", "--timeout", "1s", "--until-direct=false"]
    assert pings == [[*ping, "127.0.0.2"], [*ping, "127.0.0.3"]]


def test_backend_down_is_red_with_the_reason(sandbox: AgentSandbox) -> None:
    sandbox.use_fake_tailscale("loopback_all_direct.json")
    with loopback_network(fastapi_up=False) as ports:
        code, data = check_json(sandbox, "--topology", str(write_topology(sandbox, ports)))
    assert (code, data["overall"]) == (2, "red")
    fastapi = by_id(data)["macmini"]["services"][0]
    assert (fastapi["name"], fastapi["state"], fastapi["reason"]) == ("FastAPI", "down", "refused")
    assert data["summary"].startswith("Mac mini: FastAPI down — connection refused")
    assert sandbox.outside_connections() == []


def test_relayed_link_is_amber_and_names_the_region(sandbox: AgentSandbox) -> None:
    sandbox.use_fake_tailscale("loopback_mac_relayed.json")
    with loopback_network() as ports:
        code, data = check_json(sandbox, "--topology", str(write_topology(sandbox, ports)))
    mac = by_id(data)["macmini"]
    assert (code, data["overall"], mac["link"], mac["relay"]) == (1, "amber", "relay", "tok")


def test_table_output_reads_by_node(sandbox: AgentSandbox) -> None:
    sandbox.use_fake_tailscale("loopback_all_direct.json")
    with loopback_network(fastapi_up=False) as ports:
        done = sandbox.run("check", "--topology", str(write_topology(sandbox, ports)))
    assert done.returncode == 2
    lines = done.stdout.splitlines()
    assert lines[0].startswith("Sparklio (loopback): RED — Mac mini: FastAPI down")
    mac_at = next(i for i, line in enumerate(lines) if line.startswith("[red] macmini"))
    assert "FastAPI" in lines[mac_at + 1] and "refused" in lines[mac_at + 1]
    assert "\x1b[" not in done.stdout  # NO_COLOR, and not a terminal


def test_python_dash_m_agent_works_too(sandbox: AgentSandbox) -> None:
    sandbox.use_fake_tailscale("loopback_all_direct.json")
    with loopback_network() as ports:
        done = sandbox.run(
            "check", "--json", "--topology", str(write_topology(sandbox, ports)), module=True
        )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["overall"] == "green"


@pytest.mark.parametrize("extra", [[], ["--node", "desktop"]], ids=["auto", "node-given"])
def test_no_tailscale_installed_is_red_and_probes_nothing(
    sandbox: AgentSandbox, extra: list[str]
) -> None:
    """The bundled default names real people's 100.x machines: nothing may be sent there."""
    code, data = check_json(sandbox, *extra)
    assert (code, data["overall"]) == (2, "red")
    assert data["tailscale"]["problem"] == "not_installed"
    assert "not installed" in data["summary"]
    states = {s["state"] for n in data["nodes"] for s in n["services"] if not n["is_self"]}
    assert states == {"skipped"}
    assert sandbox.outside_connections() == []


@pytest.mark.parametrize(
    ("mode", "problem"),
    [("fail", "cli_failed"), ("garbage", "bad_output")],
)
def test_broken_tailscale_is_red_not_a_crash(
    sandbox: AgentSandbox, mode: str, problem: str
) -> None:
    sandbox.use_fake_tailscale("loopback_all_direct.json", mode=mode)
    code, data = check_json(sandbox)
    assert (code, data["tailscale"]["problem"]) == (2, problem)
    assert sandbox.outside_connections() == []


def test_stopped_tailscale_says_tailscale_up(sandbox: AgentSandbox) -> None:
    sandbox.use_fake_tailscale("stopped.json")
    done = sandbox.run("check")
    assert done.returncode == 2
    assert "tailscale up" in done.stdout
    assert sandbox.outside_connections() == []


def test_bad_topology_exits_3_naming_file_line_and_key(sandbox: AgentSandbox) -> None:
    path = sandbox.root / "bad.toml"
    path.write_text(
        'version = 1\n[[nodes]]\nid = "a"\nhostname = "a"\nip = "127.0.0.1"\n'
        '  [[nodes.services]]\n  name = "x"\n  port = 80\n  chek = "http"\n',
        encoding="utf-8",
    )
    done = sandbox.run("check", "--topology", str(path))
    assert done.returncode == 3
    assert f"{path}:9" in done.stderr and "chek" in done.stderr and "check" in done.stderr
    # One typo, one problem: named by its service, with the fix; not also "check missing".
    assert done.stderr == (
        f"tailnet-agent: {path}:9: x on a: unknown key 'chek' — did you mean 'check'?\n"
    )
    validate = sandbox.run("topology", "validate", str(path))
    assert validate.returncode == 3 and "chek" in validate.stderr


def test_unknown_node_and_bad_arguments_exit_3(sandbox: AgentSandbox) -> None:
    done = sandbox.run("check", "--node", "nope")
    assert done.returncode == 3 and "no such node" in done.stderr and "macmini" in done.stderr
    assert sandbox.run("check", "--bogus").returncode == 3


def test_topology_show_and_validate_the_bundled_default(sandbox: AgentSandbox) -> None:
    show = sandbox.run("topology", "show")
    assert show.returncode == 0, show.stderr
    assert "bundled default" in show.stdout and "woosuns-mac-mini" in show.stdout
    validate = sandbox.run("topology", "validate")
    assert validate.returncode == 0 and validate.stdout.startswith("OK:")


def _cells(text: str) -> int:
    """Display cells, independently of agent.core.cells: W/F are 2, combining marks 0."""
    import unicodedata

    return sum(
        0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1
        for c in text
    )


WIDE_TOPOLOGY = """
version = 1
name = "스파클리오"

[[nodes]]
id = "macmini"
name = "맥 미니 — 백엔드"
hostname = "woosuns-mac-mini"
ip = "127.0.0.3"

  [[nodes.services]]
  name = "데이터베이스"
  port = {db}
  check = "tcp"

  [[nodes.services]]
  name = "API"
  port = {api}
  check = "tcp"

  [[nodes.services]]
  name = "Cafe\u0301 캐시"
  port = {cache}
  check = "tcp"
"""


def test_check_and_topology_show_columns_line_up_with_hangul_names(sandbox: AgentSandbox) -> None:
    """Widths are display cells: a Hangul syllable takes two, a combining accent none."""
    sandbox.use_fake_tailscale("loopback_all_direct.json")
    ports = {"db": closed_port(MACMINI), "api": closed_port(MACMINI), "cache": closed_port(MACMINI)}
    path = sandbox.root / "wide.toml"
    path.write_text(WIDE_TOPOLOGY.format(**ports), encoding="utf-8")
    done = sandbox.run("check", "--topology", str(path), "--node", "macmini")
    assert done.returncode == 1, done.stderr  # amber: degraded services down
    head = done.stdout.splitlines()[0]  # what is down, said: no "(+2 more)"
    assert head == "스파클리오: AMBER — 맥 미니: 데이터베이스, API and Cafe\u0301 캐시 down", head
    rows = [line for line in done.stdout.splitlines() if line.startswith("    ✗ ")]
    assert len(rows) == 3, done.stdout
    # Every column starts at the same cell: the port's last digit, the check kind, the state.
    for word in ("tcp", "down"):
        starts = {_cells(row[: row.index(f" {word} ") + 1]) for row in rows}
        assert len(starts) == 1, (word, done.stdout)
    ends = {_cells(row[: row.index(str(port)) + len(str(port))]) for row, port in
            zip(rows, ports.values(), strict=True)}  # fmt: skip
    assert len(ends) == 1, done.stdout

    show = sandbox.run("topology", "show", "--topology", str(path))
    assert show.returncode == 0, show.stderr
    rows = [line for line in show.stdout.splitlines() if " port " in line]
    assert len(rows) == 3, show.stdout
    for word in ("port", "tcp", "degraded", "access"):
        starts = {_cells(row[: row.index(f"{word} ")]) for row in rows}
        assert len(starts) == 1, (word, show.stdout)


# ==== one hint per situation ==================================================


def test_no_tailscale_says_where_to_get_it_and_nothing_contradicts_it(
    sandbox: AgentSandbox,
) -> None:
    """Not installed: the download link, once; no `tailscale up`, no "not running", no
    --node (which node this is cannot be the problem while Tailscale is missing)."""
    done = sandbox.run("check")
    assert done.returncode == 2, done.stderr
    out = done.stdout
    assert out.splitlines()[0].startswith("Sparklio: RED — Tailscale is not installed here")
    assert out.count("https://tailscale.com/download") == 1, out
    for wrong in ("tailscale up", "not running", "--node"):
        assert wrong not in out, (wrong, out)
    rows = [line for line in out.splitlines() if line.startswith("    - ")]
    assert len(rows) == 8 and all(row.endswith("Tailscale is not installed here") for row in rows)
    data = json.loads(sandbox.run("check", "--json").stdout)
    assert "https://tailscale.com/download" in data["summary"]
    assert "tailscale up" not in data["summary"]


def test_a_machine_missing_from_the_topology_is_told_about_node(sandbox: AgentSandbox) -> None:
    sandbox.use_fake_tailscale("loopback_all_direct.json")
    with loopback_network() as ports:
        text = topology_text(ports).replace('ip = "127.0.0.1"', 'ip = "127.0.0.9"')
        path = sandbox.root / "topology.toml"
        path.write_text(text.replace('hostname = "sweetlife"', 'hostname = "other"'), "utf-8")
        done = sandbox.run("check", "--topology", str(path))
    assert "this machine: unknown" in done.stdout and "--node ID" in done.stdout, done.stdout


def test_garbage_from_tailscale_reads_as_words_not_a_python_error(sandbox: AgentSandbox) -> None:
    sandbox.use_fake_tailscale("loopback_all_direct.json", mode="garbage")
    done = sandbox.run("check")
    assert done.returncode == 2
    head = done.stdout.splitlines()[0]
    assert "not JSON" in head and "Tailscale is stopped." in head, head
    for python in ("Expecting value", "line 1 column 1", "char 0"):
        assert python not in done.stdout, done.stdout
    assert "tailscale up" not in done.stdout


def test_a_service_that_accepts_and_never_answers_hangs_it_is_no_firewall(
    sandbox: AgentSandbox,
) -> None:
    """The host took the connection: it is reachable, the service hangs. A connect that
    never completes is the firewall-or-unreachable case."""
    sandbox.use_fake_tailscale("loopback_all_direct.json")
    with (
        black_hole(MACMINI) as (_, silent_http),
        black_hole(MACMINI) as (_, silent_redis),
        black_hole(MACMINI, handshake=False) as (_, dropped),
    ):
        path = sandbox.root / "topology.toml"
        path.write_text(
            'version = 1\n[defaults]\ntimeout = "0.5s"\n'
            '[[nodes]]\nid = "macmini"\nhostname = "woosuns-mac-mini"\nip = "127.0.0.3"\n'
            f'[[nodes.services]]\nname = "FastAPI"\nport = {silent_http}\ncheck = "http"\n'
            f'[[nodes.services]]\nname = "Redis"\nport = {silent_redis}\ncheck = "redis"\n'
            f'[[nodes.services]]\nname = "MinIO"\nport = {dropped}\ncheck = "http"\n',
            encoding="utf-8",
        )
        _, data = check_json(sandbox, "--topology", str(path))
        table = sandbox.run("check", "--topology", str(path)).stdout
    services = {s["name"]: s for s in data["nodes"][0]["services"]}
    for name in ("FastAPI", "Redis"):
        assert services[name]["reason"] == "no_answer", services[name]
        assert services[name]["detail"] == "connected, but no answer within 0.5 s"
    assert (services["MinIO"]["reason"], services["MinIO"]["detail"]) == (
        "timeout", "no answer within 0.5 s",
    )  # fmt: skip
    rows = {line.split()[1]: line for line in table.splitlines() if line.startswith("    ✗ ")}
    for name in ("FastAPI", "Redis"):
        assert "the service hangs" in rows[name] and "firewall" not in rows[name], table
    assert "firewall" in rows["MinIO"], table


# ==== -v: what the agent does ==================================================


@pytest.mark.parametrize("where", ["before", "after"])
def test_verbose_check_logs_topology_node_tailscale_and_every_probe(
    sandbox: AgentSandbox, where: str
) -> None:
    sandbox.use_fake_tailscale("loopback_all_direct.json")
    with loopback_network(fastapi_up=False) as ports:
        topo = write_topology(sandbox, ports)
        check = ["check", "--topology", str(topo)]
        done = sandbox.run(*(["-v", *check] if where == "before" else [*check, "--verbose"]))
    assert done.returncode == 2, done.stderr
    assert done.stdout.startswith("Sparklio (loopback): RED")  # the table is unchanged
    debug = [line for line in done.stderr.splitlines() if line.startswith("DEBUG ")]
    text = "\n".join(debug)
    assert f"topology 'Sparklio (loopback)' from --topology: {topo}" in text, text
    assert "this machine is node desktop (its Tailscale IP 127.0.0.1)" in text, text
    ran = next(line for line in debug if "status --json" in line)
    assert str(FAKE_TAILSCALE_DIR / "tailscale") in ran and "exit 0" in ran and " ms" in ran
    probes = [line for line in debug if " probe " in line]
    assert len(probes) == 5, text
    for node, name, outcome in [
        ("desktop", "Ollama", "up"), ("laptop", "Next.js", "up"), ("macmini", "FastAPI", "down"),
        ("macmini", "PostgreSQL", "up"), ("macmini", "Redis", "up"),
    ]:  # fmt: skip
        line = next(p for p in probes if f" {node}/{name} " in p)
        assert f": {outcome} in " in line and " ms" in line, line
    assert "connection refused" in next(p for p in probes if "FastAPI" in p)


def test_without_verbose_check_logs_nothing(sandbox: AgentSandbox) -> None:
    sandbox.use_fake_tailscale("loopback_all_direct.json")
    with loopback_network() as ports:
        done = sandbox.run("check", "--topology", str(write_topology(sandbox, ports)))
    assert (done.returncode, done.stderr) == (0, "")


@pytest.mark.parametrize(
    "args",
    [["topology", "show", "-v"], ["topology", "validate", "-v"], ["-v", "topology", "show"],
     ["history", "-v"], ["check", "--json", "-v"]],
    ids=["show-after", "validate-after", "show-before", "history", "check-json"],
)  # fmt: skip
def test_verbose_is_accepted_anywhere(sandbox: AgentSandbox, args: list[str]) -> None:
    done = sandbox.run(*args)
    assert done.returncode in (0, 2), done.stderr
    assert "unrecognized arguments" not in done.stderr
    if "topology" in args:
        assert "DEBUG agent.edges.topology_source: topology 'Sparklio' from bundled default" in (
            done.stderr
        )


def _snooze_file(sandbox: AgentSandbox, monkeypatch: pytest.MonkeyPatch, *entries: Snooze) -> None:
    """Write the monitor's state file where the sandboxed agent looks for it."""
    monkeypatch.setenv("XDG_STATE_HOME", sandbox.env["XDG_STATE_HOME"])
    save_snoozes(paths.snooze_path(), {e.key: e for e in entries})


def test_a_snoozed_service_is_shown_as_such_and_its_colour_does_not_count(
    sandbox: AgentSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox.use_fake_tailscale("loopback_all_direct.json")
    now = time.time()
    _snooze_file(
        sandbox, monkeypatch, Snooze("macmini", "FastAPI", SnoozeKind.UNTIL_BACK, now, None)
    )
    with loopback_network(fastapi_up=False) as ports:
        topology = str(write_topology(sandbox, ports))
        code, data = check_json(sandbox, "--topology", topology)
        table = sandbox.run("check", "--topology", topology).stdout
    assert (code, data["overall"]) == (0, "green"), data["summary"]
    fastapi = by_id(data)["macmini"]["services"][0]
    assert (fastapi["state"], fastapi["health"]) == ("down", "grey")
    assert fastapi["snoozed"] == {"kind": "until_back", "since": now, "until": None}
    assert by_id(data)["macmini"]["services"][1]["snoozed"] is None
    assert "(snoozed until it is back)" in next(x for x in table.splitlines() if "FastAPI" in x)
    assert sandbox.outside_connections() == []


def test_a_snooze_whose_time_is_up_no_longer_counts(
    sandbox: AgentSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox.use_fake_tailscale("loopback_all_direct.json")
    past = time.time() - 7200
    _snooze_file(sandbox, monkeypatch, Snooze("macmini", "", SnoozeKind.HOUR, past, past + 3600))
    with loopback_network(fastapi_up=False) as ports:
        code, data = check_json(sandbox, "--topology", str(write_topology(sandbox, ports)))
    assert (code, data["overall"]) == (2, "red")
    assert by_id(data)["macmini"]["snoozed"] is None
