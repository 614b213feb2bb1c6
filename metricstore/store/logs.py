"""Log storage: groups, streams and events.

Events are one table ordered by arrival; each event has a store-wide sequence number
(``seq``) that breaks timestamp ties, names the event in tokens and pointers, and is handed
out by the single writer.  Messages reach DuckDB through Arrow (the fast path for strings).
"""
from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from query.insights_compile import json_pointer

from .db import Store, WriteContext, quote_ident

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
-- Logs Insights fields materialized at ingest: field name -> generated column of log_events
-- (col NULL on the one row named '' = "frozen": a field was refused, no column is ever added)
CREATE TABLE IF NOT EXISTS log_fields (name VARCHAR PRIMARY KEY, col VARCHAR);
-- Events and message bytes per group, stream and hour (floor(ts / 1 h)), for Logs Insights'
-- recordsScanned / bytesScanned without reading the messages.  Append-only (one row per
-- PutLogEvents call and hour); maintenance merges the rows (LogsStore.expire).
CREATE TABLE IF NOT EXISTS log_counts (
    group_id  INTEGER NOT NULL,
    stream_id INTEGER NOT NULL,
    hour      BIGINT NOT NULL,
    events    BIGINT NOT NULL,
    bytes     BIGINT NOT NULL         -- sum(strlen(message)): UTF-8 bytes
);
"""

#: Columns of log_events that are not materialized fields, in table order.
EVENT_COLUMNS = ("group_id", "stream_id", "ts", "ingest", "seq", "message")
#: At most this many materialized field columns; other fields are extracted at query time.
MAX_FIELD_COLUMNS = 500
#: log_counts bucket size (ms).
HOUR_MS = 3_600_000
# floor(ts / 1 h) in SQL (integer division truncates towards zero)
_HOUR_SQL = f"((ts - (((ts % {HOUR_MS}) + {HOUR_MS}) % {HOUR_MS})) // {HOUR_MS})"
# log_counts rows above which maintenance merges them
_COUNTS_MERGE_ROWS = 20_000
# Field names that are materialized: top-level keys of JSON objects.  Keys that could be array
# indexes (digits, "-"), contain "." (ambiguous with nesting), start with "@" (shown as "@@x")
# or need escaping in a JSON pointer, and nested names (``a.b``), are left to query-time
# extraction (a one-level nested discovery cost as much as the rest of the ingest path).
_SEGMENT_RE = r"[A-Za-z_$][A-Za-z0-9_$:-]*"
_FIELD_COL_RE = re.compile(r"f_([0-9]+)")

_SEGMENT = re.compile(_SEGMENT_RE)
# The distinct key lists of the batch's (the Arrow table ``_ingest_events``) JSON objects.
_KEYS_LISTS = "SELECT DISTINCT json_keys(TRY_CAST(message AS JSON)) FROM _ingest_events"
# With more mapped fields than this, a batch's keys are found first and only they are filled.
_FILL_ALL_MAX = 64
# Which of the JSON pointers $1 some event of the batch holds a scalar (not an object, array or
# null) at: their 1-based positions in $1.
_SCALAR_AT = ("SELECT DISTINCT unnest(list_filter(list_transform("
              "json_type(TRY_CAST(message AS JSON), $1), lambda x, i: CASE WHEN x NOT IN"
              " ('OBJECT', 'ARRAY', 'NULL') THEN i END), lambda y: y IS NOT NULL))"
              " FROM _ingest_events")


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
    """Groups, streams, events and metric filters.

    Discovered fields (Logs Insights) are materialized at ingest: :meth:`append` computes, in
    one DuckDB pass over the batch's Arrow table, every JSON object's keys and the values of
    the fields already mapped, with exactly the SQL the query compiler uses without a column
    (``query.insights_compile.default_field_sql``).  Keys not seen before that some event
    holds a scalar for (``_SCALAR_AT``; top-level keys that fit ``_SEGMENT_RE``; nested
    ``a.b`` names are not materialized) get a VARCHAR column ``f_<n>`` of ``log_events``
    (the name → column map is the ``log_fields`` table, cached in ``fields``) and the pass is
    run again for that batch.  The values are inserted with the events, in the same INSERT.

    ``log_counts`` holds the events and message bytes per group, stream and hour, kept in the
    same transaction as the events, so that :meth:`scanned` (recordsScanned/bytesScanned)
    reads no message text but the partial hours at the ends of a range.

    Invariant (what makes a column usable by queries): for every mapped name, every stored
    event for which the query-time extraction would give a value has that value in the
    column.  It holds because a column is added, in the write transaction, before the first
    event holding that name is inserted (older events cannot have it, or it would have been
    discovered then), every later batch holding the name fills it, and once any name is
    refused (cap reached, or materialization off) the map is frozen for good (persisted as the
    row named ''), so a name that some stored event holds unmaterialized is never mapped.
    """

    def __init__(self, store: Store, max_fields: int = MAX_FIELD_COLUMNS):
        self.store = store
        store.extend_schema(DDL)
        con = store.con
        self.max_fields = max_fields
        self.fields: dict[str, str] = {}       # field name -> column (writer's, copy on write)
        self.fields_frozen = False
        for name, column in con.execute("SELECT name, col FROM log_fields").fetchall():
            if name == "":
                self.fields_frozen = True
            else:
                self.fields[name] = column
        # numbering continues after every f_<n> column of the table, mapped or not (a wiped
        # store keeps its columns, all NULL: DuckDB cannot drop a column in the transaction
        # that deleted the rows, and they cost nothing)
        existing = [r[0] for r in con.execute(
            "SELECT column_name FROM duckdb_columns() WHERE table_name = 'log_events'"
            " AND schema_name = current_schema() AND database_name = current_database()"
        ).fetchall()]
        self._next_field = 1 + max((int(m.group(1)) for m in map(_FIELD_COL_RE.fullmatch,
                                                               existing) if m), default=0)
        # what queries may use: only committed columns (published by a commit hook)
        self.committed_fields: dict[str, str] = self.fields
        if max_fields <= 0 and not self.fields_frozen:
            con.execute("INSERT OR IGNORE INTO log_fields VALUES ('', NULL)")
            self.fields_frozen = True
        self._lock = threading.Lock()
        # a store written before log_counts existed: count its events once
        if con.execute("SELECT NOT EXISTS (SELECT 1 FROM log_counts)"
                       " AND EXISTS (SELECT 1 FROM log_events)").fetchone()[0]:
            con.execute(f"INSERT INTO log_counts SELECT group_id, stream_id, {_HOUR_SQL} AS h,"
                        " count(*), sum(strlen(message)) FROM log_events GROUP BY ALL")
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
        w.execute("DELETE FROM log_counts WHERE group_id = ?", [g.id])
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
        w.execute("DELETE FROM log_counts WHERE stream_id = ?", [sid])
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
        if self.fields or not self.fields_frozen:
            _ingest_events = self._with_fields(w, _ingest_events)
        names = ", ".join(map(quote_ident, _ingest_events.column_names))
        w.con.execute(f"INSERT INTO log_events ({names}) SELECT * FROM _ingest_events")
        self._count(w, gid, sid, _ingest_events)
        lo, hi = int(np.min(batch.ts)), int(np.max(batch.ts))
        w.execute("UPDATE log_streams SET first_ts = least(coalesce(first_ts, ?), ?),"
                  " last_ts = greatest(coalesce(last_ts, ?), ?), last_ingest = ?,"
                  " stored_bytes = stored_bytes + ? WHERE id = ?",
                  [lo, lo, hi, hi, now_ms, batch.nbytes, sid])
        return first

    @staticmethod
    def _count(w: WriteContext, gid: int, sid: int, events) -> None:
        """Add the batch's events and message bytes to log_counts, per hour."""
        ts = events.column("ts").to_numpy()
        nbytes = pc.binary_length(events.column("message")).to_numpy(zero_copy_only=False)
        hours, where = np.unique(ts // HOUR_MS, return_inverse=True)
        w.execute("INSERT INTO log_counts SELECT ?, ?, unnest(?), unnest(?), unnest(?)",
                  [gid, sid, hours.tolist(), np.bincount(where).tolist(),
                   np.bincount(where, weights=nbytes).astype(np.int64).tolist()])

    def scanned(self, cur, gids: list[int], lo_ms: int, hi_ms: int) -> tuple[int, int]:
        """(events, message bytes) of the groups ``gids`` with ``lo_ms <= ts <= hi_ms``: the
        whole hours inside the range from log_counts, the partial hours at its ends from the
        events themselves (Logs Insights' recordsScanned and bytesScanned)."""
        if not gids:
            return 0, 0
        ids = ", ".join("?" * len(gids))
        edge = (f"SELECT count(*) AS n, sum(strlen(message)) AS b FROM log_events"
                f" WHERE group_id IN ({ids}) AND ts >= ? AND ts <= ?")
        first = -(-lo_ms // HOUR_MS)                 # first hour starting at or after lo
        last = (hi_ms + 1) // HOUR_MS - 1            # last hour ending at or before hi
        if first > last:
            sql, params = edge, [*gids, lo_ms, hi_ms]
        else:
            sql = (f"SELECT sum(n), sum(b) FROM ({edge} UNION ALL {edge} UNION ALL"
                   f" SELECT sum(events), sum(bytes) FROM log_counts"
                   f" WHERE group_id IN ({ids}) AND hour >= ? AND hour <= ?)")
            params = [*gids, lo_ms, first * HOUR_MS - 1, *gids, (last + 1) * HOUR_MS, hi_ms,
                      *gids, first, last]
        n, b = cur.execute(sql, params).fetchone()
        return int(n or 0), int(b or 0)

    # -- materialized fields ----------------------------------------------------------------
    def _with_fields(self, w: WriteContext, _ingest_events: pa.Table) -> pa.Table:
        """The batch plus a column (named after its ``f_<n>``) for each materialized field it
        holds, after discovering (and mapping) the batch's new field names.

        One pass over the messages (:meth:`_fill`) computes both the values of the mapped
        fields and every JSON object's key list; only when the batch holds names not mapped
        are they type-checked (``_SCALAR_AT``: objects and arrays are no fields), and when
        some get a column, the values are computed again.  With many mapped names, the
        batch's keys are found first and only those filled."""
        discover = not self.fields_frozen
        names = list(self.fields)
        if len(names) > _FILL_ALL_MAX:
            keys = self._batch_keys(w.con.execute(_KEYS_LISTS).to_arrow_table().column(0))
            names = self._map_new(w, keys, _ingest_events)
            values = self._fill(w, _ingest_events, names, keys=False)
        else:
            values = self._fill(w, _ingest_events, names, keys=discover)
            if discover:
                keys = self._batch_keys(values.column("k"))
                if any(k not in self.fields for k in keys):
                    mapped = len(self.fields)
                    self._map_new(w, keys, _ingest_events)
                    if len(self.fields) > mapped:
                        names = list(self.fields)
                        values = self._fill(w, _ingest_events, names, keys=False)
        for name in names:
            column = values.column(quote_ident(name))
            if column.null_count < len(column):       # absent from the batch: stays NULL
                _ingest_events = _ingest_events.append_column(self.fields[name], column)
        return _ingest_events

    def _fill(self, w: WriteContext, _ingest_events, names: list[str], keys: bool) -> pa.Table:
        """The value of each of ``names`` for every event (a column named ``"name"``), and
        with ``keys`` every event's JSON key list (``k``).  The value is what
        query.insights_compile.default_field_sql gives (`CASE WHEN json_type(doc, p) NOT IN
        ('OBJECT', 'ARRAY') THEN json_extract_string(doc, p) END`), here with the multi-path
        forms of both functions, so that each message is parsed a fixed number of times."""
        selects = [f"CASE WHEN ty[{k}] NOT IN ('OBJECT', 'ARRAY') THEN st[{k}] END"
                   for k in range(1, len(names) + 1)]
        if keys:
            selects.append("json_keys(doc) AS k")
        if not selects:
            return pa.table({})
        # result columns are positional; they are named here, never in SQL text
        table = w.con.execute(
            f"SELECT {', '.join(selects)} FROM (SELECT doc, json_type(doc, $1) AS ty,"
            " json_extract_string(doc, $1) AS st FROM (SELECT TRY_CAST(message AS JSON) AS doc"
            " FROM _ingest_events))", [[json_pointer([n]) for n in names]]).to_arrow_table()
        return table.rename_columns([quote_ident(n) for n in names] + (["k"] if keys else []))

    @staticmethod
    def _batch_keys(lists) -> list[str]:
        """The distinct keys of an Arrow column of key lists that may be materialized."""
        flat = pc.unique(pc.list_flatten(lists)).to_pylist()
        return sorted(k for k in flat if k is not None and _SEGMENT.fullmatch(k))

    def _map_new(self, w: WriteContext, keys: list[str], _ingest_events) -> list[str]:
        """Map (add columns for) the keys of the batch not yet mapped that some event holds a
        scalar for; returns the mapped names among ``keys``."""
        new = [k for k in keys if k not in self.fields]
        if new and not self.fields_frozen:
            hit = {r[0] for r in w.con.execute(
                _SCALAR_AT, [[json_pointer([k]) for k in new]]).fetchall()}
            self._columns_for(w, [k for i, k in enumerate(new, 1) if i in hit])
        return [k for k in keys if k in self.fields]

    def _columns_for(self, w: WriteContext, names) -> list[tuple[str, str]]:
        """(name, column) for each of ``names`` that is or becomes materialized: new names get
        a column (ALTER TABLE) while the cap allows; the first one refused freezes the map."""
        out = []
        fields = self.fields
        added = []
        refused = False
        for name in names:
            c = fields.get(name)
            if c is None:
                if self.fields_frozen or refused or len(fields) + len(added) >= self.max_fields:
                    refused = True
                    continue
                c = f"f_{self._next_field + len(added)}"
                added.append((name, c))
            out.append((name, c))
        if added:
            for name, c in added:
                w.con.execute(f"ALTER TABLE log_events ADD COLUMN {quote_ident(c)} VARCHAR")
            w.con.execute("INSERT INTO log_fields VALUES " + ", ".join(["(?, ?)"] * len(added)),
                          [x for pair in added for x in pair])
            old, old_next = self.fields, self._next_field
            self.fields = new = {**old, **dict(added)}
            self._next_field += len(added)

            def undo():
                self.fields, self._next_field = old, old_next
            w.on_rollback(undo)
            w.on_commit(lambda: setattr(self, "committed_fields", new)
                        if len(new) > len(self.committed_fields) else None)
        if refused and not self.fields_frozen:
            w.con.execute("INSERT OR IGNORE INTO log_fields VALUES ('', NULL)")
            self.fields_frozen = True
            w.on_rollback(lambda: setattr(self, "fields_frozen", False))
        return out

    def expire(self, w: WriteContext, now_ms: int) -> int:
        """Delete events older than their group's retention (the scheduled retention job)."""
        n = w.con.execute(
            "DELETE FROM log_events e USING log_groups g WHERE e.group_id = g.id AND"
            " g.retention IS NOT NULL AND e.ts < ? - g.retention * 86400000::BIGINT",
            [now_ms]).fetchone()[0]
        if n:
            # the hours wholly before a group's cutoff go; the cutoff's hour is recounted
            cut = ("SELECT id, ? - retention * 86400000::BIGINT AS c FROM log_groups"
                   " WHERE retention IS NOT NULL")
            w.con.execute(f"DELETE FROM log_counts USING ({cut}) k WHERE group_id = k.id"
                          f" AND hour * {HOUR_MS} < k.c", [now_ms])
            w.con.execute(
                f"INSERT INTO log_counts SELECT group_id, stream_id, {_HOUR_SQL}, count(*),"
                f" sum(strlen(message)) FROM log_events e JOIN ({cut}) k ON e.group_id = k.id"
                f" WHERE e.ts < k.c - (((k.c % {HOUR_MS}) + {HOUR_MS}) % {HOUR_MS}) + {HOUR_MS}"
                " GROUP BY ALL", [now_ms])
            w.con.execute(
                "UPDATE log_streams s SET first_ts = x.lo, last_ts = x.hi FROM ("
                " SELECT st.id, min(e.ts) AS lo, max(e.ts) AS hi FROM log_streams st"
                " LEFT JOIN log_events e ON e.stream_id = st.id GROUP BY st.id) x"
                " WHERE s.id = x.id AND s.first_ts IS DISTINCT FROM x.lo")
        if w.con.execute("SELECT count(*) FROM log_counts").fetchone()[0] > _COUNTS_MERGE_ROWS:
            w.con.execute("CREATE OR REPLACE TEMP TABLE _log_counts AS SELECT group_id,"
                          " stream_id, hour, sum(events) AS e, sum(bytes) AS b FROM log_counts"
                          " GROUP BY ALL")
            w.con.execute("DELETE FROM log_counts")
            w.con.execute("INSERT INTO log_counts SELECT * FROM _log_counts")
            w.con.execute("DROP TABLE _log_counts")
        return n
