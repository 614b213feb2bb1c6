"""Logs Insights golden SQL: every ``tests/query/fixtures/insights_*.sql`` pair compiles to
exactly the SQL and parameters written there, and that SQL is valid DuckDB.

File format (one block per case, blocks separated by blank lines)::

    -- why this case exists (one or more comment lines)
    # now_ms: 1700000000000                 (optional compile inputs: now_ms, limit_default,
    # materialized: latency, service          limit_max, materialized fields)
    fields @timestamp | filter latency > 400;
    WITH "base" AS (…)
    SELECT …;
    # params: […]                           (expected, JSON)
    # columns: […]                          (expected result field names, JSON)

Regenerate after an intended compiler change, then review the diff:
``UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/query/test_insights_compile.py``
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pytest

from query.insights_compile import FieldSql, Source, compile_query
from query.insights_parser import parse

FIXTURES = Path(__file__).parent / "fixtures"
INPUT_META = ("now_ms", "limit_default", "limit_max", "materialized", "numbers")


@dataclass
class Case:
    comments: list[str]
    query: str
    sql: str
    meta: dict = field(default_factory=dict)


def load_golden(path: Path) -> list[Case]:
    cases = []
    for block in path.read_text().split("\n\n"):
        lines = [ln for ln in block.strip("\n").splitlines()]
        comments = [ln for ln in lines if ln.startswith("--")]
        meta = dict(ln[2:].split(": ", 1) for ln in lines if ln.startswith("# "))
        body = [ln for ln in lines if not ln.startswith(("--", "# "))]
        if not body:
            continue
        end = next(i for i, ln in enumerate(body) if ln.endswith(";"))
        query = "\n".join(body[:end + 1])[:-1]
        sql = "\n".join(body[end + 1:]).rstrip(";")
        cases.append(Case(comments, query, sql, meta))
    return cases


def write_golden(path: Path, cases: list[Case]) -> None:
    blocks = []
    for c in cases:
        lines = list(c.comments)
        lines += [f"# {k}: {c.meta[k]}" for k in INPUT_META if k in c.meta]
        lines += [c.query + ";", c.sql + ";"]
        lines += [f"# {k}: {c.meta[k]}" for k in ("params", "columns") if k in c.meta]
        blocks.append("\n".join(lines))
    path.write_text("\n\n".join(blocks) + "\n")


def compile_case(case: Case):
    materialized = {m.strip() for m in case.meta.get("materialized", "").split(",") if m.strip()}
    # "# numbers: latency=0": the column holds only numbers from that seq on (numbers_from)
    numbers = {k.strip(): int(v) for k, v in (m.split("=") for m in
                                              case.meta.get("numbers", "").split(",") if m)}
    source = Source("SELECT * FROM events",
                    lambda name: FieldSql(f'"f_{name}"', (), 0, numbers.get(name))
                    if name in materialized else None)
    kwargs = {k: int(case.meta[k]) for k in ("now_ms", "limit_default", "limit_max")
              if k in case.meta}
    return compile_query(parse(case.query), source, **kwargs)


FILES = sorted(FIXTURES.glob("insights_*.sql"))
CASES = [(path, i, case) for path in FILES for i, case in enumerate(load_golden(path))]


@pytest.fixture(scope="module")
def con():
    c = duckdb.connect()
    c.execute("CREATE TABLE events (ts BIGINT, ingest BIGINT, seq BIGINT, message VARCHAR, "
              "log_stream VARCHAR, log_group VARCHAR, ptr VARCHAR, f_latency VARCHAR, "
              "f_service VARCHAR)")
    c.execute("INSERT INTO events VALUES (1700000000000, 1700000000005, 1, "
              "'{\"latency\": 450, \"service\": \"api\"}', 's', '1:/g', 'p', '450', 'api')")
    yield c
    c.close()


def test_fixture_files_exist():
    assert FILES and all(load_golden(p) for p in FILES)


@pytest.mark.skipif(not os.environ.get("UPDATE_GOLDEN"), reason="set UPDATE_GOLDEN=1 to rewrite")
def test_update_golden():
    for path in FILES:
        cases = load_golden(path)
        for case in cases:
            compiled = compile_case(case)
            case.sql = compiled.sql
            case.meta["params"] = json.dumps(compiled.params)
            case.meta["columns"] = json.dumps(compiled.columns)
        write_golden(path, cases)


@pytest.mark.parametrize("path,index,case", CASES,
                         ids=[f"{p.stem}:{c.query[:50]}" for p, _, c in CASES])
def test_golden(con, path, index, case):
    compiled = compile_case(case)
    if os.environ.get("UPDATE_GOLDEN"):
        pytest.skip("rewriting")
    assert compiled.sql == case.sql
    assert compiled.params == json.loads(case.meta["params"])
    assert compiled.columns == json.loads(case.meta["columns"])
    con.execute(compiled.sql, compiled.params).fetchall()
    con.execute(compiled.count_sql, compiled.count_params).fetchall()
