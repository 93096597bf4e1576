// An alert's escalation history for the duty desk: when it was raised, each step and who it
// reached over which channel, with what outcome, who acknowledged, cancelled or resolved it.
import { api, h } from "/static/shared/api.js";
import { addStrings, formatTime, t } from "/static/shared/i18n.js";
import { explainError } from "/static/shared/labels.js";

addStrings({
  "zh-CN": {
    timeline: "经过", timeline_of: "告警经过", tl_raised: "告警产生", tl_repeated: "再次触发", tl_notifying: "开始通知",
    tl_escalated: "升级到下一步", tl_delivery: "送达", tl_acknowledged: "已确认", tl_resolved: "已处理完毕",
    tl_cancelled: "住户取消", tl_call_back: "需要回电", tl_window_passed: "取消时限已过", tl_step: "第 {n} 步",
    aud_household: "家中屏幕", aud_carers: "家属", aud_duty_desk: "物业值班", aud_emergency: "紧急联系人",
    out_delivered: "已送达", out_failed: "失败", out_skipped: "跳过", out_timeout: "超时", no_events: "还没有记录",
    by_whom: "操作人",
  },
  en: {
    timeline: "History", timeline_of: "Alert history", tl_raised: "Raised", tl_repeated: "Triggered again", tl_notifying: "Notifying",
    tl_escalated: "Escalated to the next step", tl_delivery: "Delivery", tl_acknowledged: "Acknowledged", tl_resolved: "Resolved",
    tl_cancelled: "Cancelled by the resident", tl_call_back: "Call back needed", tl_window_passed: "Cancel window passed", tl_step: "step {n}",
    aud_household: "home screens", aud_carers: "family carers", aud_duty_desk: "duty desk", aud_emergency: "emergency contacts",
    out_delivered: "delivered", out_failed: "failed", out_skipped: "skipped", out_timeout: "timed out", no_events: "Nothing recorded yet",
    by_whom: "by",
  },
});

const word = (prefix, value) => (value ? (t(`${prefix}_${value}`) === `${prefix}_${value}` ? value : t(`${prefix}_${value}`)) : "");

function line(event) {
  const parts = [word("tl", event.action)];
  if (event.step !== null && event.step !== undefined && event.step >= 0 && ["notifying", "escalated", "delivery"].includes(event.action)) {
    parts.push(t("tl_step").replace("{n}", String(event.step + 1)));
  }
  if (event.audience) parts.push(word("aud", event.audience));
  if (event.channel) parts.push(event.channel);
  if (event.outcome) parts.push(word("out", event.outcome));
  if (event.actor) parts.push(`${t("by_whom")} ${event.actor}`);
  return h("li", { "data-action": event.action, class: event.outcome === "failed" ? "error" : "" },
    h("time", { class: "muted" }, formatTime(event.ts)), " ", parts.filter(Boolean).join(" · "),
    event.detail && event.action !== "raised" ? h("div", { class: "muted" }, event.detail) : "");
}

// A table row under the alert's own row, filled when opened.
export function timelineRow(alertId, columns) {
  const cell = h("td", { colspan: String(columns) }, h("p", { class: "muted" }, "…"));
  const row = h("tr", { class: "timeline", "data-timeline": alertId }, cell);
  api(`/api/v1/alerts/${alertId}/timeline`).then(({ events }) => {
    cell.replaceChildren(h("h3", {}, t("timeline_of")),
      events.length ? h("ol", { class: "plain timeline-list" }, events.map(line)) : h("p", { class: "muted" }, t("no_events")));
  }).catch((error) => cell.replaceChildren(h("p", { class: "error" }, explainError(error))));
  return row;
}

export function timelineButton(alertId, columns) {
  const button = h("button", { type: "button", class: "small secondary timeline-toggle", "aria-expanded": "false", onclick: () => {
    const tr = button.closest("tr");
    const open = tr.nextElementSibling && tr.nextElementSibling.dataset.timeline === String(alertId);
    if (open) tr.nextElementSibling.remove();
    else tr.after(timelineRow(alertId, columns));
    button.setAttribute("aria-expanded", String(!open));
  } }, t("timeline"));
  return button;
}
