"""The analysts' workbench: the HTML report (data, escaping, a real headless Chromium), `show`, the flat CSV.

The browser test drives Debian's ``chromium`` over the Chrome DevTools Protocol (websocket-client);
it loads the page from a file:// URL with every other network path closed, and fails (not skips)
when chromium is missing, because CI installs it.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest

from fraudrules.io.sinks import conditions_text, evidence_text, write_alerts
from fraudrules.report.data import (
    alerts_per_rule_per_day,
    find_outputs,
    load_backtest,
    parse_tz,
    prepare,
    read_alert_table,
    read_scored,
    severity_counts,
    top_keys,
)
from fraudrules.report.page import render
from tests.helpers import REPO

CLI = [sys.executable, str(REPO / "cli.py")]
SAMPLES = REPO / "samples"
ARTIFACTS = REPO / "tests" / "artifacts"
HOSTILE = "<script>alert(1)</script>"


def run(*args, **kw):
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, cwd=REPO, timeout=300, **kw)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def scored(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report") / "out"
    proc = run("score", SAMPLES, "--out", out, "-q")
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.fixture(scope="module")
def backtest_json(tmp_path_factory) -> Path:
    """A backtest with a baseline pack that lacks the APP-scam rule: the current pack gains its cases."""
    tmp = tmp_path_factory.mktemp("backtest")
    baseline = tmp / "baseline"
    shutil.copytree(REPO / "rules", baseline)
    (baseline / "payments" / "app_scam.yaml").unlink()
    (baseline / "payments" / "no_callback.yaml").unlink()  # it catches app scams too, at their deadline
    out = tmp / "bt.json"
    proc = run("backtest", SAMPLES, "--labels", SAMPLES / "labels.csv", "--baseline", baseline, "--json", out)
    assert proc.returncode == 0, proc.stderr
    return out


def hostile_copy(scored: Path, dest: Path) -> Path:
    """The samples' output plus one alert whose record id, key, fields and explain are markup."""
    shutil.copytree(scored, dest)
    alerts = read_jsonl(dest / "alerts.jsonl")
    bad = json.loads(json.dumps(alerts[0]))
    bad.update(alert_id="bad0" * 8, key=HOSTILE, record_id=HOSTILE, explain=f"paid {HOSTILE} & [red]x[/red]",
               ts="2026-03-01T00:00:01Z")
    bad["evidence"][0].update(id=HOSTILE, fields={"note": HOSTILE, '"><img src=x onerror=alert(2)>': 1})
    bad["conditions"][0]["values"] = {HOSTILE: "</script><script>alert(3)</script>"}
    with open(dest / "alerts.jsonl", "a", encoding="utf-8") as fh:
        fh.write(json.dumps(bad) + "\n")
    return dest


# --- data preparation -------------------------------------------------------------------------------------

def test_alerts_per_rule_per_day_equal_a_hand_count(scored):
    alerts = read_jsonl(scored / "alerts.jsonl")
    table = read_alert_table(find_outputs(scored))
    for tz_text, hours in (("+08:00", 8), ("UTC", 0)):
        hand = Counter()
        for a in alerts:
            t = datetime.strptime(a["ts"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
            hand[((t + timedelta(hours=hours)).strftime("%Y-%m-%d"), a["rule_id"])] += 1
        got = alerts_per_rule_per_day(table, parse_tz(tz_text))
        assert dict(zip(zip(got["day"], got["rule_id"]), got["alerts"].tolist())) == dict(hand)
    summary = json.loads((scored / "summary.json").read_text())
    local = alerts_per_rule_per_day(table, parse_tz("+08:00"))
    assert local.groupby("rule_id")["alerts"].sum().to_dict() == {k: v for k, v in summary["alerts_by_rule"].items()
                                                                   if v}
    # the samples start at local midnight of 2026-03-01: in UTC the first alerts fall on 28 February
    assert "2026-02-28" in set(alerts_per_rule_per_day(table, timezone.utc)["day"])
    assert "2026-02-28" not in set(local["day"])


def test_severities_decisions_and_top_keys_agree_with_the_summary(scored):
    summary = json.loads((scored / "summary.json").read_text())
    folder = find_outputs(scored)
    table = read_alert_table(folder)
    sev = severity_counts(table).set_index("severity")
    assert {k: int(v) for k, v in (sev["live"] + sev["shadow"]).items() if v} == summary["alerts_by_severity"]
    assert read_scored(folder)["decision"].value_counts().to_dict() == summary["decisions"]
    keys = top_keys(table, 5)
    by_key = Counter(a["key"] for a in read_jsonl(scored / "alerts.jsonl"))
    assert keys["alerts"].tolist() == sorted(by_key.values(), reverse=True)[:5]
    assert by_key[keys["key"][0]] == keys["alerts"][0]


def test_the_page_caps_alert_sections_and_says_so(scored):
    data = prepare(scored, max_alerts=7)
    ts = [a["ts"] for a in data.sections]
    assert len(ts) == 7 and ts == sorted(ts)
    assert ts[-1] <= min(a["ts"] for a in read_jsonl(scored / "alerts.jsonl") if a["ts"] not in ts[:-1])
    page = render(data)
    assert page.count('<details class="alert"') == 7
    assert f"The first 7 of {len(data.alerts)} alerts by event time" in page


def test_a_folder_without_alerts_still_renders(scored, tmp_path):
    folder = tmp_path / "quiet"
    shutil.copytree(scored, folder)
    (folder / "alerts.jsonl").write_text("")
    data = prepare(folder)
    page = render(data)
    assert len(data.alerts) == 0 and data.sections == [] and "All 0 alerts" in page
    assert data.decisions.set_index("decision").sum(axis=1).sum() == data.records["scored"]


def test_parse_tz_accepts_offsets_and_names_and_rejects_junk():
    assert parse_tz("+08:00").utcoffset(None) == timedelta(hours=8)
    assert parse_tz("-0530").utcoffset(None) == -timedelta(hours=5, minutes=30)
    assert parse_tz("UTC+8").utcoffset(None) == timedelta(hours=8)
    assert parse_tz("Asia/Shanghai").utcoffset(datetime(2026, 3, 1)) == timedelta(hours=8)
    for bad in ("+25:00", "Mars/Olympus", "soon"):
        with pytest.raises(ValueError):
            parse_tz(bad)


def test_hostile_record_values_are_escaped(scored, tmp_path):
    folder = hostile_copy(scored, tmp_path / "bad")
    page = render(prepare(folder))
    assert HOSTILE not in page and "alert(2)>" not in page and "<script>alert(3)" not in page
    assert html_escaped(HOSTILE) in page
    assert '&quot;&gt;&lt;img src=x onerror=alert(2)&gt;' in page
    # the only scripts are plotly, the JSON data blocks and the page's own
    blocks = re.findall(r'<script type="application/json" id="fig-\d+">(.*?)</script>', page, re.S)
    assert page.count("<script") == 2 + len(blocks) and len(blocks) == page.count('class="chart"')
    for b in blocks:
        assert "<" not in b and ">" not in b
        json.loads(b)


def html_escaped(text: str) -> str:
    import html

    return html.escape(text, quote=True)


def test_a_hostile_rule_id_reaches_the_charts_escaped(scored, tmp_path):
    folder = hostile_copy(scored, tmp_path / "bad")
    lines = (folder / "alerts.jsonl").read_text().splitlines()
    last = json.loads(lines[-1])
    last["rule_id"] = HOSTILE
    (folder / "alerts.jsonl").write_text("\n".join(lines[:-1] + [json.dumps(last)]) + "\n")
    page = render(prepare(folder))
    blocks = re.findall(r'<script type="application/json" id="fig-\d+">(.*?)</script>', page, re.S)
    names = [t.get("name") for b in blocks for t in json.loads(b)["data"]]
    # plotly reads a subset of HTML in trace names: the name is escaped once more for it
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in names


def test_backtest_tables_compare_with_the_baseline(backtest_json):
    bt = load_backtest(backtest_json)
    assert bt.rule_changes is not None and bt.has_case_ids
    app = bt.typology_changes.set_index("typology").loc["app_scam"]
    raw = json.loads(backtest_json.read_text())
    assert app["gained"] == sorted(set(raw["current"]["typologies"]["app_scam"]["caught_cases"])
                                   - set(raw["baseline"]["typologies"]["app_scam"]["caught_cases"]))
    assert app["gained"] and app["lost"] == []
    assert app["case_recall_change"] > 0
    rule = bt.rule_changes.set_index("rule_id").loc["TF-APP-001"]
    assert pd.isna(rule["alerts_baseline"]) and rule["alerts_change"] == rule["alerts"] > 0


def test_report_command_writes_one_offline_file(scored, backtest_json, tmp_path):
    target = tmp_path / "r.html"
    proc = run("report", scored, "--backtest", backtest_json, "--tz", "UTC", "-o", target)
    assert proc.returncode == 0, proc.stderr
    page = target.read_text(encoding="utf-8")
    assert not re.search(r'<(script|link|img|iframe)[^>]+(src|href)=', page)  # nothing loaded from elsewhere
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    assert "Against the baseline: typologies" in page and "times in UTC" in page
    assert "2026-02-28 16:11:46 +00:00" in page


@pytest.fixture(scope="module")
def csv_scored(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("csv") / "out"
    assert run("score", SAMPLES, "--out", out, "--format", "csv", "-q").returncode == 0
    return out


@pytest.mark.parametrize("args, message", [
    (["report", "/nonexistent/out"], "does not exist"),
    (["report", "{out}", "--tz", "Mars/Olympus"], "unknown time zone"),
    (["report", "{csv}"], "alerts.csv is the flat CSV form"),
    (["show", "abc", "{csv}"], "alerts.csv is the flat CSV form"),
    (["report", "{out}", "--backtest", "{out}/summary.json"], "not a backtest result"),
])
def test_report_usage_errors_exit_2(scored, csv_scored, args, message):
    proc = run(*[a.format(out=scored, csv=csv_scored) for a in args])
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr


def test_without_plotly_the_core_imports_and_report_says_what_to_install(scored, tmp_path):
    block = "import sys; sys.modules['plotly'] = None; "  # makes `import plotly` raise ImportError
    proc = subprocess.run([sys.executable, "-c", block + "import fraudrules.cli, fraudrules.report.data, "
                           "fraudrules.report.show, fraudrules.report.page"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    proc = subprocess.run([sys.executable, "-c", block + "from fraudrules.cli import main; main()", "report",
                           str(scored), "-o", str(tmp_path / "r.html")], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 2 and "pip install 'fraudrules[report]'" in proc.stderr
    assert not (tmp_path / "r.html").exists()


# --- show ------------------------------------------------------------------------------------------------

def test_show_prints_a_known_alert(scored):
    a = next(a for a in read_jsonl(scored / "alerts.jsonl") if a["rule_id"] == "TF-APP-001")
    proc = run("show", a["alert_id"], scored)
    assert proc.returncode == 0, proc.stderr
    assert "TF-APP-001" in proc.stdout and a["explain"] in proc.stdout
    assert a["evidence"][0]["id"] in proc.stdout and "duration >= 10m" in proc.stdout
    local = datetime.strptime(a["ts"], "%Y-%m-%dT%H:%M:%SZ") + timedelta(hours=8)
    assert local.strftime("%Y-%m-%d %H:%M:%S +08:00") in proc.stdout
    by_prefix = run("show", a["alert_id"][:10], scored, "--tz", "UTC")
    assert by_prefix.returncode == 0 and a["ts"].replace("T", " ").replace("Z", " +00:00") in by_prefix.stdout


def test_show_an_unknown_id_exits_2(scored):
    proc = run("show", "0000000000notanid", scored)
    assert proc.returncode == 2 and "no alert with id '0000000000notanid'" in proc.stderr


def test_show_prints_markup_in_values_as_written(scored, tmp_path):
    folder = hostile_copy(scored, tmp_path / "bad")
    proc = run("show", "bad0" * 8, folder)
    assert proc.returncode == 0, proc.stderr
    assert "[red]x[/red]" in proc.stdout and HOSTILE in proc.stdout


# --- the flat CSV -----------------------------------------------------------------------------------------

def test_csv_alerts_are_flat_text(scored, tmp_path):
    alerts = read_jsonl(scored / "alerts.jsonl")
    write_alerts(alerts, tmp_path / "alerts.csv", "csv")
    frame = pd.read_csv(tmp_path / "alerts.csv", dtype=str, keep_default_na=False)
    assert len(frame) == len(alerts)
    assert not frame.apply(lambda col: col.str.match(r"^\s*[\[{]")).any().any()  # no JSON in any cell
    app = next(a for a in alerts if a["rule_id"] == "TF-APP-001")
    row = frame.set_index("alert_id").loc[app["alert_id"]]
    call, pay = app["evidence"]
    assert row["evidence"] == f"call:{call['id']}@{call['ts']}; pay:{pay['id']}@{pay['ts']}"
    assert f"call.duration={call['fields']['duration']}" in row["conditions"].split("; ")
    assert "pay.is_new(payee_account, 180d)=true" in row["conditions"].split("; ")
    assert row["record_id"] == app["record_id"] and row["explain"] == app["explain"]


def test_conditions_text_names_lists_and_keeps_single_step_names_short():
    conds = [{"step": "call", "expr": "callee in @irsf_ranges", "values": {"callee": "+88216955"},
              "list": "irsf_ranges", "list_entry": "+88216"},
             {"step": "call", "expr": "answered", "values": {"answered": True, "callee": "+88216955"}}]
    assert conditions_text(conds) == "callee=+88216955; @irsf_ranges=+88216; answered=true"
    assert evidence_text([{"step": "s", "id": "x1", "ts": "2026-03-01T00:00:00Z"}]) == "s:x1@2026-03-01T00:00:00Z"


# --- a real browser ---------------------------------------------------------------------------------------

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--no-default-browser-check",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-extensions",
    "--disable-default-apps", "--mute-audio", "--hide-scrollbars", "--window-size=1280,900",
    # no way out: names resolve to nothing and anything not on loopback goes to a closed local port
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1", "--proxy-server=http://127.0.0.1:9",
    "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
    "--disable-dev-shm-usage",  # a container's /dev/shm may be 64 MB: keep shared memory in /tmp
]
DEADLINE_S = 120


class Page:
    """A minimal Chrome DevTools Protocol client over one page's websocket; every wait is bounded."""

    def __init__(self, ws_url: str, deadline: float):
        import websocket

        self.deadline = deadline
        self.ws = websocket.create_connection(ws_url, timeout=30, suppress_origin=True)
        self.next_id = 0
        self.events: list[dict] = []

    def _recv(self) -> dict:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the browser test ran out of time")
        self.ws.settimeout(left)
        return json.loads(self.ws.recv())

    def call(self, method: str, **params) -> dict:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = self._recv()
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self._event(msg)

    def _event(self, msg: dict) -> None:
        self.events.append(msg)
        if msg.get("method") == "Page.javascriptDialogOpening":  # a dialog would block the page: dismiss it
            self.ws.send(json.dumps({"id": 10**6 + len(self.events), "method": "Page.handleJavaScriptDialog",
                                     "params": {"accept": False}}))

    def wait_event(self, method: str, after: int = 0) -> dict:
        """The first ``method`` event after the first ``after`` events seen."""
        for msg in self.events[after:]:
            if msg.get("method") == method:
                return msg
        while True:
            msg = self._recv()
            if "method" in msg:
                self._event(msg)
                if msg["method"] == method:
                    return msg

    def js(self, expression: str):
        res = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True,
                        timeout=30_000)
        if "exceptionDetails" in res:
            raise AssertionError(f"page script failed: {res['exceptionDetails']}")
        return res["result"].get("value")

    def screenshot(self, path: Path, clip: dict | None = None) -> None:
        params = {"format": "png", "captureBeyondViewport": True}
        if clip:
            params["clip"] = {**clip, "scale": 1}
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(self.call("Page.captureScreenshot", **params)["data"]))

    def close(self) -> None:
        self.ws.close()


def _stop(proc: subprocess.Popen) -> None:
    """Stop chromium and every helper it started: they share the session Popen gave them."""
    try:
        os.killpg(proc.pid, 9)
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)


def _start_chromium(profile: Path, attempts: int = 3) -> tuple[subprocess.Popen, int]:
    """Start headless chromium on a loopback DevTools port; a start that fails is retried with a new profile.

    One CI run saw chromium not write its port within 30 s, with nothing to say why: each attempt now keeps
    its own stderr, and the failure shows their tails. HOME and XDG point into the profile so a read-only or
    missing home cannot stop it, and TMPDIR into its parent, which the caller removes.
    """
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.fail("chromium is not installed: the report's browser test needs it "
                    "(apt-get install -y chromium; .ci/run installs it)")
    tails = []
    for attempt in range(1, attempts + 1):
        shutil.rmtree(profile, ignore_errors=True)
        profile.mkdir(parents=True)
        env = {**os.environ, "HOME": str(profile), "XDG_CONFIG_HOME": str(profile / "config"),
               "XDG_CACHE_HOME": str(profile / "cache"),
               # its singleton socket folder too, which a kill -9 leaves behind: the caller removes this one
               "TMPDIR": str(profile.parent)}
        log = profile.with_name(f"{profile.name}-attempt{attempt}.log")
        with open(log, "wb") as err:
            proc = subprocess.Popen([exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
                                    stdout=err, stderr=err, env=env, start_new_session=True)
        port_file = profile / "DevToolsActivePort"  # chromium writes the port it picked here
        until = time.monotonic() + 60
        while time.monotonic() < until:
            if port_file.exists() and port_file.read_text().strip():
                return proc, int(port_file.read_text().split()[0])
            if proc.poll() is not None:
                break
            time.sleep(0.1)
        code = proc.poll()
        _stop(proc)
        lines = [ln for ln in log.read_text(errors="replace").splitlines() if "dbus" not in ln]
        tails.append(f"attempt {attempt}: exit {code}\n" + "\n".join(lines[-15:]))
    raise AssertionError("chromium did not start its DevTools endpoint:\n" + "\n".join(tails))


def _page_ws(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as resp:  # loopback only
        targets = json.loads(resp.read())
    return next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")


def test_report_renders_in_headless_chromium(scored, backtest_json, tmp_path):
    try:
        import websocket  # noqa: F401
    except ImportError:
        pytest.fail("websocket-client is missing: pip install -e '.[test]'")
    folder = hostile_copy(scored, tmp_path / "out")
    report = tmp_path / "report.html"
    proc = run("report", folder, "--backtest", backtest_json, "-o", report)
    assert proc.returncode == 0, proc.stderr
    expected_charts = report.read_text(encoding="utf-8").count('<div class="chart"')
    app_alert = next(a for a in read_jsonl(folder / "alerts.jsonl") if a["rule_id"] == "TF-APP-001")

    profile = Path(tempfile.mkdtemp(prefix="chromium-")) / "profile"
    browser = page = None
    try:
        browser, port = _start_chromium(profile)
        page = Page(_page_ws(port), time.monotonic() + DEADLINE_S)
        for domain in ("Page", "Runtime", "Log", "Network"):
            page.call(f"{domain}.enable")
        page.call("Emulation.setDeviceMetricsOverride", width=1280, height=900, deviceScaleFactor=1, mobile=False)
        seen = len(page.events)
        page.call("Page.navigate", url=report.as_uri())
        page.wait_event("Page.loadEventFired", after=seen)
        ready = page.js("""new Promise(function (resolve) {
            var t0 = Date.now();
            (function poll() {
              var v = document.body.getAttribute('data-charts-ready');
              if (v || Date.now() - t0 > 30000) { resolve(v); } else { setTimeout(poll, 50); }
            })();
        })""")
        charts = page.js("""Array.prototype.map.call(document.querySelectorAll('div.chart'), function (d) {
            return {svg: d.querySelectorAll('.main-svg').length, bars: d.querySelectorAll('.point').length,
                    height: d.getBoundingClientRect().height};
        })""")
        page.screenshot(ARTIFACTS / "report-top.png", {"x": 0, "y": 0, "width": 1280, "height": 2400})

        # open one alert section the way a person does: click its summary
        sel = f'details[id="alert-{app_alert["alert_id"]}"]'
        box = page.js(f"""(function () {{
            var s = document.querySelector('{sel} > summary');
            s.scrollIntoView({{block: 'start'}}); window.scrollBy(0, -60);
            var r = s.getBoundingClientRect(); return {{x: r.left + 40, y: r.top + r.height / 2}};
        }})()""")
        for kind in ("mousePressed", "mouseReleased"):
            page.call("Input.dispatchMouseEvent", type=kind, x=box["x"], y=box["y"], button="left", clickCount=1)
        opened = page.js(f"""new Promise(function (resolve) {{ setTimeout(function () {{
            var d = document.querySelector('{sel}');
            var ev = d.querySelector('table.evidence'), tl = d.querySelector('svg.timeline');
            var r = d.getBoundingClientRect();
            resolve({{open: d.open, evidenceText: ev.innerText, evidenceHeight: ev.getBoundingClientRect().height,
                      points: tl.querySelectorAll('circle').length, timelineHeight: tl.getBoundingClientRect().height,
                      conditions: d.querySelectorAll('table.conditions tbody tr').length,
                      top: r.top + window.scrollY, height: r.height}});
        }}, 300); }})""")
        page.screenshot(ARTIFACTS / "report-alert.png",
                        {"x": 0, "y": max(0, opened["top"] - 10), "width": 1280,
                         "height": min(opened["height"] + 20, 1400)})
        bt = page.js("""(function () {
            var s = document.getElementById('backtest'); s.scrollIntoView();
            var r = s.getBoundingClientRect(); return {top: r.top + window.scrollY, height: r.height};
        })()""")
        page.screenshot(ARTIFACTS / "report-backtest.png", {"x": 0, "y": bt["top"], "width": 1280, "height": 1000})
        hostile = page.js("""(function () {
            var d = document.querySelector('details[id="alert-""" + "bad0" * 8 + """"]');
            return {text: d.textContent, scripts: document.scripts.length,
                    imgs: document.querySelectorAll('img').length};
        })()""")
        urls = [e["params"]["request"]["url"] for e in page.events if e.get("method") == "Network.requestWillBeSent"]
        errors = [e for e in page.events
                  if e.get("method") == "Runtime.exceptionThrown"
                  or (e.get("method") == "Runtime.consoleAPICalled" and e["params"]["type"] in ("error", "assert"))
                  or (e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")]
        dialogs = [e for e in page.events if e.get("method") == "Page.javascriptDialogOpening"]
    finally:
        if page is not None:
            page.close()
        if browser is not None:
            _stop(browser)
        shutil.rmtree(profile.parent, ignore_errors=True)

    assert errors == [], f"console errors: {errors}"
    assert dialogs == [], "a record value ran as script"
    assert report.as_uri() in urls  # requests were seen, and all of them stayed local
    assert all(u.startswith(("file://", "data:", "blob:", "about:", "http://127.0.0.1")) for u in urls), urls
    assert ready == str(expected_charts) and expected_charts >= 6
    assert len(charts) == expected_charts
    assert all(c["svg"] >= 1 and c["height"] > 100 for c in charts), charts
    assert charts[0]["bars"] > 0  # alerts per rule per day drew bars
    assert opened["open"] and opened["evidenceHeight"] > 0 and opened["timelineHeight"] > 0
    assert opened["points"] == len(app_alert["evidence"]) == 2
    assert all(e["id"] in opened["evidenceText"] for e in app_alert["evidence"])
    assert opened["conditions"] == len(app_alert["conditions"])
    assert HOSTILE in hostile["text"] and hostile["imgs"] == 0
    assert hostile["scripts"] == 2 + expected_charts
    for name in ("report-top.png", "report-alert.png", "report-backtest.png"):
        png = (ARTIFACTS / name).read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_artifacts_are_ignored_by_git():
    proc = subprocess.run(["git", "check-ignore", "-q", "tests/artifacts/report-top.png"], cwd=REPO,
                          env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"})
    assert proc.returncode == 0
