"""Metric storage: the series dictionary, datapoint inserts, aggregation reads, compaction
and AWS's retention/roll-up tiers.

Everything takes plain values (epoch milliseconds, lists, numpy arrays) and returns plain
values; SQL is text plus bound parameters.
"""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field

import numpy as np

import pyarrow as pa

from .db import Store, WriteContext, int_list

# Resolution tiers (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch_concepts.html#metrics-retention):
# sub-minute data 3 hours, 1-minute 15 days, 5-minute 63 days, 1-hour 455 days.
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
TIERS = [  # (age in ms after which data is kept at this granularity, granularity ms)
    (3 * HOUR_MS, 60_000),
    (15 * DAY_MS, 300_000),
    (63 * DAY_MS, 3_600_000),
]
RETENTION_MS = 455 * DAY_MS
SPAN_MS = 3 * HOUR_MS            # re-clustering unit (see recluster)
SPAN_GRACE_MS = 15 * 60_000      # how long a span stays open to late data before re-sorting

SAMPLE_TABLES = ("samples", "samples_hot")
STATSET_TABLES = ("statsets", "statsets_hot")


def dim_key(dimensions) -> str:
    """Canonical key of a dimension set: sorted by name, exact values."""
    pairs = sorted((d["Name"], d["Value"]) for d in dimensions) if dimensions else []
    return json.dumps(pairs, separators=(",", ":"), ensure_ascii=False)


@dataclass
class MetricBatch:
    """Columns of one PutMetricData call, ready for the writer.

    ``keys`` are distinct series keys (namespace, metric name, dim_key); rows refer to them by
    index.
    """

    keys: list = field(default_factory=list)
    s_key: list = field(default_factory=list)
    s_ts: list = field(default_factory=list)
    s_value: list = field(default_factory=list)
    s_weight: list = field(default_factory=list)
    s_unit: list = field(default_factory=list)
    s_hires: list = field(default_factory=list)
    t_key: list = field(default_factory=list)
    t_ts: list = field(default_factory=list)
    t_n: list = field(default_factory=list)
    t_sum: list = field(default_factory=list)
    t_min: list = field(default_factory=list)
    t_max: list = field(default_factory=list)
    t_unit: list = field(default_factory=list)
    t_hires: list = field(default_factory=list)

    @property
    def datapoints(self) -> int:
        return len(self.s_ts) + len(self.t_ts)

    def finalize(self) -> "MetricBatch":
        """Turn the row lists into numpy columns (compact to pickle, ready to insert)."""
        f64, i64 = np.float64, np.int64
        for name, dtype in (("s_key", i64), ("s_ts", i64), ("s_value", f64), ("s_weight", f64),
                            ("s_unit", np.uint8), ("s_hires", np.bool_), ("t_key", i64),
                            ("t_ts", i64), ("t_n", f64), ("t_sum", f64), ("t_min", f64),
                            ("t_max", f64), ("t_unit", np.uint8), ("t_hires", np.bool_)):
            setattr(self, name, np.asarray(getattr(self, name), dtype=dtype))
        return self


class MetricsStore:
    def __init__(self, store: Store):
        self.store = store
        self._ids: dict[tuple, int] = {}
        self._info: dict[int, tuple] = {}     # id -> (account, region, ns, name, dims json)
        self._lock = threading.Lock()
        rows = store.con.execute(
            "SELECT id, account, region, namespace, metric_name, dim_key, dimensions FROM series"
        ).fetchall()
        for sid, acct, region, ns, name, dk, dims in rows:
            self._ids[(acct, region, ns, name, dk)] = sid
            self._info[sid] = (acct, region, ns, name, dims)
        self._next_id = (max(self._info) + 1) if self._info else 1

    # -- series dictionary ------------------------------------------------------------------
    def series_id(self, account, region, namespace, metric_name, dkey) -> int | None:
        return self._ids.get((account, region, namespace, metric_name, dkey))

    def series_info(self, sid: int) -> tuple:
        return self._info[sid]

    def _resolve(self, w: WriteContext, account, region, keys, now_ms) -> np.ndarray:
        ids = np.empty(len(keys), dtype=np.int32)
        new = []
        for i, (ns, name, dk) in enumerate(keys):
            k = (account, region, ns, name, dk)
            sid = self._ids.get(k)
            if sid is None:
                with self._lock:
                    sid = self._next_id
                    self._next_id += 1
                    self._ids[k] = sid
                    self._info[sid] = (account, region, ns, name, dk)
                new.append((sid, account, region, ns, name, dk, dk, now_ms))
            ids[i] = sid
        if new:
            def undo(new=new):
                with self._lock:
                    for row in new:
                        self._ids.pop((row[1], row[2], row[3], row[4], row[5]), None)
                        self._info.pop(row[0], None)
            w.on_rollback(undo)
            cols = list(zip(*new))
            _new_series = pa.table({
                "id": pa.array(cols[0], type=pa.int32()), "account": pa.array(cols[1]),
                "region": pa.array(cols[2]), "namespace": pa.array(cols[3]),
                "metric_name": pa.array(cols[4]), "dim_key": pa.array(cols[5]),
                "dimensions": pa.array(cols[6]), "last_put": pa.array(cols[7], type=pa.int64())})
            w.con.execute("INSERT INTO series SELECT * FROM _new_series")
        return ids

    # -- writes ---------------------------------------------------------------------------
    def insert(self, w: WriteContext, account: str, region: str, batch: MetricBatch,
               now_ms: int) -> int:
        ids = self._resolve(w, account, region, batch.keys, now_ms)
        con = w.con
        # numpy dicts reach DuckDB through replacement scans: their local names must not be
        # the name of a table.
        if len(batch.s_ts):
            _ingest_samples = {
                "series_id": ids[np.asarray(batch.s_key, dtype=np.int64)],
                "ts": np.asarray(batch.s_ts, dtype=np.int64),
                "value": np.asarray(batch.s_value, dtype=np.float64),
                "weight": np.asarray(batch.s_weight, dtype=np.float64),
                "unit": np.asarray(batch.s_unit, dtype=np.uint8),
                "hires": np.asarray(batch.s_hires, dtype=np.bool_),
            }
            con.execute("INSERT INTO samples_hot SELECT * FROM _ingest_samples")
        if len(batch.t_ts):
            _ingest_statsets = {
                "series_id": ids[np.asarray(batch.t_key, dtype=np.int64)],
                "ts": np.asarray(batch.t_ts, dtype=np.int64),
                "n": np.asarray(batch.t_n, dtype=np.float64),
                "sum": np.asarray(batch.t_sum, dtype=np.float64),
                "min": np.asarray(batch.t_min, dtype=np.float64),
                "max": np.asarray(batch.t_max, dtype=np.float64),
                "unit": np.asarray(batch.t_unit, dtype=np.uint8),
                "hires": np.asarray(batch.t_hires, dtype=np.bool_),
            }
            con.execute("INSERT INTO statsets_hot SELECT * FROM _ingest_statsets")
        _touched = {"id": np.unique(ids)}
        con.execute("UPDATE series SET last_put = ? FROM _touched WHERE series.id = _touched.id",
                    [now_ms])
        return batch.datapoints

    def compact(self, w: WriteContext) -> int:
        """Move arrival-order rows into the clustered tables, sorted by series and time."""
        moved = 0
        for hot, cold in (("samples_hot", "samples"), ("statsets_hot", "statsets")):
            n = w.con.execute(f"SELECT count(*) FROM {hot}").fetchone()[0]
            if n:
                w.con.execute(f"INSERT OR IGNORE INTO dirty_spans SELECT DISTINCT '{cold}',"
                              f" ts // {SPAN_MS} FROM {hot}")
                w.con.execute(f"INSERT INTO {cold} SELECT * FROM {hot} ORDER BY series_id, ts")
                w.con.execute(f"DELETE FROM {hot}")
                moved += n
        return moved

    def recluster(self, w: WriteContext, now_ms: int, max_spans: int = 1) -> int:
        """Re-sort closed spans that received several compaction runs into one run each.

        A span is closed once it ended more than SPAN_GRACE_MS ago (late data can still
        arrive; it makes the span dirty again).  Bounded per round so the writer is never
        held for long.
        """
        closed = now_ms // SPAN_MS - 1 - SPAN_GRACE_MS // SPAN_MS
        spans = w.con.execute(
            "SELECT tbl, span FROM dirty_spans WHERE span <= ? ORDER BY span LIMIT ?",
            [closed, max_spans]).fetchall()
        for table, span in spans:
            if table not in ("samples", "statsets"):
                continue
            p = {"lo": span * SPAN_MS, "hi": (span + 1) * SPAN_MS}
            w.con.execute(f"CREATE OR REPLACE TEMP TABLE _span AS SELECT * FROM {table}"
                          " WHERE ts >= $lo AND ts < $hi ORDER BY series_id, ts", p)
            w.con.execute(f"DELETE FROM {table} WHERE ts >= $lo AND ts < $hi", p)
            w.con.execute(f"INSERT INTO {table} SELECT * FROM _span")
            w.con.execute("DROP TABLE _span")
            w.con.execute("DELETE FROM dirty_spans WHERE tbl = ? AND span = ?", [table, span])
        return len(spans)

    def hot_rows(self, cur) -> int:
        return cur.execute("SELECT (SELECT count(*) FROM samples_hot) + "
                           "(SELECT count(*) FROM statsets_hot)").fetchone()[0]

    def rollup(self, w: WriteContext, now_ms: int) -> None:
        """Apply AWS's retention tiers: coarsen aged data, drop data past 455 days.

        Coarsening truncates timestamps to the tier's granularity and merges equal values
        (weights add up), so percentiles over the coarser period stay exact.
        """
        con = w.con
        self.compact(w)
        self.recluster(w, now_ms)
        for table in SAMPLE_TABLES + STATSET_TABLES:
            con.execute(f"DELETE FROM {table} WHERE ts < ?", [now_ms - RETENTION_MS])
        # (table, the coarsened row for a group of rows sharing a truncated timestamp)
        coarsen = (
            ("samples", "series_id, ts - ts % $g AS ts, value, sum(weight) AS weight, unit,"
                        " bool_or(hires) AS hires", "series_id, ts - ts % $g, value, unit"),
            ("statsets", "series_id, ts - ts % $g AS ts, sum(n) AS n, sum(sum) AS sum,"
                         " min(min) AS min, max(max) AS max, unit, bool_or(hires) AS hires",
                         "series_id, ts - ts % $g, unit"),
        )
        for age, gran in TIERS:
            p = {"g": gran, "c": now_ms - age}
            for table, select, group in coarsen:
                aged = f"FROM {table} WHERE ts < $c AND ts % $g <> 0"
                if not con.execute(f"SELECT count(*) {aged}", p).fetchone()[0]:
                    continue
                con.execute(f"CREATE OR REPLACE TEMP TABLE _roll AS SELECT {select} {aged}"
                            f" GROUP BY {group}", p)
                con.execute(f"DELETE {aged}", p)
                con.execute(f"INSERT INTO {table} SELECT * FROM _roll ORDER BY series_id, ts")
                con.execute("DROP TABLE _roll")

    # -- reads ------------------------------------------------------------------------------
    @staticmethod
    def _where(ids, unit: int | None) -> str:
        return (f"series_id IN {int_list(ids)} AND ts >= $start AND ts < $end"
                + (" AND unit = $unit" if unit is not None else ""))

    def aggregate(self, cur, series_ids: list[int], start_ms: int, end_ms: int, period_ms: int,
                  unit: int | None = None, by_unit: bool = True, by_series: bool = False):
        """Per (series?, bucket, unit?): sample count, sum, min, max.

        Buckets are ``start + k * period``.  Returns a dict of numpy arrays.
        """
        where = self._where(series_ids, unit)
        params = {"start": start_ms, "end": end_ms, "p": period_ms}
        if unit is not None:
            params["unit"] = unit
        parts = [f"SELECT series_id, ts, weight AS n, value * weight AS s, value AS lo, value AS hi,"
                 f" unit FROM {t} WHERE {where}" for t in SAMPLE_TABLES]
        parts += [f"SELECT series_id, ts, n, sum AS s, min AS lo, max AS hi, unit FROM {t}"
                  f" WHERE {where}" for t in STATSET_TABLES]
        keys = (["series_id"] if by_series else []) + ["b"] + (["unit"] if by_unit else [])
        sel = ", ".join(keys)
        sql = (f"SELECT {sel}, sum(n) AS n, sum(s) AS s, min(lo) AS lo, max(hi) AS hi FROM ("
               f"SELECT *, (ts - $start) // $p AS b FROM ({' UNION ALL '.join(parts)})) "
               f"GROUP BY {sel} ORDER BY {sel}")
        res = cur.execute(sql, params).fetchnumpy()
        return res

    def samples_by_bucket(self, cur, series_ids: list[int], start_ms: int, end_ms: int,
                          period_ms: int, unit: int | None = None, by_series: bool = False):
        """(series?, bucket, unit, value, weight) rows for percentile-type statistics."""
        where = self._where(series_ids, unit)
        params = {"start": start_ms, "end": end_ms, "p": period_ms}
        if unit is not None:
            params["unit"] = unit
        parts = [f"SELECT series_id, (ts - $start) // $p AS b, unit, value, weight FROM {t}"
                 f" WHERE {where}" for t in SAMPLE_TABLES]
        return cur.execute(" UNION ALL ".join(parts), params).fetchnumpy()

    def statset_buckets(self, cur, series_ids, start_ms, end_ms, period_ms, unit=None,
                        by_series=False):
        """Buckets that hold statistic-set data (percentiles are unavailable there)."""
        where = self._where(series_ids, unit)
        params = {"start": start_ms, "end": end_ms, "p": period_ms}
        if unit is not None:
            params["unit"] = unit
        parts = [f"SELECT DISTINCT series_id, (ts - $start) // $p AS b, unit FROM {t} WHERE {where}"
                 for t in STATSET_TABLES]
        return cur.execute(" UNION ".join(parts), params).fetchall()

    def list_series(self, cur, account, region, namespace=None, metric_name=None,
                    active_since_ms=None, after=None, limit=500):
        """Series ordered by (namespace, metric_name, dim_key), keyset-paginated by ``after``."""
        sql = ["SELECT id, namespace, metric_name, dim_key FROM series WHERE account = ? AND region = ?"]
        params: list = [account, region]
        if namespace is not None:
            sql.append("AND namespace = ?")
            params.append(namespace)
        if metric_name is not None:
            sql.append("AND metric_name = ?")
            params.append(metric_name)
        if active_since_ms is not None:
            sql.append("AND last_put >= ?")
            params.append(active_since_ms)
        if after is not None:
            sql.append("AND (namespace, metric_name, dim_key) > (?, ?, ?)")
            params.extend(after)
        sql.append("ORDER BY namespace, metric_name, dim_key")
        if limit is not None:
            sql.append("LIMIT ?")
            params.append(limit)
        return cur.execute(" ".join(sql), params).fetchall()
