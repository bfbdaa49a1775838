"""Errors as values: each kind carries the exit code main.py turns it into."""

from __future__ import annotations

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_API = 3
EXIT_INCOMPLETE = 4
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143  # 128 + SIGTERM

# The Messages API's error type for an HTTP status: of an HTTP error (transport.py), and of a
# mid-stream error that carries one in `error.code` (gateways such as OpenRouter; dialects/openai.py).
STATUS_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def status_type(status: int, below_500: str) -> str:
    """STATUS_TYPES' name for `status`; else api_error from 500 up, and `below_500` under it."""
    return STATUS_TYPES.get(status, "api_error" if status >= 500 else below_500)


class ToolchatError(Exception):
    """Base of every error toolchat reports to a person; `type` is the machine-readable kind."""

    exit_code = 1
    type = "error"
    # Retry hints from the failed response (see retry.py): the wait the server asked for in
    # seconds, its x-should-retry verdict, and the error code of its body (details.error_code).
    retry_after: float | None = None
    should_retry: bool | None = None
    error_code: str | None = None

    def __init__(
        self, message: str, *, type: str | None = None, status: int | None = None, request_id: str | None = None
    ):
        super().__init__(message)
        self.message = message
        if type is not None:
            self.type = type
        self.status = status
        self.request_id = request_id

    def to_json(self) -> dict:
        return {"type": self.type, "message": self.message, "status": self.status, "request_id": self.request_id}


class UsageError(ToolchatError):
    """Bad flags, arguments or configuration."""

    exit_code = EXIT_USAGE
    type = "usage_error"


class ToolsFileError(UsageError):
    """A tools file that cannot be loaded; the message names the file, the tool and the field."""

    type = "tools_file_error"


class APIError(ToolchatError):
    """The server answered with an error (HTTP status or an `error` event)."""

    exit_code = EXIT_API
    type = "api_error"


class TransportError(ToolchatError):
    """The request could not be made or the connection failed."""

    exit_code = EXIT_API
    type = "connection_error"


class StreamError(ToolchatError):
    """The stream was malformed or ended before `message_stop`."""

    exit_code = EXIT_API
    type = "stream_error"


class Interrupted(ToolchatError):
    """The user pressed Ctrl-C (exit 130), or the process got SIGTERM (type terminated, 143)."""

    exit_code = EXIT_INTERRUPTED
    type = "interrupted"

    def __init__(self, message: str, *, exit_code: int = EXIT_INTERRUPTED):
        super().__init__(message, type="terminated" if exit_code == EXIT_TERMINATED else None)
        self.exit_code = exit_code


class Terminated(KeyboardInterrupt):
    """SIGTERM: handled like Ctrl-C, but the exit code is 143."""


def interruption(exc: BaseException) -> Interrupted:
    """The error a run ends with after Ctrl-C (KeyboardInterrupt) or SIGTERM (Terminated)."""
    if isinstance(exc, Terminated):
        return Interrupted("terminated", exit_code=EXIT_TERMINATED)
    return Interrupted("interrupted")
