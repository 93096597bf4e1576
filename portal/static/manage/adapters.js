// The adapters the gateway runs (GET /api/v1/adapters): each one's state and, when it is not running,
// why — and when the gateway tries it again (a failed or crashed adapter restarts by itself, with backoff).
import { api, h } from "/static/shared/api.js";
import { addStrings, formatDuration, t } from "/static/shared/i18n.js";

addStrings({
  "zh-CN": {
    adapters_title: "适配器", adapter_state: "状态", adapter_reason: "原因",
    adapter_running: "运行中", adapter_failed: "启动失败", adapter_crashed: "已崩溃", adapter_disabled: "已停用",
    adapter_not_allowed: "未获准", adapter_component: "网关组件", adapter_stopped: "已停止", adapter_not_loaded: "未加载",
    adapter_retry: "{s} 后自动重启（第 {n} 次）",
  },
  en: {
    adapters_title: "Adapters", adapter_state: "State", adapter_reason: "Reason",
    adapter_running: "running", adapter_failed: "failed to start", adapter_crashed: "crashed", adapter_disabled: "disabled",
    adapter_not_allowed: "not allowed", adapter_component: "gateway component", adapter_stopped: "stopped", adapter_not_loaded: "not loaded",
    adapter_retry: "restarts by itself in {s} (attempt {n})",
  },
});

const fill = (text, values) => text.replace(/\{(\w+)\}/g, (_, k) => String(values[k] ?? ""));
const GOOD = new Set(["running", "component"]);
const BAD = new Set(["failed", "crashed", "disabled"]);

// A table of the adapters; an error reading them is said in place, not thrown (the rest of the page stands).
export async function adaptersPanel() {
  let items;
  try {
    ({ items } = await api("/api/v1/adapters"));
  } catch (error) {
    return h("section", { id: "adapters" }, h("h2", {}, t("adapters_title")), h("p", { class: "error", role: "alert" }, String(error.message || error)));
  }
  const now = Date.now() / 1000;
  const rows = items.map((a) => {
    const badge = GOOD.has(a.state) ? "good" : BAD.has(a.state) ? "bad" : "";
    const retry = typeof a.retry_at === "number"
      ? h("div", { class: "muted adapter-retry" }, fill(t("adapter_retry"), { s: formatDuration(Math.max(0, a.retry_at - now)), n: a.restarts || 1 }))
      : "";
    return h("tr", { "data-adapter": a.id, "data-state": a.state },
      h("td", {}, h("strong", {}, a.name || a.id), h("div", { class: "muted" }, `${a.id} ${a.version || ""}`)),
      h("td", {}, h("span", { class: `badge ${badge}` }, t(`adapter_${a.state}`))),
      h("td", { class: "adapter-reason" }, a.reason || "—", retry));
  });
  return h("section", { id: "adapters" }, h("h2", {}, t("adapters_title")),
    h("table", {}, h("thead", {}, h("tr", {}, [t("adapters_title"), t("adapter_state"), t("adapter_reason")].map((x) => h("th", {}, x)))), h("tbody", {}, rows)));
}
