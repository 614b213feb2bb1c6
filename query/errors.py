"""Errors shared by every small language in ``query/`` (metric math, filter patterns,
Logs Insights, composite alarm rules).

Every error carries a :class:`Span` into the source text, and is rendered in one place
(:meth:`QueryError.render`) as ``line:col``, the message and a caret excerpt, the way
Prometheus' ``ParseErr`` and sqlglot's ``highlight_sql`` do.  The API layer maps these to
the AWS error of the operation (MalformedQueryException, InvalidParameterException,
ValidationError …); this module knows nothing about the wire.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Span:
    """Half-open character range ``[start, end)`` into the source text."""

    start: int
    end: int

    def line_col(self, text: str) -> tuple[int, int]:
        """1-based line and column of ``start``."""
        before = text[: self.start]
        line = before.count("\n") + 1
        col = self.start - (before.rfind("\n") + 1) + 1
        return line, col


class QueryError(Exception):
    """A user error in a query text, positioned by ``span``."""

    def __init__(self, message: str, span: Span | None = None, text: str | None = None):
        super().__init__(message)
        self.message = message
        self.span = span
        self.text = text

    @property
    def line(self) -> int:
        return self.span.line_col(self.text)[0] if self.span and self.text is not None else 0

    @property
    def column(self) -> int:
        return self.span.line_col(self.text)[1] if self.span and self.text is not None else 0

    def with_text(self, text: str) -> "QueryError":
        if self.text is None:
            self.text = text
        return self

    def excerpt(self) -> str:
        """The offending line with a caret under the span."""
        if self.span is None or self.text is None:
            return ""
        start = min(self.span.start, len(self.text))
        line_start = self.text.rfind("\n", 0, start) + 1
        line_end = self.text.find("\n", start)
        if line_end < 0:
            line_end = len(self.text)
        source_line = self.text[line_start:line_end]
        width = max(1, min(self.span.end, line_end) - start)
        return f"{source_line}\n{' ' * (start - line_start)}{'^' * width}"

    def render(self) -> str:
        """``line 1, column 5: message`` followed by the caret excerpt."""
        if self.span is None or self.text is None:
            return self.message
        return f"line {self.line}, column {self.column}: {self.message}\n{self.excerpt()}"

    def __str__(self) -> str:  # pragma: no cover - convenience
        return self.render()


class QuerySyntaxError(QueryError):
    """The text does not parse."""


class UnknownFunctionError(QueryError):
    """A function name that the language does not have."""


class UnknownFieldError(QueryError):
    """A field or identifier that cannot be resolved."""


class UnsupportedError(QueryError):
    """Parsed, but not runnable by this engine (never silently ignored)."""


class EvaluationError(QueryError):
    """A runtime error in an otherwise valid expression (e.g. wrong argument types)."""


def from_lark(exc: Exception, text: str) -> QueryError:
    """Translate a lark exception into a positioned :class:`QuerySyntaxError`.

    ``VisitError`` wrapping a ``QueryError`` (raised inside a Transformer) is unwrapped so the
    original reaches the user unchanged.
    """
    from lark.exceptions import (UnexpectedCharacters, UnexpectedEOF, UnexpectedInput,
                                 UnexpectedToken, VisitError)

    if isinstance(exc, VisitError) and isinstance(exc.orig_exc, QueryError):
        return exc.orig_exc.with_text(text)
    if isinstance(exc, UnexpectedEOF) or (
        isinstance(exc, UnexpectedToken) and exc.token.type == "$END"
    ):
        pos = len(text)
        return QuerySyntaxError("unexpected end of input", Span(pos, pos + 1), text)
    if isinstance(exc, UnexpectedToken):
        pos = exc.token.start_pos if exc.token.start_pos is not None else 0
        value = str(exc.token)
        return QuerySyntaxError(f"unexpected '{value}'", Span(pos, pos + max(1, len(value))), text)
    if isinstance(exc, UnexpectedCharacters):
        pos = exc.pos_in_stream
        return QuerySyntaxError(f"unexpected character '{text[pos:pos + 1]}'", Span(pos, pos + 1), text)
    if isinstance(exc, UnexpectedInput):
        pos = getattr(exc, "pos_in_stream", 0) or 0
        return QuerySyntaxError("syntax error", Span(pos, pos + 1), text)
    return QuerySyntaxError(str(exc), None, text)
