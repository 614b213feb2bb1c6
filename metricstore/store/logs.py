"""Log storage: groups, streams and events.

Events are one table ordered by arrival; each event has a store-wide sequence number
(``seq``) that breaks timestamp ties, names the event in tokens and pointers, and is handed
out by the single writer.  Messages reach DuckDB through Arrow (the fast path for strings).
"""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from .db import Store, WriteContext

DDL = """
CREATE TABLE IF NOT EXISTS log_groups (
    id            INTEGER PRIMARY KEY,
    account       VARCHAR NOT NULL,
    region        VARCHAR NOT NULL,
    name          VARCHAR NOT NULL,
    created       BIGINT NOT NULL,
    retention     INTEGER,            -- days, NULL = never expire
    kms_key_id    VARCHAR,
    log_class     VARCHAR NOT NULL,
    deletion_protection BOOLEAN DEFAULT FALSE,
    stored_bytes  BIGINT NOT NULL DEFAULT 0   -- unused: a group's bytes are its streams' sum
);
CREATE TABLE IF NOT EXISTS log_streams (
    id            INTEGER PRIMARY KEY,
    group_id      INTEGER NOT NULL,
    name          VARCHAR NOT NULL,
    created       BIGINT NOT NULL,
    first_ts      BIGINT,
    last_ts       BIGINT,
    last_ingest   BIGINT,
    stored_bytes  BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS log_events (
    group_id  INTEGER NOT NULL,
    stream_id INTEGER NOT NULL,
    ts        BIGINT NOT NULL,        -- event time, epoch ms
    ingest    BIGINT NOT NULL,        -- ingestion time, epoch ms
    seq       BIGINT NOT NULL,        -- store-wide order of arrival
    message   VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS metric_filters (
    group_id        INTEGER NOT NULL,
    name            VARCHAR NOT NULL,
    pattern         VARCHAR NOT NULL,
    transformations VARCHAR NOT NULL,   -- JSON list, as the API gives it
    created         BIGINT NOT NULL,
    options         VARCHAR,            -- JSON: the filter's other PutMetricFilter members
    PRIMARY KEY (group_id, name)
);
ALTER TABLE metric_filters ADD COLUMN IF NOT EXISTS options VARCHAR;
CREATE TABLE IF NOT EXISTS log_tags (group_id INTEGER, key VARCHAR, value VARCHAR, PRIMARY KEY (group_id, key));
"""


@dataclass
class LogGroup:
    id: int
    account: str
    region: str
    name: str
    created: int
    retention: int | None
    kms_key_id: str | None
    log_class: str
    deletion_protection: bool = False


@dataclass
class EventBatch:
    """Columns of the accepted events of one PutLogEvents call.

    ``emf`` carries the metrics the prepare step already extracted from Embedded Metric
    Format events (``metricstore.emf.EmfMetrics``, None when not computed); ``arrow`` is the
    messages as an Arrow array once :meth:`LogsStore.append` has built it, so that hooks
    scanning the batch in DuckDB do not convert the strings twice.
    """

    ts: np.ndarray
    messages: list
    nbytes: int = 0
    emf: object = None
    arrow: object = None


@dataclass
class MetricFilter:
    """One metric filter as PutMetricFilter stored it.  ``compiled`` is an opaque cache that
    the operations layer fills (the parsed and compiled pattern); the store never reads it."""

    group_id: int
    name: str
    pattern: str
    transformation: dict
    created: int
    options: dict = field(default_factory=dict)
    compiled: object = None


class LogsStore:
    def __init__(self, store: Store):
        self.store = store
        store.extend_schema(DDL)
        con = store.con
        self._lock = threading.Lock()
        self._next_group = (con.execute("SELECT max(id) FROM log_groups").fetchone()[0] or 0) + 1
        self._next_stream = (con.execute("SELECT max(id) FROM log_streams").fetchone()[0] or 0) + 1
        self._next_seq = (con.execute("SELECT max(seq) FROM log_events").fetchone()[0] or 0) + 1
        self.groups: dict[tuple, LogGroup] = {}
        for row in con.execute("SELECT id, account, region, name, created, retention, kms_key_id,"
                               " log_class, deletion_protection FROM log_groups").fetchall():
            g = LogGroup(*row)
            self.groups[(g.account, g.region, g.name)] = g
        self.streams: dict[tuple, int] = {}
        for sid, gid, name in con.execute("SELECT id, group_id, name FROM log_streams").fetchall():
            self.streams[(gid, name)] = sid
        # group id -> {filter name -> MetricFilter}; read on every PutLogEvents
        self.metric_filters: dict[int, dict[str, MetricFilter]] = {}
        for gid, name, pattern, tr, created, options in con.execute(
                "SELECT group_id, name, pattern, transformations, created, options"
                " FROM metric_filters").fetchall():
            self.metric_filters.setdefault(gid, {})[name] = MetricFilter(
                gid, name, pattern, json.loads(tr)[0], created, json.loads(options or "{}"))

    # -- groups -----------------------------------------------------------------------------
    def group(self, account, region, name) -> LogGroup | None:
        return self.groups.get((account, region, name))

    def create_group(self, w: WriteContext, account, region, name, now_ms, kms_key_id, log_class,
                     deletion_protection=False) -> LogGroup | None:
        key = (account, region, name)
        if key in self.groups:
            return None
        with self._lock:
            gid = self._next_group
            self._next_group += 1
        g = LogGroup(gid, account, region, name, now_ms, None, kms_key_id, log_class,
                     deletion_protection)
        w.execute("INSERT INTO log_groups (id, account, region, name, created, retention, kms_key_id,"
                  " log_class, deletion_protection) VALUES (?, ?, ?, ?, ?, NULL, ?, ?, ?)",
                  [gid, account, region, name, now_ms, kms_key_id, log_class, deletion_protection])
        self.groups[key] = g
        w.on_rollback(lambda: self.groups.pop(key, None))
        return g

    def delete_group(self, w: WriteContext, g: LogGroup) -> None:
        w.execute("DELETE FROM log_events WHERE group_id = ?", [g.id])
        w.execute("DELETE FROM log_streams WHERE group_id = ?", [g.id])
        w.execute("DELETE FROM log_tags WHERE group_id = ?", [g.id])
        w.execute("DELETE FROM metric_filters WHERE group_id = ?", [g.id])
        w.execute("DELETE FROM log_groups WHERE id = ?", [g.id])
        key = (g.account, g.region, g.name)
        self.groups.pop(key, None)
        removed = {k: v for k, v in self.streams.items() if k[0] == g.id}
        for k in removed:
            self.streams.pop(k, None)
        filters = self.metric_filters.pop(g.id, None)

        def undo():
            self.groups[key] = g
            self.streams.update(removed)
            if filters is not None:
                self.metric_filters[g.id] = filters
        w.on_rollback(undo)

    def set_retention(self, w: WriteContext, g: LogGroup, days: int | None) -> None:
        w.execute("UPDATE log_groups SET retention = ? WHERE id = ?", [days, g.id])
        old = g.retention
        g.retention = days
        w.on_rollback(lambda: setattr(g, "retention", old))

    # -- metric filters -----------------------------------------------------------------------
    def put_metric_filter(self, w: WriteContext, f: MetricFilter) -> None:
        """Create or replace a filter (same group and name)."""
        w.execute("INSERT OR REPLACE INTO metric_filters (group_id, name, pattern, transformations,"
                  " created, options) VALUES (?, ?, ?, ?, ?, ?)",
                  [f.group_id, f.name, f.pattern, json.dumps([f.transformation]), f.created,
                   json.dumps(f.options)])
        # copy on write: the writer thread may be iterating the old dict in a hook
        old = self.metric_filters.get(f.group_id)
        new = dict(old or {})
        new[f.name] = f
        self.metric_filters[f.group_id] = new
        w.on_rollback(lambda: self._restore_filters(f.group_id, old))

    def delete_metric_filter(self, w: WriteContext, gid: int, name: str) -> None:
        w.execute("DELETE FROM metric_filters WHERE group_id = ? AND name = ?", [gid, name])
        old = self.metric_filters.get(gid)
        new = {k: v for k, v in (old or {}).items() if k != name}
        if new:
            self.metric_filters[gid] = new
        else:
            self.metric_filters.pop(gid, None)
        w.on_rollback(lambda: self._restore_filters(gid, old))

    def _restore_filters(self, gid: int, old: dict | None) -> None:
        if old is None:
            self.metric_filters.pop(gid, None)
        else:
            self.metric_filters[gid] = old

    # -- streams ----------------------------------------------------------------------------
    def stream_id(self, gid: int, name: str) -> int | None:
        return self.streams.get((gid, name))

    def create_stream(self, w: WriteContext, gid: int, name: str, now_ms: int) -> int | None:
        key = (gid, name)
        if key in self.streams:
            return None
        with self._lock:
            sid = self._next_stream
            self._next_stream += 1
        w.execute("INSERT INTO log_streams (id, group_id, name, created) VALUES (?, ?, ?, ?)",
                  [sid, gid, name, now_ms])
        self.streams[key] = sid
        w.on_rollback(lambda: self.streams.pop(key, None))
        return sid

    def delete_stream(self, w: WriteContext, gid: int, name: str) -> None:
        sid = self.streams.get((gid, name))
        w.execute("DELETE FROM log_events WHERE stream_id = ?", [sid])
        w.execute("DELETE FROM log_streams WHERE id = ?", [sid])
        self.streams.pop((gid, name), None)
        w.on_rollback(lambda: self.streams.__setitem__((gid, name), sid))

    # -- events -----------------------------------------------------------------------------
    def append(self, w: WriteContext, gid: int, sid: int, batch: EventBatch, now_ms: int) -> int:
        """Insert one call's accepted events; returns the first sequence number."""
        n = len(batch.messages)
        if n == 0:
            return 0
        with self._lock:
            first = self._next_seq
            self._next_seq += n
        _ingest_events = pa.table({
            "group_id": pa.array(np.full(n, gid, dtype=np.int32)),
            "stream_id": pa.array(np.full(n, sid, dtype=np.int32)),
            "ts": pa.array(np.asarray(batch.ts, dtype=np.int64)),
            "ingest": pa.array(np.full(n, now_ms, dtype=np.int64)),
            "seq": pa.array(np.arange(first, first + n, dtype=np.int64)),
            "message": batch.arrow if batch.arrow is not None
            else pa.array(batch.messages, type=pa.string()),
        })
        batch.arrow = _ingest_events.column("message")
        w.con.execute("INSERT INTO log_events SELECT * FROM _ingest_events")
        lo, hi = int(np.min(batch.ts)), int(np.max(batch.ts))
        w.execute("UPDATE log_streams SET first_ts = least(coalesce(first_ts, ?), ?),"
                  " last_ts = greatest(coalesce(last_ts, ?), ?), last_ingest = ?,"
                  " stored_bytes = stored_bytes + ? WHERE id = ?",
                  [lo, lo, hi, hi, now_ms, batch.nbytes, sid])
        return first

    def expire(self, w: WriteContext, now_ms: int) -> int:
        """Delete events older than their group's retention (the scheduled retention job)."""
        n = w.con.execute(
            "DELETE FROM log_events e USING log_groups g WHERE e.group_id = g.id AND"
            " g.retention IS NOT NULL AND e.ts < ? - g.retention * 86400000::BIGINT",
            [now_ms]).fetchone()[0]
        if n:
            w.con.execute(
                "UPDATE log_streams s SET first_ts = x.lo, last_ts = x.hi FROM ("
                " SELECT st.id, min(e.ts) AS lo, max(e.ts) AS hi FROM log_streams st"
                " LEFT JOIN log_events e ON e.stream_id = st.id GROUP BY st.id) x"
                " WHERE s.id = x.id AND s.first_ts IS DISTINCT FROM x.lo")
        return n
