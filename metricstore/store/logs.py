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

from query.insights_compile import NUMBER_RE, FieldSql, default_field_sql, json_pointer

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
-- Logs Insights fields materialized on demand: field name -> generated column of log_events,
-- filled for every event with seq >= filled_from (0 or NULL: every event); events below are
-- backfilled in the background, newest first.  (A row named '' was written by the former
-- discover-every-key mode; it is ignored.)
CREATE TABLE IF NOT EXISTS log_fields (name VARCHAR PRIMARY KEY, col VARCHAR);
ALTER TABLE log_fields ADD COLUMN IF NOT EXISTS filled_from BIGINT;
-- every value of the column at seq >= numbers_from is a number (NUMBER_RE) or NULL; NULL:
-- not known (a non-number was seen at ingest, or a column older than this flag)
ALTER TABLE log_fields ADD COLUMN IF NOT EXISTS numbers_from BIGINT;
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
# Field names that may be materialized: dotted paths whose every segment is an identifier-like
# JSON key (``level``, ``http.status``).  Segments that could be array indexes (digits, "-"),
# start with "@" (shown as "@@x"), are empty or need escaping in a JSON pointer are left to
# query-time extraction, as are back-ticked names holding a dot (the compiler never asks).
_SEGMENT_RE = r"[A-Za-z_$][A-Za-z0-9_$:-]*"
_FIELD_COL_RE = re.compile(r"f_([0-9]+)")
_FIELD_NAME = re.compile(rf"{_SEGMENT_RE}(?:\.{_SEGMENT_RE})*")
#: Events (by seq) one backfill step fills: the writer pause of a step is about this many
#: events' JSON extraction and column update (bench/RESULTS.md, "Logs Insights").
BACKFILL_CHUNK = 5_000
# a whole value that the natural sort reads as a number (RE2, as DuckDB's regexp_full_match)
_NUMBER_FULL = f"^(?:{NUMBER_RE})$"


def _extract_sql(name: str) -> tuple[str, list]:
    """The compiler's query-time value of field ``name`` over ``message`` (default_field_sql)."""
    return default_field_sql(name.split("."), "TRY_CAST(message AS JSON)")


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

    Logs Insights fields are materialized on demand.  When a compiled query reads a JSON field
    that has no column (:meth:`field_sql`), the name is recorded as wanted; the next
    :meth:`materialize_step` (the server's maintenance task, through the writer) gives it a
    VARCHAR column ``f_<n>`` of ``log_events`` (the name → column map is the ``log_fields``
    table, cached in ``fields``) whose watermark ``filled_from`` is the next sequence number:
    from then on :meth:`append` fills it for every batch, in one DuckDB pass over the batch's
    Arrow table computing exactly the SQL the query compiler uses without a column
    (``query.insights_compile.default_field_sql``), inserted with the events.  Later steps
    backfill the older events in chunks of ``BACKFILL_CHUNK`` sequence numbers, newest first,
    lowering the watermark in the same transaction, until it reaches the oldest event (then 0).
    Fields never queried cost nothing at ingest.  At most ``max_fields`` columns (0: no new
    ones; existing ones are still used).

    Invariant (what makes a column usable by queries): every stored event with ``seq >=
    filled_from`` of a column holds in it what the query-time extraction gives for its
    message.  It holds because the column is added, in a write transaction, with the next
    sequence number as watermark, every later batch fills it, a backfill chunk fills a range
    ``[lo, filled_from)`` and lowers the watermark to ``lo`` in one transaction, and messages
    never change.  Queries see the committed watermark (published by a commit hook) and read
    ``CASE WHEN seq >= filled_from THEN column ELSE extraction END``; an older watermark is
    still a correct one, since it only goes down.

    A second watermark per column, ``numbers_from``, says that every value at ``seq >=
    numbers_from`` is a number as the natural sort reads it (``NUMBER_RE``) or missing, so
    that ``sort`` can order those rows by a plain cast instead of testing each value against
    the regex (``FieldSql.numbers_from``).  A new column starts with it at its
    ``filled_from``; a batch holding a non-number clears it for good (NULL: unknown); a
    backfill chunk of numbers lowers it with ``filled_from`` when the two are equal.  It
    holds for the same reasons: values at or above ``filled_from`` never change.

    ``log_counts`` holds the events and message bytes per group, stream and hour, kept in the
    same transaction as the events, so that :meth:`scanned` (recordsScanned/bytesScanned)
    reads no message text but the partial hours at the ends of a range.
    """

    def __init__(self, store: Store, max_fields: int = MAX_FIELD_COLUMNS):
        self.store = store
        store.extend_schema(DDL)
        con = store.con
        self.max_fields = max_fields
        # field name -> column, and -> watermark (writer's; copy on write)
        self.fields: dict[str, str] = {}
        self.filled: dict[str, int] = {}
        self.numbers: dict[str, int | None] = {}        # numbers_from (None: unknown)
        for name, column, filled_from, numbers_from in con.execute(
                "SELECT name, col, filled_from, numbers_from FROM log_fields"
                " WHERE name <> ''").fetchall():
            self.fields[name] = column
            self.filled[name] = filled_from or 0
            self.numbers[name] = numbers_from
        # numbering continues after every f_<n> column of the table, mapped or not (a wiped
        # store keeps its columns, all NULL: DuckDB cannot drop a column in the transaction
        # that deleted the rows, and they cost nothing)
        existing = [r[0] for r in con.execute(
            "SELECT column_name FROM duckdb_columns() WHERE table_name = 'log_events'"
            " AND schema_name = current_schema() AND database_name = current_database()"
        ).fetchall()]
        self._next_field = 1 + max((int(m.group(1)) for m in map(_FIELD_COL_RE.fullmatch,
                                                               existing) if m), default=0)
        # what queries use: name -> (column, watermark, numbers_from), committed state only
        self.committed_fields: dict[str, tuple[str, int, int | None]] = {
            n: (c, self.filled[n], self.numbers[n]) for n, c in self.fields.items()}
        self.wanted: set[str] = set()          # names queried without a column (under _lock)
        self._min_seq: int | None = None       # a lower bound of the stored seqs (backfill)
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
        if self.fields:
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
    def field_sql(self, name: str) -> FieldSql | None:
        """What the query compiler reads for discovered field ``name``: its column where it is
        filled (``CASE WHEN seq >= watermark THEN column ELSE extraction END`` while the
        backfill runs, reading the shared parse ``doc`` below the watermark), with the
        ``numbers_from`` watermark, else None (query-time extraction), after recording the
        name as wanted when it may get a column.  Called on the event loop; reads committed
        state only."""
        hit = self.committed_fields.get(name)
        if hit is None:
            if (name not in self.wanted and len(self.committed_fields) < self.max_fields
                    and _FIELD_NAME.fullmatch(name)):
                with self._lock:
                    self.wanted.add(name)
            return None
        column, filled_from, numbers_from = hit
        if filled_from <= 0:
            return FieldSql(quote_ident(column), (), 0, numbers_from)
        # below the watermark: the compiler's shared parse of the message ("doc", computed
        # only where seq < the highest watermark a query needs)
        text, params = default_field_sql(name.split("."), quote_ident("doc"))
        return FieldSql(f"CASE WHEN seq >= CAST(? AS BIGINT) THEN {quote_ident(column)} ELSE"
                        f" {text} END", (filled_from, *params), filled_from, numbers_from)

    def field_work(self) -> bool:
        """Whether :meth:`materialize_step` has something to do."""
        return bool(self.wanted) or any(f > 0 for f in self.filled.values())

    def materialize_step(self, w: WriteContext, chunk: int = BACKFILL_CHUNK) -> bool:
        """One bounded step, in the writer: give the wanted names columns (while the cap
        allows), else backfill one chunk of the columns with the highest watermark (all those
        sharing it, in one UPDATE).  Returns whether work remains."""
        with self._lock:
            wanted = sorted(n for n in self.wanted if n not in self.fields)
            self.wanted = set()
        if wanted:
            room = max(0, self.max_fields - len(self.fields))
            if room:
                self._add_columns(w, wanted[:room])
            return self.field_work()
        pending = {n: f for n, f in self.filled.items() if f > 0}
        if not pending:
            return False
        top = max(pending.values())
        names = sorted(n for n, f in pending.items() if f == top)
        if self._min_seq is None:       # seqs only grow: a stale lower bound stays one
            self._min_seq = w.con.execute("SELECT min(seq) FROM log_events").fetchone()[0]
        lo = top - chunk
        if self._min_seq is None or lo <= self._min_seq:
            lo = 0                                     # this chunk reaches the oldest event
        sets, params = [], []
        for n in names:
            text, p = _extract_sql(n)
            sets.append(f"{quote_ident(self.fields[n])} = {text}")
            params += p
        # only JSON objects hold fields, and every JSON object holds a '{'
        w.con.execute(f"UPDATE log_events SET {', '.join(sets)} WHERE seq >= ? AND seq < ?"
                      " AND contains(message, '{')", [*params, lo, top])
        w.con.execute("UPDATE log_fields SET filled_from = ? WHERE list_contains(?, name)",
                      [lo, names])
        # numbers_from follows the watermark down while the chunk holds only numbers
        follow = [n for n in names if self.numbers.get(n) == top]
        numeric = []
        if follow:
            checks = ", ".join(f"bool_and({quote_ident(self.fields[n])} IS NULL OR "
                               f"regexp_full_match({quote_ident(self.fields[n])}, ?))"
                               for n in follow)
            row = w.con.execute(f"SELECT {checks} FROM log_events WHERE seq >= ? AND seq < ?",
                                [*[NUMBER_RE] * len(follow), lo, top]).fetchone()
            numeric = [n for n, ok in zip(follow, row) if ok is not False]
            if numeric:
                w.con.execute("UPDATE log_fields SET numbers_from = ? WHERE"
                              " list_contains(?, name)", [lo, numeric])
        self._set_marks(w, filled={n: lo for n in names}, numbers={n: lo for n in numeric})
        return self.field_work()

    def _add_columns(self, w: WriteContext, names: list[str]) -> None:
        with self._lock:
            start = self._next_seq          # every later append fills the new columns
        added = [(n, f"f_{self._next_field + k}") for k, n in enumerate(names)]
        for _, c in added:
            w.con.execute(f"ALTER TABLE log_events ADD COLUMN {quote_ident(c)} VARCHAR")
        w.con.execute("INSERT INTO log_fields (name, col, filled_from, numbers_from) VALUES "
                      + ", ".join(["(?, ?, ?, ?)"] * len(added)),
                      [x for n, c in added for x in (n, c, start, start)])
        old_fields, old_next = self.fields, self._next_field
        self.fields = {**old_fields, **dict(added)}
        self._next_field += len(added)

        def undo():
            self.fields, self._next_field = old_fields, old_next
            with self._lock:
                self.wanted |= set(names)
        w.on_rollback(undo)
        self._set_marks(w, filled={n: start for n in names}, numbers={n: start for n in names})

    def _set_marks(self, w: WriteContext, filled: dict | None = None,
                   numbers: dict | None = None) -> None:
        """Set watermarks (writer's state now, what queries see at commit)."""
        old = self.filled, self.numbers
        self.filled = new = {**old[0], **(filled or {})}
        self.numbers = new_numbers = {**old[1], **(numbers or {})}

        def undo():
            self.filled, self.numbers = old
        w.on_rollback(undo)

        def publish():
            self.committed_fields = {n: (c, new[n], new_numbers.get(n))
                                     for n, c in self.fields.items() if n in new}
        w.on_commit(publish)

    def _with_fields(self, w: WriteContext, _ingest_events: pa.Table) -> pa.Table:
        """The batch plus a column (named after its ``f_<n>``) for each materialized field
        some event of the batch holds: one DuckDB pass over the messages computes what
        query.insights_compile.default_field_sql gives (`CASE WHEN json_type(doc, p) NOT IN
        ('OBJECT', 'ARRAY') THEN json_extract_string(doc, p) END`), with the multi-path forms
        of both functions, so that each message is parsed a fixed number of times; a message
        without '{' holds no JSON object, hence no field, and is not parsed."""
        names = list(self.fields)
        selects = [f"CASE WHEN ty[{k}] NOT IN ('OBJECT', 'ARRAY') THEN st[{k}] END"
                   for k in range(1, len(names) + 1)]
        values = w.con.execute(
            f"SELECT {', '.join(selects)} FROM (SELECT json_type(doc, $1) AS ty,"
            " json_extract_string(doc, $1) AS st FROM (SELECT CASE WHEN contains(message, '{')"
            " THEN TRY_CAST(message AS JSON) END AS doc FROM _ingest_events))",
            [[json_pointer(n.split(".")) for n in names]]).to_arrow_table()
        mixed = []
        for k, name in enumerate(names):
            column = values.column(k)         # result columns are positional, never named
            if column.null_count < len(column):       # absent from the batch: stays NULL
                _ingest_events = _ingest_events.append_column(self.fields[name], column)
                if self.numbers.get(name) is not None and not pc.all(
                        pc.match_substring_regex(column, _NUMBER_FULL)).as_py():
                    mixed.append(name)
        if mixed:        # a non-number: the column's numbers_from is unknown from now on
            w.con.execute("UPDATE log_fields SET numbers_from = NULL WHERE list_contains(?, name)",
                          [mixed])
            self._set_marks(w, numbers={n: None for n in mixed})
        return _ingest_events

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
