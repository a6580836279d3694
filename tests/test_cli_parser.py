"""The command line's parser built for the command named alone (`cli._command_named`)
reads every command line exactly as the whole parser does: the same namespace, or the same
help, version or error text and exit code."""

from __future__ import annotations

import argparse
import contextlib
import io
import shlex

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent import cli
from tests.fuzz.settings import fuzz

LINES = [
    "", "--version", "--help", "-h", "-vh", "--he", "check", "check --json", "check -v --json",
    "-v check", "check --nagios --target macmini --service FastAPI", "check --help", "check -h",
    "check -vh", "check --bogus", "check --version", "check --target", "--bogus", "chek",
    "--topology", "--topology check", "--topology t.toml --node n check", "--node n check --node m",
    "--metrics 127.0.0.1:9 check", "--topology t.toml --node desktop", "tray --metrics x",
    "run --headless", "run --headless --share-view", "run --share-view 99999", "run --he",
    "topology", "topology validate", "topology validate t.toml", "topology show --help",
    "topology frobnicate", "autostart", "autostart enable --topology t.toml",
    "autostart status --json",
    "history --since 7d --json", "demo --speed 0", "demo --speed 2 --headless", "init --port 99999",
    "init --discover --port 8000 --port 9000 out.toml", "audit --json", "acl --json", "-- check",
    "check -- extra", "--node=x check", "--topology=check", "-vv check",
]  # fmt: skip


def _outcome(parser: argparse.ArgumentParser, argv: list[str]) -> tuple[object, ...]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            args = parser.parse_args(argv)
            cli._merge_top_level_options(parser, args)
        except SystemExit as stop:
            return ("exit", stop.code, out.getvalue(), err.getvalue())
    return ("parsed", vars(args), out.getvalue(), err.getvalue())


@pytest.mark.parametrize("line", LINES, ids=[line or "(nothing)" for line in LINES])
def test_the_narrow_parser_reads_a_line_as_the_whole_one(
    line: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "100")  # the help text's width, the same for both
    argv = shlex.split(line)
    only = cli._command_named(argv)
    assert _outcome(cli.build_parser(only), argv) == _outcome(cli.build_parser(), argv)


@pytest.mark.parametrize(
    ("line", "only"),
    [
        ("check --json", "check"),
        ("--topology t.toml --node n run --headless", "run"),
        ("--topology check", None),  # "check" is the file's name here
        ("--version", None),
        ("", None),
        ("check --help", cli.ALL_COMMANDS),
        ("chek", cli.ALL_COMMANDS),
        ("--topology", cli.ALL_COMMANDS),
    ],
)
def test_only_what_the_line_names_is_built(line: str, only: str | None) -> None:
    assert cli._command_named(shlex.split(line)) == only


_WORDS = [
    *cli._COMMANDS, "validate", "show", "enable", "disable", "status", "chek", "-v", "-h", "-vh",
    "--help", "--he", "--version", "--json", "--nagios", "--headless", "--topology", "--node",
    "--tailscale", "--metrics", "--target", "--service", "--since", "--speed", "--port",
    "--share-view", "--discover", "--force", "--bogus", "--", "-", "t.toml", "n", "7d", "2",
    "8000", "127.0.0.1:9", "--topology=check", "--node=x", "-x",
]  # fmt: skip


@fuzz
@given(st.lists(st.sampled_from(_WORDS), max_size=7))
def test_any_line_of_the_words_reads_the_same(argv: list[str]) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COLUMNS", "100")
        narrow = _outcome(cli.build_parser(cli._command_named(argv)), argv)
        assert narrow == _outcome(cli.build_parser(), argv)
