"""CloudWatch Embedded Metric Format (EMF): metrics carried inside log events.

A log event whose message is a JSON object with an ``_aws.CloudWatchMetrics`` directive
produces metrics when it is ingested (PutLogEvents).  The rules follow the specification,
https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html::

    {"_aws": {"Timestamp": 1574109732004,
              "CloudWatchMetrics": [{"Namespace": "lambda-function-metrics",
                                     "Dimensions": [["functionVersion"]],
                                     "Metrics": [{"Name": "time", "Unit": "Milliseconds",
                                                  "StorageResolution": 60}]}]},
     "functionVersion": "$LATEST", "time": 100}

- the message is one JSON object, nothing before or after it;
- each MetricDirective needs Namespace (1–255 characters), Dimensions (an array of
  DimensionSets, each an array of at most 30 root member names; ``[]`` is a set with no
  dimension) and Metrics (at most 100 MetricDefinitions: Name, optional Unit, optional
  StorageResolution 1 or 60);
- targets are members of the root object, never nested: a metric target is a number or an
  array of at most 100 numbers, a dimension target is a string;
- ``_aws.Timestamp`` (epoch ms) dates the metrics; we fall back to the event's timestamp when
  it is absent.  Metrics dated more than two weeks back or two hours ahead are dropped, as
  PutMetricData would refuse them.

Every metric of every DimensionSet becomes one sample per value.  A document that breaks a
rule produces no metrics at all (AWS counts it in ``EMFValidationErrors``) but is still
stored as an ordinary log event: EMF never makes PutLogEvents fail.  This module is pure
(no I/O): it runs in the PutLogEvents prepare step, on an ingest worker process when the
body is large.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import orjson

from .operations.metrics import MAX_VALUE, UNIT_CODE
from .store.metrics import dim_key

MARKER = '"_aws"'
MAX_DIMENSIONS = 30
MAX_METRICS = 100
MAX_VALUES = 100
TWO_WEEKS_MS = 14 * 86_400_000
TWO_HOURS_MS = 2 * 3_600_000


@dataclass
class EmfMetrics:
    """Samples extracted from one batch of events, as columns.  ``event`` is the index of the
    event in its batch, so a caller can keep only the samples of events it accepted."""

    event: list = field(default_factory=list)
    key: list = field(default_factory=list)       # (namespace, metric name, dim_key)
    ts: list = field(default_factory=list)        # epoch ms
    value: list = field(default_factory=list)
    unit: list = field(default_factory=list)      # UNIT_CODE
    hires: list = field(default_factory=list)
    invalid: int = 0                              # documents that broke a rule

    def __len__(self) -> int:
        return len(self.ts)

    def between(self, lo: int, hi: int) -> "EmfMetrics":
        """The samples of events ``lo <= index < hi``."""
        if not self.event or (self.event[0] >= lo and self.event[-1] < hi):
            return self
        keep = [i for i, e in enumerate(self.event) if lo <= e < hi]
        out = EmfMetrics(invalid=self.invalid)
        for name in ("event", "key", "ts", "value", "unit", "hires"):
            col = getattr(self, name)
            setattr(out, name, [col[i] for i in keep])
        return out


class _Invalid(Exception):
    pass


def extract(messages: list[str], timestamps, now_ms: int,
            allow_aws_namespaces: bool = False) -> EmfMetrics | None:
    """Metrics of the EMF events among ``messages`` (``timestamps`` are the events' epoch
    ms).  None when no message can be EMF; the common case costs one substring search."""
    if not messages or MARKER not in "\x00".join(messages):
        return None
    out = EmfMetrics()
    for i, message in enumerate(messages):
        if MARKER not in message:
            continue
        try:
            doc = orjson.loads(message)
        except orjson.JSONDecodeError:
            continue                  # not JSON: a plain event
        if not isinstance(doc, dict):
            continue
        meta = doc.get("_aws")
        if not isinstance(meta, dict) or "CloudWatchMetrics" not in meta:
            continue                  # JSON, but no metric directive: a plain event
        try:
            samples = _document(doc, meta, int(timestamps[i]), now_ms, allow_aws_namespaces)
        except _Invalid:
            out.invalid += 1
            continue
        for key, ts, value, unit, hires in samples:
            out.event.append(i)
            out.key.append(key)
            out.ts.append(ts)
            out.value.append(value)
            out.unit.append(unit)
            out.hires.append(hires)
    return out


def _string(v, lo: int = 1, hi: int = 255) -> str:
    if not isinstance(v, str) or not lo <= len(v) <= hi:
        raise _Invalid
    return v


def _number(v) -> float:
    # JSON booleans are not numbers, though Python's bool is an int
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise _Invalid
    v = float(v)
    if not math.isfinite(v) or abs(v) > MAX_VALUE:
        raise _Invalid
    return v


def _document(doc: dict, meta: dict, event_ts: int, now_ms: int, allow_aws: bool) -> list:
    """All samples of one EMF document, or _Invalid: the document is all or nothing."""
    directives = meta["CloudWatchMetrics"]
    if not isinstance(directives, list):
        raise _Invalid
    ts = meta.get("Timestamp", event_ts)
    if isinstance(ts, bool) or not isinstance(ts, (int, float)) or not math.isfinite(ts):
        raise _Invalid
    ts = int(ts)
    if ts < now_ms - TWO_WEEKS_MS or ts > now_ms + TWO_HOURS_MS:
        raise _Invalid
    samples = []
    for d in directives:
        if not isinstance(d, dict):
            raise _Invalid
        namespace = _string(d.get("Namespace"))
        if namespace.startswith("AWS/") and not allow_aws:
            raise _Invalid
        if namespace.startswith(":"):
            raise _Invalid
        dim_sets = d.get("Dimensions")
        metrics = d.get("Metrics")
        if not isinstance(dim_sets, list) or not dim_sets:
            raise _Invalid
        if not isinstance(metrics, list) or len(metrics) > MAX_METRICS:
            raise _Invalid
        dkeys = []
        for names in dim_sets:
            if not isinstance(names, list) or len(names) > MAX_DIMENSIONS:
                raise _Invalid
            pairs = []
            for name in names:
                _string(name)
                if name.startswith(":") or not name.strip():
                    raise _Invalid
                value = _string(doc.get(name), 1, 1024)   # a missing target is invalid too
                if not value.strip():
                    raise _Invalid
                pairs.append({"Name": name, "Value": value})
            if len({p["Name"] for p in pairs}) != len(pairs):
                raise _Invalid
            dkeys.append(dim_key(pairs))
        for m in metrics:
            if not isinstance(m, dict):
                raise _Invalid
            name = _string(m.get("Name"))
            unit = m.get("Unit", "None")
            if unit not in UNIT_CODE:
                raise _Invalid
            resolution = m.get("StorageResolution", 60)
            if isinstance(resolution, bool) or resolution not in (1, 60):
                raise _Invalid
            if name not in doc:
                raise _Invalid
            target = doc[name]
            values = target if isinstance(target, list) else [target]
            if len(values) > MAX_VALUES:
                raise _Invalid
            values = [_number(v) for v in values]
            for dk in dkeys:
                key = (namespace, name, dk)
                for v in values:
                    samples.append((key, ts, v, UNIT_CODE[unit], resolution == 1))
    return samples
