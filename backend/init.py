"""``sensu-backend init``: seed a running cluster through a backend's API.

Exit codes follow Sensu Go 6.x: 0 on success, 3 if the cluster was already
initialized (0 with ``--ignore-already-initialized``), 1 on any other failure.
``--timeout`` bounds each attempt; ``--wait`` keeps retrying until a backend
answers with a quorum.
"""

from __future__ import annotations

import sys
import time

import httpx

from .config import InitOptions

__all__ = ["run_init"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_ALREADY = 3


def _client(options: InitOptions, timeout: float) -> httpx.Client:
    verify: bool | str = True
    if options.insecure:
        verify = False
    elif options.ca_file:
        verify = options.ca_file
    return httpx.Client(timeout=timeout, verify=verify)


def run_init(options: InitOptions) -> int:
    url = options.api_url.rstrip("/") + "/init"
    body = {"username": options.username, "password": options.password, "api_key": options.api_key}
    deadline = time.monotonic() + max(options.timeout_s, 0.1)
    last_error = "no backend answered"
    with _client(options, max(options.timeout_s, 1.0)) as client:
        while True:
            try:
                resp = client.post(url, json=body)
            except httpx.HTTPError as exc:
                last_error = f"cannot reach {options.api_url}: {exc}"
            else:
                if resp.status_code in (200, 201):
                    print("sensu-backend initialized")
                    return EXIT_OK
                if resp.status_code == 409:
                    print("sensu-backend already initialized", file=sys.stderr)
                    return EXIT_OK if options.ignore_already_initialized else EXIT_ALREADY
                message = _message(resp)
                if resp.status_code != 503 and resp.status_code < 500:
                    print(f"sensu-backend init: {message}", file=sys.stderr)
                    return EXIT_FAILED
                last_error = message
            if not options.wait and time.monotonic() >= deadline:
                print(f"sensu-backend init: no backend available or cluster is unhealthy ({last_error})",
                      file=sys.stderr)
                return EXIT_FAILED
            time.sleep(0.5)


def _message(resp: httpx.Response) -> str:
    try:
        data = resp.json()
        return str(data.get("message", resp.text))
    except ValueError:
        return resp.text.strip() or f"HTTP {resp.status_code}"
