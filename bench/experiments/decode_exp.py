"""How fast could PutMetricData JSON decoding be?  (experiment for bench/RESULTS.md)

    .venv/bin/python bench/experiments/decode_exp.py
"""
import os, sys
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..")); sys.path.insert(0, os.path.join(HERE, "..", ".."))
import time, gzip, json, math
import ingest, _common as C
import orjson
try:
    import msgspec   # optional: pip install msgspec (not a dependency)
except ImportError:
    msgspec = None
base = C.tmpdir("dexp"); dirs = C.model_dirs(base)
bodies = ingest.build_bodies("json", 4, 1000, time.time(), dirs)
raw = [gzip.decompress(b["body"]) for b in bodies]
def rate(label, fn, n_dp=1000, secs=2.0):
    fn(0); t=time.perf_counter(); i=0
    while time.perf_counter()-t < secs: fn(i); i+=1
    el=time.perf_counter()-t
    print(f"{label:60s} {el/i*1e3:6.2f} ms/call  {i*n_dp/el/1e3:7.1f} k dp/s")
dec = ingest.decoder()
rate("current: pick_codec+decode+read_params+build_batch", lambda i: dec(bodies[i%4], time.time()))
rate("gzip inflate only", lambda i: gzip.decompress(bodies[i%4]["body"]))
rate("json.loads only", lambda i: json.loads(raw[i%4]))
rate("orjson.loads only", lambda i: orjson.loads(raw[i%4]))
from metricstore.codecs.shapes import read_input
from metricstore import services
spec = services.service("cloudwatch")
vals = [json.loads(r) for r in raw]
rate("read_input (shape walk) only", lambda i: read_input(spec, "PutMetricData", vals[i%4], strings=False))
params = [read_input(spec, "PutMetricData", v, strings=False) for v in vals]
from metricstore.operations.metrics import build_batch
rate("build_batch only", lambda i: build_batch("Bench", params[i%4]["MetricData"], time.time()))
from metricstore.store.metrics import dim_key
rate("dim_key x1000 only", lambda i: [dim_key(d.get("Dimensions")) for d in params[i%4]["MetricData"]])

# a specialised fast path: orjson + one loop per datum, dim_key cached on the raw dims tuple
UNIT = {u: k for k, u in enumerate(["None","Seconds","Microseconds","Milliseconds","Bytes","Kilobytes","Megabytes","Gigabytes","Terabytes","Bits","Kilobits","Megabits","Gigabits","Terabits","Percent","Count","Bytes/Second","Kilobytes/Second","Megabytes/Second","Gigabytes/Second","Terabytes/Second","Bits/Second","Kilobits/Second","Megabits/Second","Gigabits/Second","Terabits/Second","Count/Second"])}
_dk_cache = {}
def fast(body, now):
    v = orjson.loads(gzip.decompress(body))
    ns = v["Namespace"]
    keys = {}; klist = []
    s_key = []; s_ts = []; s_val = []; s_unit = []
    lo, hi = now - 14*86400, now + 7200
    for d in v["MetricData"]:
        dims = d.get("Dimensions")
        name = d["MetricName"]
        if dims:
            t = tuple((x["Name"], x["Value"]) for x in dims)
            dk = _dk_cache.get(t)
            if dk is None:
                if len({n for n, _ in t}) != len(t): raise ValueError("dup")
                dk = _dk_cache[t] = json.dumps(sorted(t), separators=(",", ":"), ensure_ascii=False)
        else:
            dk = "[]"
        k = (name, dk)
        ki = keys.get(k)
        if ki is None:
            ki = keys[k] = len(klist); klist.append(k)
        ts = d.get("Timestamp", now)
        if not (lo <= ts <= hi): raise ValueError("ts")
        x = d["Value"]
        if not math.isfinite(x): raise ValueError("nan")
        s_key.append(ki); s_ts.append(int(ts * 1000)); s_val.append(x); s_unit.append(UNIT[d.get("Unit", "None")])
    return klist, s_key, s_ts, s_val, s_unit
rate("fast path: gzip + orjson + one loop + dim_key cache", lambda i: fast(bodies[i%4]["body"], time.time()))

if msgspec is not None:
    class Dim(msgspec.Struct):
        Name: str
        Value: str
    class Datum(msgspec.Struct, omit_defaults=True):
        MetricName: str
        Dimensions: list[Dim] = []
        Timestamp: float | None = None
        Value: float | None = None
        Values: list[float] | None = None
        Counts: list[float] | None = None
        Unit: str = "None"
        StorageResolution: int = 60
    class Put(msgspec.Struct):
        Namespace: str
        MetricData: list[Datum]
    decoder = msgspec.json.Decoder(Put)
    rate("msgspec typed decode only", lambda i: decoder.decode(raw[i%4]))
    def ms_fast(body, now):
        p = decoder.decode(gzip.decompress(body))
        keys = {}; klist = []; s_key = []; s_ts = []; s_val = []
        for d in p.MetricData:
            t = tuple((x.Name, x.Value) for x in d.Dimensions)
            dk = _dk_cache.get(t)
            if dk is None:
                dk = _dk_cache[t] = json.dumps(sorted(t), separators=(",", ":"), ensure_ascii=False)
            k = (d.MetricName, dk); ki = keys.get(k)
            if ki is None: ki = keys[k] = len(klist); klist.append(k)
            s_key.append(ki); s_ts.append(int((d.Timestamp or now) * 1000)); s_val.append(d.Value)
        return klist, s_key, s_ts, s_val
    rate("fast path with msgspec typed decode", lambda i: ms_fast(bodies[i%4]["body"], time.time()))
C.rmtree(base)
