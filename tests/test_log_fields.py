"""Logs Insights fields materialized on demand (``LogsStore.field_sql`` records the fields
queries read, ``materialize_step`` adds their columns and backfills them behind a watermark,
``append`` fills them), and query results with them identical to query-time JSON extraction
at every step."""
from __future__ import annotations

import time

import duckdb
import numpy as np
import pytest

from conftest import LiveServer, make_client
from metricstore.store.db import Store
from metricstore.store.logs import EventBatch, LogsStore
from query.insights_compile import NUMBER_RE, FieldSql, default_field_sql

# A corpus that exercises the value rendering: ints, floats (normalised by the JSON reader),
# booleans, null, escapes and non-ASCII text, objects and arrays (never a field value), a key
# that is a scalar in some events and an object in others, duplicate keys, keys that are not
# materialized (array-index-like, "@x", dotted, empty), top-level arrays and scalars, text.
CORPUS = [
    '{"level": "ERROR", "latency": 120, "path": "/a", "ok": true, "ratio": 1.50, "s": "x\\"y"}',
    '{"level": "INFO", "latency": 7.25, "path": "/b", "ok": false, "ratio": -0.0, "s": "é\\u00e9"}',
    '{"level": "INFO", "latency": 1e3, "path": "/a", "ok": null, "mixed": {"a": 1}, "s": ""}',
    '{"level": "WARN", "mixed": 5, "arr": [1, 2], "nested": {"a": {"b": 2}, "c": "d"}}',
    '{"level": "INFO", "latency": 300, "mixed": [1], "0": "zero", "@x": 1, "a.b": 3, "": 4}',
    '{"latency": 42, "latency": 43, "dup": {"x": 1}, "dup": 2}',
    '  {"level":"ERROR","latency":999999999999999999999,"path":"/c","big":12345678901234567890}',
    '[1, 2, 3]',
    '"just a string"',
    '17',
    'ERROR plain text latency=5',
    '{not json',
    '{"level": "INFO", "user": {"id": 7}, "tags": ["a", "b"], "unicode_ключ": 1}',
    '{"a$b": 1, "x:y": "two", "k-1": 3.0, "_u": "\\n", "ERROR": "e", "error": "lower"}',
]


def _store(tmp_path, max_fields=500, name="s.duckdb"):
    st = Store(str(tmp_path / name))
    logs = LogsStore(st, max_fields)
    return st, logs


def _group(st, logs):
    g = logs.group("a", "r", "/g") or st.write_sync(
        lambda w: logs.create_group(w, "a", "r", "/g", 0, None, "STANDARD"))
    sid = logs.stream_id(g.id, "s") or st.write_sync(lambda w: logs.create_stream(w, g.id, "s", 0))
    return g, sid


def _append(st, logs, msgs, t0=0):
    g, sid = _group(st, logs)
    batch = EventBatch(np.arange(t0, t0 + len(msgs), dtype=np.int64), list(msgs), 0)
    return st.write_sync(lambda w: logs.append(w, g.id, sid, batch, 0))


def _columns(st):
    return [r[0] for r in st.con.execute(
        "SELECT column_name FROM duckdb_columns() WHERE table_name = 'log_events'"
        " ORDER BY column_index").fetchall()]


def _fcols(st):
    return [c for c in _columns(st) if c.startswith("f_")]


def _want(st, logs, *names):
    """Ask for the fields as a compiled query does, then run the steps that add columns."""
    for n in names:
        logs.field_sql(n)
    while logs.wanted:
        st.write_sync(logs.materialize_step)


def _check_invariant(st, logs):
    """Every event at or above a column's watermark holds the query-time value."""
    for name, c in logs.fields.items():
        text, params = default_field_sql(name.split("."), '"doc"')
        bad = st.con.execute(
            f'SELECT seq, "{c}", ({text}) FROM (SELECT *, TRY_CAST(message AS JSON) AS doc'
            f' FROM log_events) WHERE seq >= ? AND "{c}" IS DISTINCT FROM ({text})',
            params + [logs.filled[name]] + params).fetchall()
        assert not bad, (name, logs.filled[name], bad)
        # ... and every value at or above its numbers_from watermark is a number or missing
        if logs.numbers[name] is not None:
            bad = st.con.execute(f'SELECT seq, "{c}" FROM log_events WHERE seq >= ? AND NOT'
                                 f' regexp_full_match("{c}", ?)',
                                 [logs.numbers[name], NUMBER_RE]).fetchall()
            assert not bad, (name, logs.numbers[name], bad)


def test_fields_never_queried_cost_nothing_at_ingest(tmp_path):
    st, logs = _store(tmp_path)
    _append(st, logs, CORPUS)
    assert logs.fields == {} and _fcols(st) == [] and not logs.field_work()
    st.close()


def test_query_demand_adds_a_column_with_a_watermark(tmp_path):
    st, logs = _store(tmp_path)
    _append(st, logs, CORPUS)                                    # seq 1..14
    for name in ("level", "nested.c", "a$b"):
        assert logs.field_sql(name) is None                      # extracted at query time
    # array-index-like, "@", empty, escaped or odd segments: never columns
    for never in ("0", "arr.0", "@x", "@@x", "@timestamp", "", "a.", "a/b", "x~y", "é"):
        assert logs.field_sql(never) is None
    assert logs.wanted == {"level", "nested.c", "a$b"}
    assert st.write_sync(logs.materialize_step) is True          # columns made, backfill left
    assert sorted(logs.fields) == ["a$b", "level", "nested.c"]
    assert sorted(_fcols(st)) == sorted(logs.fields.values())
    assert set(logs.filled.values()) == {15}                     # the next seq
    assert st.con.execute("SELECT name, col, filled_from FROM log_fields ORDER BY name"
                          ).fetchall() == [(n, logs.fields[n], 15) for n in sorted(logs.fields)]
    f = logs.field_sql("level")                                  # reads "doc" below seq 15
    assert f'seq >= CAST(? AS BIGINT) THEN "{logs.fields["level"]}"' in f.text
    assert f.params[0] == 15 and f.doc_below == 15
    assert f.numbers_from == 15                                  # an empty column: vacuously
    # events ingested from now on fill the columns (and only the demanded ones)
    _append(st, logs, CORPUS, t0=100)
    _check_invariant(st, logs)
    assert st.con.execute(f'SELECT count("{logs.fields["level"]}") FROM log_events'
                          ).fetchone()[0] == 7                   # only the new events so far
    while st.write_sync(lambda w: logs.materialize_step(w, chunk=4)):
        _check_invariant(st, logs)
    assert set(logs.filled.values()) == {0} and not logs.field_work()
    assert logs.field_sql("level") == FieldSql(f'"{logs.fields["level"]}"')  # text: not numbers
    assert st.con.execute("SELECT DISTINCT filled_from FROM log_fields").fetchall() == [(0,)]
    _check_invariant(st, logs)
    assert st.con.execute(f'SELECT list("{logs.fields["nested.c"]}" ORDER BY seq)'
                          " FILTER (WHERE seq IN (4, 18)) FROM log_events").fetchone()[0] == \
        ["d", "d"]
    st.close()


# Queries run in process over the same store, with the columns (Server.log_field_sql's
# resolver) and without (query-time extraction): identical results and recordsMatched.
STEP_QUERIES = [
    "fields @timestamp, level, latency, path, ok, ratio, s, mixed, big, dup | sort @timestamp"
    " | limit 100",
    "filter latency > 100 | stats count(*) as n, avg(latency) as a, sum(latency) as t by level",
    "filter level = 'ERROR' or level like /WARN/ | fields @message, path | sort @timestamp",
    "stats count_distinct(path), max(latency), min(ratio) by ok",
    "filter ispresent(mixed) | fields mixed, nested.c, `a.b` | sort @timestamp",
    "fields level, latency | sort level, latency | dedup level",
    "fields `a$b`, `x:y`, `k-1`, _u, ERROR, error | filter ispresent(`x:y`) or ispresent(error)",
    "filter ispresent(fresh) | fields fresh, level | sort @timestamp",
    # sorts by fields that hold only numbers (numbers_from) and by ones that turn mixed
    "fields latency, ratio, big | sort latency desc | limit 9",
    "fields ratio, latency | sort ratio, latency desc",
    "fields fresh, turns | sort turns desc, fresh | limit 12",
    "sort fresh asc | fields fresh, level | limit 5",
]


def _run(st, logs, gids, text, use_columns):
    from metricstore.operations.insights import events_source
    from query.insights_compile import compile_query
    from query.insights_format import format_rows
    from query.insights_parser import parse
    resolver = logs.field_sql if use_columns else (lambda name: None)
    c = compile_query(parse(text), events_source(resolver, gids, -10 ** 12, 10 ** 12),
                      now_ms=0)
    rows = st.con.execute(c.sql, c.params).fetchall()
    matched = st.con.execute(c.count_sql, c.count_params).fetchone()[0]
    return format_rows(c, rows), matched, c.sql


def _compare(st, logs, gids, expect_columns):
    """Returns how the sorts by numeric fields were compiled: {"plain", "guarded", "regex"}."""
    used, sorts = False, set()
    for q in STEP_QUERIES:
        with_cols = _run(st, logs, gids, q, True)
        assert with_cols[:2] == _run(st, logs, gids, q, False)[:2], q
        used |= '"f_' in with_cols[2]
        if "sort latency" in q or "sort turns" in q:
            text = with_cols[2]
            sorts.add("plain" if "ORDER BY TRY_CAST(" in text else
                      "guarded" if 'CASE WHEN "seq" >= CAST(? AS BIGINT) AND' in text else
                      "regex")
    assert used == expect_columns
    return sorts


def test_results_identical_at_every_backfill_step_and_after_restart(tmp_path):
    st, logs = _store(tmp_path)
    g2 = st.write_sync(lambda w: logs.create_group(w, "a", "r", "/g2", 0, None, "STANDARD"))
    s2 = st.write_sync(lambda w: logs.create_stream(w, g2.id, "s", 0))
    g, _ = _group(st, logs)
    gids = [g.id, g2.id]

    def both(t0):
        _append(st, logs, CORPUS, t0=t0)
        batch = EventBatch(np.arange(t0, t0 + 3, dtype=np.int64), CORPUS[3:6], 0)
        st.write_sync(lambda w: logs.append(w, g2.id, s2, batch, 0))
    for k in range(4):
        both(1000 * k)
    _compare(st, logs, gids, expect_columns=False)               # records the demand
    assert {"level", "latency", "path", "mixed", "fresh", "nested.c", "x:y"} <= logs.wanted
    assert "a.b" not in logs.wanted                              # back-ticked, holds a dot
    steps, sorts = 0, set()
    while st.write_sync(lambda w: logs.materialize_step(w, chunk=5)):
        steps += 1
        _check_invariant(st, logs)
        sorts |= _compare(st, logs, gids, expect_columns=True)
        if steps % 3 == 0:                                       # ingest during the backfill
            both(10_000 + steps)
            _append(st, logs, ['{"fresh": %d, "level": {"o": 1}, "turns": %s}'
                               % (steps, '"n/a"' if steps == 9 else steps * 7 % 5)],
                    t0=20_000 + steps)
        if steps == 6:                                           # restart mid-backfill
            fields, filled, numbers = dict(logs.fields), dict(logs.filled), dict(logs.numbers)
            assert any(f > 0 for f in filled.values())
            st.close()
            st, logs = _store(tmp_path)
            assert logs.fields == fields and logs.filled == filled and logs.numbers == numbers
            assert logs.committed_fields == {n: (c, filled[n], numbers[n])
                                             for n, c in fields.items()}
            _compare(st, logs, gids, expect_columns=True)
    assert steps > 10 and set(logs.filled.values()) == {0}
    # numbers only: known everywhere; text, or a number field that got a text value: unknown
    assert logs.numbers["latency"] == logs.numbers["fresh"] == 0
    assert logs.numbers["level"] is None and logs.numbers["turns"] is None
    _check_invariant(st, logs)
    sorts |= _compare(st, logs, gids, expect_columns=True)
    assert sorts == {"plain", "guarded", "regex"}
    st.close()
    st, logs = _store(tmp_path)
    assert not logs.field_work() and set(logs.filled.values()) == {0}
    _compare(st, logs, gids, expect_columns=True)
    st.close()


def test_many_demanded_fields_are_filled_at_ingest(tmp_path):
    st, logs = _store(tmp_path)
    names = ["level", "latency", "path", "ok", "ratio", "s", "mixed", "big", "dup", "a$b",
             "x:y", "k-1", "_u", "ERROR", "error", "nested.c", "nested.a.b", "user.id",
             "tags", "absent"] + [f"n{k}" for k in range(60)]
    _want(st, logs, *names)
    assert sorted(logs.fields) == sorted(names)
    _append(st, logs, CORPUS[:3])
    _append(st, logs, CORPUS, t0=100)
    _append(st, logs, ['{"s": "late", "level": {"o": 1}, "n7": 2, "nested": {"a": {"b": []}}}'],
            t0=200)
    _check_invariant(st, logs)
    got = dict(st.con.execute(f'SELECT seq, "{logs.fields["ratio"]}" FROM log_events'
                              ' WHERE seq <= 2').fetchall())
    assert got == {1: "1.5", 2: "-0.0"}
    st.close()


def test_cap_limits_the_columns_and_zero_adds_none(tmp_path):
    st, logs = _store(tmp_path, max_fields=2)
    _append(st, logs, CORPUS)
    _want(st, logs, "level", "latency", "path")
    assert len(logs.fields) == 2 and len(_fcols(st)) == 2
    missing = ({"level", "latency", "path"} - set(logs.fields)).pop()
    while st.write_sync(logs.materialize_step):
        pass
    assert logs.field_sql(missing) is None and not logs.wanted   # full: not even wanted
    st.close()
    # with no new columns allowed, the existing ones are still read
    st, logs = _store(tmp_path, max_fields=0)
    name = sorted(logs.fields)[0]
    assert logs.field_sql(name).text == f'"{logs.fields[name]}"'
    assert logs.field_sql("other") is None and not logs.wanted
    st.close()


def test_rolled_back_step_leaves_no_column_and_the_demand(tmp_path):
    st, logs = _store(tmp_path)
    _append(st, logs, ['{"a": 1}'])
    logs.field_sql("a")

    def failing(w):
        logs.materialize_step(w)
        assert "a" in logs.fields and "a" not in logs.committed_fields
        raise RuntimeError("boom")
    with pytest.raises(RuntimeError):
        st.write_sync(failing)
    assert logs.fields == {} == logs.committed_fields and logs.filled == {}
    assert _fcols(st) == [] and logs.wanted == {"a"}
    while st.write_sync(logs.materialize_step):
        pass
    assert logs.fields == {"a": "f_1"} and logs.filled == {"a": 0}
    # a failing backfill chunk keeps the watermark
    _append(st, logs, ['{"b": 2}'])
    _want(st, logs, "b")
    before = dict(logs.filled)

    def failing_backfill(w):
        logs.materialize_step(w)
        raise RuntimeError("boom")
    with pytest.raises(RuntimeError):
        st.write_sync(failing_backfill)
    assert logs.filled == before and logs.committed_fields["b"] == ("f_2", before["b"],
                                                                     before["b"])
    st.close()


def test_store_of_the_former_discover_every_key_mode_reads_its_columns(tmp_path):
    st, logs = _store(tmp_path)
    _append(st, logs, ['{"a": 1, "b": "x"}', '{"a": 2}'])
    # what the former mode left: filled columns, no watermark column, the "frozen" row
    st.con.execute("ALTER TABLE log_events ADD COLUMN f_1 VARCHAR")
    st.con.execute("UPDATE log_events SET f_1 = json_extract_string(message, '$.a')")
    st.con.execute("DROP TABLE log_fields")
    st.con.execute("CREATE TABLE log_fields (name VARCHAR PRIMARY KEY, col VARCHAR)")
    st.con.execute("INSERT INTO log_fields VALUES ('a', 'f_1'), ('', NULL)")
    st.close()
    st, logs = _store(tmp_path)
    assert logs.fields == {"a": "f_1"} and logs.filled == {"a": 0} and not logs.field_work()
    assert logs.field_sql("a") == FieldSql('"f_1"')        # numbers not known: None
    _append(st, logs, ['{"a": 3}'])
    _want(st, logs, "b")
    assert logs.fields["b"] == "f_2"
    while st.write_sync(logs.materialize_step):
        pass
    _check_invariant(st, logs)
    st.close()


def test_wiped_store_starts_a_new_map(tmp_path):
    st, logs = _store(tmp_path)
    _append(st, logs, ['{"a": 1, "b": 2}'])
    _want(st, logs, "a", "b")

    def wipe(w):
        for t in ("log_events", "log_fields", "log_streams", "log_groups"):
            w.con.execute(f"DELETE FROM {t}")
        return LogsStore(st)
    logs = st.write_sync(wipe)
    assert logs.fields == {}
    _append(st, logs, ['{"b": 3}'])
    _want(st, logs, "b")
    assert logs.fields == {"b": "f_3"}      # the old, now empty, columns are not reused
    _append(st, logs, ['{"b": 4}'])
    assert st.con.execute("SELECT f_1, f_2, f_3 FROM log_events ORDER BY seq").fetchall() == [
        (None, None, None), (None, None, "4")]
    while st.write_sync(logs.materialize_step):
        pass
    assert st.con.execute("SELECT list(f_3 ORDER BY seq) FROM log_events").fetchone()[0] == \
        ["3", "4"]
    st.close()


# -- through the API: materialized vs query-time extraction ---------------------------------

QUERIES = [
    "fields @timestamp, level, latency, path, ok, ratio, s, mixed, big, dup | limit 100",
    "filter latency > 100 | stats count(*) as n, avg(latency) as a, sum(latency) as t by level",
    "filter level = 'ERROR' or level like /WARN/ | fields @message, path",
    "stats count_distinct(path), max(latency), min(ratio) by ok",
    "filter ispresent(mixed) | fields mixed, mixed.a, nested.a, nested.c, arr.0, `a.b`",
    "fields s, strlen(s) as n | filter s like /é/ or s = '' | sort s",
    "filter isblank(level) | stats count(*)",
    "stats count(*) by bin(1m), level | sort level",
    "fields latency * 2 as d, concat(level, '-', path) as lp | sort d desc | limit 5",
    "parse @message 'latency=*' as lat | filter ispresent(lat) | fields lat, level",
    "filter ok = 'true' or ok = 1 | fields ok, dup",
    "fields `unicode_ключ`, user.id, tags.1, big | filter ispresent(big) or ispresent(user.id)",
    "fields level, latency | sort level, latency | dedup level",
    "fields `a$b`, `x:y`, `k-1`, _u, ERROR, error | filter ispresent(`x:y`) or ispresent(error)",
]


def _query(logs, g, q):
    now = int(time.time())
    qid = logs.start_query(logGroupName=g, startTime=now - 3600, endTime=now + 60,
                           queryString=q)["queryId"]
    deadline = time.time() + 30
    while time.time() < deadline:
        r = logs.get_query_results(queryId=qid)
        if r["status"] not in ("Scheduled", "Running"):
            assert r["status"] == "Complete", (q, r)
            return [[(f["field"], f["value"]) for f in row if f["field"] != "@ptr"]
                    for row in r["results"]], r["statistics"]["recordsMatched"]
        time.sleep(0.05)
    raise AssertionError("query did not finish")


def _put(logs, g, messages, t0):
    logs.put_log_events(logGroupName=g, logStreamName="s", logEvents=[
        {"timestamp": t0 + i, "message": m} for i, m in enumerate(messages)])


@pytest.fixture(scope="module")
def fallback_server(tmp_path_factory):
    srv = LiveServer(tmp_path_factory.mktemp("fields-off") / "data",
                     env={"METRICSTORE_LOG_FIELD_COLUMNS": "0"}).start()
    yield srv
    srv.stop()


def _field_map(tmp_path):
    db = duckdb.connect(str(tmp_path / "data" / "metricstore.duckdb"), read_only=True)
    try:
        return {n: (c, f) for n, c, f in db.execute(
            "SELECT name, col, filled_from FROM log_fields").fetchall()}
    finally:
        db.close()


def test_api_results_identical_materialized_or_not_and_after_restart(tmp_path, fallback_server):
    srv = LiveServer(tmp_path / "data").start()                 # the default: on demand
    try:
        on, off = make_client("logs", srv.url), make_client("logs", fallback_server.url)
        g = f"/fields/{time.time_ns()}"
        now = int(time.time() * 1000) - 60_000
        for c in (on, off):
            c.create_log_group(logGroupName=g)
            c.create_log_stream(logGroupName=g, logStreamName="s")
            _put(c, g, CORPUS[:4], now)
            _put(c, g, CORPUS, now + 100)

        def compare():
            for q in QUERIES:
                assert _query(on, g, q) == _query(off, g, q), q
        compare()                                 # the queries ask for the fields
        for c in (on, off):                       # ingested while columns are made/backfilled
            _put(c, g, CORPUS[::-1], now + 200)
        compare()
        # the maintenance task makes the columns and backfills them (a few 50 ms steps)
        for _ in range(20):
            srv.stop()
            mapping = _field_map(tmp_path)
            if {"level", "latency", "path", "mixed", "nested.c"} <= set(mapping) and \
                    all(f == 0 for _, f in mapping.values()):
                break
            srv.start()
            time.sleep(0.5)
        else:
            raise AssertionError(f"fields not materialized: {mapping}")
        assert "a.b" not in mapping and "arr.0" not in mapping
        srv.start()
        on = make_client("logs", srv.url)
        compare()                                           # the mapping came back
        for c in (on, off):                                 # old and new fields after restart
            _put(c, g, ['{"level": "ERROR", "latency": 5, "fresh": 1.0, "path": "/z"}',
                        '{"fresh": "yes", "mixed": {"a": 2}}'], now + 1000)
        compare()
        rows, _ = _query(on, g, "filter ispresent(fresh) | fields fresh")
        assert sorted(r[0][1] for r in rows) in (["1", "yes"], ["1.0", "yes"])
    finally:
        srv.stop()


# -- recordsScanned / bytesScanned from log_counts -------------------------------------------

def _direct(st, gids, lo, hi):
    n, b = st.con.execute(
        "SELECT count(*), sum(strlen(message)) FROM log_events WHERE list_contains(?, group_id)"
        " AND ts >= ? AND ts <= ?", [gids, lo, hi]).fetchone()
    return n, b or 0


def test_scanned_counts_equal_a_scan_of_the_events(tmp_path, monkeypatch):
    import metricstore.store.logs as logs_module
    st, logs = _store(tmp_path, max_fields=0)
    rng = np.random.default_rng(4)
    H = logs_module.HOUR_MS
    groups = [st.write_sync(lambda w, k=k: logs.create_group(w, "a", "r", f"/g{k}", 0, None,
                                                             "STANDARD")) for k in range(2)]
    sids = {}
    for g in groups:
        for k in range(2):
            sids[g.id, k] = st.write_sync(
                lambda w, g=g, k=k: logs.create_stream(w, g.id, f"s{k}", 0))
    # events over ~6 hours, calls straddling hour boundaries, some before the epoch hour 0
    for call in range(40):
        g = groups[call % 2]
        sid = sids[g.id, call % 3 % 2]
        ts = np.sort(rng.integers(-H // 2, 6 * H, 25)).astype(np.int64)
        msgs = [("é" * int(rng.integers(0, 4))) + "x" * int(rng.integers(0, 40)) for _ in ts]
        batch = EventBatch(ts, msgs, 0)
        st.write_sync(lambda w, g=g, sid=sid, b=batch: logs.append(w, g.id, sid, b, 0))

    def check():
        for lo, hi in [(-H, 7 * H), (0, H - 1), (H // 3, 4 * H + 17), (2 * H, 2 * H),
                       (H - 1, H), (5 * H + 1, 3 * H), *[tuple(sorted(rng.integers(-H, 7 * H, 2)))
                                                      for _ in range(30)]]:
            for gids in ([groups[0].id], [g.id for g in groups], [99]):
                lo, hi = int(lo), int(hi)
                assert logs.scanned(st.cursor(), gids, lo, hi) == _direct(st, gids, lo, hi), \
                    (gids, lo, hi)
    check()
    st.write_sync(lambda w: logs.delete_stream(w, groups[1].id, "s1"))
    check()
    # retention: the cutoff's hour is recounted, earlier hours dropped
    st.write_sync(lambda w: logs.set_retention(w, groups[0], 1))
    st.write_sync(lambda w: logs.expire(w, 86_400_000 + 2 * H + H // 3))
    assert _direct(st, [groups[0].id], -H, 2 * H)[0] == 0
    check()
    # merging the per-call rows keeps the sums
    monkeypatch.setattr(logs_module, "_COUNTS_MERGE_ROWS", 5)
    before = st.con.execute("SELECT count(*) FROM log_counts").fetchone()[0]
    st.write_sync(lambda w: logs.expire(w, 0))
    assert st.con.execute("SELECT count(*) FROM log_counts").fetchone()[0] < before
    check()
    st.write_sync(lambda w: logs.delete_group(w, groups[0]))
    check()
    st.close()


def test_counts_are_built_for_a_store_written_without_them(tmp_path):
    st, logs = _store(tmp_path, max_fields=0)
    _append(st, logs, ["a", "bb", "{}"], t0=5_000_000)
    st.con.execute("DELETE FROM log_counts")
    st.close()
    st, logs = _store(tmp_path, max_fields=0)
    g, _ = _group(st, logs)
    assert logs.scanned(st.cursor(), [g.id], 0, 10 ** 10) == (3, 5)
    st.close()
