"""GetMetricStatistics response build for 1440 points: current per-element loop vs columnar."""
import os, sys
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..")); sys.path.insert(0, os.path.join(HERE, "..", ".."))
import time, json, statistics
import numpy as np, orjson
from metricstore.operations.metrics import StatSpec, UNITS
from metricstore.codecs.json import JSON, _dumps
from metricstore.codecs._wire import convert, epoch
from metricstore import services
spec = services.service("cloudwatch")
op = spec.operation("GetMetricStatistics")
n = 1440; start = 1795618860; period = 60
specs = [StatSpec.parse(s) for s in ("SampleCount", "Average", "Sum", "Minimum", "Maximum")]
rng = np.random.default_rng(1)
res = {"b": np.arange(n, dtype=np.int64), "unit": 3, **{s.name: rng.random(n) * 100 for s in specs}}
def current():
    points = []
    for j, b in enumerate(res["b"]):
        p = {"Timestamp": start + int(b) * period, "Unit": UNITS[res["unit"]]}
        for s in specs:
            v = res[s.name][j]
            if np.isnan(v): continue
            p[s.name] = float(v)
        points.append(p)
    points.sort(key=lambda p: p["Timestamp"])
    out = {"Label": "Latency", "Datapoints": points}
    return _dumps(convert(op.output_shape, out, epoch))
def columnar():
    ts = (start + res["b"] * period).astype(np.float64).tolist()
    unit = UNITS[res["unit"]]
    cols = [(s.name, res[s.name]) for s in specs]
    ok = ~np.any([np.isnan(c) for _, c in cols], axis=0)
    names = ["Timestamp", "Unit"] + [n for n, _ in cols]
    rows = zip(ts, [unit] * n, *[c.tolist() for _, c in cols])
    points = [dict(zip(names, r)) for r in rows]   # (NaN handling elided: all finite here)
    return orjson.dumps({"Label": "Latency", "Datapoints": points})
for f in (current, columnar):
    f(); ts = []
    for _ in range(20):
        t = time.perf_counter(); f(); ts.append(time.perf_counter() - t)
    print(f"{f.__name__:10s} {statistics.median(ts)*1000:6.2f} ms  ({len(f())} bytes)")
a = json.loads(current()); b = json.loads(columnar()); print("same answer:", a == b)
