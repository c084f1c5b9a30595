"""What a ``fraudrules serve`` reload costs, and what the service holds for it (docs/streaming.md, *Reload*).

A DecisionService (in process, no HTTP) takes N generated records in requests of 500, each request's
records parsed from JSON as a server parses them, so that nothing else holds them. Then one rule's score
changes and the service reloads: the new pack's state is rebuilt from the retained records, read back from
the write-ahead log. Printed: the RSS before the reload, the reload's time and rebuild rate, and beside it
the peer measured in the same run: a fresh StreamExecutor of the new pack fed the same records from memory
(``feed_many`` of 4,096, as the rebuild feeds them), the floor of any rebuild.

Run from the repository root:
  fraudrules generate --out /tmp/gen --customers 2000 --days 7
  python bench/bench_reload.py /tmp/gen 100000
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.bench_stream import peak_rss_mb, rss_mb  # noqa: E402
from fraudrules.executors.stream import StreamExecutor  # noqa: E402
from fraudrules.io.records import parse_inputs  # noqa: E402
from fraudrules.jobs.watch import ordered_records  # noqa: E402
from fraudrules.pack.loader import load_pack  # noqa: E402
from fraudrules.runtime.plan import compile_pack  # noqa: E402
from fraudrules.serve.service import REPLAY_CHUNK, DecisionService, ServeOptions  # noqa: E402

REQUEST = 500


async def _serve_then_reload(rules: Path, state: Path, recs: list[dict]) -> tuple[float, dict, int]:
    svc = DecisionService(ServeOptions(rules=rules, state_dir=state), log=lambda m: None)
    svc.open()
    await svc.start()
    try:
        for i in range(0, len(recs), REQUEST):
            await svc.submit(json.loads(json.dumps(recs[i: i + REQUEST])))  # fresh objects, as a request's
        rule = next(p for p in sorted(rules.glob("*/*.yaml")) if re.search(r"^score: \d+$", p.read_text(), re.M))
        rule.write_text(re.sub(r"^score: \d+$", "score: 1", rule.read_text(), count=1, flags=re.M))
        before = rss_mb()
        t0 = time.perf_counter()
        result = await svc.reload()
        return time.perf_counter() - t0, result, int(before)
    finally:
        await svc.stop()


def main() -> None:
    data, n = sys.argv[1], int(sys.argv[2])
    work = Path(tempfile.mkdtemp(prefix="bench-reload-"))
    try:
        rules = work / "rules"
        shutil.copytree(REPO / "rules", rules)
        pack = load_pack(rules)
        recs = ordered_records(parse_inputs([data], pack.schema), pack.schema)[:n]
        secs, result, rss_before = asyncio.run(_serve_then_reload(rules, work / "state", recs))
        assert result["reloaded"], result
        replayed = result["replayed"]
        ex = StreamExecutor(compile_pack(load_pack(rules), "CN"), lateness=0.0)
        t0 = time.perf_counter()
        for i in range(0, len(recs), REPLAY_CHUNK):
            ex.feed_many(recs[i: i + REPLAY_CHUNK])
        peer = time.perf_counter() - t0
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{len(recs):,} records served, {replayed:,} retained and replayed; RSS before the reload "
          f"{rss_before} MB, peak {peak_rss_mb():.0f} MB")
    print("| rebuild | seconds | records/s |\n|---|--:|--:|")
    print(f"| serve reload (read back from the log) | {secs:.2f} | {replayed / secs:,.0f} |")
    print(f"| peer: a fresh executor fed the records from memory | {peer:.2f} | {len(recs) / peer:,.0f} |")


if __name__ == "__main__":
    main()
