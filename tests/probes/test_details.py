"""Rich details against real loopback servers answering in the services' own shapes.

The HTTP answers follow the projects' documentation and sources:
- Ollama: github.com/ollama/ollama docs/api.md, "List Local Models" (GET /api/tags) and
  "List Running Models" (GET /api/ps); the bodies below are the documented examples' shape.
- ComfyUI: github.com/comfyanonymous/ComfyUI server.py, `@routes.get("/queue")` (lists of
  [number, prompt_id, prompt, extra_data, outputs_to_execute]) and
  `@routes.get("/system_stats")` ({"system": {...}, "devices": [{"name", "type", "index",
  "vram_total", "vram_free", "torch_vram_total", "torch_vram_free"}]}).
- MinIO: min.io docs "Healthcheck API": /minio/health/live and /minio/health/ready answer
  200 with no body when live / ready, 503 when not.
Redis and PostgreSQL are the real servers (tests/helpers/servers.py).
"""

from __future__ import annotations

import asyncio
import json

from agent.core.model import CheckKind, ProbeState, ProbeTarget, Service
from agent.edges.probes import make_http_client, run_probes
from agent.edges.probes.details import fetch_details
from tests.helpers.servers import Address, Route, http_server, postgres_server
from tests.probes.support import fixed_clock

OLLAMA_TAGS = {
    "models": [
        {
            "name": "llama3.1:8b",
            "model": "llama3.1:8b",
            "modified_at": "2025-05-04T17:37:44.706015396-07:00",
            "size": 4920753328,
            "digest": "46e0c10c039e019119339687c3c1757cc81b9da49709a3b3924863ba87ca666e",
            "details": {"parent_model": "", "format": "gguf", "family": "llama",
                        "families": ["llama"], "parameter_size": "8.0B",
                        "quantization_level": "Q4_K_M"},
        },
        {"name": "whisper:large", "model": "whisper:large", "size": 3094000000, "details": {}},
        {"name": "qwen2.5:7b", "model": "qwen2.5:7b", "size": 4683087332, "details": {}},
    ]
}  # fmt: skip
OLLAMA_PS = {
    "models": [
        {
            "name": "llama3.1:8b",
            "model": "llama3.1:8b",
            "size": 5137025024,
            "digest": "46e0c10c039e019119339687c3c1757cc81b9da49709a3b3924863ba87ca666e",
            "details": {"format": "gguf", "family": "llama", "parameter_size": "8.0B"},
            "expires_at": "2025-08-06T14:38:31.83753-07:00",
            "size_vram": 5137025024,
            "context_length": 4096,
        }
    ]
}
COMFY_QUEUE = {
    "queue_running": [[7, "3c1b0d1e-5a2e-4b8f-9a3e-1f2d4c5b6a70", {"3": {}}, {}, ["9"]]],
    "queue_pending": [
        [8, "b9e1a3f0-0c2d-4e5f-8a9b-7c6d5e4f3a21", {"3": {}}, {}, ["9"]],
        [9, "0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b", {"3": {}}, {}, ["9"]],
    ],
}
COMFY_STATS = {
    "system": {"os": "nt", "ram_total": 68600000000, "ram_free": 41200000000,
               "comfyui_version": "0.3.40", "python_version": "3.12.7", "embedded_python": True},
    "devices": [
        {"name": "cuda:0 NVIDIA GeForce RTX 4090 : cudaMallocAsync", "type": "cuda", "index": 0,
         "vram_total": 25756696576, "vram_free": 20390264832,
         "torch_vram_total": 5100273664, "torch_vram_free": 63309312},
    ],
}  # fmt: skip


def http_target(name: str, address: Address, path: str = "/") -> ProbeTarget:
    return ProbeTarget("desktop", Service(name, address[1], CheckKind.HTTP, path), address[0], 2.0)


def sweep_of(*targets: ProbeTarget) -> list:  # type: ignore[type-arg]
    return asyncio.run(run_probes(targets, clock=fixed_clock))


def test_ollama_models_and_loaded_models() -> None:
    routes = {"/api/tags": json.dumps(OLLAMA_TAGS), "/api/ps": json.dumps(OLLAMA_PS)}
    with http_server(routes) as address:
        (result,) = sweep_of(http_target("Ollama", address, "/api/tags"))
    assert result.state is ProbeState.UP
    assert dict(result.details) == {
        "models": ("llama3.1:8b", "whisper:large", "qwen2.5:7b"),
        "models_loaded": ("llama3.1:8b",),
    }


def test_comfyui_queue_and_vram() -> None:
    routes = {"/": "<html>ComfyUI</html>", "/queue": json.dumps(COMFY_QUEUE),
              "/system_stats": json.dumps(COMFY_STATS)}  # fmt: skip
    with http_server(routes) as address:
        (result,) = sweep_of(http_target("ComfyUI", address))
    assert dict(result.details) == {
        "queue_running": 1,
        "queue_pending": 2,
        "vram_used_bytes": 25756696576 - 20390264832,
        "vram_total_bytes": 25756696576,
        "gpu": "cuda:0 NVIDIA GeForce RTX 4090 : cudaMallocAsync",
    }


def test_minio_live_and_not_ready() -> None:
    routes = {"/minio/health/live": Route(200), "/minio/health/ready": Route(503)}
    with http_server(routes) as address:
        (result,) = sweep_of(http_target("MinIO API", address, "/minio/health/live"))
    assert dict(result.details) == {"live": "yes", "ready": "no"}


def test_a_failing_detail_request_never_fails_the_service() -> None:
    routes = {"/api/tags": json.dumps(OLLAMA_TAGS), "/api/ps": Route(500, "boom"),
              "/queue": "not json", "/system_stats": json.dumps({"devices": "odd"})}  # fmt: skip
    with http_server(routes) as address:
        ollama, comfy = sweep_of(
            http_target("Ollama", address, "/api/tags"),
            http_target("ComfyUI", address, "/api/tags"),
        )
    assert ollama.state is ProbeState.UP and dict(ollama.details) == {
        "models": ("llama3.1:8b", "whisper:large", "qwen2.5:7b")
    }
    assert comfy.state is ProbeState.UP and comfy.details == ()


def test_no_details_are_asked_of_a_service_that_is_down_or_offers_none() -> None:
    routes = {"/api/tags": Route(503), "/health": "ok"}
    with http_server(routes) as address:
        down, plain = sweep_of(
            http_target("Ollama", address, "/api/tags"), http_target("FastAPI", address, "/health")
        )
    assert (down.state, down.details) == (ProbeState.DOWN, ())
    assert (plain.state, plain.details) == (ProbeState.UP, ())


def test_a_detail_that_hangs_is_cut_at_the_timeout() -> None:
    routes = {"/api/tags": Route(200, json.dumps(OLLAMA_TAGS), delay=30), "/api/ps": "{}"}
    with http_server(routes) as address:
        target = ProbeTarget("desktop", Service("Ollama", address[1], CheckKind.HTTP, "/"),
                             address[0], 0.3)  # fmt: skip

        async def fetch() -> object:
            async with make_http_client() as client:
                return await fetch_details(target, client)

        assert asyncio.run(fetch()) == ()


def test_too_large_an_answer_is_not_read() -> None:
    big = {"models": [{"name": f"m{i}" * 50} for i in range(10_000)]}
    with http_server({"/api/tags": json.dumps(big), "/api/ps": "{}"}) as address:
        (result,) = sweep_of(http_target("Ollama", address, "/api/tags"))
    assert result.state is ProbeState.UP
    assert dict(result.details) == {}


def test_redis_version_and_role_without_auth(redis_addr: Address) -> None:
    t = ProbeTarget("macmini", Service("Redis", redis_addr[1], CheckKind.REDIS), redis_addr[0], 2.0)
    (result,) = sweep_of(t)
    details = dict(result.details)
    assert details["role"] == "master"
    assert str(details["version"])[0].isdigit()


def test_redis_with_a_password_tells_nothing(redis_auth_addr: Address) -> None:
    host, port = redis_auth_addr
    (result,) = sweep_of(ProbeTarget("macmini", Service("Redis", port, CheckKind.REDIS), host, 2.0))
    assert (result.state, result.details) == (ProbeState.UP, ())


def test_postgres_version_with_trust(postgres_addr: Address) -> None:
    host, port = postgres_addr
    t = ProbeTarget("macmini", Service("PostgreSQL", port, CheckKind.POSTGRES), host, 3.0)
    (result,) = sweep_of(t)
    version = dict(result.details)["server_version"]
    assert isinstance(version, str) and version.split(".")[0].isdigit(), version


def test_postgres_asking_a_password_tells_nothing() -> None:
    with postgres_server(auth="scram-sha-256") as (host, port):
        t = ProbeTarget("macmini", Service("PostgreSQL", port, CheckKind.POSTGRES), host, 3.0)
        (result,) = sweep_of(t)
    assert (result.state, result.details) == (ProbeState.UP, ())
