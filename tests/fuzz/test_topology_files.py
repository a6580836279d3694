"""The topology loader and config.toml under hostile files: a Topology or a TopologyError.

Documents are the bundled default (agent/data/topology.toml) with one to three places
changed (tests/fuzz/documents.py), written as TOML with table headers or inline; texts are
the bundled file cut, spliced and overwritten. Whatever comes, the loader gives a topology
that writes itself back out the same, or a TopologyError whose every line names the file
and says why.
"""

from __future__ import annotations

import re
import tempfile
import tomllib
from pathlib import Path

from hypothesis import example, given
from hypothesis import strategies as st

from agent.core.topology import (
    MAX_LISTED_PROBLEMS,
    describe_topology,
    dump_topology,
    parse_topology,
)
from agent.core.topology_url import (
    decode_topology,
    parse_local_config,
    topology_url,
)
from agent.edges.paths import bundled_topology_path
from agent.errors import TopologyError, UsageError
from agent.exporter import metrics_setting
from tests.fuzz.documents import (
    edited_bytes,
    edited_text,
    mutated,
    to_toml,
    toml_values,
)
from tests.fuzz.settings import fuzz

SOURCE = "fuzz.toml"
BUNDLED_TEXT = bundled_topology_path().read_text(encoding="utf-8")
BUNDLED = tomllib.loads(BUNDLED_TEXT)
NODE = '\n[[nodes]]\nid = "a"\nname = "A"\nhostname = "a"\nip = "100.64.0.1"\n'


def _refusal_is_readable(error: TopologyError, source: str = SOURCE) -> None:
    """Every line names the file (a URL refused in config.toml: the URL, and the file it was
    given in), but for the cap's last line on a long list."""
    assert error.message.strip(), "a refusal says why"
    lines = error.message.splitlines()
    if len(lines) > MAX_LISTED_PROBLEMS:
        cap = re.fullmatch(r"\.\.\. and (\d+) more (problems?)", lines.pop())
        assert cap, lines
        assert cap[2] == ("problem" if cap[1] == "1" else "problems"), cap[0]
    for line in lines:
        assert line.startswith(source) or f"in {source})" in line, line
    assert str(error).splitlines()[0] == error.message.splitlines()[0]


def _loads_or_refuses(text: str) -> None:
    try:
        topology = parse_topology(text, SOURCE)
    except TopologyError as error:
        _refusal_is_readable(error)
        return
    assert topology.nodes, "a topology has nodes"
    assert parse_topology(dump_topology(topology), SOURCE) == topology
    assert describe_topology(topology)


@fuzz
@given(mutated([BUNDLED], toml_values), st.booleans())
@example({"version": 1, "defaults": {"interval": 10**400}, "nodes": BUNDLED["nodes"]}, True).via(
    "found: float() of a 400-digit interval raised OverflowError"
)
@example(
    {"version": 1, "defaults": {"latency_warn_ms": 10**400}, "nodes": BUNDLED["nodes"]}, True
).via("found: math.isfinite() of a 400-digit latency_warn_ms raised OverflowError")
@example({"version": 1, "defaults": {"\u2028": 1}, "nodes": BUNDLED["nodes"]}, False).via(
    "found: an unknown key holding U+2028 split the refusal over two lines in the menu"
)
def test_mutated_documents_load_or_are_refused(document: object, headers: bool) -> None:
    _loads_or_refuses(to_toml(document, headers=headers))


@fuzz
@given(edited_text(BUNDLED_TEXT))
@example("version = 1\nx = " + "[" * 5000 + "]" * 5000 + NODE).via(
    "found: tomllib raised RecursionError for arrays nested 5000 deep"
)
@example("version = 1\nx = " + "{a = " * 3000 + "1" + "}" * 3000 + NODE).via(
    "found: tomllib raised RecursionError for inline tables nested 3000 deep"
)
@example("version = 1\n[defaults]\nlatency_warn_ms = " + "9" * 5000 + NODE).via(
    "found: tomllib raised ValueError (int max str digits) for a 5000-digit number"
)
def test_edited_files_load_or_are_refused(text: str) -> None:
    _loads_or_refuses(text)


@fuzz
@given(edited_bytes(BUNDLED_TEXT.encode()))
def test_topology_bytes_decode_or_are_refused(data: bytes) -> None:
    try:
        text = decode_topology(data, SOURCE)
    except TopologyError as error:
        _refusal_is_readable(error)
        return
    _loads_or_refuses(text)


CONFIG = {"source": "https://example.test/topology.toml", "refresh": "10m"}


@fuzz
@given(mutated([CONFIG], toml_values), st.booleans())
@example({"refresh": 10**400}, True).via(
    "found: float() of a 400-digit refresh raised OverflowError"
)
@example({"\r": False, **CONFIG}, False).via(
    "found: an unknown key holding a line break split the refusal over two lines"
)
def test_config_files_read_or_are_refused(document: object, headers: bool) -> None:
    try:
        config = parse_local_config(to_toml(document, headers=headers), "config.toml")
    except TopologyError as error:
        _refusal_is_readable(error, "config.toml")
        return
    assert config.refresh_s > 0
    assert config.source is None or config.source.startswith(("http://", "https://"))


@fuzz
@given(edited_text('source = "https://example.test/t.toml"\nrefresh = "10m"\n'))
@example("refresh = 1\nx = " + "[" * 5000 + "]" * 5000).via(
    "found: tomllib raised RecursionError for arrays nested 5000 deep in config.toml"
)
@example('source = "https://"\nrefresh = "10m"\n')  # refused by the URL, "in config.toml"
def test_edited_config_files_read_or_are_refused(text: str) -> None:
    try:
        parse_local_config(text, "config.toml")
    except TopologyError as error:
        _refusal_is_readable(error, "config.toml")


_URLISH = st.sampled_from(
    ["http://", "https://", "HTTP://", "ftp://", "file://", "http://[::1", "https://a:99999/",
     "http://u:p@h/", "http://[v1.x]/", "https://%zz/", "http:///x", " https://h "]
)  # fmt: skip


@fuzz
@given(st.tuples(_URLISH, st.text(max_size=40)).map("".join) | st.text(max_size=40))
@example("ftp://a\nb").via("found: a refused URL holding a line break split the refusal")
@example("https://exa\nmple.com/").via("found: accepted, then refused by httpx at fetch time")
def test_topology_urls_are_accepted_or_refused(text: str) -> None:
    try:
        url = topology_url(text, "--topology")
    except TopologyError as error:
        assert error.message.strip()
        assert error.message.splitlines() == [error.message], "a refusal is one line"
        assert "--topology" in error.message
        return
    assert url is None or url.lower().startswith(("http://", "https://"))


@fuzz
@given(edited_text('metrics = "127.0.0.1:9233"\nsource = "https://example.test/t.toml"\n'))
@example('metrics = "127.0.0.1:9233"\nx = ' + "[" * 5000 + "]" * 5000).via(
    "found: tomllib raised RecursionError for arrays nested 5000 deep in config.toml"
)
def test_metrics_in_config_files_read_or_are_refused(text: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "config.toml"
        config.write_text(text, encoding="utf-8")
        try:
            setting = metrics_setting(None, {}, config)
        except UsageError as error:
            assert error.message.startswith(str(config))
            return
    assert setting is None or isinstance(setting.text, str)
