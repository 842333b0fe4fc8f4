"""Talking to an OpenAI-compatible endpoint: JSON requests, base URLs, the models it serves, free ports."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request

from evalkit.settings import Settings, get_settings


def http_json(url: str, payload: dict | None = None, timeout: float = 5.0, api_key: str | None = None) -> dict:
    """GET (payload None) or POST JSON and decode the JSON reply. Raises OSError/ValueError on failure.

    ``api_key``: sent as a bearer token (default: the ``api_key`` setting, when there is one).
    """
    data = json.dumps(payload).encode() if payload is not None else None
    headers = {"Content-Type": "application/json"}
    if api_key is None:
        api_key = get_settings().api_key_value()
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    request = urllib.request.Request(url, data=data, headers=headers)
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read().decode())


def api_key_of(srv) -> str:
    """The API key to send to ``srv`` (its settings', else the process-wide one; "" without one)."""
    return (getattr(srv, "settings", None) or get_settings()).api_key_value()


def normalize_base_url(url: str) -> str:
    """``http://host:port``, ``.../v1`` or ``.../v1/`` all become ``http://host:port/v1``."""
    url = url.strip().rstrip("/")
    if "://" not in url:
        url = "http://" + url
    if not url.endswith("/v1"):
        url += "/v1"
    return url


def list_models(base_url: str, timeout: float = 5.0, api_key: str | None = None) -> list[dict]:
    """The ``data`` list of ``GET {base_url}/models`` (``api_key``: see :func:`http_json`)."""
    return http_json(f"{normalize_base_url(base_url)}/models", timeout=timeout, api_key=api_key).get("data", [])


def requests_answered(root_url: str, timeout: float = 2.0) -> int | None:
    """Requests a vLLM server has finished since it started (its ``/metrics`` counter), or None if it has none."""
    try:
        with urllib.request.urlopen(f"{root_url.rstrip('/')}/metrics", timeout=timeout) as response:
            text = response.read().decode()
    except (OSError, ValueError):
        return None
    counts = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
              if line.startswith("vllm:request_success_total{")]
    return int(sum(counts)) if counts else None


def heartbeat(root_url: str | None, tool: str, total: int | None = None):
    """A ``proc.run(heartbeat=...)`` line for a quiet tool.

    It says how long the tool has run and, where the server has vLLM's ``/metrics``, how many requests it
    answered since this was made ("of about ``total``" when known).
    """
    first = requests_answered(root_url) if root_url else None

    def beat(elapsed: float) -> str:
        now = requests_answered(root_url) if first is not None else None
        done = "" if now is None else f"; {now - first} requests answered so far" + (
            f" (of about {total})" if total else "")
        return f"{tool} running for {elapsed:.0f} s{done}"

    return beat


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def answers_at(base_url: str, settings: Settings) -> bool:
    try:
        list_models(base_url, settings.request_timeout_s, settings.api_key_value())
    except (OSError, ValueError):
        return False
    return True
