"""Executors evaluate a compiled Plan: batch (vectorised, numpy) and stream (record by record, on durable-rules)."""
