"""The executor's shortcuts give the same answers as the plain forms: recordsMatched folded
into the first stats (``matched_column``) or taken from the number of events
(``matched_all``) equals ``count_sql``; and a Source whose relation lacks the stream, group
and pointer columns (``system_sql``: looked up only when used, @ptr built after the limit)
returns exactly what the same query returns over a relation that has them."""
from __future__ import annotations

import duckdb
import pytest

from query.insights_compile import Source, compile_query
from query.insights_format import format_rows
from query.insights_parser import parse

from test_insights_execute import EVENTS, NOW_MS

QUERIES = [
    "fields @timestamp, @message",
    "filter status = 200 | stats count(*) by service",
    "filter level = 'ERROR' | stats count(*) as n, avg(latency) by bin(1h)",
    "stats count(*) by service | filter service like /api/",
    "filter status = 500 | stats count(*) as n by service | filter n > 100",
    "filter status = 200 | stats count(*) as n by service | filter n > 1",
    "stats count(*) as n by level | stats count(*) as m",
    "filter latency > 100 | limit 5 | stats count(*)",
    "filter @message like 'a' | limit 3",
    "parse @message 'user=*,' as u | fields u",
    "parse @message /user=(?<u>u\\d+)/ | stats count(*) by u",
    "fields latency | sort latency desc | limit 4",
    "filter ispresent(service) | fields service, @logStream, @log | sort service | limit 6",
    "fields @ptr, @logStream | limit 3",
    "stats count(*) by @logStream, @log",
    "fields level | dedup level",
    "filter latency > 1000000 | stats count(*) by service",
    "filter latency > 1000000 | stats count(*)",
    "unnest items into it | stats count(*)",
    "filter status = 200 | stats count(*) as n by service | sort n desc | limit 2",
]

# queries whose result is empty (recordsMatched then comes from count_sql)
EMPTY = {"filter status = 500 | stats count(*) as n by service | filter n > 100",
         "filter latency > 1000000 | stats count(*) by service"}


@pytest.fixture(scope="module")
def con():
    c = duckdb.connect()
    # the plain relation (system columns stored) and a store-like one (ids, names elsewhere)
    c.execute("CREATE TABLE events (ts BIGINT, ingest BIGINT, seq BIGINT, message VARCHAR, "
              "log_stream VARCHAR, log_group VARCHAR, ptr VARCHAR)")
    c.execute("CREATE TABLE ev2 (group_id INTEGER, stream_id INTEGER, ts BIGINT, "
              "ingest BIGINT, seq BIGINT, message VARCHAR)")
    c.execute("CREATE TABLE streams (id INTEGER, name VARCHAR)")
    rows = [(e["ts"], e["ingest"], e["seq"], e["message"], e["log_stream"],
             f"1:/g{e['seq'] % 2}", f"{e['seq'] % 2 + 1:x}-{e['seq']:x}") for e in EVENTS]
    c.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    c.executemany("INSERT INTO ev2 VALUES (?, ?, ?, ?, ?, ?)",
                  [(e["seq"] % 2 + 1, int(e["log_stream"].split("-")[1]), e["ts"], e["ingest"],
                    e["seq"], e["message"]) for e in EVENTS])
    c.executemany("INSERT INTO streams VALUES (?, ?)", [(i, f"stream-{i}") for i in range(3)])
    yield c
    c.close()


PLAIN = Source("SELECT * FROM events")
SPLIT = Source("SELECT * FROM ev2", system_sql={
    "log_stream": "(SELECT s.name FROM streams s WHERE s.id = stream_id)",
    "log_group": "'1:/g' || CAST(group_id - 1 AS VARCHAR)",
    "ptr": "printf('%x-%x', group_id, seq)"}, carried=("group_id",))


@pytest.mark.parametrize("text", QUERIES)
def test_system_sql_relation_gives_the_same_results(con, text):
    out = []
    for source in (PLAIN, SPLIT):
        compiled = compile_query(parse(text), source, now_ms=NOW_MS)
        rows = con.execute(compiled.sql, compiled.params).fetchall()
        out.append(format_rows(compiled, rows))
    assert out[0] == out[1]
    assert bool(out[0]) != (text in EMPTY)


@pytest.mark.parametrize("text", QUERIES)
@pytest.mark.parametrize("source", [PLAIN, SPLIT], ids=["plain", "split"])
def test_matched_shortcuts_equal_the_count_statement(con, text, source):
    compiled = compile_query(parse(text), source, now_ms=NOW_MS)
    rows = con.execute(compiled.sql, compiled.params).fetchall()
    counted = con.execute(compiled.count_sql, compiled.count_params).fetchone()[0]
    if compiled.matched_column and rows:
        assert {r[-1] for r in rows} == {counted}
    if compiled.matched_all:
        assert counted == len(EVENTS)


def test_shortcuts_are_taken_where_they_apply(con):
    def flags(text):
        c = compile_query(parse(text), SPLIT, now_ms=NOW_MS)
        return c.matched_all, c.matched_column
    assert flags("fields @timestamp | sort @timestamp desc | limit 20") == (True, False)
    assert flags("parse @message 'bytes=* ' as b | stats sum(b)") == (True, True)
    assert flags("filter status = 500 | stats avg(latency) by path") == (False, True)
    assert flags("filter status = 500 | fields path") == (False, False)
    assert flags("filter status = 500 | limit 3 | stats count(*)") == (False, False)
    assert flags("stats count(*) as n by level | stats count(*)") == (True, False)


def test_ptr_is_built_after_the_limit_and_names_only_when_used(con):
    compiled = compile_query(parse("fields latency | sort latency desc | limit 4"), SPLIT,
                             now_ms=NOW_MS)
    final = compiled.sql.rsplit("\n", 1)[-1]
    assert final.startswith('SELECT * EXCLUDE ("group_id", "seq"), printf(')
    assert "streams" not in compiled.sql
    compiled = compile_query(parse("fields @logStream | limit 4"), SPLIT, now_ms=NOW_MS)
    assert "streams" in compiled.sql
