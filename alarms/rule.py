"""Composite alarm rules (PutCompositeAlarm ``AlarmRule``): parse, inspect, evaluate.

``parse_rule`` turns the text into a small tree of frozen dataclasses (each with a
:class:`~query.errors.Span`; spans do not take part in equality, so trees compare by
structure) or raises a positioned :class:`~query.errors.QueryError`.  ``aws_message`` renders
such an error the way CloudWatch words it in its ValidationError:
``Error in AlarmRule [Unsupported token 'Oldest' at char 67, must be: ')']`` (``char`` is the
0-based offset).

A function such as ``ALARM(x)`` is true when child ``x`` is in exactly that state, so
``NOT ALARM(x)`` is true for OK and INSUFFICIENT_DATA.  A composite is INSUFFICIENT_DATA only
right after creation; afterwards it is ALARM while its rule is true and OK otherwise.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Iterable, Iterator, Mapping, Union

import dataclasses

from lark import Lark, Token, Transformer, Tree, v_args
from lark.exceptions import (LarkError, UnexpectedCharacters, UnexpectedEOF, UnexpectedInput,
                             UnexpectedToken)

from alarms.model import (ALARM, OK, ChildState, CompositeAlarm, Evaluation, format_iso_millis,
                          format_long_date, utc)
from query.errors import QueryError, QuerySyntaxError, Span, from_lark

# PutCompositeAlarm limits (reference R6.2).
MAX_RULE_LENGTH = 10240
MAX_CHILDREN = 100
MAX_ELEMENTS = 500
MAX_ALARM_NAME_LENGTH = 255
# Ours, not AWS's (it documents none): NOT and parentheses nested deeper than this are
# rejected, so that evaluation never runs out of stack.
MAX_NESTING = 100


# ---- the tree -------------------------------------------------------------------------------

@dataclass(frozen=True)
class StateFunction:
    """``ALARM(x)``, ``OK(x)`` or ``INSUFFICIENT_DATA(x)``; ``alarm`` is a name or an ARN."""

    state: str
    alarm: str
    quoted: bool = field(default=False, compare=False)
    span: Span | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Constant:
    """``TRUE`` or ``FALSE``."""

    value: bool
    span: Span | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Not:
    operand: "Rule"
    span: Span | None = field(default=None, compare=False)


@dataclass(frozen=True)
class And:
    operands: tuple["Rule", ...]
    span: Span | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Or:
    operands: tuple["Rule", ...]
    span: Span | None = field(default=None, compare=False)


Rule = Union[StateFunction, Constant, Not, And, Or]


# ---- parsing --------------------------------------------------------------------------------

_PARSER = Lark.open("rule.lark", rel_to=__file__, parser="lalr", lexer="contextual",
                    propagate_positions=True, maybe_placeholders=False)

_DISPLAY = {"LPAR": "'('", "RPAR": "')'", "AND": "'AND'", "OR": "'OR'", "NOT": "'NOT'",
            "TRUE": "'TRUE'", "FALSE": "'FALSE'", "STATE": "a function",
            "NAME": "an alarm name", "QUOTED": "an alarm name"}
_WORD = re.compile(r'"[^"]*"?|[^\s()"]+|\S')


def _span(meta_or_token) -> Span:
    return Span(meta_or_token.start_pos, meta_or_token.end_pos)


class _ToRule(Transformer):
    def __init__(self, text: str):
        super().__init__()
        self.text = text

    def start(self, children):
        return children[0]

    def _whole(self, tree_children) -> Span:
        first, last = tree_children[0], tree_children[-1]
        start = first.start_pos if isinstance(first, Token) else first.span.start
        end = last.end_pos if isinstance(last, Token) else last.span.end
        return Span(start, end)

    def disjunction(self, children):
        operands = tuple(c for c in children if not isinstance(c, Token))
        return Or(operands, self._whole(children))

    def conjunction(self, children):
        operands = tuple(c for c in children if not isinstance(c, Token))
        return And(operands, self._whole(children))

    def negation(self, children):
        return Not(children[1], self._whole(children))

    @v_args(meta=True)
    def group(self, meta, children):
        # The parentheses belong to the operand's span: errors then point at all of it.
        return dataclasses.replace(children[0], span=Span(meta.start_pos, meta.end_pos))

    def true(self, children):
        return Constant(True, _span(children[0]))

    def false(self, children):
        return Constant(False, _span(children[0]))

    @v_args(meta=True)
    def function(self, meta, children):
        state, (name, quoted, _) = children
        return StateFunction(str(state), name, quoted, Span(meta.start_pos, meta.end_pos))

    def bare_name(self, children):
        token = children[0]
        return self._name(str(token), False, _span(token))

    def quoted_name(self, children):
        token = children[0]
        return self._name(str(token)[1:-1], True, _span(token))

    def _name(self, name: str, quoted: bool, span: Span):
        if not name:
            raise QuerySyntaxError("Alarm name must not be empty", span, self.text)
        if len(name) > MAX_ALARM_NAME_LENGTH and not name.startswith("arn:"):
            raise QueryError(f"Alarm name is longer than {MAX_ALARM_NAME_LENGTH} characters",
                             span, self.text)
        return name, quoted, span


def parse_rule(text: str) -> Rule:
    """Parse an AlarmRule; raise :class:`QuerySyntaxError` (positioned) or :class:`QueryError`
    for AWS's limits (length, children, elements)."""
    if len(text) > MAX_RULE_LENGTH:
        raise QueryError(f"AlarmRule must be at most {MAX_RULE_LENGTH} characters",
                         Span(MAX_RULE_LENGTH, len(text)), text)
    try:
        tree = _PARSER.parse(text)
    except UnexpectedInput as exc:
        raise _syntax_error(exc, text) from None
    except LarkError as exc:  # pragma: no cover - lark internals
        raise from_lark(exc, text) from None
    groups = _check_nesting(tree, text)
    try:
        rule = _ToRule(text).transform(tree)
    except LarkError as exc:
        raise from_lark(exc, text) from None
    _check_limits(rule, groups, text)
    return rule


def _syntax_error(exc: UnexpectedInput, text: str) -> QueryError:
    """AWS's wording, positioned where lark stopped."""
    base = from_lark(exc, text)
    at_end = isinstance(exc, UnexpectedEOF) or (
        isinstance(exc, UnexpectedToken) and exc.token.type == "$END")
    if at_end or base.span is None:
        pos = len(text)
        return QuerySyntaxError(f"Unexpected end of AlarmRule at char {pos}", Span(pos, pos + 1), text)
    pos = base.span.start
    if isinstance(exc, UnexpectedToken):
        word, expected = str(exc.token), getattr(exc, "accepts", None) or exc.expected
    else:
        match = _WORD.match(text, pos)
        word = match.group(0) if match else text[pos:pos + 1]
        expected = exc.allowed if isinstance(exc, UnexpectedCharacters) else set()
    message = f"Unsupported token '{word}' at char {pos}"
    shown = {_DISPLAY.get(name, name) for name in expected or () if name != "$END"}
    if len(shown) == 1:
        message += f", must be: {shown.pop()}"
    return QuerySyntaxError(message, Span(pos, pos + max(1, len(word))), text)


def _check_nesting(tree: Tree, text: str) -> int:
    """Reject rules nested deeper than MAX_NESTING (iteratively); return the number of groups."""
    groups = 0
    stack = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if node.data in ("group", "negation"):
            depth += 1
            groups += node.data == "group"
            if depth > MAX_NESTING:
                raise QueryError(f"AlarmRule is nested more than {MAX_NESTING} levels deep",
                                 Span(node.meta.start_pos, node.meta.end_pos), text)
        stack.extend((child, depth) for child in node.children if isinstance(child, Tree))
    return groups


def _check_limits(rule: Rule, groups: int, text: str) -> None:
    functions = list(_functions(rule))
    constants = sum(1 for node in walk(rule) if isinstance(node, Constant))
    children: dict[str, StateFunction] = {}
    for fn in functions:
        children.setdefault(fn.alarm, fn)
        if len(children) > MAX_CHILDREN:
            raise QueryError(f"AlarmRule may reference at most {MAX_CHILDREN} alarms",
                             fn.span, text)
    # AWS counts child alarms, TRUE/FALSE and parentheses; a parenthesised group counts once.
    if len(functions) + constants + groups > MAX_ELEMENTS:
        raise QueryError(f"AlarmRule may have at most {MAX_ELEMENTS} elements",
                         Span(0, len(text)), text)


def aws_message(error: QueryError) -> str:
    """The ValidationError message PutCompositeAlarm returns for a bad rule."""
    return f"Error in AlarmRule [{error.message}]"


# ---- inspecting -----------------------------------------------------------------------------

def walk(rule: Rule) -> Iterator[Rule]:
    """Every node, depth first, left to right."""
    stack = [rule]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, Not):
            stack.append(node.operand)
        elif isinstance(node, (And, Or)):
            stack.extend(reversed(node.operands))


def _functions(rule: Rule) -> Iterator[StateFunction]:
    return (node for node in walk(rule) if isinstance(node, StateFunction))


def referenced_alarms(rule: Rule) -> set[str]:
    """Alarm names and ARNs the rule mentions, as written."""
    return {fn.alarm for fn in _functions(rule)}


def referenced_in_order(rule: Rule) -> list[str]:
    """Like :func:`referenced_alarms`, in order of first appearance."""
    return list(dict.fromkeys(fn.alarm for fn in _functions(rule)))


def alarm_name(reference: str) -> str:
    """The alarm name in a reference: ``arn:aws:cloudwatch:r:a:alarm:NAME`` -> ``NAME``."""
    parts = reference.split(":", 6)
    if len(parts) == 7 and parts[0] == "arn" and parts[2] == "cloudwatch" and parts[5] == "alarm":
        return parts[6]
    return reference


def render(rule: Rule) -> str:
    """Rule text that parses back to an equal tree (always quotes names)."""
    if isinstance(rule, StateFunction):
        return f'{rule.state}("{rule.alarm}")'
    if isinstance(rule, Constant):
        return "TRUE" if rule.value else "FALSE"
    if isinstance(rule, Not):
        inner = render(rule.operand)
        simple = isinstance(rule.operand, (StateFunction, Constant, Not))
        return f"NOT {inner}" if simple else f"NOT ({inner})"
    if isinstance(rule, And):
        return " AND ".join(render(op) if not isinstance(op, (And, Or)) else f"({render(op)})"
                            for op in rule.operands)
    return " OR ".join(render(op) if not isinstance(op, Or) else f"({render(op)})"
                       for op in rule.operands)


# ---- evaluating -----------------------------------------------------------------------------

def _lookup(states: Mapping[str, object], reference: str):
    if reference in states:
        return states[reference]
    name = alarm_name(reference)
    if name in states:
        return states[name]
    raise KeyError(f"no state for alarm {reference!r}")


def evaluate_rule(rule: Rule, states: Mapping[str, str]) -> bool:
    """Evaluate over child states keyed by the reference as written, or by alarm name."""
    if isinstance(rule, StateFunction):
        return _lookup(states, rule.alarm) == rule.state
    if isinstance(rule, Constant):
        return rule.value
    if isinstance(rule, Not):
        return not evaluate_rule(rule.operand, states)
    if isinstance(rule, And):
        return all(evaluate_rule(op, states) for op in rule.operands)
    return any(evaluate_rule(op, states) for op in rule.operands)


def evaluate_composite(alarm: CompositeAlarm, child_states: Mapping[str, ChildState],
                       previous_state: str, now: datetime, *, trigger: str | None = None,
                       event: str = "created", rule: Rule | None = None) -> Evaluation:
    """Evaluate a composite alarm at ``now``.

    ``trigger`` names the child whose state change caused this evaluation; without one, the
    composite itself was ``event`` (``created`` or ``updated``) and every child is reported.
    ``child_states`` is keyed like :func:`evaluate_rule`.  As for metric alarms, the caller
    stores the result only when the state differs from ``previous_state``.  Pass ``rule`` to
    skip re-parsing ``alarm.rule_text``.
    """
    rule = rule if rule is not None else parse_rule(alarm.rule_text)
    states = {ref: _lookup(child_states, ref).value for ref in referenced_in_order(rule)}
    state = ALARM if evaluate_rule(rule, states) else OK
    if trigger is not None:
        child = _lookup(child_states, trigger)
        reason = f"{child.arn} transitioned to {child.value} at {format_long_date(child.timestamp)}"
        triggering = [child]
    else:
        reason = f"{alarm.arn} was {event} and its alarm rule evaluates to {state}"
        triggering = [_lookup(child_states, ref) for ref in referenced_in_order(rule)]
    data = {"triggeringAlarms": [
        {"arn": child.arn, "state": {"value": child.value, "timestamp": format_iso_millis(child.timestamp)}}
        for child in triggering]}
    return Evaluation(state, reason, data, utc(now))


def find_cycle(graph: Mapping[str, Iterable[str]]) -> list[str] | None:
    """A cycle in ``graph`` (composite -> the alarms its rule references) as a path that starts
    and ends at the same node, e.g. ``['a', 'b', 'a']``; None when there is none.  Nodes are
    visited in sorted order, so the answer is deterministic."""
    white, grey, black = 0, 1, 2
    color: dict[str, int] = {}
    for root in sorted(graph):
        if color.get(root, white) != white:
            continue
        path = [root]
        color[root] = grey
        iterators = [iter(sorted(graph.get(root, ())))]
        while iterators:
            child = next(iterators[-1], None)
            if child is None:
                color[path.pop()] = black
                iterators.pop()
                continue
            mark = color.get(child, white)
            if mark == grey:
                return path[path.index(child):] + [child]
            if mark == white:
                color[child] = grey
                path.append(child)
                iterators.append(iter(sorted(graph.get(child, ()))))
    return None


__all__ = [
    "Rule", "StateFunction", "Constant", "Not", "And", "Or", "parse_rule", "aws_message",
    "walk", "referenced_alarms", "referenced_in_order", "alarm_name", "render",
    "evaluate_rule", "evaluate_composite", "find_cycle",
    "MAX_RULE_LENGTH", "MAX_CHILDREN", "MAX_ELEMENTS", "MAX_NESTING",
]
