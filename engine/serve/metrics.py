"""Prometheus text exposition (format 0.0.4), written by hand: a few counters, gauges and
histograms do not need the prometheus-client dependency."""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import Counter

# seconds: 0.25 ms .. 5 s
LATENCY_BUCKETS = (0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


def _escape(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: tuple[tuple[str, str], ...]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(str(v))}"' for k, v in labels) + "}"


def _num(x: float) -> str:
    if isinstance(x, int):
        return str(x)
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    return repr(float(x))


class Histogram:
    def __init__(self, buckets: tuple[float, ...] = LATENCY_BUCKETS):
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)
        self.sum = 0.0
        self.n = 0

    def observe(self, v: float) -> None:
        self.counts[bisect_left(self.buckets, v)] += 1
        self.sum += v
        self.n += 1


class Metrics:
    """The service's metrics; everything is updated on the event loop (no locks)."""

    def __init__(self) -> None:
        self.records: Counter = Counter()  # (stream, status) -> n
        self.decisions: Counter = Counter()  # decision -> n
        self.alerts: Counter = Counter()  # rule id -> n
        self.rejects = 0
        self.late = 0
        self.requests: Counter = Counter()  # (endpoint, code) -> n
        self.request_seconds = Histogram()
        self.decide_seconds = Histogram()  # per record, in-process (no HTTP, no fsync)
        self.reloads: Counter = Counter()  # "ok" | "failed" -> n
        self.checkpoints = 0

    def render(self, gauges: dict[str, tuple[str, float]], wal: dict[str, int]) -> str:
        out: list[str] = []

        def family(name: str, kind: str, help_: str, samples: list[tuple[tuple[tuple[str, str], ...], float]]) -> None:
            out.append(f"# HELP {name} {help_}")
            out.append(f"# TYPE {name} {kind}")
            for labels, v in samples:
                out.append(f"{name}{_labels(labels)} {_num(v)}")

        def hist(name: str, help_: str, h: Histogram) -> None:
            out.append(f"# HELP {name} {help_}")
            out.append(f"# TYPE {name} histogram")
            acc = 0
            for b, c in zip(h.buckets, h.counts):
                acc += c
                out.append(f'{name}_bucket{{le="{b}"}} {acc}')
            out.append(f'{name}_bucket{{le="+Inf"}} {h.n}')
            out.append(f"{name}_sum {_num(h.sum)}")
            out.append(f"{name}_count {h.n}")

        family("fraudrules_records_total", "counter",
               "Records accepted, by stream and status (decided, late, or replayed: a retry given its kept answer).",
               [((("stream", s), ("status", st)), n) for (s, st), n in sorted(self.records.items())])
        family("fraudrules_decisions_total", "counter", "Decisions given, by decision.",
               [((("decision", d),), n) for d, n in sorted(self.decisions.items())])
        family("fraudrules_alerts_total", "counter", "Alerts emitted, by rule.",
               [((("rule", r),), n) for r, n in sorted(self.alerts.items())])
        family("fraudrules_rejects_total", "counter", "Records refused with 422 (the reasons rejects.csv uses).",
               [((), self.rejects)])
        family("fraudrules_late_records_total", "counter", "Records behind the watermark (not decided).",
               [((), self.late)])
        family("fraudrules_http_requests_total", "counter", "HTTP requests by endpoint and status code.",
               [((("endpoint", e), ("code", str(c))), n) for (e, c), n in sorted(self.requests.items())])
        hist("fraudrules_request_seconds", "POST /v1/records latency in the server, WAL fsync included.",
             self.request_seconds)
        hist("fraudrules_decide_seconds", "Stream executor time per record (no HTTP, no fsync).", self.decide_seconds)
        family("fraudrules_reloads_total", "counter", "Rule pack reloads by result.",
               [((("result", r),), n) for r, n in sorted(self.reloads.items())])
        family("fraudrules_checkpoints_total", "counter", "Executor checkpoints written.", [((), self.checkpoints)])
        family("fraudrules_wal_fsyncs_total", "counter", "Write-ahead log group commits (fsyncs).",
               [((), wal.get("fsyncs", 0))])
        family("fraudrules_wal_bytes_total", "counter", "Write-ahead log bytes written.", [((), wal.get("bytes", 0))])
        for name, (help_, v) in sorted(gauges.items()):
            family(name, "gauge", help_, [((), v)])
        return "\n".join(out) + "\n"
