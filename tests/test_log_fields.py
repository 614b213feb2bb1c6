"""Logs Insights fields materialized at ingest (``LogsStore`` discovery, ALTER TABLE, the
``log_fields`` map), and query results with them identical to query-time JSON extraction."""
from __future__ import annotations

import time

import duckdb
import numpy as np
import pytest

from conftest import LiveServer, make_client
from metricstore.store.db import Store
from metricstore.store.logs import EventBatch, LogsStore
from query.insights_compile import default_field_sql

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


def test_discovery_adds_columns_for_scalar_top_level_keys(tmp_path):
    st, logs = _store(tmp_path)
    _append(st, logs, CORPUS)
    names = set(logs.fields)
    assert {"level", "latency", "path", "ok", "ratio", "s", "mixed", "big", "a$b", "x:y", "k-1",
            "_u", "ERROR", "error"} <= names
    # objects/arrays only, array-index-like, "@x", dotted and empty keys: never columns
    for never in ("arr", "nested", "user", "tags", "0", "@x", "a.b", "", "nested.c",
                  "unicode_ключ"):
        assert never not in names
    cols = [c for c in _columns(st) if c.startswith("f_")]
    assert sorted(cols) == sorted(logs.fields.values())
    assert all(c.startswith("f_") and c[2:].isdigit() for c in cols)
    assert dict(st.con.execute("SELECT name, col FROM log_fields").fetchall()) == logs.fields
    assert logs.committed_fields == logs.fields
    st.close()


def test_materialized_values_equal_query_time_extraction(tmp_path):
    st, logs = _store(tmp_path)
    _append(st, logs, CORPUS[:3])           # some columns exist before the rest arrives
    _append(st, logs, CORPUS, t0=100)
    _append(st, logs, ['{"s": "late", "level": {"o": 1}}'], t0=200)
    for name, c in logs.fields.items():
        text, params = default_field_sql(name.split("."), '"doc"')
        rows = st.con.execute(
            f'SELECT seq, "{c}" IS NOT DISTINCT FROM ({text}), "{c}", ({text}) FROM'
            " (SELECT *, TRY_CAST(message AS JSON) AS doc FROM log_events) ORDER BY seq",
            params + params).fetchall()
        bad = [r for r in rows if not r[1]]
        assert not bad, (name, bad)
    got = dict(st.con.execute(f'SELECT message, "{logs.fields["ratio"]}" FROM log_events'
                              ' WHERE seq = 1').fetchall())
    assert list(got.values()) == ["1.5"]
    st.close()


def test_mapping_survives_reopen_and_numbering_continues(tmp_path):
    st, logs = _store(tmp_path)
    _append(st, logs, ['{"a": 1, "b": "x"}'])
    before = dict(logs.fields)
    st.close()
    st, logs = _store(tmp_path)
    assert logs.fields == before and logs.committed_fields == before
    _append(st, logs, ['{"a": 2, "c": true}'])
    assert logs.fields["c"] == "f_3"
    assert st.con.execute(f'SELECT list("{logs.fields["a"]}" ORDER BY seq) FROM log_events'
                          ).fetchone()[0] == ["1", "2"]
    st.close()


def test_cap_freezes_the_map_for_good(tmp_path):
    st, logs = _store(tmp_path, max_fields=2)
    _append(st, logs, ['{"a": 1, "b": 2, "c": 3}'])
    assert logs.fields == {"a": "f_1", "b": "f_2"} and logs.fields_frozen
    st.close()
    # a larger cap later must not materialize names some stored event holds unmaterialized
    st, logs = _store(tmp_path, max_fields=500)
    assert logs.fields_frozen
    _append(st, logs, ['{"c": 4, "d": 5, "a": 6}'])
    assert logs.fields == {"a": "f_1", "b": "f_2"}
    assert st.con.execute('SELECT list(f_1 ORDER BY seq) FROM log_events').fetchone()[0] == \
        ["1", "6"]
    st.close()


def test_off_freezes_at_open(tmp_path):
    st, logs = _store(tmp_path, max_fields=0)
    assert logs.fields_frozen
    _append(st, logs, ['{"a": 1}'])
    assert logs.fields == {} and not [c for c in _columns(st) if c.startswith("f_")]
    st.close()


def test_rolled_back_write_leaves_no_column(tmp_path):
    st, logs = _store(tmp_path)
    _append(st, logs, ['{"a": 1}'])
    g, sid = _group(st, logs)
    batch = EventBatch(np.arange(1, dtype=np.int64), ['{"a": 2, "z": 1}'], 0)

    def failing(w):
        logs.append(w, g.id, sid, batch, 0)
        assert "z" in logs.fields and "z" not in logs.committed_fields
        raise RuntimeError("boom")
    with pytest.raises(RuntimeError):
        st.write_sync(failing)
    assert logs.fields == {"a": "f_1"} == logs.committed_fields
    assert [c for c in _columns(st) if c.startswith("f_")] == ["f_1"]
    _append(st, logs, ['{"z": 3}'])
    assert logs.fields["z"] == "f_2"
    st.close()


def test_wiped_store_starts_a_new_map(tmp_path):
    st, logs = _store(tmp_path)
    _append(st, logs, ['{"a": 1, "b": 2}'])

    def wipe(w):
        for t in ("log_events", "log_fields", "log_streams", "log_groups"):
            w.con.execute(f"DELETE FROM {t}")
        return LogsStore(st)
    logs = st.write_sync(wipe)
    assert logs.fields == {}
    _append(st, logs, ['{"b": 3}'])
    assert logs.fields == {"b": "f_3"}      # the old, now empty, columns are not reused
    assert st.con.execute("SELECT f_1, f_2, f_3 FROM log_events").fetchall() == [
        (None, None, "3")]
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


def test_api_results_identical_materialized_or_not_and_after_restart(tmp_path, fallback_server):
    srv = LiveServer(tmp_path / "data", env={"METRICSTORE_LOG_FIELD_COLUMNS": "500"}).start()
    try:
        on, off = make_client("logs", srv.url), make_client("logs", fallback_server.url)
        g = f"/fields/{time.time_ns()}"
        now = int(time.time() * 1000) - 60_000
        for c in (on, off):
            c.create_log_group(logGroupName=g)
            c.create_log_stream(logGroupName=g, logStreamName="s")
            _put(c, g, CORPUS[:4], now)                    # columns created over two calls
            _put(c, g, CORPUS, now + 100)

        def compare():
            for q in QUERIES:
                assert _query(on, g, q) == _query(off, g, q), q
        compare()
        srv.stop()
        db = duckdb.connect(str(tmp_path / "data" / "metricstore.duckdb"), read_only=True)
        mapping = dict(db.execute("SELECT name, col FROM log_fields").fetchall())
        db.close()
        assert {"level", "latency", "path", "mixed"} <= set(mapping)
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


def test_many_mapped_fields_fill_only_the_batch_keys(tmp_path, monkeypatch):
    import metricstore.store.logs as logs_module
    monkeypatch.setattr(logs_module, "_FILL_ALL_MAX", 2)
    st, logs = _store(tmp_path)
    _append(st, logs, CORPUS[:3])
    _append(st, logs, CORPUS, t0=100)
    _append(st, logs, ['{"s": "late", "level": {"o": 1}, "new1": 2}'], t0=200)
    assert "new1" in logs.fields and len(logs.fields) > 2
    for name, c in logs.fields.items():
        text, params = default_field_sql(name.split("."), '"doc"')
        bad = st.con.execute(
            f'SELECT seq FROM (SELECT *, TRY_CAST(message AS JSON) AS doc FROM log_events)'
            f' WHERE "{c}" IS DISTINCT FROM ({text})', params).fetchall()
        assert not bad, name
    st.close()
