"""Hand-written gmd/gms SQL on the sorted copy at several DuckDB row-group sizes.

    .venv/bin/python bench/metrics_query.py --keep /tmp/q10k --no-moto    # builds the reference
    .venv/bin/python bench/experiments/row_group_size.py /tmp/q10k
"""
import sys, os
REF = os.path.join(sys.argv[1] if len(sys.argv) > 1 else "/tmp/q10k", "reference.duckdb")
import duckdb, time, random, statistics
rng = random.Random(7)
probe = [rng.randrange(1, 10001) for _ in range(5)]
ids = sorted(rng.sample(range(1, 10001), 100))
L = ", ".join(map(str, ids))
for rgs in (122880, 16384, 4096):
    con = duckdb.connect()
    con.execute(f"ATTACH '{REF}' AS r (READ_ONLY)")
    tmp = os.path.join(os.path.dirname(REF), f'rg{rgs}.duckdb')
    if os.path.exists(tmp):
        os.remove(tmp)
    con.execute(f"ATTACH '{tmp}' AS t (ROW_GROUP_SIZE {rgs})")
    con.execute("CREATE OR REPLACE TABLE t.s AS SELECT * FROM r.sorted")
    end = con.execute("select max(ts)+60000 from t.s").fetchone()[0]; start = end - 1440*60000
    w = f"ts >= {start} AND ts < {end}"; b = f"(ts - {start}) // 60000"
    def T(label, sql, n=10):
        con.execute(sql).fetchall(); ts=[]
        for _ in range(n):
            t=time.perf_counter(); con.execute(sql).fetchall(); ts.append(time.perf_counter()-t)
        print(f"rg {rgs:6d} {label:30s} {statistics.median(ts)*1000:7.1f} ms")
    T("gmd IN literal", f"SELECT b, sum(v) FROM (SELECT series_id, {b} b, avg(value) v FROM t.s WHERE series_id IN ({L}) AND {w} GROUP BY ALL) GROUP BY b ORDER BY b")
    T("gms one series", f"SELECT {b} b, sum(weight), sum(value*weight), min(value), max(value) FROM t.s WHERE series_id = {probe[0]} AND {w} GROUP BY b ORDER BY b")
    con.close()
