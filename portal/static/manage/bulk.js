// Approving many inbox items at once: tick them (or all), choose the home and room, one press.
import { api, h } from "/static/shared/api.js";
import { addStrings, t } from "/static/shared/i18n.js";
import { explainError } from "/static/shared/labels.js";

addStrings({
  "zh-CN": {
    select_item: "选择", select_all: "全选", approve_selected: "批准所选（{n}）", bulk_title: "批量批准",
    bulk_done: "已批准 {n} 台设备", bulk_refused: "{n} 台未能批准：", choose_home_first: "请先选择住户",
    choose_items_first: "请先勾选设备",
  },
  en: {
    select_item: "Select", select_all: "Select all", approve_selected: "Approve selected ({n})", bulk_title: "Approve in bulk",
    bulk_done: "{n} devices approved", bulk_refused: "{n} could not be approved: ", choose_home_first: "Choose a home first",
    choose_items_first: "Tick the devices first",
  },
});

const fill = (text, values) => text.replace(/\{(\w+)\}/g, (_, k) => String(values[k] ?? ""));

// One checkbox per row, and the bar that approves what is ticked.
export function bulkApproval(items, homes, homeOption, onDone) {
  const boxes = new Map(items.map((item) => [item.id, h("input", { type: "checkbox", class: "i-select", "data-item": item.id, "aria-label": `${t("select_item")} ${item.name || ""}` })]));
  const household = h("select", { id: "bulk-household", "aria-label": t("household") },
    h("option", { value: "", selected: true }, t("choose_placeholder")), homes.map((x) => homeOption(x, false)));
  const room = h("input", { id: "bulk-room", list: "rooms", maxlength: 64, "aria-label": t("room"), placeholder: t("room") });
  const status = h("div", { role: "status", id: "bulk-status" });
  const button = h("button", { type: "button", id: "bulk-approve", class: "approve" });
  const count = () => [...boxes.values()].filter((b) => b.checked).length;
  const label = () => { button.textContent = fill(t("approve_selected"), { n: count() }); };
  const all = h("input", { type: "checkbox", id: "bulk-all", onchange: () => { for (const b of boxes.values()) b.checked = all.checked; label(); } });
  for (const b of boxes.values()) b.addEventListener("change", label);
  button.addEventListener("click", async () => {
    const selected = [...boxes].filter(([, b]) => b.checked).map(([id]) => id);
    status.className = "error";
    if (!selected.length) { status.textContent = t("choose_items_first"); return; }
    if (!household.value) { status.textContent = t("choose_home_first"); household.focus(); return; }
    button.disabled = true;
    try {
      const body = { items: selected, household_id: household.value };
      if (room.value.trim()) body.room = room.value.trim();
      const result = await api("/api/v1/inbox/bulk-approve", { method: "POST", body });
      status.className = result.refused.length ? "error" : "ok";
      status.replaceChildren(h("p", {}, fill(t("bulk_done"), { n: result.approved.length })),
        result.refused.length ? h("p", {}, fill(t("bulk_refused"), { n: result.refused.length }),
          h("ul", {}, result.refused.map((r) => h("li", { "data-refused": r.item_id }, explainError(r.error))))) : "");
      await onDone(status);
    } catch (error) { status.textContent = explainError(error); } finally { button.disabled = false; }
  });
  label();
  const bar = h("div", { class: "bulk-bar row", id: "bulk-bar" }, h("strong", {}, t("bulk_title")),
    h("label", {}, all, ` ${t("select_all")}`), household, room, button);
  return { bar, status, box: (item) => boxes.get(item.id) };
}
