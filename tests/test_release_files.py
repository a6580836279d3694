"""The release files: the workflow, the installers' facts, the shell scripts, the menu entry.

Everything runs here on Linux, offline: the workflow is linted (its schema, zizmor), the Inno
Setup script is read and its facts compared with edges.paths, the shell scripts pass bash -n and
shellcheck, the .desktop files pass desktop-file-validate, build_tarball.sh and install.sh run
for real on a stand-in build in a temp folder, and build_dmg.sh runs against stand-ins of the
macOS tools (codesign, hdiutil, xcrun, ...) that record how they were called.
"""

from __future__ import annotations

import json
import os
import plistlib
import re
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from ruamel.yaml import YAML  # a dependency of check-jsonschema (the test extra)

import agent
from agent.desktop import icons

REPO = Path(__file__).resolve().parents[1]
WORKFLOW = REPO / ".github" / "workflows" / "release.yml"
ISS = REPO / "installer" / "windows" / "tailnet-agent.iss"
MACOS = REPO / "installer" / "macos"
LINUX = REPO / "installer" / "linux"
SHELL_SCRIPTS = sorted((REPO / "installer").rglob("*.sh"))
DESKTOP_FILES = sorted(LINUX.glob("*.desktop"))
BIN = Path(sys.executable).parent

# The start-at-login value the autostart code writes (desktop/autostart.py, HKCU Run): its name is
# the app name, its data the quoted path of the tray executable.
RUN_KEY = r"Software\Microsoft\Windows\CurrentVersion\Run"
RUN_VALUE_NAME = "tailnet-agent"


def tool(name: str) -> str:
    """A command-line tool the checks need: in the venv, else on PATH; missing is a failure."""
    found = shutil.which(name, path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    if found is None:
        pytest.fail(f"{name} is missing (tests/run installs it)")
    return found


def run(
    argv: list[str], *, env: dict[str, str] | None = None, cwd: Path = REPO, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


@pytest.fixture
def quiet_env(tmp_path: Path) -> dict[str, str]:
    """The environment for the linters: their caches and config lookups in tmp."""
    env = dict(os.environ)
    env.update(HOME=str(tmp_path / "home"), XDG_CACHE_HOME=str(tmp_path / "cache"), NO_COLOR="1")
    return env


# -- 1, 2: the workflow ------------------------------------------------------------------------


def test_workflow_matches_the_github_workflow_schema(quiet_env: dict[str, str]) -> None:
    argv = [tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows"]
    done = run([*argv, str(WORKFLOW)], env=quiet_env)
    assert done.returncode == 0, done.stdout + done.stderr


def test_zizmor_finds_nothing_even_as_an_auditor(quiet_env: dict[str, str]) -> None:
    # --offline: no GitHub API (the online audits compare tags and SHAs; see docs/release.md).
    # The auditor persona is the strictest: it also wants the signing secrets in an environment.
    argv = [tool("zizmor"), "--offline", "--no-progress", "--persona=auditor", "--format=plain"]
    done = run([*argv, str(WORKFLOW)], env=quiet_env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "No findings" in done.stdout + done.stderr


def load_workflow() -> dict:  # type: ignore[type-arg]
    data = YAML(typ="safe").load(WORKFLOW.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def steps(job: dict) -> Iterator[dict]:  # type: ignore[type-arg]
    yield from job.get("steps", [])


def test_every_action_is_pinned_by_a_full_commit_sha_with_its_version() -> None:
    uses = re.findall(r"^\s*-?\s*uses:\s*(\S+)(.*)$", WORKFLOW.read_text(), flags=re.M)
    assert uses, "the workflow uses no action?"
    for ref, comment in uses:
        assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", ref), ref
        assert re.fullmatch(r"\s*# v\d+\.\d+\.\d+", comment), f"{ref}: no '# vX.Y.Z' comment"


def test_workflow_permissions_are_least_privilege() -> None:
    workflow = load_workflow()
    assert workflow["permissions"] == {}
    jobs = workflow["jobs"]
    writers = {name for name, job in jobs.items() if "write" in job.get("permissions", {}).values()}
    assert writers == {"release"}
    assert jobs["release"]["permissions"] == {"contents": "write"}
    assert jobs["build"]["permissions"] == {"contents": "read"}
    assert "github.ref_type == 'tag'" in jobs["release"]["if"]


def test_workflow_checks_out_without_credentials_and_expands_nothing_in_scripts() -> None:
    for name, job in load_workflow()["jobs"].items():
        for step in steps(job):
            if str(step.get("uses", "")).startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False, name
            assert "${{" not in step.get("run", ""), f"{name}: {step.get('name')}: use env"


def test_workflow_builds_on_the_four_runners_and_caches_nothing() -> None:
    workflow = load_workflow()
    on = workflow[True] if True in workflow else workflow["on"]  # YAML 1.1 reads `on` as true
    assert on["push"]["tags"] == ["v*"]
    assert "workflow_dispatch" in on
    matrix = workflow["jobs"]["build"]["strategy"]["matrix"]["include"]
    assert {entry["os"] for entry in matrix} == {
        "windows-latest",
        "macos-latest",
        "macos-15-intel",
        "ubuntu-latest",
    }
    text = WORKFLOW.read_text()
    assert "actions/cache" not in text
    assert not re.search(r"^\s*cache:", text, flags=re.M), "no setup-python cache on releases"
    assert "pyinstaller build.spec --noconfirm --clean" in text
    assert "iscc.exe" in text.lower() and "/DAppVersion=" in text
    assert "installer/macos/build_dmg.sh" in text and "installer/linux/build_tarball.sh" in text
    assert "SHA256SUMS" in text


# -- 3: the Inno Setup script against the code -------------------------------------------------


def iss_text() -> str:
    """The script with its simple string #defines substituted (a small subset of ISPP)."""
    text = ISS.read_text(encoding="utf-8")
    defines = dict(re.findall(r'^#define (\w+) "([^"]*)"$', text, flags=re.M))
    for name, value in defines.items():
        text = text.replace("{#" + name + "}", value)
    return text


def iss_section(name: str) -> list[str]:
    lines: list[str] = []
    inside = False
    for raw in iss_text().splitlines():
        line = raw.strip()
        if line.startswith("[") and line.endswith("]"):
            inside = line[1:-1].lower() == name.lower()
            continue
        if inside and line and not line.startswith(";"):
            lines.append(line)
    return lines


def iss_setup() -> dict[str, str]:
    return dict(line.split("=", 1) for line in iss_section("Setup"))


def iss_entries(section: str) -> list[dict[str, str]]:
    """`Name: "value"; Flags: a b` entries; Inno doubles a quote inside a quoted value."""
    entries = []
    param = re.compile(r'\s*(\w+):\s*("(?:[^"]|"")*"|[^;]*)\s*(?:;|$)')
    for line in iss_section(section):
        entry = {}
        for key, value in param.findall(line):
            if value.startswith('"'):
                value = value[1:-1].replace('""', '"')
            entry[key] = value.strip()
        entries.append(entry)
    return entries


def test_iss_is_per_user_and_waits_for_the_running_agent() -> None:
    setup = iss_setup()
    assert setup["PrivilegesRequired"] == "lowest"
    assert "PrivilegesRequiredOverridesAllowed" not in setup  # always per user
    # Non-administrative mode maps {autopf} to {userpf}: %LOCALAPPDATA%\Programs.
    assert setup["DefaultDirName"] == "{autopf}\\" + agent.APP_NAME
    assert setup["AppMutex"] == agent.APP_ID
    assert re.fullmatch(r"\{\{[0-9A-F]{8}(-[0-9A-F]{4}){3}-[0-9A-F]{12}\}", setup["AppId"])
    assert setup["AppVersion"] == "{#AppVersion}"
    assert setup["OutputBaseFilename"] == f"{agent.APP_NAME}-{{#AppVersion}}-windows-x64-setup"
    assert setup["OutputDir"].endswith("\\dist")
    for key in ("SetupIconFile",):
        icon = setup[key].replace("{#RepoRoot}\\", "").replace("\\", "/")
        assert (REPO / icon).is_file(), setup[key]
    assert setup["UninstallDisplayIcon"] == "{app}\\tailnet-agent.ico"


def test_iss_autostart_writes_exactly_what_the_agent_writes() -> None:
    assert agent.APP_NAME == RUN_VALUE_NAME
    runs = [e for e in iss_entries("Registry") if e.get("Subkey") == RUN_KEY]
    assert len(runs) == 1, runs
    entry = runs[0]
    assert entry["Root"] == "HKCU"
    assert entry["ValueType"] == "string"
    assert entry["ValueName"] == RUN_VALUE_NAME
    assert entry["ValueData"] == f'"{{app}}\\{agent.GUI_EXECUTABLE}.exe"'  # quoted path
    assert "uninsdeletevalue" in entry["Flags"].split()
    task = entry["Tasks"]
    assert task in {t["Name"] for t in iss_entries("Tasks")}


def test_iss_uninstaller_removes_a_run_value_the_agent_wrote_and_asks_about_user_files() -> None:
    code = "\n".join(iss_section("Code"))
    assert f"RunKey = '{RUN_KEY}';" in code
    assert f"RunValueName = '{RUN_VALUE_NAME}';" in code
    assert "RegDeleteValue(HKCU, RunKey, RunValueName)" in code
    assert f"ExpandConstant('{{localappdata}}\\{agent.APP_NAME}')" in code
    assert "UninstallSilent()" in code and "MsgBox(" in code and "DelTree(" in code
    assert "MB_DEFBUTTON2" in code  # "No" (keep the files) is the default answer


def test_iss_installs_the_build_and_launches_the_tray() -> None:
    files = iss_entries("Files")
    assert any(
        f["Source"] == "{#DistDir}\\*"
        and {"recursesubdirs", "createallsubdirs"} <= set(f["Flags"].split())
        for f in files
    )
    assert '#define DistDir RepoRoot + "\\dist\\" + AppName' in ISS.read_text()
    gui = f"{{app}}\\{agent.GUI_EXECUTABLE}.exe"
    icons = iss_entries("Icons")
    assert [i["Filename"] for i in icons] == [gui]  # the tray only; the CLI is for terminals
    launch = iss_entries("Run")
    assert len(launch) == 1 and launch[0]["Filename"] == gui
    assert {"postinstall", "nowait", "skipifsilent"} <= set(launch[0]["Flags"].split())


def test_the_version_line_is_where_the_packaging_scripts_read_it() -> None:
    # The .iss (ISPP), build_dmg.sh and build_tarball.sh read this one line.
    lines = (REPO / "agent" / "__init__.py").read_text().splitlines()
    found = [line for line in lines if line.startswith("__version__")]
    assert found == [f'__version__ = "{agent.__version__}"']


# -- 4: shell scripts --------------------------------------------------------------------------


def test_there_are_shell_scripts_to_check() -> None:
    names = {p.relative_to(REPO).as_posix() for p in SHELL_SCRIPTS}
    assert {
        "installer/macos/build_dmg.sh",
        "installer/linux/build_tarball.sh",
        "installer/linux/install.sh",
    } <= names


@pytest.mark.parametrize("script", SHELL_SCRIPTS, ids=lambda p: p.name)
def test_shell_script_parses_and_is_shellcheck_clean(script: Path) -> None:
    assert os.access(script, os.X_OK), f"{script.name} is not executable"
    assert script.read_text().startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in script.read_text()
    done = run(["bash", "-n", str(script)])
    assert done.returncode == 0, done.stderr
    done = run([tool("shellcheck"), "--shell=bash", "--severity=style", str(script)])
    assert done.returncode == 0, done.stdout + done.stderr


# -- 5: .desktop files -------------------------------------------------------------------------


def desktop_file_validate(path: Path) -> None:
    done = run([tool("desktop-file-validate"), str(path)])
    assert done.returncode == 0 and not done.stdout.strip(), done.stdout + done.stderr


@pytest.mark.parametrize("desktop", DESKTOP_FILES, ids=lambda p: p.name)
def test_desktop_file_is_valid(desktop: Path) -> None:
    desktop_file_validate(desktop)


def test_menu_entry_starts_the_tray() -> None:
    (desktop,) = DESKTOP_FILES
    entries = dict(line.split("=", 1) for line in desktop.read_text().splitlines() if "=" in line)
    assert entries["Exec"] == agent.GUI_EXECUTABLE
    assert entries["Icon"] == agent.APP_NAME
    assert entries["Terminal"] == "false"


# -- 6: the Linux tarball and its installer, for real ------------------------------------------


@pytest.fixture
def fake_dist(tmp_path: Path) -> Path:
    """A stand-in for dist/tailnet-agent: two scripts named like the executables, a data file."""
    dist = tmp_path / "dist" / "tailnet-agent"
    (dist / "_internal").mkdir(parents=True)
    log = tmp_path / "cli.log"
    (dist / agent.GUI_EXECUTABLE).write_text("#!/bin/sh\necho tray\n")
    (dist / agent.CLI_EXECUTABLE).write_text(f'#!/bin/sh\necho "$*" >> "{log}"\n')
    for exe in (agent.GUI_EXECUTABLE, agent.CLI_EXECUTABLE):
        (dist / exe).chmod(0o644)  # the script must make them executable in the archive
    (dist / "_internal" / "base_library.zip").write_bytes(b"PK\x05\x06" + bytes(18))
    return dist


def build_tarball(dist: Path, out: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "VERSION": "1.2.3", "ARCH": "x86_64", **env}
    return run([str(LINUX / "build_tarball.sh"), str(dist), str(out)], env=full_env)


def test_tarball_holds_the_build_the_installer_and_the_menu_entry(
    fake_dist: Path, tmp_path: Path
) -> None:
    done = build_tarball(fake_dist, tmp_path / "out", SOURCE_DATE_EPOCH="1700000000")
    assert done.returncode == 0, done.stderr
    tarball = tmp_path / "out" / "tailnet-agent-1.2.3-linux-x86_64.tar.gz"
    assert done.stdout.strip() == str(tarball)
    top = "tailnet-agent-1.2.3-linux-x86_64"
    with tarfile.open(tarball) as archive:
        members = {m.name: m for m in archive.getmembers()}
    assert set(members) == {
        top,
        f"{top}/INSTALL.txt",
        f"{top}/install.sh",
        f"{top}/tailnet-agent.desktop",
        f"{top}/icons",
        f"{top}/icons/tailnet-agent.png",
        f"{top}/tailnet-agent",
        f"{top}/tailnet-agent/{agent.GUI_EXECUTABLE}",
        f"{top}/tailnet-agent/{agent.CLI_EXECUTABLE}",
        f"{top}/tailnet-agent/_internal",
        f"{top}/tailnet-agent/_internal/base_library.zip",
        f"{top}/icons/png",
        *(f"{top}/icons/png/tailnet-agent-{size}.png" for size in icons.PNG_SIZES),
    }
    for exe in (
        "install.sh",
        f"tailnet-agent/{agent.GUI_EXECUTABLE}",
        f"tailnet-agent/{agent.CLI_EXECUTABLE}",
    ):
        assert members[f"{top}/{exe}"].mode & 0o111 == 0o111, exe
    assert all(m.uid == 0 and m.gid == 0 and m.mtime == 1700000000 for m in members.values())


def test_tarball_files_are_writable_by_their_owner_alone(fake_dist: Path, tmp_path: Path) -> None:
    for path in [fake_dist, *fake_dist.rglob("*")]:  # as a build under umask 000 leaves them
        path.chmod(0o777 if path.is_dir() else 0o666)
    done = build_tarball(fake_dist, tmp_path / "out")
    assert done.returncode == 0, done.stderr
    with tarfile.open(done.stdout.strip()) as archive:
        writable = [m.name for m in archive.getmembers() if m.mode & 0o022]
    assert writable == []


def test_tarball_is_the_same_byte_for_byte_from_the_same_input(
    fake_dist: Path, tmp_path: Path
) -> None:
    blobs = []
    for n in (1, 2):
        done = build_tarball(fake_dist, tmp_path / f"out{n}", SOURCE_DATE_EPOCH="1700000000")
        assert done.returncode == 0, done.stderr
        blobs.append(Path(done.stdout.strip()).read_bytes())
    assert blobs[0] == blobs[1]


def test_tarball_refuses_a_build_without_the_cli(fake_dist: Path, tmp_path: Path) -> None:
    (fake_dist / agent.CLI_EXECUTABLE).unlink()
    done = build_tarball(fake_dist, tmp_path / "out")
    assert done.returncode != 0
    assert "tailnet-agent-cli is missing" in done.stderr
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_install_sh_installs_a_valid_menu_entry_and_uninstalls(
    fake_dist: Path, tmp_path: Path
) -> None:
    done = build_tarball(fake_dist, tmp_path / "out")
    assert done.returncode == 0, done.stderr
    unpacked = tmp_path / "unpacked"
    with tarfile.open(done.stdout.strip()) as archive:
        archive.extractall(unpacked, filter="data")
    (folder,) = unpacked.iterdir()
    home = tmp_path / "home with space"
    env = {k: v for k, v in os.environ.items() if not k.startswith("XDG_")}
    env["HOME"] = str(home)

    done = run([str(folder / "install.sh"), "--autostart"], env=env)
    assert done.returncode == 0, done.stderr
    dest = home / ".local" / "opt" / "tailnet-agent"
    assert (dest / agent.GUI_EXECUTABLE).is_file() and os.access(
        dest / agent.CLI_EXECUTABLE, os.X_OK
    )
    assert (home / ".local/bin/tailnet-agent-cli").resolve() == dest / agent.CLI_EXECUTABLE
    assert (home / ".local/share/icons/hicolor/256x256/apps/tailnet-agent.png").is_file()
    menu = home / ".local" / "share" / "applications" / "tailnet-agent.desktop"
    exec_lines = [line for line in menu.read_text().splitlines() if line.startswith("Exec=")]
    assert exec_lines == [f'Exec="{dest / agent.GUI_EXECUTABLE}"']
    desktop_file_validate(menu)
    assert (tmp_path / "cli.log").read_text().splitlines() == ["autostart enable"]

    done = run([str(folder / "install.sh"), "--uninstall"], env=env)
    assert done.returncode == 0, done.stderr
    assert not dest.exists() and not menu.exists()
    assert not (home / ".local/bin/tailnet-agent-cli").exists()
    assert (tmp_path / "cli.log").read_text().splitlines()[-1] == "autostart disable"


# -- the macOS disk image script, against stand-ins of the macOS tools -------------------------

STUB = r"""
import json, os, pathlib, shutil, sys
name = pathlib.Path(sys.argv[0]).name
args = sys.argv[1:]
with open(os.environ["STUB_LOG"], "a") as log:
    log.write(json.dumps([name, *args]) + "\n")
if name == "uname":
    print("Darwin" if args == ["-s"] else "arm64")
elif name == "file":
    path = args[-1]
    if "/MacOS/" in path:
        print("Mach-O 64-bit executable arm64")
    elif path.endswith((".dylib", ".so")) or path.endswith("/Python"):
        print("Mach-O 64-bit dynamically linked shared library arm64")
    else:
        print("data")
elif name == "codesign":
    if "--verify" in args and args[-1].endswith(".app"):
        sys.exit(int(os.environ.get("STUB_VERIFY_FAILS", "0")))
    if "--display" in args:
        print("Identifier=io.github.tailnet-agent", file=sys.stderr)
elif name == "xcrun" and args[:2] == ["notarytool", "submit"]:
    print(json.dumps({"id": "job-1", "status": os.environ.get("STUB_NOTARY", "Accepted")}))
elif name == "plutil":
    import plistlib
    key, source = args[1], args[-1]
    if source.endswith(".plist"):
        data = plistlib.load(open(source, "rb"))
    else:
        data = json.load(open(source))
    if key not in data:
        sys.exit(1)
    value = data[key]
    print(str(value).lower() if isinstance(value, bool) else value)
elif name in ("dmgbuild", "hdiutil") and "verify" not in args:
    pathlib.Path(args[-1]).write_bytes(b"dmg")
elif name == "ditto":
    if "-c" in args:
        pathlib.Path(args[-1]).write_bytes(b"zip")
    else:
        shutil.copytree(args[0], args[1], symlinks=True)
"""
MAC_TOOLS = (
    "uname",
    "file",
    "codesign",
    "xcrun",
    "plutil",
    "dmgbuild",
    "hdiutil",
    "ditto",
    "spctl",
)


@pytest.fixture
def mac(tmp_path: Path) -> Iterator[dict[str, object]]:
    """A stand-in .app, stand-in macOS tools first on PATH, and the log of their calls."""
    app = tmp_path / "dist" / "tailnet-agent.app" / "Contents"
    (app / "MacOS").mkdir(parents=True)
    for exe in (agent.GUI_EXECUTABLE, agent.CLI_EXECUTABLE):
        (app / "MacOS" / exe).write_text("exe")
        (app / "MacOS" / exe).chmod(0o755)
    (app / "Frameworks" / "PIL").mkdir(parents=True)
    (app / "Frameworks" / "libpython3.12.dylib").write_text("lib")
    (app / "Frameworks" / "PIL" / "_imaging.cpython-312-darwin.so").write_text("ext")
    (app / "Frameworks" / "Python.framework" / "Versions" / "3.12").mkdir(parents=True)
    (app / "Frameworks" / "Python.framework" / "Versions" / "3.12" / "Python").write_text("lib")
    nested_app = app / "Frameworks" / "Python.framework" / "Versions" / "3.12" / "Python.app"
    (nested_app / "Contents").mkdir(parents=True)  # python.org frameworks hold one
    (nested_app / "Contents" / "Info.plist").write_text("<plist/>")
    (app / "Resources").mkdir()
    (app / "Resources" / "base_library.zip").write_text("data")
    info = {
        "CFBundleIdentifier": agent.APP_ID,
        "CFBundleExecutable": agent.GUI_EXECUTABLE,
        "LSUIElement": True,
        "NSHighResolutionCapable": True,
    }
    (app / "Info.plist").write_bytes(plistlib.dumps(info))
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    stub = stubs / "stub.py"
    stub.write_text(f"#!{sys.executable}\n{STUB}")
    stub.chmod(0o755)
    for name in MAC_TOOLS:
        (stubs / name).symlink_to(stub)
    log = tmp_path / "calls.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MACOS_", "APPLE_"))}
    env.update(PATH=f"{stubs}{os.pathsep}{env['PATH']}", STUB_LOG=str(log), VERSION="1.2.3")
    yield {"app": app.parent, "out": tmp_path / "out", "env": env, "log": log}


def build_dmg(
    mac: dict[str, object], **env: str
) -> tuple[subprocess.CompletedProcess[str], list[list[str]]]:
    full_env = {**mac["env"], **env}  # type: ignore[dict-item]
    done = run([str(MACOS / "build_dmg.sh"), str(mac["app"]), str(mac["out"])], env=full_env)
    log = Path(str(mac["log"]))
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return done, calls


def signing_calls(calls: list[list[str]]) -> list[list[str]]:
    return [c for c in calls if c[0] == "codesign" and "--sign" in c]


def test_dmg_keeps_pyinstallers_ad_hoc_signature_by_default(mac: dict[str, object]) -> None:
    done, calls = build_dmg(mac)
    assert done.returncode == 0, done.stderr
    dmg = Path(str(mac["out"])) / "tailnet-agent-1.2.3-macos-arm64.dmg"
    assert done.stdout.strip() == str(dmg) and dmg.is_file()
    assert signing_calls(calls) == []
    assert not [c for c in calls if c[0] == "xcrun"]
    (dmgbuild,) = [c for c in calls if c[0] == "dmgbuild"]
    assert dmgbuild[1:3] == ["-s", str(MACOS / "dmg_settings.py")]
    assert f"app={mac['app']}" in dmgbuild and dmgbuild[-2:] == ["tailnet-agent", str(dmg)]


def test_dmg_re_signs_ad_hoc_inside_out_when_the_signature_is_broken(
    mac: dict[str, object],
) -> None:
    done, calls = build_dmg(mac, STUB_VERIFY_FAILS="1")
    assert done.returncode != 0  # the re-signed app is verified again (the stub still fails)
    signed = signing_calls(calls)
    assert signed and all(c[c.index("--sign") + 1] == "-" for c in signed)
    assert not any("--options" in c or "--entitlements" in c for c in signed)


def test_dmg_with_a_developer_id_signs_inside_out_with_the_hardened_runtime(
    mac: dict[str, object],
) -> None:
    identity = "Developer ID Application: Example (TEAM123456)"
    done, calls = build_dmg(mac, MACOS_SIGN_IDENTITY=identity, DMG_BUILDER="hdiutil")
    assert done.returncode == 0, done.stderr
    signed = signing_calls(calls)
    assert all(c[c.index("--sign") + 1] == identity for c in signed)
    assert all("--timestamp" in c for c in signed)
    code = [c for c in signed if not c[-1].endswith(".dmg")]  # the image is signed, not run
    assert all(c[c.index("--options") + 1] == "runtime" for c in code)
    targets = [c[-1] for c in signed]
    app = str(mac["app"])
    libs = {t for t in targets if t.endswith((".dylib", ".so", "/Python"))}
    assert len(libs) == 3
    framework = f"{app}/Contents/Frameworks/Python.framework"
    nested_app = f"{framework}/Versions/3.12/Python.app"
    cli = f"{app}/Contents/MacOS/{agent.CLI_EXECUTABLE}"
    dmg = str(Path(str(mac["out"])) / "tailnet-agent-1.2.3-macos-arm64.dmg")
    # Inside out: libraries, nested bundles deepest first, the console executable, the app, the
    # image.
    assert targets[len(libs) :] == [nested_app, framework, cli, app, dmg]
    entitled = {c[-1] for c in signed if "--entitlements" in c}
    assert entitled == {cli, app}
    (cli_call,) = [c for c in signed if c[-1] == cli]
    assert cli_call[cli_call.index("--identifier") + 1] == f"{agent.APP_ID}.cli"
    assert not [c for c in calls if c[0] == "xcrun"]  # no credentials, no notarisation
    assert ["hdiutil", "verify", dmg] in calls


def test_dmg_notarises_and_staples_the_app_then_the_image(mac: dict[str, object]) -> None:
    identity = "Developer ID Application: Example (TEAM123456)"
    done, calls = build_dmg(mac, MACOS_SIGN_IDENTITY=identity, MACOS_NOTARY_PROFILE="notary")
    assert done.returncode == 0, done.stderr
    xcrun = [c[1:] for c in calls if c[0] == "xcrun"]
    submits = [c for c in xcrun if c[:2] == ["notarytool", "submit"]]
    assert [Path(c[2]).suffix for c in submits] == [".zip", ".dmg"]
    assert all(c[3:5] == ["--keychain-profile", "notary"] and "--wait" in c for c in submits)
    staples = [c[2] for c in xcrun if c[:2] == ["stapler", "staple"]]
    assert [Path(s).suffix for s in staples] == [".app", ".dmg"]


def test_dmg_fails_when_apple_refuses_the_submission(mac: dict[str, object]) -> None:
    done, calls = build_dmg(
        mac,
        MACOS_SIGN_IDENTITY="Developer ID Application: Example (TEAM123456)",
        APPLE_ID="dev@example.com",
        APPLE_TEAM_ID="TEAM123456",
        APPLE_APP_PASSWORD="xxxx-xxxx",
        STUB_NOTARY="Invalid",
    )
    assert done.returncode != 0
    assert "notarisation of tailnet-agent.zip ended as: Invalid" in done.stderr
    log_call = next(c for c in calls if c[:3] == ["xcrun", "notarytool", "log"])
    assert log_call[3:6] == ["job-1", "--apple-id", "dev@example.com"]
    assert not (Path(str(mac["out"])) / "tailnet-agent-1.2.3-macos-arm64.dmg").exists()


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (
            "CFBundleIdentifier",
            "tailnet-agent",
            "CFBundleIdentifier is not io.github.tailnet-agent",
        ),
        ("CFBundleExecutable", agent.CLI_EXECUTABLE, "CFBundleExecutable is not tailnet-agent"),
        ("LSUIElement", False, "LSUIElement is not true"),
        ("LSBackgroundOnly", True, "LSBackgroundOnly is true"),
    ],
)
def test_dmg_refuses_a_bundle_that_is_not_the_tray_app(
    mac: dict[str, object], key: str, value: object, message: str
) -> None:
    plist = Path(str(mac["app"])) / "Contents" / "Info.plist"
    info = plistlib.loads(plist.read_bytes())
    plist.write_bytes(plistlib.dumps({**info, key: value}))
    done, calls = build_dmg(mac)
    assert done.returncode != 0
    assert message in done.stderr
    assert not [c for c in calls if c[0] in ("codesign", "dmgbuild", "hdiutil")]


def test_dmg_refuses_notarisation_without_a_developer_id(mac: dict[str, object]) -> None:
    done, _ = build_dmg(mac, MACOS_NOTARY_PROFILE="notary")
    assert done.returncode != 0
    assert "set MACOS_SIGN_IDENTITY too" in done.stderr


def test_dmg_settings_give_dmgbuild_the_app_and_an_applications_link() -> None:
    # dmgbuild executes the settings file with its options as globals (dmgbuild/core.py).
    settings: dict[str, object] = {
        "defines": {"app": "/x/dist/tailnet-agent.app", "icon": "i.icns"}
    }
    exec(compile((MACOS / "dmg_settings.py").read_text(), "dmg_settings.py", "exec"), settings)
    assert settings["files"] == ["/x/dist/tailnet-agent.app"]
    assert settings["symlinks"] == {"Applications": "/Applications"}
    assert settings["icon"] == "i.icns"
    assert set(settings["icon_locations"]) == {"tailnet-agent.app", "Applications"}  # type: ignore[arg-type]
    assert settings["format"] == "UDZO"


def test_entitlements_allow_only_what_a_pyinstaller_app_needs() -> None:
    entitlements = plistlib.loads((MACOS / "entitlements.plist").read_bytes())
    assert entitlements == {"com.apple.security.cs.allow-unsigned-executable-memory": True}
