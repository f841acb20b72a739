"""JSON over HTTP for the ``openai`` backend, with failures mapped to typed errors.

Standard library only (:mod:`urllib.request`). The API key is read from an environment
variable at each request, never stored or logged. Failures become the errors the wrappers of
:mod:`valuegym.lm.wrappers` act on: overload, server errors, time-outs and dropped connections
are :class:`~valuegym.lm.base.TransientLanguageModelError` (retried, counted by kind, after
the ``Retry-After`` the server sent), a refused connection or unknown host is
:class:`ServerUnreachableError`, a rejected key is
:class:`~valuegym.lm.base.LanguageModelUnavailableError`. Messages are one line.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from valuegym.lm.base import (
    LanguageModelError,
    LanguageModelUnavailableError,
    TransientLanguageModelError,
)

__all__ = ["JsonClient", "ServerUnreachableError", "retry_after_seconds"]


class ServerUnreachableError(LanguageModelUnavailableError, TransientLanguageModelError):
    """The server could not be reached (refused, unknown host, or no answer in time)."""


def retry_after_seconds(value: str | None, *, now: float | None = None) -> float | None:
    """The wait a ``Retry-After`` header asks for, in seconds.

    Args:
        value: The header: delay seconds (``"2"``) or an HTTP date; ``None`` when absent.
        now: The current time as a Unix timestamp, for dates (default: the clock).

    Returns:
        Seconds to wait (0 for a date in the past), or ``None`` without a readable header.
    """
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            date = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = date.timestamp() - (time.time() if now is None else now)
    return max(seconds, 0.0) if seconds == seconds else None  # NaN is no answer


class JsonClient:
    """Posts JSON bodies to the endpoints under one API root.

    Args:
        base_url: The API root, e.g. ``"http://localhost:8000/v1"``.
        api_key_env: Environment variable holding the API key; no ``Authorization`` header
            when it is unset.
        timeout: Seconds to wait for a connection and for each answer.
    """

    def __init__(self, base_url: str, *, api_key_env: str, timeout: float) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key_env = api_key_env
        self.timeout = timeout

    def post(self, endpoint: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST a JSON body and return the decoded answer.

        Args:
            endpoint: The path under the API root, e.g. ``"completions"``.
            body: The request's JSON body.

        Returns:
            The answer's JSON object.

        Raises:
            TransientLanguageModelError: On HTTP 429 or 5xx, a time-out, a dropped connection
                or an answer that is not JSON.
            ServerUnreachableError: If the server cannot be reached.
            LanguageModelUnavailableError: On HTTP 401 or 403 (the API key).
            LanguageModelError: On any other HTTP error.
        """
        url = f"{self.base_url}/{endpoint}"
        headers = {"Content-Type": "application/json"}
        api_key = os.environ.get(self.api_key_env)
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        request = urllib.request.Request(
            url, data=json.dumps(body).encode("utf-8"), headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                answer: dict[str, Any] = json.loads(response.read().decode("utf-8"))
            return answer
        except urllib.error.HTTPError as error:
            detail = " ".join(error.read().decode("utf-8", errors="replace").split())[:500]
            message = f"{url}: HTTP {error.code}: {detail}"
            if error.code == 429 or error.code >= 500:
                raise TransientLanguageModelError(
                    message,
                    kind="overloaded" if error.code == 429 else "server_error",
                    retry_after=retry_after_seconds(error.headers.get("Retry-After")),
                ) from error
            if error.code in (401, 403):
                raise LanguageModelUnavailableError(
                    f"{message} (is the API key in ${self.api_key_env} right?)"
                ) from error
            raise LanguageModelError(message) from error
        except TimeoutError as error:
            raise TransientLanguageModelError(
                f"{url}: no answer within {self.timeout} s", kind="timeout"
            ) from error
        except urllib.error.URLError as error:
            raise ServerUnreachableError(
                f"language-model server {self.base_url} is unreachable ({error.reason}); "
                "start it or fix base_url",
                kind="unreachable",
            ) from error
        except (ConnectionError, http.client.HTTPException, json.JSONDecodeError) as error:
            # A connection closed mid-answer (IncompleteRead, RemoteDisconnected, a reset)
            # or a truncated body.
            raise TransientLanguageModelError(
                f"{url}: the answer broke off ({type(error).__name__}: {error})", kind="dropped"
            ) from error
