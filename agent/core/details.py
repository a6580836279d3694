"""Rich service details: which services offer them, and how they read in the menu and JSON.

Pure. A probe that found its service up may record a few facts the service tells about
itself (agent.edges.probes.details fetches them; a failed detail request only leaves them
out). Which service offers what is known from its check kind, its name or its path:

- Ollama (named "Ollama", or probed at /api/tags): the models (GET /api/tags) and the models
  loaded in memory (GET /api/ps) — "3 models: llama3.1:8b, whisper, qwen2.5 · loaded: llama3.1:8b"
- ComfyUI (named "ComfyUI"): the queue (GET /queue) and the first GPU's VRAM
  (GET /system_stats) — "queue: 1 running, 2 pending · VRAM 5.1 of 24.0 GiB used"
- PostgreSQL (check "postgres"): the server version, when the handshake reveals it (trust
  authentication) — "PostgreSQL 16.4"
- Redis (check "redis"): version and role from INFO, when no password is required —
  "Redis 7.2.4, master"
- MinIO (probed at /minio/health/…): liveness and readiness — "MinIO live, ready"
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from agent.core.model import CheckKind, DetailValue, ProbeResult, Service

__all__ = ["DetailSource", "detail_line", "detail_source", "details_dict"]

_NAMES_SHOWN = 3  # model names listed before "+N more"
_GIB = 1024**3


class DetailSource(StrEnum):
    OLLAMA = "ollama"
    COMFYUI = "comfyui"
    POSTGRES = "postgres"
    REDIS = "redis"
    MINIO = "minio"


def detail_source(service: Service) -> DetailSource | None:
    """Which details a service offers, if any."""
    name = service.name.casefold()
    if service.check is CheckKind.POSTGRES:
        return DetailSource.POSTGRES
    if service.check is CheckKind.REDIS:
        return DetailSource.REDIS
    if service.check is not CheckKind.HTTP:
        return None
    if "comfyui" in name:  # names first: they say what the service is
        return DetailSource.COMFYUI
    if "ollama" in name or service.path.startswith("/api/tags"):
        return DetailSource.OLLAMA
    if service.path.startswith("/minio/health/"):
        return DetailSource.MINIO
    return None


def details_dict(result: ProbeResult) -> dict[str, Any]:
    """The details as `check --json` carries them (lists for names)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in result.details}


def _names(names: DetailValue) -> str:
    if not isinstance(names, tuple):
        return str(names)
    shown = ", ".join(names[:_NAMES_SHOWN])
    more = len(names) - _NAMES_SHOWN
    return f"{shown} +{more} more" if more > 0 else shown


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _ollama(d: Mapping[str, DetailValue]) -> list[str]:
    parts: list[str] = []
    models = d.get("models")
    if isinstance(models, tuple):
        head = _count(len(models), "model", "models")
        parts.append(f"{head}: {_names(models)}" if models else "no models pulled")
    loaded = d.get("models_loaded")
    if isinstance(loaded, tuple):
        parts.append(f"loaded: {_names(loaded)}" if loaded else "none loaded")
    return parts


def _comfyui(d: Mapping[str, DetailValue]) -> list[str]:
    parts: list[str] = []
    running, pending = d.get("queue_running"), d.get("queue_pending")
    if isinstance(running, int) and isinstance(pending, int):
        parts.append(f"queue: {running} running, {pending} pending")
    used, total = d.get("vram_used_bytes"), d.get("vram_total_bytes")
    if isinstance(used, int) and isinstance(total, int) and total > 0:
        parts.append(f"VRAM {used / _GIB:.1f} of {total / _GIB:.1f} GiB used")
    return parts


def detail_line(service: Service, result: ProbeResult) -> str:
    """The details in one line for the menu and the table ("" when there are none)."""
    if not result.details:
        return ""
    d = dict(result.details)
    source = detail_source(service)
    parts: list[str] = []
    if source is DetailSource.OLLAMA:
        parts = _ollama(d)
    elif source is DetailSource.COMFYUI:
        parts = _comfyui(d)
    elif source is DetailSource.POSTGRES and "server_version" in d:
        parts = [f"PostgreSQL {d['server_version']}"]
    elif source is DetailSource.REDIS and "version" in d:
        role = f", {d['role']}" if "role" in d else ""
        parts = [f"Redis {d['version']}{role}"]
    elif source is DetailSource.MINIO:
        said = [f"{k}" if d[k] == "yes" else f"not {k}" for k in ("live", "ready") if k in d]
        parts = [f"MinIO {', '.join(said)}"] if said else []
    return " · ".join(parts)
