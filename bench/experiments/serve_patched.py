"""``metricstore serve`` with the write-path fixes proposed in bench/RESULTS.md, applied by
monkeypatching at start (an experiment: the repository's server code is not touched).

    PATCHES=update,series,pandas \
    BENCH_SERVER_CMD=".venv/bin/python bench/experiments/serve_patched.py" \
    .venv/bin/python bench/ingest.py --no-moto

PATCHES (comma list):  pandas       sys.modules["pandas"] = None when pandas is not installed
                       update       last_put UPDATE through a numpy replacement-scan join
                       series       new series through numpy unicode columns, not executemany
                       lastput_mem  update last_put only for series not stamped in the last 60 s
Copies MetricsStore.insert/_resolve as of 2026-11-26: re-check them against the current code.
"""
import os, sys, threading
import numpy as np
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
from metricstore.store import metrics as M

patches = set(filter(None, os.environ.get("PATCHES", "update,series").split(",")))
if "pandas" in patches:
    import importlib.util
    if importlib.util.find_spec("pandas") is None:
        # duckdb's Python value conversion tries `import pandas` twice per bound value; a failed
        # import is not cached, so each try walks sys.path (~0.1 ms).  None = cached failure.
        sys.modules["pandas"] = None
orig_insert = M.MetricsStore.insert

def _resolve(self, w, account, region, keys, now_ms):
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
        c = list(zip(*new))
        _new_series = {"id": np.array(c[0], dtype=np.int32), "account": np.array(c[1]), "region": np.array(c[2]),
                       "namespace": np.array(c[3]), "metric_name": np.array(c[4]), "dim_key": np.array(c[5]),
                       "dimensions": np.array(c[6]), "last_put": np.array(c[7], dtype=np.int64)}
        w.con.execute("INSERT INTO series SELECT * FROM _new_series")
    return ids

if "series" in patches:
    M.MetricsStore._resolve = _resolve

_stamp = {}
def insert(self, w, account, region, batch, now_ms):
    ids = self._resolve(w, account, region, batch.keys, now_ms)
    con = w.con
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
            "n": np.asarray(batch.t_n, dtype=np.float64), "sum": np.asarray(batch.t_sum, dtype=np.float64),
            "min": np.asarray(batch.t_min, dtype=np.float64), "max": np.asarray(batch.t_max, dtype=np.float64),
            "unit": np.asarray(batch.t_unit, dtype=np.uint8), "hires": np.asarray(batch.t_hires, dtype=np.bool_),
        }
        con.execute("INSERT INTO statsets_hot SELECT * FROM _ingest_statsets")
    touched = np.unique(ids)
    if "lastput_mem" in patches:
        stale = [int(s) for s in touched if now_ms - _stamp.get(int(s), 0) > 60_000]
        if not stale:
            return batch.datapoints
        for s in stale:
            _stamp[s] = now_ms
        touched = np.array(stale, dtype=np.int32)
    _touched = {"id": touched.astype(np.int32)}
    con.execute("UPDATE series SET last_put = ? FROM _touched WHERE series.id = _touched.id", [now_ms])
    return batch.datapoints

if "update" in patches or "lastput_mem" in patches:
    M.MetricsStore.insert = insert

if __name__ == "__main__":
    from metricstore.__main__ import main
    sys.exit(main(sys.argv[1:]))
