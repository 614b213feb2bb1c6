"""Model-driven reading of request parameters, shared by every protocol.

A decoder turns the wire body into plain Python (JSON/CBOR give typed values; the query
protocol gives a tree of strings).  :func:`reader` compiles, once per shape, a function that
walks such a value along botocore's shape, converts it to the types operations expect and
collects AWS's validation messages (required members, enums, lengths, ranges, patterns).

Types handed to operations: str, int, float, bool, bytes; timestamps as float epoch seconds;
structures as dicts keyed by the model's member names; lists and maps as list and dict.
"""
from __future__ import annotations

import base64
import datetime as dt
import math
import re
from functools import lru_cache

from ..errors import ServiceError, validation_error

_MAX_ERRORS = 10


class Problems:
    """Collects validation problems while a value is read."""

    __slots__ = ("validation", "missing", "type_errors", "strings")

    def __init__(self, strings: bool):
        self.validation: list[str] = []
        self.missing: list[tuple[str, str]] = []   # (coral path, query path)
        self.type_errors: list[str] = []
        self.strings = strings

    def raise_for(self, spec) -> None:
        if self.type_errors:
            if self.strings:
                raise ServiceError("InvalidParameterValueException" if spec.name == "cloudwatch"
                                   else "InvalidParameterException" if spec.name == "logs"
                                   else "InvalidParameter", self.type_errors[0],
                                   status=400, query_code="InvalidParameterValue"
                                   if spec.name == "cloudwatch" else "InvalidParameter")
            raise ServiceError("SerializationException", self.type_errors[0], status=400,
                               query_code="SerializationException")
        if self.missing and spec.missing_style == "missing":
            raise ServiceError("MissingRequiredParameterException",
                               f"The parameter {self.missing[0][1]} is required.",
                               status=400, query_code="MissingParameter")
        msgs = [f"Value null at '{p}' failed to satisfy constraint: Member must not be null"
                for p, _ in self.missing] + self.validation
        if msgs:
            err = validation_error(msgs[:_MAX_ERRORS])
            if spec.validation_error != "ValidationException":
                err = ServiceError(spec.validation_error, err.message, status=400)
            raise err


def _lower_first(name: str) -> str:
    return name[:1].lower() + name[1:]


def _render(value, depth: int = 0) -> str:
    if isinstance(value, (list, tuple, dict)) and depth >= 32:
        return "[…]" if not isinstance(value, dict) else "{…}"   # hostile nesting: no recursion
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_render(v, depth + 1) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={_render(v, depth + 1)}" for k, v in value.items()) + "}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return str(value)


def _bad(problems: Problems, value, path: str, constraint: str) -> None:
    if len(problems.validation) < _MAX_ERRORS:
        problems.validation.append(
            f"Value '{_render(value)}' at '{path}' failed to satisfy constraint: {constraint}")


def _type_error(problems: Problems, value, qpath: str, expected: str) -> None:
    if problems.strings:
        problems.type_errors.append(f"Value ({_render(value)}) for parameter {qpath} is invalid.")
    else:
        problems.type_errors.append(
            f"Value '{_render(value)}' at '{qpath}' cannot be read as {expected}.")


_TS_RE = re.compile(r"^\d{4}-\d\d-\d\dT")


def parse_timestamp(value) -> float | None:
    """Epoch seconds from an ISO-8601 string, an epoch number or a datetime."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        try:
            v = float(value)
        except OverflowError:          # an integer beyond any double
            return None
        return v if math.isfinite(v) else None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return value.timestamp()
    if isinstance(value, str):
        s = value.strip()
        if _TS_RE.match(s):
            try:
                if s.endswith(("Z", "z")):
                    s = s[:-1] + "+00:00"
                d = dt.datetime.fromisoformat(s)
            except ValueError:
                return None
            if d.tzinfo is None:
                d = d.replace(tzinfo=dt.timezone.utc)
            return d.timestamp()
        try:
            v = float(s)
        except ValueError:
            return None
        return v if math.isfinite(v) else None
    return None


def _length_checks(shape):
    meta = shape.metadata
    lo = meta.get("min")
    hi = meta.get("max")
    return lo, hi


@lru_cache(maxsize=None)
def _pattern(pattern: str):
    try:
        return re.compile(pattern, re.DOTALL)
    except re.error:
        return None


def reader(shape, strings: bool):
    """Compile a reader for ``shape``: ``read(value, path, qpath, problems) -> value``."""
    return _reader(shape, strings, {})


def _reader(shape, strings: bool, memo: dict):
    key = (shape.name, shape.type_name)
    if key in memo:
        # recursive shapes: resolve lazily through the memo
        return lambda v, p, q, pr: memo[key](v, p, q, pr)
    memo[key] = None
    fn = _BUILDERS[shape.type_name](shape, strings, memo)
    memo[key] = fn
    return fn


def _build_structure(shape, strings, memo):
    members = []
    for name, mshape in shape.members.items():
        wire = mshape.serialization.get("name", name) if strings else name
        members.append((name, wire, _lower_first(name), _reader(mshape, strings, memo)))
    required = set(shape.required_members)

    def read(value, path, qpath, problems):
        if not isinstance(value, dict):
            if strings and value == "":
                value = {}
            else:
                _type_error(problems, value, qpath or shape.name, "a structure")
                return None
        out = {}
        prefix = path + "." if path else ""
        qprefix = qpath + "." if qpath else ""
        for name, wire, lname, rd in members:
            v = value.get(wire)
            if v is None:
                if name in required:
                    problems.missing.append((prefix + lname, qprefix + name))
                continue
            r = rd(v, prefix + lname, qprefix + name, problems)
            if r is not None:
                out[name] = r
        return out

    return read


def _build_list(shape, strings, memo):
    item = _reader(shape.member, strings, memo)
    lo, hi = _length_checks(shape)
    flattened = shape.serialization.get("flattened", False)
    mname = shape.member.serialization.get("name", "member")

    def read(value, path, qpath, problems):
        if strings:
            if value == "":
                value = []
            elif isinstance(value, dict):
                node = value if flattened else value.get(mname)
                if node is None:
                    node = {}
                if not isinstance(node, dict):
                    _type_error(problems, value, qpath, "a list")
                    return None
                try:
                    items = sorted(node.items(), key=lambda kv: int(kv[0]))
                except ValueError:
                    _type_error(problems, value, qpath, "a list")
                    return None
                if items and (int(items[0][0]) < 1):
                    _type_error(problems, value, qpath, "a list")
                    return None
                value = [v for _, v in items]
            else:
                _type_error(problems, value, qpath, "a list")
                return None
        elif not isinstance(value, list):
            _type_error(problems, value, qpath, "a list")
            return None
        out = []
        for i, v in enumerate(value, 1):
            if v is None:
                continue
            r = item(v, f"{path}.{i}.member", f"{qpath}.member.{i}", problems)
            out.append(r)
        n = len(out)
        if lo is not None and n < lo:
            _bad(problems, out, path, f"Member must have length greater than or equal to {lo}")
        if hi is not None and n > hi:
            _bad(problems, "[" + ", ".join(_render(x) for x in out[:3]) + (", …]" if n > 3 else "]"),
                 path, f"Member must have length less than or equal to {hi}")
        return out

    return read


def _build_map(shape, strings, memo):
    key_rd = _reader(shape.key, strings, memo)
    val_rd = _reader(shape.value, strings, memo)
    lo, hi = _length_checks(shape)
    flattened = shape.serialization.get("flattened", False)
    kname = shape.key.serialization.get("name", "key")
    vname = shape.value.serialization.get("name", "value")

    def read(value, path, qpath, problems):
        if strings:
            if value == "":
                value = {}
            elif isinstance(value, dict):
                node = value if flattened else value.get("entry", {})
                if not isinstance(node, dict):
                    _type_error(problems, value, qpath, "a map")
                    return None
                pairs = {}
                for _, entry in sorted(node.items(), key=lambda kv: kv[0]):
                    if not isinstance(entry, dict):
                        _type_error(problems, value, qpath, "a map")
                        return None
                    pairs[entry.get(kname)] = entry.get(vname)
                value = pairs
            else:
                _type_error(problems, value, qpath, "a map")
                return None
        elif not isinstance(value, dict):
            _type_error(problems, value, qpath, "a map")
            return None
        out = {}
        for k, v in value.items():
            if k is None:
                continue
            rk = key_rd(k, path, qpath, problems)
            out[rk] = val_rd(v, f"{path}.{k}", f"{qpath}.{k}", problems) if v is not None else None
        n = len(out)
        if lo is not None and n < lo:
            _bad(problems, out, path, f"Member must have length greater than or equal to {lo}")
        if hi is not None and n > hi:
            _bad(problems, out, path, f"Member must have length less than or equal to {hi}")
        return out

    return read


def _build_string(shape, strings, memo):
    lo, hi = _length_checks(shape)
    enum = shape.enum if getattr(shape, "enum", None) else None
    enum_set = frozenset(enum) if enum else None
    # AWS lists the enum set in the reverse of the model's order (the one message verified
    # against AWS: SetAlarmState StateValue → "[INSUFFICIENT_DATA, ALARM, OK]").
    enum_text = (f"Member must satisfy enum value set: [{', '.join(reversed(enum))}]"
                 if enum else "")
    pattern = shape.metadata.get("pattern")
    rx = _pattern(pattern) if pattern else None

    def read(value, path, qpath, problems):
        if type(value) is not str:
            _type_error(problems, value, qpath, "a string")
            return None
        n = len(value)
        if lo is not None and n < lo:
            _bad(problems, value, path, f"Member must have length greater than or equal to {lo}")
        elif hi is not None and n > hi:
            _bad(problems, value, path, f"Member must have length less than or equal to {hi}")
        if enum_set is not None and value not in enum_set:
            _bad(problems, value, path, enum_text)
        elif rx is not None and rx.fullmatch(value) is None:
            _bad(problems, value, path,
                 f"Member must satisfy regular expression pattern: {pattern}")
        return value

    return read


def _range_checks(shape, value, path, problems):
    lo = shape.metadata.get("min")
    hi = shape.metadata.get("max")
    if lo is not None and value < lo:
        _bad(problems, value, path, f"Member must have value greater than or equal to {lo}")
    elif hi is not None and value > hi:
        _bad(problems, value, path, f"Member must have value less than or equal to {hi}")


# the wire types' ranges: a value outside cannot be read (AWS: SerializationException)
_INT_BOUNDS = {"integer": (-2**31, 2**31 - 1), "long": (-2**63, 2**63 - 1)}


def _build_integer(shape, strings, memo):
    has_range = "min" in shape.metadata or "max" in shape.metadata
    lo, hi = _INT_BOUNDS[shape.type_name]
    expected = "an integer" if shape.type_name == "integer" else "a long"

    def read(value, path, qpath, problems):
        if strings:
            try:
                value = int(value)
            except (TypeError, ValueError):
                _type_error(problems, value, qpath, "an integer")
                return None
        elif type(value) is not int:
            if type(value) is float and value.is_integer():
                value = int(value)
            else:
                _type_error(problems, value, qpath, "an integer")
                return None
        if not lo <= value <= hi:
            _type_error(problems, value, qpath, expected)
            return None
        if has_range:
            _range_checks(shape, value, path, problems)
        return value

    return read


_MAX_DOUBLE = 1.7976931348623157e308


def _build_double(shape, strings, memo):
    has_range = "min" in shape.metadata or "max" in shape.metadata

    def read(value, path, qpath, problems):
        t = type(value)
        if t is float:
            pass
        elif t is int:
            if not -_MAX_DOUBLE <= value <= _MAX_DOUBLE:   # JSON/CBOR integers beyond a double
                value = math.inf if value > 0 else -math.inf   # the double they round to
        elif strings and t is str:
            try:
                value = float(value)
            except ValueError:
                _type_error(problems, value, qpath, "a number")
                return None
        elif t is str and value in ("NaN", "Infinity", "-Infinity"):
            value = float(value)   # JSON protocol spells non-finite doubles as strings
        else:
            _type_error(problems, value, qpath, "a number")
            return None
        if has_range:
            _range_checks(shape, value, path, problems)
        return value

    return read


def _build_boolean(shape, strings, memo):
    def read(value, path, qpath, problems):
        if type(value) is bool:
            return value
        if strings and isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        _type_error(problems, value, qpath, "a boolean")
        return None

    return read


def _build_timestamp(shape, strings, memo):
    def read(value, path, qpath, problems):
        ts = parse_timestamp(value)
        if ts is None:
            _type_error(problems, value, qpath, "a timestamp")
        return ts

    return read


def _build_blob(shape, strings, memo):
    def read(value, path, qpath, problems):
        if isinstance(value, (bytes, bytearray)):
            return bytes(value)
        if isinstance(value, str):
            try:
                return base64.b64decode(value, validate=True)
            except ValueError:
                pass
        _type_error(problems, value, qpath, "a blob")
        return None

    return read


_BUILDERS = {
    "structure": _build_structure,
    "list": _build_list,
    "map": _build_map,
    "string": _build_string,
    "integer": _build_integer,
    "long": _build_integer,
    "double": _build_double,
    "float": _build_double,
    "boolean": _build_boolean,
    "timestamp": _build_timestamp,
    "blob": _build_blob,
}


# -- fast path ------------------------------------------------------------------------------
# Typed protocols (JSON, CBOR) usually send exactly the model's types.  A fast reader checks
# every constraint without building paths or new containers and converts in place; at the
# first thing it does not like (a violation, an unknown member, a null, an odd type) it gives
# up, and the full reader above runs to produce AWS's messages or the cleaned value.


class _Fallback(Exception):
    pass


_FALLBACK = _Fallback()


def fast_reader(shape):
    """Compile ``shape`` into Python source (scalar checks inlined) and return its reader."""
    gen = _FastGen()
    name = gen.function(shape)
    ns = {"F": _FALLBACK, "datetime": dt.datetime, "ts_of": parse_timestamp, "inf": math.inf}
    ns.update(gen.consts)
    exec(compile("\n".join(gen.lines), f"<fast reader {shape.name}>", "exec"), ns)
    return ns[name]


class _FastGen:
    """Generates one function per container shape; scalar members are checked inline."""

    def __init__(self):
        self.lines: list[str] = []
        self.names: dict = {}
        self.consts: dict = {}

    def const(self, value) -> str:
        name = f"c{len(self.consts)}"
        self.consts[name] = value
        return name

    def scalar_check(self, shape, var: str, ind: str, target: str | None) -> list[str] | None:
        """Lines that check scalar ``var`` (and convert it into ``target``), or None."""
        t = shape.type_name
        meta = shape.metadata
        out = []
        if t == "string":
            enum = getattr(shape, "enum", None)
            if enum:
                out.append(f"{ind}if {var} not in {self.const(frozenset(enum))} or type({var}) is not str: raise F")
                return out
            lo, hi = meta.get("min", 0), meta.get("max")
            cond = [f"type({var}) is not str"]
            if hi is not None:
                cond.append(f"not {lo} <= len({var}) <= {hi}")
            elif lo:
                cond.append(f"len({var}) < {lo}")
            out.append(f"{ind}if {' or '.join(cond)}: raise F")
            pattern = meta.get("pattern")
            rx = _pattern(pattern) if pattern else None
            if rx is not None:
                out.append(f"{ind}if {self.const(rx)}.fullmatch({var}) is None: raise F")
            return out
        if t in ("double", "float", "integer", "long"):
            if t in ("double", "float"):
                # integers beyond a double's range go to the full reader (→ ±inf)
                out.append(f"{ind}if type({var}) is not float and (type({var}) is not int or "
                           f"not -{_MAX_DOUBLE!r} <= {var} <= {_MAX_DOUBLE!r}): raise F")
            else:
                lo, hi = _INT_BOUNDS[t]
                out.append(f"{ind}if type({var}) is not int or not {lo} <= {var} <= {hi}: "
                           "raise F")
            if "min" in meta:
                out.append(f"{ind}if {var} < {meta['min']!r}: raise F")
            if "max" in meta:
                out.append(f"{ind}if {var} > {meta['max']!r}: raise F")
            return out
        if t == "boolean":
            return [f"{ind}if type({var}) is not bool: raise F"]
        if t == "timestamp":
            out.append(f"{ind}if type({var}) is float or type({var}) is int:")
            # NaN, ±inf and integers beyond a double all fail the range test
            out.append(f"{ind}    if not -{_MAX_DOUBLE!r} <= {var} <= {_MAX_DOUBLE!r}: raise F")
            out.append(f"{ind}elif type({var}) is datetime:")
            out.append(f"{ind}    {target} = ts_of({var})" if target else f"{ind}    raise F")
            out.append(f"{ind}else: raise F")
            return out
        return None

    def function(self, shape) -> str:
        key = (shape.name, shape.type_name)
        if key in self.names:
            return self.names[key]
        fname = f"r_{len(self.names)}"
        self.names[key] = fname
        t = shape.type_name
        body: list[str] = [f"def {fname}(value):"]
        if t == "structure":
            body.append("    if type(value) is not dict: raise F")
            body.append("    for k, v in value.items():")
            first = True
            for name, m in shape.members.items():
                kw = "if" if first else "elif"
                first = False
                body.append(f"        {kw} k == {name!r}:")
                chk = self.scalar_check(m, "v", "            ", f"value[{name!r}]")
                if chk is None:
                    sub = self.function(m)
                    body.append(f"            {sub}(v)")
                else:
                    body.extend(chk)
            body.append("        else: raise F" if not first else "        raise F")
            req = list(shape.required_members)
            if req:
                body.append(f"    if not value.keys() >= {self.const(frozenset(req))}: raise F")
            body.append("    return value")
        elif t == "list":
            lo, hi = shape.metadata.get("min", 0), shape.metadata.get("max")
            body.append("    if type(value) is not list: raise F")
            if hi is not None:
                body.append(f"    if not {lo} <= len(value) <= {hi}: raise F")
            elif lo:
                body.append(f"    if len(value) < {lo}: raise F")
            m = shape.member
            chk = self.scalar_check(m, "v", "        ", "value[i]")
            if chk is None:
                sub = self.function(m)
                body.append("    for v in value:")
                body.append(f"        {sub}(v)")
            else:
                body.append("    for i, v in enumerate(value):")
                body.extend(chk)
            body.append("    return value")
        elif t == "map":
            lo, hi = shape.metadata.get("min", 0), shape.metadata.get("max")
            body.append("    if type(value) is not dict: raise F")
            if hi is not None:
                body.append(f"    if not {lo} <= len(value) <= {hi}: raise F")
            elif lo:
                body.append(f"    if len(value) < {lo}: raise F")
            body.append("    for k, v in value.items():")
            kchk = self.scalar_check(shape.key, "k", "        ", None)
            body.extend(kchk or ["        raise F"])
            vchk = self.scalar_check(shape.value, "v", "        ", "value[k]")
            if vchk is None:
                body.append(f"        {self.function(shape.value)}(v)")
            else:
                body.extend(vchk)
            body.append("    return value")
        else:
            body.append("    raise F")
        self.lines.extend(body)
        self.lines.append("")
        return fname


@lru_cache(maxsize=None)
def _fast_input_reader(spec, op_name: str):
    op = spec.operation(op_name)
    return fast_reader(op.input_shape) if op.input_shape is not None else None


@lru_cache(maxsize=None)
def _input_reader(spec, op_name: str, strings: bool):
    op = spec.operation(op_name)
    if op.input_shape is None:
        return None
    return reader(op.input_shape, strings)


def read_input(spec, op_name: str, value, strings: bool) -> dict:
    """Validate and convert an operation's decoded input; raise the AWS error on problems."""
    rd = _input_reader(spec, op_name, strings)
    if rd is None:
        return {}
    if value is None:
        value = {}
    if not strings:
        fast = _fast_input_reader(spec, op_name)
        snapshot = value
        try:
            return fast(value)
        except _Fallback:
            pass
        except (TypeError, ValueError, OverflowError):
            pass
        value = snapshot
    problems = Problems(strings)
    out = rd(value, "", "", problems)
    if problems.type_errors or problems.missing or problems.validation:
        problems.raise_for(spec)
    return out or {}
