"""DuckDB storage."""
