"""The stream executor: a Plan evaluated record by record on durable-rules."""

from .executor import StreamExecutor, stream_alert_ids

__all__ = ["StreamExecutor", "stream_alert_ids"]
