"""One error family for every operation and every protocol.

Operations raise :class:`ServiceError` named by the *model's* error shape
(``InvalidParameterValueException``, ``ResourceNotFound`` …).  The codec of the request's
protocol renders it: it looks the shape up in botocore's model to find the query error code
and HTTP status (``InvalidParameterValueException`` → ``InvalidParameterValue``, 400), so the
operations never need to know how each protocol spells an error.  Errors that are not in the
service model (``ValidationError``, ``InvalidAction`` …) carry their own code and status.
"""
from __future__ import annotations


class ServiceError(Exception):
    """An AWS error answer.

    ``code`` is the error shape name of the service model where there is one, else the
    error code as AWS spells it on the wire.  ``status``/``query_code``/``namespace`` only
    matter for errors the model does not describe.
    """

    def __init__(self, code: str, message: str | None = None, status: int | None = None,
                 sender: bool = True, query_code: str | None = None,
                 namespace: str | None = None, headers: dict | None = None,
                 extra: dict | None = None):
        super().__init__(message or code)
        self.code = code
        self.message = message
        self.status = status
        self.sender = sender
        self.query_code = query_code
        self.namespace = namespace
        self.headers = headers or {}
        self.extra = extra or {}     # further members of the error shape (JSON/CBOR bodies)

    def __repr__(self) -> str:  # pragma: no cover
        return f"ServiceError({self.code!r}, {self.message!r})"


def validation_error(messages: list[str]) -> ServiceError:
    """AWS's coral validation error: ``1 validation error detected: Value … at '…' …``."""
    n = len(messages)
    head = f"{n} validation error{'s' if n != 1 else ''} detected: "
    return ServiceError("ValidationException", head + "; ".join(messages), status=400,
                        query_code="ValidationError", namespace="com.amazon.coral.validate")


def invalid_parameter_value(message: str) -> ServiceError:
    return ServiceError("InvalidParameterValueException", message)


def invalid_parameter_combination(message: str) -> ServiceError:
    return ServiceError("InvalidParameterCombinationException", message)


def missing_parameter(message: str) -> ServiceError:
    return ServiceError("MissingRequiredParameterException", message)


def invalid_action(message: str) -> ServiceError:
    return ServiceError("InvalidAction", message, status=400, query_code="InvalidAction")


def internal_failure() -> ServiceError:
    return ServiceError("InternalFailure", "The request processing has failed because of an "
                        "unknown error, exception or failure.", status=500, sender=False)
