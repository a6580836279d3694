"""The topology schema: every refusal names file, line, key and why; valid files map exactly."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.core.model import Access, CheckKind, Defaults, Impact, Node, Service, Topology
from agent.core.topology import (
    NODE_ID_PATTERN,
    access_of,
    describe_topology,
    dump_topology,
    format_topology_duration,
    parse_duration,
    parse_topology,
)
from agent.errors import TopologyError

BUNDLED = Path(__file__).resolve().parents[2] / "agent" / "data" / "topology.toml"
SOURCE = "net/topology.toml"
MARK = "# <--"  # marks the line an error must point at

HEAD = "version = 1\n"
NODE = '[[nodes]]\nid = "a"\nhostname = "host-a"\nip = "100.64.0.1"\n'
NODE_B = '[[nodes]]\nid = "b"\nhostname = "host-b"\nip = "100.64.0.2"\n'
NODE_C = '[[nodes]]\nid = "c"\nhostname = "host-c"\nip = "100.64.0.3"\n'
SVC = '  [[nodes.services]]\n  name = "web"\n  port = 80\n  check = "http"\n'
SVC2 = '  [[nodes.services]]\n  name = "db"\n  port = 5432\n  check = "postgres"\n'


def marked_line(text: str) -> int | None:
    lines = [n for n, line in enumerate(text.split("\n"), start=1) if MARK in line]
    assert len(lines) <= 1, "one marked line per case"
    return lines[0] if lines else None


def refused(text: str, source: str = SOURCE) -> TopologyError:
    with pytest.raises(TopologyError) as info:
        parse_topology(text, source)
    return info.value


# ==== refusals =================================================================

R = pytest.param
REFUSALS = [
    # ---- TOML syntax: the line comes from tomllib's message
    R(HEAD + "name =   " + MARK + "\n", "", ["TOML syntax error", "column"], id="syntax-no-value"),
    R(HEAD + "version = 2 " + MARK + "\n", "", ["TOML syntax error"], id="syntax-duplicate-key"),
    R(HEAD + "[[nodes] " + MARK + "\n", "", ["TOML syntax error", "]]"], id="syntax-bad-header"),
    R(HEAD + 'name = "unterminated ' + MARK, "", ["end of the file"], id="syntax-at-end"),
    # ---- unknown keys, with the close match suggested
    R(HEAD + NODE + SVC + NODE_B + SVC + NODE_C + SVC + '  chek = "tcp" ' + MARK + "\n",
      "nodes[2].services[0].chek", ["unknown key", "did you mean 'check'?"],
      id="unknown-service-key-third-node"),
    R(HEAD + "[[node]] " + MARK + '\nid = "a"\n', "node", ["did you mean 'nodes'?"],
      id="unknown-root-table"),
    R(HEAD + "[defaults]\nintervall = '5s' " + MARK + "\n" + NODE, "defaults.intervall",
      ["did you mean 'interval'?"], id="unknown-defaults-key"),
    R(HEAD + NODE + 'hostnme = "x" ' + MARK + "\n", "nodes[0].hostnme",
      ["did you mean 'hostname'?"], id="unknown-node-key"),
    R(HEAD + NODE + 'colour = "red" ' + MARK + "\n", "nodes[0].colour",
      ["unknown key", "allowed here", "always_on"], id="unknown-key-no-close-match"),
    R(HEAD + NODE + "  [[nodes.service]] " + MARK + '\n  name = "x"\n', "nodes[0].service",
      ["did you mean 'services'?"], id="unknown-services-table"),
    # ---- missing required keys: the line of the block that lacks them
    R('name = "x"\n' + NODE, "version", ["required key is missing"], id="missing-version"),
    R(HEAD, "nodes", ["no nodes", "[[nodes]]"], id="missing-nodes"),
    R(HEAD + "nodes = [] " + MARK + "\n", "nodes", ["at least one node"], id="empty-nodes"),
    R(HEAD + "[[nodes]] " + MARK + '\nhostname = "h"\nip = "100.64.0.1"\n', "nodes[0].id",
      ["required key is missing"], id="missing-node-id"),
    R(HEAD + "[[nodes]] " + MARK + '\nid = "a"\nhostname = "h"\n', "nodes[0].ip",
      ["required key is missing"], id="missing-node-ip"),
    R(HEAD + "[[nodes]] " + MARK + '\nid = "a"\nip = "100.64.0.1"\n', "nodes[0].hostname",
      ["required key is missing"], id="missing-node-hostname"),
    R(HEAD + NODE + "  [[nodes.services]] " + MARK + '\n  port = 80\n  check = "tcp"\n',
      "nodes[0].services[0].name", ["required key is missing"], id="missing-service-name"),
    R(HEAD + NODE + "  [[nodes.services]] " + MARK + '\n  name = "x"\n  check = "tcp"\n',
      "nodes[0].services[0].port", ["required key is missing"], id="missing-service-port"),
    R(HEAD + NODE + "  [[nodes.services]] " + MARK + '\n  name = "x"\n  port = 80\n',
      "nodes[0].services[0].check", ["required key is missing"], id="missing-service-check"),
    # ---- wrong types
    R('version = "1" ' + MARK + "\n" + NODE, "version", ["must be an integer", "without quotes"],
      id="version-as-string"),
    R(HEAD + NODE + SVC.replace("port = 80", 'port = "80" ' + MARK), "nodes[0].services[0].port",
      ["must be an integer", '"80"', "without quotes"], id="port-as-string"),
    R(HEAD + NODE + SVC.replace("port = 80", "port = 80.0 " + MARK), "nodes[0].services[0].port",
      ["must be an integer", "a float"], id="port-as-float"),
    R(HEAD + NODE + 'always_on = "true" ' + MARK + "\n", "nodes[0].always_on",
      ["true or false", "write true without quotes"], id="bool-as-string"),
    R(HEAD + NODE + SVC + '  open = "yes" ' + MARK + "\n", "nodes[0].services[0].open",
      ["true or false", '"yes"'], id="open-as-word"),
    R(HEAD + NODE + "name = 5 " + MARK + "\n", "nodes[0].name",
      ["must be a string", "put it in quotes"], id="name-as-number"),
    R(HEAD + NODE.replace('hostname = "host-a"', "hostname = true " + MARK), "nodes[0].hostname",
      ["must be a string", "got true"], id="hostname-as-bool"),
    R(HEAD + NODE + SVC + "  expect_status = 200 " + MARK + "\n",
      "nodes[0].services[0].expect_status", ["array of status codes"], id="status-not-array"),
    R(HEAD + NODE + SVC + '  expect_status = [200, "204"] ' + MARK + "\n",
      "nodes[0].services[0].expect_status[1]", ["must be an integer"], id="status-as-string"),
    R(HEAD + "[defaults]\nfailure_threshold = 2.5 " + MARK + "\n" + NODE,
      "defaults.failure_threshold", ["must be an integer"], id="threshold-as-float"),
    R(HEAD + "[defaults]\nlatency_warn_ms = \"100\" " + MARK + "\n" + NODE,
      "defaults.latency_warn_ms", ["must be a number", "without quotes"], id="latency-as-string"),
    R(HEAD + "[defaults]\ninterval = true " + MARK + "\n" + NODE, "defaults.interval",
      ["must be a duration"], id="interval-as-bool"),
    R(HEAD + "defaults = 5 " + MARK + "\n" + NODE, "defaults", ["must be a table"],
      id="defaults-not-table"),
    R(HEAD + "nodes = [1] " + MARK + "\n", "nodes[0]", ["must be a table"], id="node-not-table"),
    R(HEAD + "[nodes] " + MARK + '\nid = "a"\n', "nodes", ["write [[nodes]], not [nodes]"],
      id="nodes-single-table"),
    R(HEAD + NODE + "  [nodes.services] " + MARK + '\n  name = "x"\n', "nodes[0].services",
      ["write [[nodes.services]]"], id="services-single-table"),
    R(HEAD + NODE + "services = 3 " + MARK + "\n", "nodes[0].services",
      ["array of tables"], id="services-not-array"),
    R(HEAD + 'name = 1979-05-27 ' + MARK + "\n" + NODE, "name", ["must be a string", "a date"],
      id="name-as-date"),
    # ---- version, duplicates
    R("version = 2 " + MARK + "\n" + NODE, "version", ["unsupported version 2", "version 1"],
      id="version-2"),
    R(HEAD + NODE + NODE_B.replace('id = "b"', 'id = "a" ' + MARK), "nodes[1].id",
      ['duplicate node id "a"', "nodes[0].id"], id="duplicate-node-id"),
    R(HEAD + NODE + NODE_B.replace('ip = "100.64.0.2"', 'ip = "100.64.0.1" ' + MARK),
      "nodes[1].ip", ["duplicate node IP", "(also at a: ip)"], id="duplicate-ip"),
    R(HEAD + NODE.replace("100.64.0.1", "fd7a:115c:a1e0::1")
      + NODE_B.replace('ip = "100.64.0.2"', 'ip = "fd7a:115c:a1e0:0:0::1" ' + MARK),
      "nodes[1].ip", ["duplicate node IP"], id="duplicate-ipv6-spelt-differently"),
    R(HEAD + NODE + SVC + SVC2.replace("port = 5432", "port = 80 " + MARK),
      "nodes[0].services[1].port", ["duplicate port 80", "(also at web on a: port)"],
      id="duplicate-port"),
    R(HEAD + NODE + SVC + SVC2.replace('name = "db"', 'name = "web" ' + MARK),
      "nodes[0].services[1].name", ["duplicate service name"], id="duplicate-service-name"),
    # ---- IPs and ports
    R(HEAD + NODE.replace('ip = "100.64.0.1"', 'ip = "100.64.0.256" ' + MARK), "nodes[0].ip",
      ["not an IPv4 or IPv6 address"], id="ip-octet-too-big"),
    R(HEAD + NODE.replace('ip = "100.64.0.1"', 'ip = "sweetlife" ' + MARK), "nodes[0].ip",
      ["not an IPv4 or IPv6 address"], id="ip-a-name"),
    R(HEAD + NODE.replace('ip = "100.64.0.1"', 'ip = "100.64.0.1/32" ' + MARK), "nodes[0].ip",
      ["not an IPv4 or IPv6 address"], id="ip-with-prefix"),
    R(HEAD + NODE + SVC.replace("port = 80", "port = 0 " + MARK), "nodes[0].services[0].port",
      ["out of range", "1..65535"], id="port-0"),
    R(HEAD + NODE + SVC.replace("port = 80", "port = 65536 " + MARK),
      "nodes[0].services[0].port", ["out of range"], id="port-65536"),
    R(HEAD + NODE + SVC.replace("port = 80", "port = -80 " + MARK), "nodes[0].services[0].port",
      ["out of range"], id="port-negative"),
    # ---- enumerations
    R(HEAD + NODE + SVC.replace('check = "http"', 'check = "htp" ' + MARK),
      "nodes[0].services[0].check", ["unknown check kind", "did you mean 'http'?"],
      id="check-typo"),
    R(HEAD + NODE + SVC.replace('check = "http"', 'check = "HTTP" ' + MARK),
      "nodes[0].services[0].check", ["did you mean 'http'?"], id="check-upper-case"),
    R(HEAD + NODE + SVC.replace('check = "http"', 'check = "icmp" ' + MARK),
      "nodes[0].services[0].check", ["unknown check kind", "http, tcp, redis, postgres"],
      id="check-unknown"),
    R(HEAD + NODE + SVC + '  impact = "warning" ' + MARK + "\n", "nodes[0].services[0].impact",
      ["unknown impact", "critical, degraded, info"], id="impact-unknown"),
    R(HEAD + NODE + SVC + '  access = "public" ' + MARK + "\n", "nodes[0].services[0].access",
      ["unknown access", "localhost+tailscale"], id="access-unknown"),
    R(HEAD + NODE + 'os = "darwin" ' + MARK + "\n", "nodes[0].os",
      ["unknown os", "did you mean 'macos'?"], id="os-alias"),
    R(HEAD + NODE + 'os = "beos" ' + MARK + "\n", "nodes[0].os",
      ["unknown os", "windows, macos, linux, ios, android, freebsd, other"], id="os-unknown"),
    # ---- durations and thresholds
    R(HEAD + '[defaults]\ninterval = "10" ' + MARK + "\n" + NODE, "defaults.interval",
      ["not a duration", '"10s"'], id="duration-no-unit"),
    R(HEAD + '[defaults]\ninterval = "10 sec" ' + MARK + "\n" + NODE, "defaults.interval",
      ["not a duration"], id="duration-word-unit"),
    R(HEAD + '[defaults]\ntimeout = "1w" ' + MARK + "\n" + NODE, "defaults.timeout",
      ["not a duration"], id="duration-weeks"),
    R(HEAD + '[defaults]\ntimeout = "0ms" ' + MARK + "\n" + NODE, "defaults.timeout",
      ["more than 0"], id="duration-zero-string"),
    R(HEAD + '[defaults]\ntimeout = "-1s" ' + MARK + "\n" + NODE, "defaults.timeout",
      ["not a duration"], id="duration-negative-string"),
    R(HEAD + "[defaults]\ninterval = 0 " + MARK + "\n" + NODE, "defaults.interval",
      ["more than 0"], id="duration-zero-number"),
    R(HEAD + "[defaults]\ninterval = -2.5 " + MARK + "\n" + NODE, "defaults.interval",
      ["more than 0"], id="duration-negative-number"),
    R(HEAD + "[defaults]\ninterval = inf " + MARK + "\n" + NODE, "defaults.interval",
      ["more than 0"], id="duration-infinite"),
    R(HEAD + "[defaults]\nfailure_threshold = 0 " + MARK + "\n" + NODE,
      "defaults.failure_threshold", ["out of range", "at least 1"], id="failure-threshold-0"),
    R(HEAD + "[defaults]\nsuccess_threshold = -1 " + MARK + "\n" + NODE,
      "defaults.success_threshold", ["out of range", "at least 1"], id="success-threshold-neg"),
    R(HEAD + "[defaults]\nlatency_warn_ms = 0 " + MARK + "\n" + NODE,
      "defaults.latency_warn_ms", ["more than 0"], id="latency-0"),
    R(HEAD + "[defaults]\nlatency_warn_ms = nan " + MARK + "\n" + NODE,
      "defaults.latency_warn_ms", ["more than 0"], id="latency-nan"),
    # ---- HTTP details
    R(HEAD + NODE + SVC + "  expect_status = [99] " + MARK + "\n",
      "nodes[0].services[0].expect_status[0]", ["not an HTTP status code", "100..599"],
      id="status-99"),
    R(HEAD + NODE + SVC + "  expect_status = [200, 600] " + MARK + "\n",
      "nodes[0].services[0].expect_status[1]", ["not an HTTP status code"], id="status-600"),
    R(HEAD + NODE + SVC + '  path = "health" ' + MARK + "\n", "nodes[0].services[0].path",
      ["must start with a single '/'"], id="path-relative"),
    R(HEAD + NODE + SVC + '  path = "//evil.example" ' + MARK + "\n",
      "nodes[0].services[0].path", ["must start with a single '/'"], id="path-double-slash"),
    R(HEAD + NODE + SVC + '  path = "/a b" ' + MARK + "\n", "nodes[0].services[0].path",
      ["spaces"], id="path-with-space"),
    R(HEAD + NODE + SVC2 + '  path = "/x" ' + MARK + "\n", "nodes[0].services[0].path",
      ["only to http and websocket"], id="path-on-postgres"),
    R(HEAD + NODE + SVC2 + "  expect_status = [200] " + MARK + "\n",
      "nodes[0].services[0].expect_status", ["only to http"], id="status-on-postgres"),
    R(HEAD + NODE + SVC2 + '  expect_body = "ok" ' + MARK + "\n",
      "nodes[0].services[0].expect_body", ["only to http"], id="body-on-postgres"),
    R(HEAD + NODE + SVC + '  expect_body = "" ' + MARK + "\n",
      "nodes[0].services[0].expect_body", ["must not be empty"], id="body-empty"),
    # ---- node ids and names
    R(HEAD + NODE.replace('id = "a"', 'id = "Desktop" ' + MARK), "nodes[0].id",
      ["not a short slug"], id="id-upper-case"),
    R(HEAD + NODE.replace('id = "a"', 'id = "-a" ' + MARK), "nodes[0].id",
      ["not a short slug"], id="id-leading-dash"),
    R(HEAD + NODE.replace('id = "a"', 'id = "mac.mini" ' + MARK), "nodes[0].id",
      ["not a short slug"], id="id-with-dot"),
    R(HEAD + NODE.replace('id = "a"', f'id = "{"a" * 33}" ' + MARK), "nodes[0].id",
      ["not a short slug", "32"], id="id-too-long"),
    R(HEAD + NODE.replace('id = "a"', 'id = "" ' + MARK), "nodes[0].id",
      ["must not be empty"], id="id-empty"),
    R(HEAD + NODE.replace('hostname = "host-a"', 'hostname = "my\\thost" ' + MARK),
      "nodes[0].hostname", ["control characters"], id="hostname-with-tab"),
    R(HEAD + NODE + SVC.replace('name = "web"', 'name = "  " ' + MARK),
      "nodes[0].services[0].name", ["must not be empty"], id="service-name-blank"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "key", "words"), REFUSALS)
def test_refusal_names_file_line_key_and_why(text: str, key: str, words: list[str]) -> None:
    error = refused(text)
    line = marked_line(text)
    assert (error.source, error.key, error.line) == (SOURCE, key, line), str(error)
    for word in words:
        assert word in error.why, f"{word!r} not in {error.why!r}"
    where = SOURCE if line is None else f"{SOURCE}:{line}"
    shown = error.subject
    assert str(error) == (f"{where}: {shown}: {error.why}" if shown else f"{where}: {error.why}")
    assert error.message.splitlines()[0] == str(error)


def test_all_problems_are_listed_first_one_held() -> None:
    text = (
        "version = 2\n"  # 1
        "[defaults]\n"  # 2
        'interval = "soon"\n'  # 3
        + NODE  # 4-7
        + SVC.replace('check = "http"', 'chek = "http"')  # 8-11
        + NODE_B.replace('"b"', '"a"')  # 12-15
    )
    error = refused(text)
    assert (error.key, error.line) == ("version", 1)
    assert "unsupported version 2" in error.why
    assert str(error).count("\n") == 0
    listed = error.message.splitlines()
    assert listed == [
        f"{SOURCE}:1: version: {error.why}",
        f"{SOURCE}:3: defaults.interval: "
        '"soon" is not a duration; write e.g. "10s", "500ms", "1m" or a number of seconds',
        f"{SOURCE}:11: web on a: unknown key 'chek' — did you mean 'check'?",
        f'{SOURCE}:13: a: id: duplicate node id "a" (also at nodes[0].id)',
    ]


@pytest.mark.parametrize(
    ("typos", "cap_line"), [(40, "... and 10 more problems"), (31, "... and 1 more problem")]
)
def test_a_long_list_of_problems_is_capped(typos: int, cap_line: str) -> None:
    text = HEAD + NODE + "".join(f"typo{i} = 1\n" for i in range(typos))
    error = refused(text)
    listed = error.message.splitlines()
    assert len(listed) == 31
    assert listed[-1] == cap_line


@pytest.mark.parametrize(
    ("text", "line"),
    [
        pytest.param(
            HEAD + NODE.replace("\n", "\r\n") + 'os = "beos"\r\n', 6, id="crlf-line-endings"
        ),
        pytest.param(
            HEAD + NODE + 'role = """\nid = "zz"\n[[nodes]]\n"""\nos = "beos"\n',
            10,
            id="after-multiline-string",
        ),
        pytest.param(
            HEAD + NODE + SVC + "  expect_body = \"'''\"\n" + '  chek = "tcp"\n',
            11,
            id="triple-quote-inside-a-one-line-string",  # found by the property test below
        ),
        pytest.param(
            HEAD + NODE + SVC + '  expect_body = \'"""\'\n' + '  chek = "tcp"\n',
            11,
            id="triple-double-quote-inside-a-literal-string",
        ),
        pytest.param(
            HEAD + NODE + "role = '''\nrole of a\n'''\nos = \"beos\"\n",
            9,
            id="after-multiline-literal-string",
        ),
        pytest.param(
            HEAD + NODE + SVC + "  expect_status = [\n    200,\n    204,\n  ]\n  chek = 1\n",
            14,
            id="after-multiline-array",
        ),
        pytest.param(
            (HEAD + NODE + 'os = "beos"\n').replace("\n", "\r\n"), 6, id="crlf-line-endings"
        ),
        pytest.param(
            HEAD + 'defaults = { interval = "x" }\n' + NODE, 2, id="inline-table-points-at-it"
        ),
        pytest.param(HEAD + 'defaults.timeout = "x"\n' + NODE, 2, id="dotted-key"),
        pytest.param(
            HEAD + NODE + SVC + NODE_B + SVC + SVC2 + '  path = "x"\n', 22, id="second-node-block"
        ),
        pytest.param(
            HEAD
            + NODE
            + SVC
            + "[defaults]\n"
            + NODE_B.replace("[[nodes]]", "[[ nodes ]]")
            + '"os" = "beos"\n',
            15,
            id="spaced-header-quoted-key",
        ),
    ],
)
def test_lines_are_found_in_awkward_files(text: str, line: int) -> None:
    assert refused(text).line == line


# ==== accepted files ===========================================================


def test_minimal_file_takes_every_default() -> None:
    topology = parse_topology(HEAD + NODE + SVC, SOURCE)
    assert topology == Topology(
        name="tailnet",
        nodes=(
            Node(
                id="a",
                name="a",
                hostname="host-a",
                ip="100.64.0.1",
                os="linux",
                role="",
                always_on=True,
                services=(Service("web", 80, CheckKind.HTTP),),
            ),
        ),
        defaults=Defaults(),
        version=1,
        source=SOURCE,
    )
    service = topology.nodes[0].services[0]
    # access undeclared (None): the exposure audit warns without colouring
    assert (service.path, service.impact, service.access, service.open, service.consumers) == (
        "/",
        Impact.DEGRADED,
        None,
        False,
        None,
    )


def test_every_field_is_read() -> None:
    text = (
        'version = 1\nname = "Lab"\n'
        '[defaults]\ninterval = "1m"\ntimeout = "500ms"\nfailure_threshold = 3\n'
        "success_threshold = 2\nlatency_warn_ms = 42.5\n"
        '[[nodes]]\nid = "mac_1"\nname = "Mac"\nhostname = "Mac-Mini"\nip = "FD7A:115C:A1E0::5"\n'
        'os = "macos"\nrole = "backend"\nalways_on = false\n'
        '  [[nodes.services]]\n  name = "API"\n  port = 8000\n  check = "http"\n'
        '  path = "/health?full=1"\n  expect_status = [200, 204]\n  expect_body = "ok"\n'
        '  impact = "critical"\n  access = "localhost+tailscale"\n  open = true\n'
        '  [[nodes.services]]\n  name = "WS"\n  port = 8001\n  check = "websocket"\n'
        '  path = "/ws"\n'
    )
    topology = parse_topology(text, SOURCE)
    assert topology.name == "Lab"
    assert topology.defaults == Defaults(60.0, 0.5, 3, 2, 42.5)
    assert topology.nodes == (
        Node(
            "mac_1",
            "Mac",
            "Mac-Mini",
            "fd7a:115c:a1e0::5",  # normalised, as Tailscale reports it
            "macos",
            "backend",
            False,
            (
                Service(
                    "API", 8000, CheckKind.HTTP, "/health?full=1", (200, 204), "ok",
                    Impact.CRITICAL, Access.LOCALHOST_AND_TAILSCALE, True,
                ),
                Service("WS", 8001, CheckKind.WEBSOCKET, "/ws"),
            ),
        ),
    )  # fmt: skip


def test_utf8_bom_and_inline_tables_are_accepted() -> None:
    text = (
        "\ufeffversion = 1\ndefaults = { timeout = 2 }\n"
        'nodes = [{ id = "a", hostname = "h", ip = "127.0.0.1", services = ['
        '{ name = "r", port = 6379, check = "redis" }] }]\n'
    )
    topology = parse_topology(text, SOURCE)
    assert topology.defaults.timeout_s == 2.0
    assert topology.nodes[0].services == (Service("r", 6379, CheckKind.REDIS),)


def test_a_node_without_services_is_a_link_to_watch() -> None:
    assert parse_topology(HEAD + NODE, SOURCE).nodes[0].services == ()


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        pytest.param("10s", 10.0, id="seconds"),
        pytest.param("500ms", 0.5, id="millis"),
        pytest.param("1m", 60.0, id="minute"),
        pytest.param("1.5s", 1.5, id="fraction"),
        pytest.param("2h", 7200.0, id="hours"),
        pytest.param(" 3 s ", 3.0, id="spaces"),
        pytest.param(7, 7.0, id="bare-int"),
        pytest.param(0.25, 0.25, id="bare-float"),
    ],
)
def test_durations(value: str | float, seconds: float) -> None:
    assert parse_duration(value) == seconds
    text = HEAD + f"[defaults]\ninterval = {value!r}\n".replace("'", '"') + NODE
    assert parse_topology(text, SOURCE).defaults.interval_s == seconds


@given(st.floats(min_value=1e-9, max_value=1e9, allow_nan=False))
def test_format_duration_reads_back_exactly(seconds: float) -> None:
    assert parse_duration(format_topology_duration(seconds)) == seconds


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (10.0, "10s"),
        (0.5, "500ms"),
        (60.0, "1m"),
        (90.0, "90s"),
        (1.5, "1.5s"),
        (3600.0, "60m"),
        (0.0005, "0.0005s"),
        (1e-06, "0.000001s"),
        (0.1 + 0.2, "0.30000000000000004s"),
    ],
)
def test_format_duration_is_short(seconds: float, text: str) -> None:
    assert format_topology_duration(seconds) == text


# ==== the bundled default ======================================================

EXPECTED_NODES = {
    # id: (hostname, ip, os, always_on)
    "desktop": ("sweetlife", "100.120.180.42", "windows", True),
    "laptop": ("desktop-ecmkau8", "100.101.68.23", "windows", False),
    "macmini": ("woosuns-mac-mini", "100.123.51.5", "macos", True),
}
EXPECTED_SERVICES = {
    # (node, name): (port, check, path, impact, access, open)
    ("desktop", "Ollama"): (11434, "http", "/api/tags", "degraded", "tailscale", True),
    ("desktop", "ComfyUI"): (8188, "http", "/", "degraded", "tailscale", True),
    ("laptop", "Next.js"): (3000, "http", "/", "info", "localhost+tailscale", True),
    ("macmini", "FastAPI"): (8000, "http", "/health", "critical", "tailscale", True),
    ("macmini", "PostgreSQL"): (5432, "postgres", "/", "critical", "tailscale", False),
    ("macmini", "Redis"): (6379, "redis", "/", "degraded", "tailscale", False),
    ("macmini", "MinIO API"): (9000, "http", "/minio/health/live", "degraded", "tailscale", False),
    ("macmini", "MinIO Console"): (9001, "http", "/", "degraded", "tailscale", True),
}


def bundled() -> Topology:
    return parse_topology(BUNDLED.read_text(encoding="utf-8"), "bundled default")


def test_bundled_default_is_the_sparklio_network() -> None:
    topology = bundled()
    assert (topology.name, topology.version) == ("Sparklio", 1)
    assert topology.defaults == Defaults(10.0, 3.0, 2, 1, 100.0, Access.TAILSCALE)
    nodes = {n.id: (n.hostname, n.ip, n.os, n.always_on) for n in topology.nodes}
    assert nodes == EXPECTED_NODES
    assert [n.id for n in topology.nodes] == ["desktop", "laptop", "macmini"]
    services = {
        (n.id, s.name): (
            s.port,
            s.check.value,
            s.path,
            s.impact.value,
            access_of(topology, s),
            s.open,
        )
        for n in topology.nodes
        for s in n.services
    }
    assert services == EXPECTED_SERVICES
    consumers = {s.name: s.consumers for n in topology.nodes for s in n.services if s.consumers}
    assert consumers == {
        "PostgreSQL": ("laptop",), "Redis": ("laptop",), "MinIO Console": ("laptop",)
    }  # fmt: skip
    assert all(s.expect_status == () and s.expect_body is None
               for n in topology.nodes for s in n.services)  # fmt: skip


def test_bundled_default_documents_its_choices() -> None:
    text = BUNDLED.read_text(encoding="utf-8")
    for word in ("/ws", "Whisper", "always_on = false", "never an alarm", "critical"):
        assert word in text


def test_describe_shows_nodes_services_and_source() -> None:
    text = describe_topology(dataclasses.replace(bundled(), source="/etc/x/topology.toml"))
    assert text.startswith("Sparklio (topology version 1)\nsource: /etc/x/topology.toml\n")
    assert "defaults: interval 10s, timeout 3s, failure_threshold 2, success_threshold 1, " in text
    assert "latency_warn_ms 100, access tailscale\n" in text
    assert "laptop: Laptop — Frontend Dev\n" in text
    assert "ip 100.101.68.23, hostname desktop-ecmkau8, os windows, not always on" in text
    lines = text.splitlines()
    fastapi = next(line for line in lines if line.strip().startswith("FastAPI"))
    assert fastapi.split() == [
        "FastAPI", "port", "8000", "http", "GET", "/health", "critical", "access", "tailscale",
        "(defaults)", "open", "in", "browser",
    ]  # fmt: skip
    redis = next(line for line in lines if line.strip().startswith("Redis"))
    assert redis.split() == [
        "Redis", "port", "6379", "redis", "degraded", "access", "tailscale", "(defaults)", "used",
        "by", "laptop",
    ]  # fmt: skip


def test_describe_a_node_without_services() -> None:
    text = describe_topology(parse_topology(HEAD + NODE, SOURCE))
    assert "services: none" in text


def test_dump_reads_back_to_the_bundled_default() -> None:
    topology = bundled()
    assert parse_topology(dump_topology(topology), "bundled default") == topology


# ==== property: generated valid topologies =====================================

_text = st.text(st.characters(codec="utf-8"), min_size=1, max_size=12).filter(str.strip)
_hostname = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9.-]{0,15}", fullmatch=True)
_seconds = st.floats(min_value=1e-3, max_value=1e5, allow_nan=False)


@st.composite
def _services(draw: st.DrawFn) -> tuple[Service, ...]:
    count = draw(st.integers(0, 4))
    ports = draw(st.lists(st.integers(1, 65535), min_size=count, max_size=count, unique=True))
    names = draw(st.lists(_text, min_size=count, max_size=count, unique=True))
    services = []
    for port, name in zip(ports, names, strict=True):
        check = draw(st.sampled_from(CheckKind))
        http = check is CheckKind.HTTP
        path = "/"
        if check in (CheckKind.HTTP, CheckKind.WEBSOCKET):
            path = "/" + draw(
                st.from_regex(r"([A-Za-z0-9_.~-][A-Za-z0-9/_.~?=&%-]*)?", fullmatch=True)
            )
        services.append(
            Service(
                name=name,
                port=port,
                check=check,
                path=path,
                expect_status=tuple(draw(st.lists(st.integers(100, 599), max_size=3)))
                if http
                else (),
                expect_body=draw(st.none() | _text) if http else None,
                impact=draw(st.sampled_from(Impact)),
                access=draw(st.sampled_from(Access)),
                open=draw(st.booleans()),
            )
        )
    return tuple(services)


@st.composite
def topologies(draw: st.DrawFn) -> Topology:
    count = draw(st.integers(1, 4))
    ids = draw(st.lists(st.from_regex(NODE_ID_PATTERN, fullmatch=True), min_size=count,
                        max_size=count, unique=True))  # fmt: skip
    hosts = draw(st.lists(_hostname, min_size=count, max_size=count, unique_by=str.lower))
    ips = draw(st.lists(st.ip_addresses().map(str), min_size=count, max_size=count, unique=True))
    nodes = tuple(
        Node(
            id=node_id,
            name=draw(_text),
            hostname=host,
            ip=ip,
            os=draw(st.sampled_from(["windows", "macos", "linux"])),
            role=draw(st.text(st.characters(codec="utf-8"), max_size=20)),
            always_on=draw(st.booleans()),
            services=draw(_services()),
        )
        for node_id, host, ip in zip(ids, hosts, ips, strict=True)
    )
    defaults = Defaults(
        interval_s=draw(_seconds),
        timeout_s=draw(_seconds),
        failure_threshold=draw(st.integers(1, 10)),
        success_threshold=draw(st.integers(1, 10)),
        latency_warn_ms=draw(st.floats(min_value=1e-3, max_value=1e6)),
    )
    return Topology(draw(_text), nodes, defaults, 1, "generated.toml")


@settings(deadline=None)
@given(topologies())
def test_generated_topologies_round_trip(topology: Topology) -> None:
    text = dump_topology(topology)
    assert parse_topology(text, "generated.toml") == topology
    description = describe_topology(topology)
    for node in topology.nodes:
        assert f"{node.id}: " in description
        assert node.ip in description


@settings(deadline=None)
@given(topologies(), st.data())
def test_one_typo_in_a_generated_file_is_named(topology: Topology, data: st.DataObject) -> None:
    """Renaming any one key of a valid file is refused as one problem (never also "required
    key is missing"), naming that key, its line and the fix."""
    lines = dump_topology(topology).split("\n")
    keyed = [i for i, line in enumerate(lines) if " = " in line and not line.startswith("version")]
    index = data.draw(st.sampled_from(keyed))
    indent, rest = (
        lines[index][: len(lines[index]) - len(lines[index].lstrip())],
        lines[index].lstrip(),
    )
    key = rest.split(" = ", 1)[0]
    lines[index] = f"{indent}{key}x = {rest.split(' = ', 1)[1]}"
    error = refused("\n".join(lines), "generated.toml")
    problems = error.message.splitlines()
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"generated.toml:{index + 1}: ")
    assert problems[0].endswith(f"unknown key '{key}x' — did you mean '{key}'?"), problems


# ==== errors a newcomer reads ==================================================


def test_a_typo_of_a_required_key_is_one_problem_named_by_its_service_with_the_fix() -> None:
    text = (
        HEAD
        + '[[nodes]]\nid = "macmini"\nname = "Mac mini — Backend Server"\n'
        + 'hostname = "woosuns-mac-mini"\nip = "100.123.51.5"\n'
        + '  [[nodes.services]]\n  name = "FastAPI"\n  port = 8000\n  chek = "http"\n'
    )
    error = refused(text)
    assert error.message == (
        f"{SOURCE}:10: FastAPI on Mac mini: unknown key 'chek' — did you mean 'check'?"
    )
    assert (error.key, error.line) == ("nodes[0].services[0].chek", 10)  # the path, for tools


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (HEAD + NODE + SVC.replace("port = 80", "port = 70000"),
         f"{SOURCE}:8: web on a: port: 70000 is out of range (1..65535)"),
        (HEAD + NODE.replace('ip = "100.64.0.1"', 'ip = "1.2.3"'),
         f'{SOURCE}:5: a: ip: "1.2.3" is not an IPv4 or IPv6 address'),
        (HEAD + '[[nodes]]\nname = "맥 미니 — 백엔드"\nhostname = "m"\nip = "100.64.0.9"\n',
         f"{SOURCE}:2: 맥 미니: id: required key is missing"),
        (HEAD + NODE + '  [[nodes.services]]\n  port = 80\n  check = "tcp"\n',
         f"{SOURCE}:6: service 1 on a: name: required key is missing"),
        (HEAD + '[defaults]\ninterval = "soon"\n' + NODE,
         f'{SOURCE}:3: defaults.interval: "soon" is not a duration; write e.g. "10s", "500ms", '
         '"1m" or a number of seconds'),
    ],
    ids=["service", "node", "node-by-name", "unnamed-service", "defaults"],
)  # fmt: skip
def test_problems_name_the_node_or_service_they_are_in(text: str, shown: str) -> None:
    assert str(refused(text)) == shown
