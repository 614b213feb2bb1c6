-- All DDL in one file. Timestamps are epoch milliseconds (BIGINT) unless named *_s.
CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR);

-- Metric series: an exact dimension set is one equality on dim_key.
CREATE TABLE IF NOT EXISTS series (
    id          INTEGER PRIMARY KEY,
    account     VARCHAR NOT NULL,
    region      VARCHAR NOT NULL,
    namespace   VARCHAR NOT NULL,
    metric_name VARCHAR NOT NULL,
    dim_key     VARCHAR NOT NULL,   -- canonical: JSON of [[name, value], ...] sorted by name
    dimensions  VARCHAR NOT NULL,   -- same JSON (kept for listing)
    last_put    BIGINT NOT NULL     -- wall-clock ms of the last PutMetricData touching it
);

-- Individual values (Value, or Values+Counts): weight = count. unit = index in UNITS.
-- *_hot receives ingest in arrival order; compaction moves it, sorted by series, into the
-- clustered table so that one series' data sits in few row groups.
CREATE TABLE IF NOT EXISTS samples     (series_id INTEGER, ts BIGINT, value DOUBLE, weight DOUBLE, unit UTINYINT, hires BOOLEAN);
CREATE TABLE IF NOT EXISTS samples_hot (series_id INTEGER, ts BIGINT, value DOUBLE, weight DOUBLE, unit UTINYINT, hires BOOLEAN);

-- Statistic sets (StatisticValues): no individual values, so no percentiles.
CREATE TABLE IF NOT EXISTS statsets     (series_id INTEGER, ts BIGINT, n DOUBLE, sum DOUBLE, min DOUBLE, max DOUBLE, unit UTINYINT, hires BOOLEAN);
CREATE TABLE IF NOT EXISTS statsets_hot (series_id INTEGER, ts BIGINT, n DOUBLE, sum DOUBLE, min DOUBLE, max DOUBLE, unit UTINYINT, hires BOOLEAN);

-- Each compaction appends one run sorted by series; a time span that received several runs
-- is re-sorted into one once it is closed, so that a series' data for a day sits in a few
-- row groups (span = floor(ts / SPAN_MS)).
CREATE TABLE IF NOT EXISTS dirty_spans (tbl VARCHAR, span BIGINT, PRIMARY KEY (tbl, span));

CREATE TABLE IF NOT EXISTS dashboards (
    account VARCHAR, region VARCHAR, name VARCHAR, body VARCHAR, last_modified BIGINT, size INTEGER,
    PRIMARY KEY (account, region, name)
);

CREATE TABLE IF NOT EXISTS tags (
    arn VARCHAR, key VARCHAR, value VARCHAR, PRIMARY KEY (arn, key)
);
