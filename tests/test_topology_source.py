"""Where files go (edges.paths) and which topology file is used (edges.topology_source)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import agent
from agent.edges import paths
from agent.edges.topology_source import (
    TOPOLOGY_ENV,
    TopologyLocation,
    TopologyLocator,
    load_topology,
    locate_topology,
    read_topology_file,
)
from agent.errors import TopologyError

REPO = Path(__file__).resolve().parents[1]
PACKAGE_DIR = Path(agent.__file__).resolve().parent


def topology_text(name: str) -> str:
    return f'version = 1\nname = "{name}"\n[[nodes]]\nid = "a"\nhostname = "h"\nip = "127.0.0.1"\n'


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """XDG folders in tmp (platformdirs follows them), and no topology variable set."""
    for var, sub in [
        ("XDG_CONFIG_HOME", "config"),
        ("XDG_STATE_HOME", "state"),
        ("XDG_DATA_HOME", "data"),
        ("XDG_CACHE_HOME", "cache"),
    ]:
        monkeypatch.setenv(var, str(tmp_path / sub))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv(TOPOLOGY_ENV, raising=False)
    return tmp_path


# ==== paths ====================================================================


def test_user_folders_follow_xdg_and_are_not_created_unasked(home: Path) -> None:
    assert paths.config_dir() == home / "config" / "tailnet-agent"
    assert paths.state_dir() == home / "state" / "tailnet-agent"
    assert paths.log_dir() == home / "state" / "tailnet-agent" / "log"
    assert paths.user_topology_path() == home / "config" / "tailnet-agent" / "topology.toml"
    assert paths.history_path() == home / "state" / "tailnet-agent" / "history.sqlite3"
    assert sorted(p.name for p in home.iterdir()) == []


@pytest.mark.parametrize(
    ("call", "made"),
    [
        pytest.param(lambda: paths.config_dir(ensure=True), "config/tailnet-agent", id="config"),
        pytest.param(lambda: paths.state_dir(ensure=True), "state/tailnet-agent", id="state"),
        pytest.param(lambda: paths.log_dir(ensure=True), "state/tailnet-agent/log", id="log"),
        pytest.param(
            lambda: paths.user_topology_path(ensure=True).parent,
            "config/tailnet-agent",
            id="topology-folder",
        ),
        pytest.param(
            lambda: paths.history_path(ensure=True).parent, "state/tailnet-agent", id="history"
        ),
    ],
)
def test_ensure_creates_the_folder_only(home: Path, call: Callable[[], Path], made: str) -> None:
    folder = call()
    assert folder == home / made
    assert folder.is_dir()
    assert list(folder.iterdir()) == []  # no file is created


def test_importing_creates_no_folder(tmp_path: Path) -> None:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path / "home"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }
    code = "import agent.edges.topology_source as t; print(t.paths.config_dir())"
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(tmp_path / "config" / "tailnet-agent")
    assert list(tmp_path.iterdir()) == []


def test_resources_come_from_the_package_when_not_frozen() -> None:
    assert not paths.is_frozen()
    assert paths.resource_dir() == PACKAGE_DIR
    assert paths.bundled_topology_path() == PACKAGE_DIR / "data" / "topology.toml"
    assert paths.bundled_topology_path().is_file()


@pytest.mark.parametrize(
    ("frozen", "meipass", "from_meipass"),
    [
        pytest.param(True, True, True, id="pyinstaller"),
        pytest.param(True, False, False, id="frozen-by-another-tool"),
        pytest.param(False, True, False, id="meipass-without-frozen"),
    ],
)
def test_resources_come_from_meipass_in_a_pyinstaller_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, frozen: bool, meipass: bool, from_meipass: bool
) -> None:
    if frozen:
        monkeypatch.setattr(sys, "frozen", True, raising=False)
    else:
        monkeypatch.delattr(sys, "frozen", raising=False)
    if meipass:
        monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    else:
        monkeypatch.delattr(sys, "_MEIPASS", raising=False)
    expected = tmp_path if from_meipass else PACKAGE_DIR
    assert paths.is_frozen() is from_meipass
    assert paths.resource_dir() == expected
    assert paths.bundled_topology_path() == expected / "data" / "topology.toml"


# ==== which file ===============================================================

ORDER = [
    # explicit, env, user file, expected origin
    pytest.param(True, True, True, "--topology", id="explicit-beats-all"),
    pytest.param(True, False, True, "--topology", id="explicit-beats-user"),
    pytest.param(False, True, True, "$TAILNET_AGENT_TOPOLOGY", id="env-beats-user"),
    pytest.param(False, True, False, "$TAILNET_AGENT_TOPOLOGY", id="env-alone"),
    pytest.param(False, False, True, "user config", id="user-config"),
    pytest.param(False, False, False, "bundled default", id="bundled-default"),
]


@pytest.mark.parametrize(("explicit", "in_env", "user", "origin"), ORDER)
def test_resolution_order(
    home: Path, explicit: bool, in_env: bool, user: bool, origin: str
) -> None:
    files = {
        "--topology": home / "given.toml",
        "$TAILNET_AGENT_TOPOLOGY": home / "from-env.toml",
        "user config": home / "config" / "tailnet-agent" / "topology.toml",
    }
    for label, path in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(topology_text(label), encoding="utf-8")
    if not user:
        files["user config"].unlink()
    given = str(files["--topology"]) if explicit else None
    env = {TOPOLOGY_ENV: str(files["$TAILNET_AGENT_TOPOLOGY"])} if in_env else {}

    location = locate_topology(given, env)
    assert location.origin == origin
    topology = load_topology(given, env)
    if origin == "bundled default":
        assert location.path == paths.bundled_topology_path()
        assert topology.source == f"bundled default ({paths.bundled_topology_path()})"
        assert topology.name == "Sparklio"
    else:
        assert location == TopologyLocation(files[origin], origin)
        assert topology.source == str(files[origin])
        assert topology.name == origin


@pytest.mark.parametrize(
    ("use_env", "origin"),
    [
        pytest.param(False, "--topology", id="explicit"),
        pytest.param(True, "$TAILNET_AGENT_TOPOLOGY", id="env"),
    ],
)
def test_a_named_file_that_is_missing_is_refused_not_replaced(
    home: Path, use_env: bool, origin: str
) -> None:
    user = home / "config" / "tailnet-agent" / "topology.toml"
    user.parent.mkdir(parents=True)
    user.write_text(topology_text("user"), encoding="utf-8")
    missing = home / "nope.toml"
    given, env = (None, {TOPOLOGY_ENV: str(missing)}) if use_env else (str(missing), {})
    for call in (lambda: locate_topology(given, env), lambda: load_topology(given, env)):
        with pytest.raises(TopologyError) as info:
            call()
        assert info.value.source == str(missing)
        assert "no such file" in info.value.why
        assert origin in info.value.why
        assert str(info.value).startswith(f"{missing}: no such file")


def test_a_running_agent_keeps_to_the_user_file_once_it_had_one(home: Path) -> None:
    """First run: the bundled example. Once the user file was found, its deletion is refused
    (the monitor keeps the last good topology), never a swap back to the example."""
    user = home / "config" / "tailnet-agent" / "topology.toml"
    locate = TopologyLocator(None, {})
    assert locate().origin == "bundled default"
    assert locate().origin == "bundled default"  # no user file yet: still the first run

    user.parent.mkdir(parents=True)
    user.write_text(topology_text("user"), encoding="utf-8")
    assert locate() == TopologyLocation(user, "user config")

    user.unlink()
    with pytest.raises(TopologyError) as info:
        locate()
    assert info.value.source == str(user)
    assert str(info.value).startswith(f"{user}: no such file (deleted from the user config")

    user.write_text(topology_text("user"), encoding="utf-8")
    assert locate() == TopologyLocation(user, "user config")


def test_empty_values_count_as_not_given(home: Path) -> None:
    assert locate_topology("", {TOPOLOGY_ENV: ""}).origin == "bundled default"


def test_home_is_expanded(home: Path) -> None:
    (home / "home").mkdir()
    (home / "home" / "t.toml").write_text(topology_text("tilde"), encoding="utf-8")
    assert load_topology("~/t.toml", {}).source == str(home / "home" / "t.toml")


def test_env_defaults_to_the_process_environment(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = home / "env.toml"
    path.write_text(topology_text("process env"), encoding="utf-8")
    monkeypatch.setenv(TOPOLOGY_ENV, str(path))
    assert load_topology().name == "process env"
    assert load_topology(None, {}).name == "Sparklio"  # an explicit mapping is used as given


# ==== reading ==================================================================


def test_a_broken_user_file_is_an_error_naming_it(home: Path) -> None:
    user = home / "config" / "tailnet-agent" / "topology.toml"
    user.parent.mkdir(parents=True)
    user.write_text(topology_text("user") + "rol = 1\n", encoding="utf-8")
    with pytest.raises(TopologyError) as info:
        load_topology(None, {})
    assert str(info.value) == f"{user}:7: a: unknown key 'rol' — did you mean 'role'?"


def test_not_utf8_is_refused_with_its_line(home: Path) -> None:
    path = home / "latin1.toml"
    path.write_bytes('version = 1\nname = "Café"\n'.encode("latin-1"))
    with pytest.raises(TopologyError) as info:
        load_topology(str(path), {})
    assert (info.value.source, info.value.line) == (str(path), 2)
    assert "not UTF-8" in info.value.why
    assert "0xe9" in info.value.why


def test_a_folder_is_not_readable_as_a_file(home: Path) -> None:
    folder = home / "folder.toml"
    folder.mkdir()
    with pytest.raises(TopologyError) as info:
        load_topology(str(folder), {})
    assert info.value.source == str(folder)
    assert "cannot read the file" in info.value.why


def test_windows_notepad_files_are_read(home: Path) -> None:
    path = home / "notepad.toml"
    path.write_bytes(b"\xef\xbb\xbf" + topology_text("Caf\u00e9").replace("\n", "\r\n").encode())
    topology = read_topology_file(path, "mine")
    assert (topology.name, topology.source) == ("Caf\u00e9", "mine")


def test_the_bundled_default_loads_as_shipped(home: Path) -> None:
    topology = load_topology(None, {})
    assert topology.source == f"bundled default ({PACKAGE_DIR / 'data' / 'topology.toml'})"
    assert [n.id for n in topology.nodes] == ["desktop", "laptop", "macmini"]


def test_a_deleted_user_file_is_still_refused_after_a_restart(home: Path) -> None:
    """The agent that used the user file leaves a marker in the state folder: the next
    agent (a restart, a login) reports the deletion instead of starting a first run."""
    user = home / "config" / "tailnet-agent" / "topology.toml"
    user.parent.mkdir(parents=True)
    user.write_text(topology_text("user"), encoding="utf-8")
    assert TopologyLocator(None, {})() == TopologyLocation(user, "user config")
    user.unlink()

    restarted = TopologyLocator(None, {})
    for call in (restarted, lambda: locate_topology(None, {})):
        with pytest.raises(TopologyError) as info:
            call()
        assert info.value.source == str(user)
        assert str(info.value).startswith(f"{user}: no such file (deleted from the user config")
        assert "tailnet-agent init" in info.value.why

    user.write_text(topology_text("user"), encoding="utf-8")  # put back: in use again
    assert restarted() == TopologyLocation(user, "user config")


def test_a_genuine_first_run_leaves_no_marker_and_stays_on_the_example(home: Path) -> None:
    assert TopologyLocator(None, {})().origin == "bundled default"
    assert TopologyLocator(None, {})().origin == "bundled default"  # a restart: the same
    assert not paths.user_topology_seen_path().exists()


def test_an_unwritable_state_folder_is_logged_and_the_refusal_lasts_the_process(
    home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    user = home / "config" / "tailnet-agent" / "topology.toml"
    user.parent.mkdir(parents=True)
    user.write_text(topology_text("user"), encoding="utf-8")
    (home / "state").write_text("not a folder", encoding="utf-8")  # the marker cannot go in
    locate = TopologyLocator(None, {})
    assert locate().origin == "user config"
    assert "cannot record that" in caplog.text
    user.unlink()
    with pytest.raises(TopologyError):
        locate()
