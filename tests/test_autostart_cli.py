"""`tailnet-agent autostart ...` for real on Linux, and the sweep options before any command.

The installed console script writes the XDG autostart entry in a sandbox XDG_CONFIG_HOME. The
entry is then launched the way a desktop session launches it at login (GIO's GDesktopAppInfo,
which gnome-session uses for autostart entries): with no display it takes the tray path and
says so (exit 3). Its command, with `check` appended, runs one sweep of the loopback topology
it names, as the node it names.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import AgentSandbox, installed_agent
from tests.helpers.servers import http_server

NO_DISPLAY = "no display (DISPLAY/WAYLAND_DISPLAY unset)"


def loopback_topology(folder: Path, port: int) -> Path:
    path = folder / "my net.toml"  # a blank in the path: Exec must quote it
    path.write_text(
        'version = 1\nname = "loopback"\n[defaults]\ntimeout = "1s"\n'
        '[[nodes]]\nid = "desktop"\nhostname = "sweetlife"\nip = "127.0.0.1"\n'
        f'[[nodes.services]]\nname = "Ollama"\nport = {port}\ncheck = "http"\n'
        '[[nodes]]\nid = "laptop"\nhostname = "desktop-ecmkau8"\nip = "127.0.0.2"\n'
        "always_on = false\n",
        encoding="utf-8",
    )
    return path


def without_display(sandbox: AgentSandbox) -> None:
    for key in ("DISPLAY", "WAYLAND_DISPLAY"):
        sandbox.env.pop(key, None)


def status_json(sandbox: AgentSandbox) -> tuple[int, dict[str, object]]:
    done = sandbox.run("autostart", "status", "--json")
    assert done.stderr == ""
    return done.returncode, json.loads(done.stdout)


def gio_launch(desktop_file: Path, env: dict[str, str], log: Path) -> int:
    """Launch the entry as a session does at login; the child's exit status."""
    import gi

    gi.require_version("Gio", "2.0")
    from gi.repository import Gio, GLib

    info = Gio.DesktopAppInfo.new_from_filename(str(desktop_file))
    assert info is not None, "GIO refused the entry"
    context = Gio.AppLaunchContext()
    for key in os.environ.keys() - env.keys():
        context.unsetenv(key)
    for key, value in env.items():
        context.setenv(key, value)
    pids: list[int] = []
    with log.open("wb") as out, open(os.devnull, "rb") as devnull:
        launched = info.launch_uris_as_manager_with_fds(
            [],
            context,
            GLib.SpawnFlags.DO_NOT_REAP_CHILD,
            None,
            None,
            lambda _info, pid, _data: pids.append(pid),
            None,
            devnull.fileno(),
            out.fileno(),
            out.fileno(),
        )
    assert launched and len(pids) == 1
    _, status = os.waitpid(pids[0], 0)
    return os.waitstatus_to_exitcode(status)


def test_enable_status_disable_on_linux(sandbox: AgentSandbox, tmp_path: Path) -> None:
    without_display(sandbox)
    sandbox.use_fake_tailscale("loopback_all_direct.json")
    entry = Path(sandbox.env["XDG_CONFIG_HOME"]) / "autostart" / "tailnet-agent.desktop"

    code, state = status_json(sandbox)
    assert (code, state["enabled"], state["location"]) == (1, False, str(entry))

    with http_server({"/": "ok"}) as (_, port):
        topology = loopback_topology(tmp_path, port)
        # A relative --topology, from another folder: registered as an absolute path.
        done = sandbox.run(
            "autostart", "enable", "--topology", topology.name, "--node", "desktop",
            cwd=tmp_path,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "Start at login: enabled" in done.stdout
        assert str(entry) in done.stdout

        import gi

        gi.require_version("Gio", "2.0")
        from gi.repository import Gio, GLib

        info = Gio.DesktopAppInfo.new_from_filename(str(entry))
        assert info is not None
        assert info.get_name() == "tailnet-agent"
        ok, argv = GLib.shell_parse_argv(info.get_commandline().replace("%%", "%"))
        assert ok
        assert argv == [installed_agent(), "--topology", str(topology), "--node", "desktop"]
        assert Path(argv[0]).is_absolute() and os.access(argv[0], os.X_OK)

        code, state = status_json(sandbox)
        assert (code, state["enabled"], state["command"]) == (0, True, argv)
        assert (state["supported"], state["backend"], state["detail"]) == (
            True,
            "xdg-autostart",
            "",
        )

        # At login: the session launches the entry. No display here: the tray path says so.
        log = tmp_path / "login.log"
        assert gio_launch(entry, sandbox.env, log) == 3
        assert NO_DISPLAY in log.read_text()
        assert "Traceback" not in log.read_text()

        # The same command runs one sweep of the topology it names, as the node it names.
        swept = subprocess.run(
            [*argv, "check", "--json"],
            env=sandbox.env,
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        assert swept.returncode == 0, swept.stderr
        report = json.loads(swept.stdout)
        assert (report["overall"], report["self_node"]) == ("green", "desktop")
        assert [n["id"] for n in report["nodes"]] == ["desktop", "laptop"]

    done = sandbox.run("autostart", "disable")
    assert done.returncode == 0, done.stderr
    assert not entry.exists()
    code, state = status_json(sandbox)
    assert (code, state["enabled"], state["command"]) == (1, False, None)
    assert sandbox.outside_connections() == []


def test_status_text_and_a_hidden_entry(sandbox: AgentSandbox) -> None:
    assert sandbox.run("autostart", "enable").returncode == 0
    entry = Path(sandbox.env["XDG_CONFIG_HOME"]) / "autostart" / "tailnet-agent.desktop"
    done = sandbox.run("autostart", "status")
    assert done.returncode == 0
    assert done.stdout == (
        f"Start at login: enabled\n  where:   {entry}\n  command: {installed_agent()}\n"
    )
    # The desktop's own "off" switch (autostart spec: Hidden=true) reads as disabled.
    entry.write_text(entry.read_text() + "Hidden=true\n")
    done = sandbox.run("autostart", "status")
    assert done.returncode == 1
    assert "Start at login: disabled" in done.stdout
    assert "note:    Hidden=true" in done.stdout
    assert sandbox.run("autostart", "enable", "--json").returncode == 0  # on again
    assert "Hidden" not in entry.read_text()


def test_enable_refuses_what_would_fail_at_every_login(
    sandbox: AgentSandbox, tmp_path: Path
) -> None:
    done = sandbox.run("autostart", "enable", "--topology", str(tmp_path / "missing.toml"))
    assert done.returncode == 3
    assert "no such file" in done.stderr
    with http_server({"/": "ok"}) as (_, port):
        topology = loopback_topology(tmp_path, port)
        done = sandbox.run("autostart", "enable", "--topology", str(topology), "--node", "nas")
    assert done.returncode == 3
    assert "--node nas: no such node" in done.stderr and "known: desktop, laptop" in done.stderr
    entry = Path(sandbox.env["XDG_CONFIG_HOME"]) / "autostart" / "tailnet-agent.desktop"
    assert not entry.exists()


def test_autostart_usage_errors_exit_3(sandbox: AgentSandbox) -> None:
    for args in (["autostart"], ["autostart", "nope"], ["autostart", "status", "--node", "x"]):
        done = sandbox.run(*args)
        assert done.returncode == 3, args
        assert "usage:" in done.stderr


# ==== the sweep options before any command =====================================


@pytest.mark.parametrize(
    "where", ["top-level", "after-tray"], ids=["tailnet-agent --options", "tray --options"]
)
def test_options_without_a_command_start_the_tray(
    sandbox: AgentSandbox, tmp_path: Path, where: str
) -> None:
    without_display(sandbox)
    topology = loopback_topology(tmp_path, 9)
    options = ["--topology", str(topology), "--node", "desktop", "--tailscale", "tailscale"]
    done = sandbox.run(*(options if where == "top-level" else ["tray", *options]))
    assert done.returncode == 3
    assert NO_DISPLAY in done.stderr  # only the tray says this: the tray path was taken
    assert "usage:" not in done.stderr


def test_options_before_a_command_that_takes_them(sandbox: AgentSandbox, tmp_path: Path) -> None:
    sandbox.use_fake_tailscale("loopback_all_direct.json")
    with http_server({"/": "ok"}) as (_, port):
        topology = loopback_topology(tmp_path, port)
        done = sandbox.run("--topology", str(topology), "--node", "desktop", "check", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["self_node"] == "desktop"
    assert sandbox.outside_connections() == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--node", "desktop", "history"], "--node does not go with `history`"),
        (["--topology", "t.toml", "history"], "--topology does not go with `history`"),
        (
            ["--node", "a", "topology", "validate"],
            "--node does not go with `topology validate`",
        ),
        (["--node", "a", "check", "--node", "b"], "--node given both before and after `check`"),
        (["--node", "a", "autostart", "status"], "--node does not go with `autostart status`"),
    ],
)
def test_options_before_a_command_that_does_not_take_them(
    sandbox: AgentSandbox, args: list[str], message: str
) -> None:
    done = sandbox.run(*args)
    assert done.returncode == 3
    assert f"tailnet-agent: error: {message}" in done.stderr


def test_options_before_autostart_enable_are_its_options(
    sandbox: AgentSandbox, tmp_path: Path
) -> None:
    topology = loopback_topology(tmp_path, 9)
    done = sandbox.run("--topology", str(topology), "autostart", "enable", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["command"] == [installed_agent(), "--topology", str(topology)]
