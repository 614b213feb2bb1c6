"""metricstore: CloudWatch, CloudWatch Logs and SNS on the wire, backed by DuckDB."""
