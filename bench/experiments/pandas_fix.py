"""duckdb 1.5.5 tries `import pandas` twice per bound Python value; without pandas installed
every try walks sys.path.  Times the statements the server uses, as is and with the failed
import cached (sys.modules["pandas"] = None).

    .venv/bin/python bench/experiments/pandas_fix.py
"""
import duckdb, sys, time, numpy as np, importlib.util
def run(label):
    con = duckdb.connect()
    con.execute("CREATE TABLE series (id INTEGER PRIMARY KEY, account VARCHAR, region VARCHAR, namespace VARCHAR, metric_name VARCHAR, dim_key VARCHAR, dimensions VARCHAR, last_put BIGINT)")
    rows = [(i, "000000000000", "us-east-1", "Bench", f"metric_{i%10}", f'[["InstanceId","i-{i}"]]', f'[["InstanceId","i-{i}"]]', 0) for i in range(1, 1001)]
    def T(what, f):
        t=time.perf_counter(); f(); print(f"{label:28s} {what:48s} {(time.perf_counter()-t)*1000:8.1f} ms")
    T("executemany INSERT 1000 series rows", lambda: con.executemany("INSERT INTO series VALUES (?,?,?,?,?,?,?,?)", rows))
    ids = list(range(1, 1001))
    T("UPDATE ... IN (SELECT unnest(?)), 1000 ids", lambda: con.execute("UPDATE series SET last_put = ? WHERE id IN (SELECT unnest(?))", [1, ids]))
    T("SELECT ... IN (SELECT unnest(?)), 100 ids", lambda: con.execute("SELECT count(*) FROM series WHERE id IN (SELECT unnest(?))", [ids[:100]]).fetchall())
    def scan():
        _obj = {"a": np.array([f"x{i}" for i in range(1000)], dtype=object)}
        con.execute("CREATE TEMP TABLE t1 AS SELECT * FROM _obj")
    T("replacement scan, 1000 object-dtype strings", scan)
print("pandas importable:", importlib.util.find_spec("pandas") is not None)
run("as is")
sys.modules["pandas"] = None
run("sys.modules['pandas']=None")
