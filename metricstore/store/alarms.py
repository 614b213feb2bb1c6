"""Alarm and SNS storage: alarms, alarm history, topics, subscriptions, the outbox.

Plain functions over a cursor (reads) or a :class:`~.db.WriteContext` (writes); values are
always bound parameters.  The one piece of real work is :func:`alarm_buckets`: the
datapoints of every due alarm in one SQL statement (two with percentile statistics), as
buckets the alarm scheduler rolls up into each alarm's periods.
"""
from __future__ import annotations

from importlib import resources

import numpy as np

from .metrics import SAMPLE_TABLES, STATSET_TABLES

ALARM_COLUMNS = ("account", "region", "name", "alarm_type", "config", "config_updated",
                 "actions_enabled", "state_value", "state_reason", "state_reason_data",
                 "state_updated", "state_transitioned", "suppressed_by", "suppressed_until",
                 "suppress_pending")


def apply_schema(store) -> None:
    store.extend_schema(resources.files("metricstore.store").joinpath("alarms.sql").read_text())


# ---- alarms ----------------------------------------------------------------------------------

def load_alarms(cur) -> list[dict]:
    rows = cur.execute(f"SELECT {', '.join(ALARM_COLUMNS)} FROM alarms").fetchall()
    return [dict(zip(ALARM_COLUMNS, row)) for row in rows]


def save_alarm(w, row: dict) -> None:
    """Insert or replace one alarm (the whole row)."""
    w.execute("DELETE FROM alarms WHERE account = ? AND region = ? AND name = ?",
              [row["account"], row["region"], row["name"]])
    w.execute(f"INSERT INTO alarms ({', '.join(ALARM_COLUMNS)}) VALUES "
              f"({', '.join('?' for _ in ALARM_COLUMNS)})", [row[c] for c in ALARM_COLUMNS])


def columns(rows: list, names: tuple[str, ...], kinds: dict[str, str],
            alias: str) -> tuple[dict, dict[str, str]]:
    """Rows (dicts or tuples in ``names`` order) as numpy columns for a DuckDB replacement
    scan, and the SQL expression of each column (NULLs travel as a ``<name>__null`` mask:
    numpy text columns cannot hold them).  Binding thousands of values as parameters or with
    executemany is orders of magnitude slower."""
    data: dict = {}
    exprs: dict[str, str] = {}
    for j, name in enumerate(names):
        values = [r[name] if isinstance(r, dict) else r[j] for r in rows]
        kind = kinds.get(name, "str")
        nulls = [v is None for v in values]
        if kind == "int":
            data[name] = np.array([0 if v is None else v for v in values], dtype=np.int64)
        elif kind == "bool":
            data[name] = np.array([bool(v) for v in values], dtype=np.bool_)
        else:
            data[name] = np.array(["" if v is None else v for v in values], dtype=np.str_)
        if any(nulls):
            data[f"{name}__null"] = np.array(nulls, dtype=np.bool_)
            exprs[name] = f"CASE WHEN {alias}.{name}__null THEN NULL ELSE {alias}.{name} END"
        else:
            exprs[name] = f"{alias}.{name}"
    return data, exprs


_STATE_COLUMNS = ("account", "region", "name", "state_value", "state_reason",
                  "state_reason_data", "state_updated", "state_transitioned", "suppressed_by",
                  "suppressed_until", "suppress_pending")
_INT = {"state_updated": "int", "state_transitioned": "int", "suppressed_until": "int",
        "ts": "int", "config_updated": "int"}


def update_alarm_state(w, rows: list[dict]) -> None:
    """Store the state part of several alarms (keys: account, region, name and the state and
    suppression columns), in one statement."""
    if not rows:
        return
    _alarm_states, exprs = columns(rows, _STATE_COLUMNS, _INT, "u")
    sets = ", ".join(f"{c} = {exprs[c]}" for c in _STATE_COLUMNS[3:])
    w.con.execute(f"UPDATE alarms SET {sets} FROM _alarm_states u WHERE alarms.account = u.account "
                  f"AND alarms.region = u.region AND alarms.name = u.name")


def set_actions_enabled(w, account: str, region: str, names: list[str], enabled: bool) -> None:
    w.execute("UPDATE alarms SET actions_enabled = ? WHERE account = ? AND region = ? "
              "AND name IN (SELECT unnest(?))", [enabled, account, region, names])


def delete_alarms(w, account: str, region: str, names: list[str]) -> None:
    w.execute("DELETE FROM alarms WHERE account = ? AND region = ? AND name IN (SELECT unnest(?))",
              [account, region, names])


# ---- history ---------------------------------------------------------------------------------

HISTORY_COLUMNS = ("account", "region", "alarm_name", "alarm_type", "ts", "item_type", "summary",
                   "data")


def add_history(w, items: list[tuple]) -> None:
    """``items``: tuples in HISTORY_COLUMNS order (kept in that order)."""
    if not items:
        return
    _alarm_history_items, exprs = columns(items, HISTORY_COLUMNS, _INT, "h")
    _alarm_history_items["i"] = np.arange(len(items))
    w.con.execute(f"INSERT INTO alarm_history (seq, {', '.join(HISTORY_COLUMNS)}) "
                  f"SELECT nextval('alarm_history_seq'), * FROM (SELECT "
                  f"{', '.join(exprs[c] for c in HISTORY_COLUMNS)} FROM _alarm_history_items h "
                  f"ORDER BY h.i)")


def query_history(cur, account: str, region: str, *, name: str | None, alarm_types: list[str],
                  item_type: str | None, start_ms: int | None, end_ms: int | None,
                  ascending: bool, after: tuple[int, int] | None, limit: int) -> list[tuple]:
    """History items, keyset-paginated on (ts, seq) in the scan direction."""
    sql = ["SELECT ts, seq, alarm_name, alarm_type, item_type, summary, data FROM alarm_history "
           "WHERE account = ? AND region = ? AND alarm_type IN (SELECT unnest(?))"]
    params: list = [account, region, alarm_types]
    if name is not None:
        sql.append("AND alarm_name = ?")
        params.append(name)
    if item_type is not None:
        sql.append("AND item_type = ?")
        params.append(item_type)
    if start_ms is not None:
        sql.append("AND ts >= ?")
        params.append(start_ms)
    if end_ms is not None:
        sql.append("AND ts <= ?")
        params.append(end_ms)
    if after is not None:
        sql.append("AND (ts, seq) > (?, ?)" if ascending else "AND (ts, seq) < (?, ?)")
        params.extend(after)
    direction = "ASC" if ascending else "DESC"
    sql.append(f"ORDER BY ts {direction}, seq {direction} LIMIT ?")
    params.append(limit)
    return cur.execute(" ".join(sql), params).fetchall()


# ---- datapoints for alarm evaluation ---------------------------------------------------------

def _source(tables, columns: str, series: str | None) -> str:
    where = f" AND series_id IN (SELECT sid FROM {series})" if series else ""
    return " UNION ALL ".join(
        f"SELECT {columns} FROM {t} WHERE ts >= $lo AND ts < $hi{where}" for t in tables)


def alarm_buckets(cur, sids: np.ndarray, grain_ms: int, lo_ms: int, hi_ms: int,
                  every_series: bool = False,
                  percentile_sids: np.ndarray | None = None) -> tuple[dict, dict | None]:
    """Sample count, sum, minimum, maximum and number of statistic sets per (series, unit,
    ``ts // grain``) over ``[lo, hi)``, for the series ``sids``, in one statement.

    ``grain`` divides every alarm period, and the aggregates are decomposable, so the caller
    rolls these buckets up into each alarm's periods (its evaluation range) in numpy: the
    database does one scan and one GROUP BY however many alarms read a series.  With
    ``every_series`` (the alarms read most series) the series filter is left out and the
    caller drops the series it does not need.  Samples and statistic sets are grouped
    apart (a bucket holding both comes back as two rows, which add up the same way), so
    the sample side, nearly always the whole of the data, aggregates its own columns
    without padding.

    Returns ``(buckets, samples)``.  ``samples`` is None, or with ``percentile_sids`` (the
    series read by percentile-type statistics, which need the values themselves) every
    sample of those series as (series, unit, ``ts // grain``, value, weight): a second
    statement, cheaper than grouping the aggregate by value too, in the same transaction,
    so that both see the same data.
    """
    _alarm_series = {"sid": sids}  # noqa: F841 - read by DuckDB's replacement scan
    series = None if every_series else "_alarm_series"
    sample_rows = _source(SAMPLE_TABLES, "series_id, ts, value, weight, unit", series)
    statset_rows = _source(STATSET_TABLES, "series_id, ts, n, sum, min, max, unit", series)
    aggregate = (f"SELECT series_id AS sid, unit, ts // $g AS fb, sum(weight) AS n, "
                 f"sum(value * weight) AS s, min(value) AS lo, max(value) AS hi, "
                 f"0::BIGINT AS sets FROM ({sample_rows}) GROUP BY series_id, unit, fb "
                 f"UNION ALL SELECT series_id, unit, ts // $g AS fb, sum(n), sum(sum), min(min), "
                 f"max(max), count(*) FROM ({statset_rows}) GROUP BY series_id, unit, fb")
    params = {"g": grain_ms, "lo": lo_ms, "hi": hi_ms}
    if percentile_sids is None or not len(percentile_sids):
        return cur.execute(aggregate, params).fetchnumpy(), None
    _alarm_pct = {"sid": percentile_sids}  # noqa: F841 - read by DuckDB's replacement scan
    values = (f"SELECT series_id AS sid, unit, ts // $g AS fb, value, weight FROM "
              f"({_source(SAMPLE_TABLES, 'series_id, ts, value, weight, unit', '_alarm_pct')})")
    cur.execute("BEGIN TRANSACTION")
    try:
        buckets = cur.execute(aggregate, params).fetchnumpy()
        samples = cur.execute(values, params).fetchnumpy()
    except BaseException:
        cur.execute("ROLLBACK")
        raise
    cur.execute("COMMIT")
    return buckets, samples


# ---- SNS topics and subscriptions -------------------------------------------------------------

TOPIC_COLUMNS = ("arn", "account", "region", "name", "attributes", "created")
SUBSCRIPTION_COLUMNS = ("arn", "topic_arn", "account", "region", "protocol", "endpoint", "status",
                        "token", "attributes", "authenticated", "created")


def get_topic(cur, arn: str) -> dict | None:
    row = cur.execute(f"SELECT {', '.join(TOPIC_COLUMNS)} FROM sns_topics WHERE arn = ?",
                      [arn]).fetchone()
    return dict(zip(TOPIC_COLUMNS, row)) if row else None


def list_topics(cur, account: str, region: str, after: str | None, limit: int) -> list[str]:
    sql = "SELECT arn FROM sns_topics WHERE account = ? AND region = ?"
    params: list = [account, region]
    if after is not None:
        sql += " AND arn > ?"
        params.append(after)
    params.append(limit)
    return [r[0] for r in cur.execute(sql + " ORDER BY arn LIMIT ?", params).fetchall()]


def save_topic(w, row: dict) -> None:
    w.execute("DELETE FROM sns_topics WHERE arn = ?", [row["arn"]])
    w.execute(f"INSERT INTO sns_topics ({', '.join(TOPIC_COLUMNS)}) VALUES "
              f"({', '.join('?' for _ in TOPIC_COLUMNS)})", [row[c] for c in TOPIC_COLUMNS])


def delete_topic(w, arn: str) -> list[dict]:
    """Delete a topic, its subscriptions and tags; the pending deliveries dropped with it."""
    dropped = take_deliveries(w, topic_arn=arn)
    w.execute("DELETE FROM sns_subscriptions WHERE topic_arn = ?", [arn])
    w.execute("DELETE FROM sns_topics WHERE arn = ?", [arn])
    w.execute("DELETE FROM tags WHERE arn = ?", [arn])
    return dropped


def get_subscription(cur, arn: str) -> dict | None:
    row = cur.execute(f"SELECT {', '.join(SUBSCRIPTION_COLUMNS)} FROM sns_subscriptions "
                      f"WHERE arn = ?", [arn]).fetchone()
    return dict(zip(SUBSCRIPTION_COLUMNS, row)) if row else None


def find_subscriptions(cur, *, topic_arn: str | None = None, account: str | None = None,
                       region: str | None = None, token: str | None = None,
                       endpoint: str | None = None, protocol: str | None = None,
                       statuses=("pending", "confirmed"), after: str | None = None,
                       limit: int | None = None) -> list[dict]:
    sql = [f"SELECT {', '.join(SUBSCRIPTION_COLUMNS)} FROM sns_subscriptions "
           f"WHERE status IN (SELECT unnest(?))"]
    params: list = [list(statuses)]
    for column, value in (("topic_arn", topic_arn), ("account", account), ("region", region),
                          ("token", token), ("endpoint", endpoint), ("protocol", protocol)):
        if value is not None:
            sql.append(f"AND {column} = ?")
            params.append(value)
    if after is not None:
        sql.append("AND arn > ?")
        params.append(after)
    sql.append("ORDER BY arn")
    if limit is not None:
        sql.append("LIMIT ?")
        params.append(limit)
    return [dict(zip(SUBSCRIPTION_COLUMNS, r)) for r in cur.execute(" ".join(sql), params).fetchall()]


def save_subscription(w, row: dict) -> None:
    w.execute("DELETE FROM sns_subscriptions WHERE arn = ?", [row["arn"]])
    w.execute(f"INSERT INTO sns_subscriptions ({', '.join(SUBSCRIPTION_COLUMNS)}) VALUES "
              f"({', '.join('?' for _ in SUBSCRIPTION_COLUMNS)})",
              [row[c] for c in SUBSCRIPTION_COLUMNS])


def subscription_counts(cur, topic_arn: str) -> dict[str, int]:
    rows = cur.execute("SELECT status, count(*) FROM sns_subscriptions WHERE topic_arn = ? "
                       "GROUP BY status", [topic_arn]).fetchall()
    return {status: n for status, n in rows}


# ---- the outbox --------------------------------------------------------------------------------

OUTBOX_COLUMNS = ("id", "subscription_arn", "topic_arn", "endpoint", "message_type", "message_id",
                  "body", "raw", "policy", "attempts", "next_attempt", "created", "last_error",
                  "alarm_action")
_ENQUEUED = ("subscription_arn", "topic_arn", "endpoint", "message_type", "message_id", "body",
             "raw", "policy", "next_attempt", "created", "alarm_action")


def enqueue(w, rows: list[dict]) -> None:
    """Add deliveries (every OUTBOX_COLUMNS key but ``id``, ``attempts``, ``last_error``;
    ``alarm_action`` may be left out)."""
    if rows:
        w.con.executemany(
            f"INSERT INTO sns_outbox (id, attempts, last_error, {', '.join(_ENQUEUED)}) VALUES "
            f"(nextval('sns_outbox_seq'), 0, NULL, {', '.join('?' for _ in _ENQUEUED)})",
            [[r.get(c) for c in _ENQUEUED] for r in rows])


def due_deliveries(cur, now_ms: int, exclude: list[int], limit: int) -> list[dict]:
    rows = cur.execute(
        f"SELECT {', '.join(OUTBOX_COLUMNS)} FROM sns_outbox WHERE next_attempt <= ? "
        f"AND id NOT IN (SELECT unnest(?)) ORDER BY next_attempt, id LIMIT ?",
        [now_ms, exclude, limit]).fetchall()
    return [dict(zip(OUTBOX_COLUMNS, r)) for r in rows]


def next_due(cur) -> int | None:
    return cur.execute("SELECT min(next_attempt) FROM sns_outbox").fetchone()[0]


def delivered(w, delivery_id: int) -> None:
    w.execute("DELETE FROM sns_outbox WHERE id = ?", [delivery_id])


def take_deliveries(w, *, subscription_arn: str | None = None,
                    topic_arn: str | None = None) -> list[dict]:
    """Remove the pending deliveries of a subscription or a topic; the removed rows."""
    column, value = (("subscription_arn", subscription_arn) if subscription_arn is not None
                     else ("topic_arn", topic_arn))
    rows = w.execute(f"SELECT {', '.join(OUTBOX_COLUMNS)} FROM sns_outbox WHERE {column} = ?",
                     [value]).fetchall()
    w.execute(f"DELETE FROM sns_outbox WHERE {column} = ?", [value])
    return [dict(zip(OUTBOX_COLUMNS, r)) for r in rows]


def retry_later(w, delivery_id: int, attempts: int, next_attempt: int, error: str) -> None:
    w.execute("UPDATE sns_outbox SET attempts = ?, next_attempt = ?, last_error = ? WHERE id = ?",
              [attempts, next_attempt, error, delivery_id])


def dead_letter(w, row: dict, attempts: int, now_ms: int, error: str) -> None:
    w.execute("INSERT INTO sns_dead_letters (id, subscription_arn, topic_arn, endpoint, "
              "message_type, message_id, body, attempts, created, failed, last_error) "
              "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
              [row["id"], row["subscription_arn"], row["topic_arn"], row["endpoint"],
               row["message_type"], row["message_id"], row["body"], attempts, row["created"],
               now_ms, error])
    w.execute("DELETE FROM sns_outbox WHERE id = ?", [row["id"]])


def dead_letters(cur, subscription_arn: str | None = None) -> list[dict]:
    cols = ("id", "subscription_arn", "topic_arn", "endpoint", "message_type", "message_id",
            "body", "attempts", "created", "failed", "last_error")
    sql = f"SELECT {', '.join(cols)} FROM sns_dead_letters"
    params: list = []
    if subscription_arn is not None:
        sql += " WHERE subscription_arn = ?"
        params.append(subscription_arn)
    return [dict(zip(cols, r)) for r in cur.execute(sql + " ORDER BY failed, id", params).fetchall()]
