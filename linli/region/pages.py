# ruff: noqa: E501  (HTML templates read best a line per element)
"""The regional dashboard's HTML: server-rendered, no script, readable on any operator's browser.

Each function takes what `queries.py` returned and gives a page; every value
from the database or a gateway is escaped.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from html import escape
from typing import Any

from linli.region.queries import AGE_BUCKETS

_STYLE = """
body{font:15px/1.5 system-ui,"Noto Sans CJK SC","Microsoft YaHei",sans-serif;margin:0;color:#1d2733;background:#f4f6f8}
header{background:#12375e;color:#fff;padding:10px 20px}header a{color:#cfe3ff;margin-right:16px}
main{padding:16px 20px;max-width:1200px}section{background:#fff;border-radius:8px;padding:12px 16px;margin:0 0 14px}
h1{font-size:20px;margin:0}h2{font-size:17px;margin:4px 0 8px}table{border-collapse:collapse;width:100%}
td,th{text-align:left;padding:4px 8px;border-bottom:1px solid #e3e7eb}.big{font-size:28px;font-weight:600}
.ok{color:#16794b}.bad{color:#b3261e}.muted{color:#6b7785}.grid{display:flex;gap:14px;flex-wrap:wrap}
.grid section{flex:1;min-width:220px}input,textarea,select{font:inherit;width:100%;box-sizing:border-box}
button{font:inherit;padding:6px 18px;background:#12375e;color:#fff;border:0;border-radius:4px}
.emergency{color:#b3261e;font-weight:600}button.link{background:none;color:#cfe3ff;padding:0 4px}
"""
_AGE_LABELS = {"lt_1m": "< 1 min", "1_5m": "1–5 min", "5_30m": "5–30 min", "gt_30m": "> 30 min"}
_SEVERITIES = ("critical", "high", "warning", "info")


@dataclass(slots=True, frozen=True)
class Who:
    """The signed-in operator, and the CSRF token every form of theirs carries."""

    name: str
    csrf: str = ""

    def field(self) -> str:
        return f'<input type="hidden" name="csrf" value="{escape(self.csrf)}">'


def _page(title: str, region: str, body: str, who: Who | None, refresh_s: int | None = None) -> str:
    refresh = f'<meta http-equiv="refresh" content="{refresh_s}">' if refresh_s else ""
    nav = ""
    if who is not None:
        nav = (
            '<nav><a href="/">Overview 总览</a><a href="/announcements">Announcements 公告</a>'
            '<a href="/audit">Audit 审计</a>'
            f'<form method="post" action="/logout" style="display:inline">{who.field()}'
            f'<span class="muted">{escape(who.name)}</span> <button class="link">Sign out 退出</button></form></nav>'
        )
    return (
        f'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">{refresh}'
        f"<title>{escape(title)} · Linli {escape(region)}</title><style>{_STYLE}</style></head><body>"
        f"<header><h1>邻里 Linli · region {escape(region)}</h1>{nav}</header>"
        f"<main>{body}</main></body></html>"
    )


def _when(ts: float | None) -> str:
    if ts is None:
        return "—"
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f} s"


def overview(data: dict[str, Any], who: Who) -> str:
    comm = data["communities"]
    acks = data["ack_times_24h"]
    fleet = data["fleet"]
    health = data["health_summaries_7d"]

    def verdict(value: float | None, target: float) -> str:
        return "muted" if value is None else ("ok" if value <= target else "bad")

    p50_class = verdict(acks["p50_s"], acks["target_p50_s"])
    p95_class = verdict(acks["p95_s"], acks["target_p95_s"])
    rows = []
    for severity in sorted(
        data["open_alerts"], key=lambda s: _SEVERITIES.index(s) if s in _SEVERITIES else 9
    ):
        buckets = data["open_alerts"][severity]
        cells = "".join(f"<td>{buckets[name]}</td>" for name, _ in AGE_BUCKETS)
        rows.append(f"<tr><th>{escape(severity)}</th><td><b>{buckets['total']}</b></td>{cells}</tr>")
    heads = "".join(f"<th>{_AGE_LABELS[name]}</th>" for name, _ in AGE_BUCKETS)
    offline = "".join(
        f'<tr><td><a href="/communities/{escape(c["community"])}">{escape(c["community"])}</a></td>'
        f"<td>{escape(c['name'] or '')}</td><td>{_when(c['last_seen'])}</td></tr>"
        for c in comm["offline"]
    )
    every = "".join(
        f'<tr><td><a href="/communities/{escape(c["community"])}">{escape(c["community"])}</a></td>'
        f"<td>{escape(c['name'] or '')}</td>"
        f'<td class="{"ok" if c["online"] else "bad"}">{"online" if c["online"] else "offline"}</td>'
        f"<td>{c['devices_online']} / {c['devices']}</td><td>{c['open_alerts']}</td></tr>"
        for c in comm["items"]
    )
    models = "".join(
        f"<tr><td>{escape(model)}</td><td>{v['online']} / {v['total']}</td></tr>"
        for model, v in sorted(fleet["by_model"].items(), key=lambda kv: -kv[1]["total"])[:15]
    )
    body = f"""
<div class="grid">
 <section><h2>Communities online 在线社区</h2><div class="big">{comm["online"]} / {comm["total"]}</div>
  <div class="muted">{comm["total"] - comm["online"]} offline</div></section>
 <section><h2>Ack time p50 (24 h) 确认时间</h2>
  <div class="big {p50_class}">{_seconds(acks["p50_s"])}</div>
  <div class="muted">target ≤ {acks["target_p50_s"]:.0f} s · {acks["count"]} acknowledged</div></section>
 <section><h2>Ack time p95 (24 h)</h2><div class="big {p95_class}">{_seconds(acks["p95_s"])}</div>
  <div class="muted">target ≤ {acks["target_p95_s"]:.0f} s</div></section>
 <section><h2>Device fleet 设备</h2><div class="big">{fleet["online"]} / {fleet["devices"]}</div>
  <div class="muted">online · {fleet["low_battery"]} low battery</div></section>
 <section><h2>Health summaries 健康摘要 (7 days)</h2><div class="big">{health["summaries"]}</div>
  <div class="muted">{health["residents"]} residents in {health["households"]} consenting households</div></section>
</div>
<section><h2>Open alerts by severity and age 未处理告警</h2>
 <table><tr><th>severity</th><th>open</th>{heads}</tr>{"".join(rows) or '<tr><td colspan="6">none</td></tr>'}</table></section>
<section><h2>Offline communities 离线社区</h2>
 <table><tr><th>community</th><th>name</th><th>last heard</th></tr>{offline or '<tr><td colspan="3">none</td></tr>'}</table>
</section>
<section><h2>Communities 社区</h2>
 <table><tr><th>community</th><th>name</th><th>state</th><th>devices online</th><th>open alerts</th></tr>{every or '<tr><td colspan="5">none yet</td></tr>'}</table>
</section>
<section><h2>Fleet by model</h2><table><tr><th>model</th><th>online / total</th></tr>{models}</table>
 <p class="muted">Rejected downlink messages (24 h): {data["downlink_rejections_24h"]}</p></section>
"""
    return _page("Overview", data["region"], body, who, refresh_s=15)


def community(region: str, data: dict[str, Any], who: Who) -> str:
    status = data["status"] or {}
    health = data["device_health"] or {}
    alerts = "".join(
        f"<tr><td>{a['alert_id']}</td><td>{escape(a['household'] or '')}</td><td>{escape(a['kind'])}</td>"
        f"<td>{escape(a['severity'])}</td><td>{escape(a['state'])}</td><td>{escape(a['title'] or '')}</td>"
        f"<td>{_seconds(a['age_s'])}</td><td>{_seconds(a['ack_s'])}</td></tr>"
        for a in data["alerts"]
    )
    events = "".join(
        f"<tr><td>{e['seq']}</td><td>{escape(e['kind'])}</td><td>{_when(e['received'])}</td></tr>"
        for e in data["recent_events"][:20]
    )
    state = '<span class="ok">online</span>' if data["online"] else '<span class="bad">offline</span>'
    body = f"""
<section><h2>{escape(data["name"] or data["community"])} · {escape(data["community"])} — {state}</h2>
 <p>Gateway {escape(data["gateway"] or "?")} · last heard {_when(data["last_seen"])} ·
 clock offset to the region {data["clock_offset_s"]:.1f} s · version {escape(str(status.get("version", "?")))}</p>
 <p>{status.get("households", "?")} households · devices {health.get("online", "?")} / {health.get("total", "?")} online
 · {health.get("low_battery", 0)} low battery · TVs {status.get("tvs", "?")} ·
 outbox {escape(str((status.get("outbox") or {}).get("rows", "?")))} rows waiting</p></section>
<section><h2>Alerts 告警</h2><table><tr><th>id</th><th>household</th><th>kind</th><th>severity</th><th>state</th>
 <th>title</th><th>age</th><th>ack time</th></tr>{alerts or '<tr><td colspan="8">none</td></tr>'}</table></section>
<section><h2>Recent events</h2><table><tr><th>seq</th><th>kind</th><th>received</th></tr>{events}</table></section>
"""
    return _page(data["community"], region, body, who, refresh_s=15)


def announcements(
    region: str, items: list[dict[str, Any]], communities: list[str], who: Who, error: str = ""
) -> str:
    rows = "".join(
        f'<tr><td><a href="/announcements/{escape(a["id"])}">{escape(a["id"])}</a></td>'
        f'<td class="{"emergency" if a["kind"] == "emergency" else ""}">{escape(a["kind"])}</td>'
        f"<td>{escape(a['title'])}</td><td>{_when(a['issued_at'])}</td>"
        f"<td>{a['confirmed']} / {a['gateways_targeted']}</td><td>{a['tvs_shown']} / {a['tvs_total']}</td></tr>"
        for a in items
    )
    options = "".join(f'<option value="{escape(c)}">{escape(c)}</option>' for c in sorted(communities))
    problem = f'<p class="bad">{escape(error)}</p>' if error else ""
    body = f"""
<section><h2>Compose 发布公告 / 紧急广播</h2>{problem}
<form method="post" action="/announcements">{who.field()}
 <p><label>Kind <select name="kind"><option value="announcement">announcement 公告</option>
  <option value="emergency">EMERGENCY BROADCAST 紧急广播 (every TV, alarm level)</option></select></label></p>
 <p><label>Title 标题 <input name="title" maxlength="100"></label></p>
 <p><label>Message 内容 <textarea name="body" rows="3" maxlength="500" required></textarea></label></p>
 <p><label>Communities 目标社区 (none selected: the whole region)
  <select name="targets" multiple size="6">{options}</select></label></p>
 <p><label>Valid for (minutes) <input name="ttl_min" type="number" min="1" value="60"></label></p>
 <button>Sign and send 签名发送</button></form></section>
<section><h2>Sent 已发送</h2><table><tr><th>id</th><th>kind</th><th>title</th><th>issued</th>
 <th>gateways confirmed</th><th>TVs shown</th></tr>{rows or '<tr><td colspan="6">none yet</td></tr>'}</table></section>
"""
    return _page("Announcements", region, body, who)


def report(region: str, data: dict[str, Any], who: Who) -> str:
    missing = ", ".join(escape(c) for c in data["not_confirmed"][:100]) or "none"
    kind = '<span class="emergency">EMERGENCY</span>' if data["kind"] == "emergency" else "announcement"
    body = f"""
<section><h2>{kind} {escape(data["id"])}</h2>
 <p><b>{escape(data["title"])}</b> — {escape(data["body"])}</p>
 <p class="muted">issued {_when(data["issued_at"])} by {escape(data["created_by"])}, valid until {_when(data["expires_at"])}</p>
</section>
<div class="grid">
 <section><h2>Gateways confirmed 网关确认</h2><div class="big">{data["gateways_confirmed"]} / {data["gateways_targeted"]}</div>
  <div class="muted">{data["gateways_shown"]} put it on their TVs</div></section>
 <section><h2>TVs showing it 电视显示</h2><div class="big">{data["tvs_shown"]} / {data["tvs_total"]}</div></section>
</div>
<section><h2>Not confirmed yet</h2><p>{missing}</p></section>
"""
    return _page(data["id"], region, body, who, refresh_s=5)


def login(region: str, error: str = "") -> str:
    problem = f'<p class="bad">{escape(error)}</p>' if error else ""
    body = f"""
<section><h2>Operator sign-in 操作员登录</h2>{problem}
<form method="post" action="/login">
 <p><label>Operator 操作员 <input name="name" autocomplete="username" required></label></p>
 <p><label>Password 密码 <input name="password" type="password" autocomplete="current-password" required></label></p>
 <button>Sign in 登录</button></form>
<p class="muted">No account? An administrator creates one with <code>linli region operator add NAME</code>.</p></section>
"""
    return _page("Sign in", region, body, None)


def audit(region: str, items: list[dict[str, Any]], who: Who) -> str:
    rows = "".join(
        f"<tr><td>{_when(a['ts'])}</td><td>{escape(a['operator'] or '—')}</td><td>{escape(a['action'])}</td>"
        f'<td>{escape(a["target"] or "")}</td><td class="{"ok" if a["outcome"] == "ok" else "bad"}">'
        f"{escape(a['outcome'])}</td><td>{escape(a['ip'] or '')}</td></tr>"
        for a in items
    )
    body = f"""
<section><h2>Audit log 审计日志</h2><p class="muted">Who signed in, who sent which broadcast; newest first, never changed.</p>
<table><tr><th>when</th><th>operator</th><th>action</th><th>target</th><th>outcome</th><th>from</th></tr>
{rows or '<tr><td colspan="6">nothing yet</td></tr>'}</table></section>
"""
    return _page("Audit", region, body, who)
