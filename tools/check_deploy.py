"""Checks deploy/: the Grafana dashboard against its schema, its queries
and the Prometheus alert rules with promtool, and every metric they name
against what irontoken exports (TokenManager.metrics(), with a webhook set).

promtool comes from PATH, or from Debian's prometheus package, downloaded
and unpacked under target/tools (no root, no service started)."""

from __future__ import annotations

import json
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "deploy" / "grafana" / "irontoken.json"
SCHEMA = ROOT / "deploy" / "grafana" / "dashboard.schema.json"
RULES = ROOT / "deploy" / "prometheus" / "irontoken-rules.yml"
TOOLS = ROOT / "target" / "tools"


def promtool() -> str:
    found = shutil.which("promtool")
    if found:
        return found
    unpacked = TOOLS / "usr" / "bin" / "promtool"
    if not unpacked.exists():
        TOOLS.mkdir(parents=True, exist_ok=True)
        subprocess.run(["apt-get", "download", "prometheus"], cwd=TOOLS, check=True, capture_output=True)
        deb = next(TOOLS.glob("prometheus_*.deb"))
        subprocess.run(["dpkg", "-x", str(deb), str(TOOLS)], check=True)
        deb.unlink()
    return str(unpacked)


def exported_metrics() -> set[str]:
    from irontoken import TokenManager

    alerts = {"webhook": {"url": "http://127.0.0.1:9/hook", "secret": "0123456789abcdef"}}
    with TokenManager(":memory:", alerts=alerts) as tm:
        text = tm.metrics()
    return {m.group(1) for m in re.finditer(r"^# TYPE (\w+) ", text, re.M)}


def main() -> int:
    import jsonschema

    dashboard = json.loads(DASHBOARD.read_text())
    jsonschema.validate(dashboard, json.loads(SCHEMA.read_text()))
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be distinct"
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    rules_text = RULES.read_text()
    known = exported_metrics()
    named = set(re.findall(r"\birontoken_\w+", " ".join(exprs) + rules_text))
    unknown = sorted(n for n in named if n not in known)
    assert not unknown, f"metrics irontoken does not export: {unknown}"
    tool = promtool()
    with tempfile.TemporaryDirectory() as tmp:
        # The dashboard's queries as recording rules: promtool parses each.
        recorded = pathlib.Path(tmp) / "dashboard-queries.yml"
        lines = ["groups:", "  - name: dashboard-queries", "    rules:"]
        for i, e in enumerate(exprs):
            lines.append(f"      - record: dashboard:query_{i}")
            lines.append(f"        expr: {json.dumps(e.replace('$__rate_interval', '5m'))}")
        recorded.write_text("\n".join(lines) + "\n")
        r = subprocess.run([tool, "check", "rules", str(RULES), str(recorded)], capture_output=True, text=True)
        print(r.stdout.strip())
        if r.returncode != 0:
            print(r.stderr, file=sys.stderr)
            return 1
    print(f"deploy: dashboard valid ({len(dashboard['panels'])} panels, {len(exprs)} queries), rules valid, {len(named)} metrics exported")
    return 0


if __name__ == "__main__":
    sys.exit(main())
