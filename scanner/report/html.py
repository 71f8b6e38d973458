"""A self-contained HTML report for people: summary first, then findings grouped, filterable and sortable.

One file, no external assets and no network: it is opened from a CI artifact or a mail. Everything the
scanned files control (paths, messages, evidence) is escaped; the page's script only filters and sorts
the table it ships with.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from dataclasses import dataclass
from html import escape
from itertools import islice
from typing import Any, TextIO

from ..findings import Decision, Finding, ScanReport, Severity
from .view import MemoryView, ReportView

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:1.5em;color:#1b1f24}
h1{font-size:1.4em;margin:0 0 .3em}h2{font-size:1.15em;margin:1.4em 0 .4em}
.cards{display:flex;gap:.8em;flex-wrap:wrap}.card{border:1px solid #d0d7de;border-radius:6px;padding:.5em .9em}
.card b{font-size:1.5em;display:block}.block{color:#b42318}.warn{color:#9a6700}.allow{color:#1a7f37}
table{border-collapse:collapse;width:100%;margin-top:.5em}th,td{border-bottom:1px solid #eaeef2;padding:.3em .5em;
text-align:left;vertical-align:top}th{cursor:pointer;background:#f6f8fa;user-select:none}
td.sev{font-weight:600;text-transform:uppercase}.critical{color:#fff;background:#b42318}.high{color:#b42318}
.medium{color:#9a6700}.low{color:#0969da}.info{color:#57606a}code{font-size:.9em;word-break:break-all}
.controls{display:flex;gap:.6em;margin:.6em 0}tr.group td{background:#f6f8fa;font-weight:600}
details{margin:.2em 0}
"""

_JS = """
(function(){
  const table=document.getElementById('findings');const rows=()=>Array.from(table.tBodies[0].rows);
  const q=document.getElementById('filter');const sev=document.getElementById('severity');
  function apply(){const text=q.value.toLowerCase();const s=sev.value;let shown=0;
    rows().forEach(r=>{const ok=(!text||r.textContent.toLowerCase().includes(text))&&(!s||r.dataset.severity===s);
      r.hidden=!ok;if(ok)shown++;});document.getElementById('shown').textContent=shown;}
  q.addEventListener('input',apply);sev.addEventListener('change',apply);
  Array.from(table.tHead.rows[0].cells).forEach((th,i)=>th.addEventListener('click',()=>{
    const dir=th.dataset.dir==='asc'?'desc':'asc';th.dataset.dir=dir;
    const key=r=>th.dataset.key==='rank'?Number(r.dataset.rank):r.cells[i].textContent;
    const sorted=rows().sort((a,b)=>{const x=key(a),y=key(b);return (x>y?1:x<y?-1:0)*(dir==='asc'?1:-1);});
    sorted.forEach(r=>table.tBodies[0].appendChild(r));}));
  apply();
})();
"""


def _group(path: str, source: str | None) -> str:
    """Owner, folder or repository: the first component of the file's path (or its target)."""
    path = path.split("!", 1)[0]
    root = (source or "")[len("file://") :] if (source or "").startswith("file://") else ""
    if root and path.startswith(root.rstrip("/") + "/"):
        path = path[len(root.rstrip("/")) + 1 :]  # a local zoo: group by the folder under the audited root
    for prefix in ("hf://", "oci://", "s3://", "gs://", "az://", "https://", "http://", "file://"):
        if path.startswith(prefix):
            rest = path[len(prefix) :].split("/")
            return prefix + "/".join(rest[:2])
    parts = path.strip("/").split("/")
    return parts[0] if len(parts) > 1 else "."


def _evidence(f: Finding) -> str:
    if not f.evidence:
        return ""
    text = json.dumps(f.evidence, default=str, indent=1)
    short = text if len(text) < 160 else text[:160] + "…"
    return f"<details><summary><code>{escape(short[:60])}</code></summary><pre>{escape(text[:4000])}</pre></details>"


def _cards(view: ReportView, audit: AuditCards | None) -> list[str]:
    decisions = view.decision_counts()
    cards = [
        ("files", "files", view.totals.files, ""),
        ("block", "blocked", decisions.get(Decision.BLOCK, 0), "block"),
        ("warn", "warned", decisions.get(Decision.WARN, 0), "warn"),
        ("allow", "allowed", decisions.get(Decision.ALLOW, 0), "allow"),
        ("findings", "findings", view.totals.findings, ""),
    ]
    if audit:
        files = audit.files
        cards += [
            ("new", "new since last audit", files.get("new", 0), ""),
            ("changed", "changed", files.get("changed", 0), ""),
            ("removed", "removed", files.get("removed", 0), ""),
            ("new-findings", "new findings", audit.new_findings_count, "block"),
        ]
    return [
        f'<div class="card {cls}"><b id="count-{key}">{n}</b>{escape(label)}</div>'
        for key, label, n, cls in cards
    ]


@dataclass
class AuditCards:
    """What an audit adds to the page: its file counts and its new findings (the first 500 are listed)."""

    files: dict[str, int]
    new_findings_count: int
    new_findings: Iterable[dict[str, Any]]


def render_html(report: ScanReport, audit: dict[str, Any] | None = None) -> str:
    cards = None
    if audit:
        new = audit.get("new_findings", [])
        cards = AuditCards(audit.get("files", {}), len(new), new)
    buf = io.StringIO()
    write_html(MemoryView(report), buf, cards)
    return buf.getvalue()


def write_html(view: ReportView, out: TextIO, audit: AuditCards | None = None) -> None:
    report = view.head
    v = report.verdict
    verdict = v.decision.value if v else "no verdict"
    top = view.totals.top_rules
    lines = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        "<meta http-equiv=Content-Security-Policy content=\"default-src 'none'; style-src 'unsafe-inline'; "
        "script-src 'unsafe-inline'\">",
        f"<title>modelward report: {escape(verdict.upper())}</title><style>{_CSS}</style></head><body>",
        f'<h1>modelward: <span id="verdict" class="{escape(verdict)}">{escape(verdict.upper())}</span></h1>',
        f"<p>Policy <code>{escape(v.policy if v else '-')}</code>, rule database {escape(report.rules_version)}, "
        f"modelward {escape(report.scanner_version)}, {len(report.targets)} target(s).</p>",
        '<div class="cards">',
        *_cards(view, audit),
        "</div>",
    ]
    if top:
        lines += ["<h2>Top rules</h2><ol id=top-rules>"]
        lines += [f"<li><code>{escape(r)}</code> — {n}</li>" for r, n in top.most_common(8)]
        lines += ["</ol>"]
    out.write("\n".join(lines) + "\n")
    if audit and audit.new_findings_count:
        out.write("<h2>New since the last audit</h2><ul id=new-findings>\n")
        for x in islice(audit.new_findings, 500):
            out.write(
                f"<li><span class='{escape(x['severity'])}'>{escape(x['severity'])}</span> "
                f"<code>{escape(x['rule_id'])}</code> {escape(x['path'])}: {escape(x['message'])}</li>\n"
            )
        out.write("</ul>\n")
    lines = []
    if report.errors:
        lines += ["<h2>Errors</h2><ul id=errors>", *[f"<li>{escape(e)}</li>" for e in report.errors], "</ul>"]
    lines += [
        "<h2>Findings</h2>",
        '<div class="controls"><input id=filter type=search placeholder="filter by path, rule, message">',
        "<select id=severity><option value=''>all severities</option>",
        *[f"<option value='{s.value}'>{s.value}</option>" for s in Severity],
        "</select><span><span id=shown>0</span> shown</span></div>",
        "<table id=findings><thead><tr><th data-key=group>group</th><th data-key=rank>severity</th>"
        "<th>rule</th><th>file</th><th>message</th><th>evidence</th><th>sha256</th><th>policy</th>"
        "<th>decision</th></tr></thead><tbody>",
    ]
    out.write("\n".join(lines) + "\n")
    for fr, decision in view.files_with_findings(_group):
        group = escape(_group(fr.path, fr.source))
        for f in sorted(fr.findings, key=lambda f: -f.severity.rank):
            ref = view.policy_ref(f.rule_id, (f.path, f.path.split("!", 1)[0])) if v is not None else ""
            out.write(
                f'<tr data-severity="{f.severity.value}" data-rank="{f.severity.rank}">'
                f"<td>{group}</td><td class='sev {f.severity.value}'>{f.severity.value}</td>"
                f"<td><code>{escape(f.rule_id)}</code></td><td><code>{escape(f.path)}</code></td>"
                f"<td>{escape(f.message)}</td><td>{_evidence(f)}</td>"
                f"<td><code>{escape((fr.sha256 or '')[:16])}</code></td>"
                f"<td><code>{escape(ref)}</code></td>"
                f"<td class='{decision.value if decision else ''}'>{decision.value if decision else ''}</td></tr>\n"
            )
    out.write(f"</tbody></table>\n<script>{_JS}</script></body></html>\n")
