"""Benchmarks (scripts, not installed); a package so that tests can import bench.pack_sql."""
