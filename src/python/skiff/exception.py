"""skiff.exception: the errors a skiff caller can see (docs/python.md, "Errors").

Each class is named as libskiff's error code (skiff_code_name), so the C extension maps a
failure to its class by name. ``TimeoutError`` is also the builtin ``TimeoutError`` (what
``FunctionCall.get`` raises past its timeout) and ``ConnectionError`` the builtin one. A remote
function's own exception is re-raised with its own type when the caller has imported its
module; its
remote traceback is the attribute ``remote_traceback`` and a note shown under the local one.
"""
import builtins


class Error(Exception):
    """Base class of skiff's errors."""


class InvalidError(Error):
    """Misuse of the API or bad arguments."""


class NotFoundError(Error):
    """Unknown app, function, class or call id."""


class TimeoutError(Error, builtins.TimeoutError):
    """get() ran out of time; the call still runs."""


class OutputExpiredError(Error):
    """The result is gone (retention ended)."""


class FunctionTimeoutError(Error):
    """The function ran past its timeout."""


class RemoteError(Error):
    """The remote side failed without user data (crash, a type the caller cannot import)."""


class CancelledError(Error):
    """The call was cancelled."""


class ExecutionError(Error):
    """The call could not run as asked (e.g. local() without a local definition)."""


class InternalFailure(Error):
    """The server failed."""


class ResourceExhaustedError(Error):
    """Queue or rate limits."""


class AuthError(Error):
    """Missing or refused token."""


class ConnectionError(Error, builtins.ConnectionError):
    """Cannot reach, or lost, the server."""


class SerializationError(Error):
    """A value cannot be encoded."""


class DeserializationError(Error):
    """Malformed data was received."""


class RequestSizeError(Error):
    """A payload over the size limit."""


class InitFailureError(RemoteError):
    """The container could not start the function (import or enter hook failed)."""


class OutOfMemoryError(Error):
    """The container ran out of memory running the input."""


class InputCancellation(BaseException):
    """Raised inside a function body whose input was cancelled (FunctionCall.cancel): a
    BaseException, so ``except Exception`` in the body does not swallow it."""
