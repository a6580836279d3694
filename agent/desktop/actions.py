"""The menu's actions that leave the agent: open a link, a file or a folder; copy text.

Each action says honestly whether it worked, as an Outcome (`ok`, and `detail`: why not, in
words a person can act on):

    open_url("http://100.123.51.5:8000/health")   # http and https only
    open_path(Path("~/.config/tailnet-agent/topology.toml"))
    copy_text("100.123.51.5")                     # pbcopy, clip, wl-copy, xclip or xsel

How an open is carried out, and how its failure is seen (argv lists, never a shell):

    Linux, BSD  a URL with $BROWSER set: Python's webbrowser, which runs that command and
                reads its exit status. Else `xdg-open`, or `gio open` where xdg-utils is
                missing, given OPEN_WAIT_S to exit: a non-zero status is a failure (what it
                printed goes to the log); still running then means it handed the target to
                a program that stays (a browser started in the foreground): opened. With
                neither, a URL goes to webbrowser (False when it finds no browser) and a
                path fails. webbrowser is not asked first: for xdg-open and gio it reports
                success as soon as the process starts, whatever it then says.
    macOS       `open`, waited for the same way.
    Windows     os.startfile, which raises OSError when nothing opens the target.

xclip, xsel and wl-copy hand the selection to a child they fork, whose claim reaches the
display server after the tool itself exited (a busy machine: a paste at once gives the text
before). So copy_text reads the clipboard back with the same kit (xclip -o, xsel --output,
wl-paste) until it holds the text, for at most CLIPBOARD_SETTLE_S; pbcopy and clip are done
when they exit.

DesktopActions is what the tray's menu calls. It runs each action off the UI thread and tells
the user through the notifier: when an open fails, which one, why, and the path or link, which
it also puts on the clipboard (saying so) so that it can be pasted into a browser or a file
manager; when a copy is done, what was copied, or that no clipboard tool exists. Shown and
logged links are scrubbed of credentials and query strings (agent.core.events.scrub).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from agent.core.events import scrub

if TYPE_CHECKING:  # the notifier is passed in; only its type here
    from agent.core.ports import Notifier

__all__ = [
    "CLIPBOARD_SETTLE_S",
    "CLIPBOARD_TIMEOUT_S",
    "OPEN_WAIT_S",
    "DesktopActions",
    "Outcome",
    "clipboard_commands",
    "copy_text",
    "open_path",
    "open_url",
    "openers",
]

log = logging.getLogger(__name__)

OPEN_WAIT_S = 5.0  # an opener still running after this long has handed the target over
CLIPBOARD_TIMEOUT_S = 5.0
CLIPBOARD_SETTLE_S = 2.0  # how long copy_text waits for a forked child to own the clipboard
_READ_BACK = {  # a writer that forks -> how to read what the clipboard holds
    "xclip": ["xclip", "-selection", "clipboard", "-out"],
    "xsel": ["xsel", "--clipboard", "--output"],
    "wl-copy": ["wl-paste", "--no-newline"],
}
_SHOWN_MAX = 400  # characters of a path or link in a notification or log line
_NO_OPENER = "xdg-open and gio are missing (install xdg-utils)"
_NO_CLIPBOARD = "no clipboard tool here (install xclip or xsel; wl-clipboard on Wayland)"


@dataclass(frozen=True, slots=True)
class Outcome:
    """Whether an action worked; `detail` says why not (a clause, no final full stop)."""

    ok: bool
    detail: str = ""

    def __bool__(self) -> bool:
        return self.ok


# ==== opening ==================================================================


def _safe_url(url: str) -> bool:
    parts = urllib.parse.urlsplit(url)
    return (
        parts.scheme in ("http", "https")
        and bool(parts.hostname)
        and not any(ord(c) < 0x21 or c == "\x7f" for c in url)
    )


def openers() -> list[list[str]]:
    """The desktop openers found here, best first, as argv heads (the target is appended)."""
    if sys.platform == "win32":
        return []  # os.startfile
    else:
        heads = [["open"]] if sys.platform == "darwin" else [["xdg-open"], ["gio", "open"]]
        found = []
        for argv in heads:
            path = shutil.which(argv[0])
            if path is not None:
                found.append([path, *argv[1:]])
        return found


def _run_opener(argv: list[str], target: str, wait_s: float) -> Outcome:
    """Run `argv + [target]`; its exit status within `wait_s` decides, else it counts as opened."""
    name = " ".join([Path(argv[0]).name, *argv[1:]])
    with tempfile.TemporaryFile() as stderr:  # a pipe would stay open in what it starts
        try:
            proc = subprocess.Popen(  # noqa: S603 — the opener found on PATH, the target one argv item, no shell
                [*argv, target],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                start_new_session=True,
            )
        except OSError as error:
            return Outcome(False, f"the opener ({name}) could not start: {error.strerror or error}")
        try:
            code = proc.wait(wait_s)
        except subprocess.TimeoutExpired:
            threading.Thread(target=proc.wait, name="opener-reaper", daemon=True).start()
            log.debug("%s is still running after %.0f s: counted as opened", name, wait_s)
            return Outcome(True)
        stderr.seek(0)
        said = stderr.read().decode("utf-8", "replace").strip()
    if code == 0:
        if said:
            log.debug("%s said: %s", name, said)
        return Outcome(True)
    log.warning("%s %s: exit status %d: %s", name, scrub(target, _SHOWN_MAX), code, said or "-")
    last = said.splitlines()[-1].rsplit(": ", 1)[-1].strip() if said else ""
    why = f": {scrub(last, 120)}" if last else ""
    return Outcome(False, f"the opener ({name}) failed with exit status {code}{why}")


def _startfile(target: str) -> Outcome:
    """Windows: the shell's default handler for `target` (a path or a URL)."""
    if sys.platform == "win32":
        try:
            os.startfile(target)  # noqa: S606 — Windows' default handler for an http(s) URL or our own file
        except OSError as error:
            return Outcome(False, f"Windows could not open it ({error.strerror or error})")
        return Outcome(True)
    else:
        raise NotImplementedError("os.startfile exists on Windows only")


def _webbrowser(url: str) -> Outcome:
    try:
        if webbrowser.open(url):
            return Outcome(True)
    except webbrowser.Error as error:
        log.debug("webbrowser: %s", error)
    return Outcome(False, f"no browser found ({_NO_OPENER}, or set $BROWSER)")


def open_url(url: str, *, wait_s: float = OPEN_WAIT_S) -> Outcome:
    """Open an http(s) URL in the default browser; anything else is refused."""
    if not _safe_url(url):
        log.warning("refused to open %r: only http and https URLs", url)
        return Outcome(False, "only http and https links are opened")
    if sys.platform == "win32":
        return _startfile(url)
    else:
        if sys.platform != "darwin" and os.environ.get("BROWSER"):
            return _webbrowser(url)  # the user's own choice; webbrowser reads its exit status
        found = openers()
        if found:
            return _run_opener(found[0], url, wait_s)
        return _webbrowser(url)


def open_path(path: Path, *, wait_s: float = OPEN_WAIT_S) -> Outcome:
    """Open a file or folder with the desktop's default application."""
    if sys.platform == "win32":
        return _startfile(str(path))
    else:
        found = openers()
        if not found:
            return Outcome(False, f"nothing here opens files: {_NO_OPENER}")
        return _run_opener(found[0], str(path), wait_s)


# ==== the clipboard ============================================================


def clipboard_commands() -> list[tuple[list[str], str]]:
    """The clipboard writers found here, best first: (argv, stdin encoding)."""
    candidates: list[tuple[list[str], str]]
    if sys.platform == "darwin":
        candidates = [(["pbcopy"], "utf-8")]
    elif sys.platform == "win32":
        candidates = [(["clip"], "utf-16")]  # clip.exe reads UTF-16 with a BOM as Unicode
    else:
        candidates = []
        if os.environ.get("WAYLAND_DISPLAY"):
            candidates.append((["wl-copy"], "utf-8"))
        if os.environ.get("DISPLAY"):
            candidates.append((["xclip", "-selection", "clipboard", "-in"], "utf-8"))
            candidates.append((["xsel", "--clipboard", "--input"], "utf-8"))
    found: list[tuple[list[str], str]] = []
    for argv, encoding in candidates:
        path = shutil.which(argv[0])
        if path is not None:
            found.append(([path, *argv[1:]], encoding))
    return found


def copy_text(text: str) -> Outcome:
    """Put `text` on the clipboard with the first tool that takes it."""
    env = dict(os.environ)
    if sys.platform == "darwin":
        env.setdefault("LANG", "en_US.UTF-8")  # pbcopy reads stdin in the locale's encoding
    tried: list[str] = []
    for argv, encoding in clipboard_commands():
        tried.append(Path(argv[0]).name)
        try:
            # xclip, xsel and wl-copy fork a child that serves the selection: no output pipes,
            # or run() would wait for that child.
            subprocess.run(  # noqa: S603 — a clipboard tool from a fixed list, text on stdin, no shell
                argv,
                input=text.encode(encoding),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=env,
                timeout=CLIPBOARD_TIMEOUT_S,
                check=True,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            log.warning("%s could not copy: %s", tried[-1], exc)
            continue
        if not _holds(text.encode(encoding), _READ_BACK.get(tried[-1]), env):
            log.warning("%s copied, but no read-back showed it yet", tried[-1])
        return Outcome(True)
    if tried:
        return Outcome(False, f"the clipboard tools failed ({', '.join(tried)})")
    log.warning("no clipboard tool found (pbcopy, clip, wl-copy, xclip or xsel)")
    return Outcome(False, _NO_CLIPBOARD)


def _holds(expected: bytes, reader: list[str] | None, env: dict[str, str]) -> bool:
    """Whether the clipboard holds `expected`, read with `reader` until it does, for at most
    CLIPBOARD_SETTLE_S (True at once without a reader: the writer was done when it exited)."""
    path = None if reader is None else shutil.which(reader[0])
    if reader is None or path is None:
        return reader is None
    deadline = time.monotonic() + CLIPBOARD_SETTLE_S
    while True:
        try:
            done = subprocess.run(  # noqa: S603 — a reader from a fixed table, no input, no shell
                [path, *reader[1:]],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                env=env,
                timeout=CLIPBOARD_SETTLE_S,
                check=False,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            log.debug("%s could not read the clipboard back: %s", reader[0], exc)
            return False
        if done.returncode == 0 and done.stdout == expected:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)  # the forked child is about to claim it: a few ms, under load more


# ==== what the menu calls ======================================================


def _sentence(clause: str) -> str:
    return clause[:1].upper() + clause[1:] + ("" if clause.endswith(".") else ".")


class DesktopActions:
    """The menu's open and copy actions, off the UI thread, with the user told how they went.

    `background=False` runs each action on the calling thread (tests). Every notification is
    ordinary (not critical) and goes straight to the notifier: a pause holds back the
    monitor's news, not the answer to a click.
    """

    def __init__(self, notifier: Notifier, *, background: bool = True) -> None:
        self._notifier = notifier
        self._background = background

    def open_url(self, url: str) -> None:
        """ "Open … in browser"."""
        self._run(lambda: self._open(url, "the link", lambda: open_url(url)))

    def open_path(self, path: Path, what: str) -> None:
        """ "Open topology file" (what="the topology file"), "Open log folder"."""
        self._run(lambda: self._open(str(path), what, lambda: open_path(path)))

    def copy(self, text: str) -> None:
        """ "Copy address …": confirm it, or say why not and show the text."""
        self._run(lambda: self._copy(text))

    def _run(self, action: Callable[[], None]) -> None:
        if not self._background:
            action()
            return

        def guarded() -> None:
            try:
                action()
            except Exception:  # a worker's exception would only reach stderr
                log.exception("menu action failed")

        threading.Thread(target=guarded, name="menu-action", daemon=True).start()

    def _open(self, target: str, what: str, opener: Callable[[], Outcome]) -> None:
        outcome = opener()
        if outcome.ok:
            return
        shown = scrub(target, _SHOWN_MAX)
        log.warning("could not open %s: %s", shown, outcome.detail)
        if copy_text(target):
            where = f"It is on the clipboard: {shown}"
        else:
            where = f"Open it yourself: {shown}"
        self._notifier.notify(f"Could not open {what}", f"{_sentence(outcome.detail)} {where}")

    def _copy(self, text: str) -> None:
        outcome = copy_text(text)
        if outcome.ok:
            log.info("copied %s to the clipboard", text)
            self._notifier.notify(f"Copied {text}", "It is on the clipboard, ready to paste.")
            return
        log.warning("could not copy %s: %s", text, outcome.detail)
        self._notifier.notify(f"Could not copy {text}", f"{_sentence(outcome.detail)}")
