// Screens of the phone app a household needs beyond the daily view: health trends with axes,
// one's own alarm PIN, and the household's data (export, delete) for its admin.
import { api, h } from "/static/shared/api.js";
import { axisChart } from "/static/shared/charts.js";
import { addStrings, formatNumber, getLocale, t } from "/static/shared/i18n.js";
import { explainError } from "/static/shared/labels.js";
import { PERIODS, VITAL_KINDS, VITALS, seriesFor, vitalName, vitalUnit } from "/static/shared/vitals.js";

addStrings({
  "zh-CN": {
    my_pin: "我的报警密码", pin_is_set: "你已设置报警密码，可以在这里更改。", pin_not_set: "你还没有报警密码：设置后才能布防和撤防。",
    current_pin: "当前密码", new_pin: "新密码（4–8 位数字）", repeat_pin: "再输一次", set_pin: "设置密码", change_pin: "更改密码",
    pin_saved: "报警密码已保存", pins_differ: "两次输入的新密码不一致", household_data: "家庭数据",
    export_explain: "下载这个家的全部数据（JSON 文件）：住户、设备、健康记录、告警、操作记录。", export_data: "导出数据",
    exported: "已导出", delete_explain: "永久删除这个家的个人数据（住户、健康记录、告警、照护设置、报警密码等）。删除后无法恢复；设备本身保留。",
    delete_data: "删除家庭数据…", delete_confirm_q: "确定要永久删除吗？请输入“删除”两个字确认。", delete_word: "删除",
    delete_now: "永久删除", cancel: "取消", deleted: "家庭数据已删除", type_delete: "请输入“删除”确认",
    no_health_data: "还没有任何体征测量记录", reading_latest: "最近一次",
    cast_pair: "让这部手机投屏到电视", cast_paired: "这部手机可以投屏到电视了，至 {until}",
  },
  en: {
    my_pin: "My alarm PIN", pin_is_set: "You have an alarm PIN; you can change it here.", pin_not_set: "You have no alarm PIN yet: set one to arm and disarm.",
    current_pin: "Current PIN", new_pin: "New PIN (4–8 digits)", repeat_pin: "Repeat it", set_pin: "Set PIN", change_pin: "Change PIN",
    pin_saved: "Alarm PIN saved", pins_differ: "The two new PINs differ", household_data: "Household data",
    export_explain: "Download all of this home's data (a JSON file): residents, devices, health records, alerts, the activity log.",
    export_data: "Export data", exported: "Exported",
    delete_explain: "Delete this home's personal data for good (residents, health records, alerts, care settings, alarm PINs…). It cannot be undone; the devices stay.",
    delete_data: "Delete household data…", delete_confirm_q: "Delete for good? Type DELETE to confirm.", delete_word: "DELETE",
    delete_now: "Delete for good", cancel: "Cancel", deleted: "Household data deleted", type_delete: "Type DELETE to confirm",
    no_health_data: "No vital-sign measurements yet", reading_latest: "latest",
    cast_pair: "Let this phone cast to the TV", cast_paired: "This phone may cast to the TV until {until}",
  },
});

// The series' colour as a tiny SVG square: the page's CSP allows no inline style attributes.
function swatch(color) {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", "0 0 10 10");
  svg.setAttribute("class", "swatch");
  svg.setAttribute("aria-hidden", "true");
  const rect = document.createElementNS("http://www.w3.org/2000/svg", "rect");
  for (const [k, v] of Object.entries({ width: 10, height: 10, rx: 2, fill: color })) rect.setAttribute(k, v);
  svg.append(rect);
  return svg;
}

const card = (title, ...children) => h("section", { class: "card" }, h("h2", {}, title), ...children);

// -- health --------------------------------------------------------------------------------

function timeTicks(period, from, to) {
  const out = [];
  if (period === "day") {
    const start = new Date(from * 1000); start.setMinutes(0, 0, 0);
    for (let d = new Date(start); d.getTime() / 1000 <= to; d.setHours(d.getHours() + 1)) if (d.getHours() % 6 === 0) out.push(d.getTime() / 1000);
  } else {
    const start = new Date(from * 1000); start.setHours(12, 0, 0, 0);
    const every = period === "week" ? 1 : 5;
    for (let d = new Date(start), i = 0; d.getTime() / 1000 <= to; d.setDate(d.getDate() + 1), i++) if (i % every === 0) out.push(d.getTime() / 1000);
  }
  return out;
}

const timeLabel = (period) => (ts) => {
  const d = new Date(ts * 1000);
  return period === "day" ? `${String(d.getHours()).padStart(2, "0")}:00` : d.toLocaleDateString(getLocale(), { month: "numeric", day: "numeric" });
};

const showValue = (kind, value) =>
  kind === "blood_pressure" && value && typeof value === "object" ? `${Math.round(value.systolic)}/${Math.round(value.diastolic)}` : formatNumber(value);

// Every vital a resident has measured, over the last day, week or month: a chart with axes, the
// unit, the reference band, and the latest reading in words.
export function healthView(household, residents) {
  let period = "week";
  const holder = h("div", { id: "charts" });
  const switcher = h("div", { class: "row", role: "group", id: "period" }, Object.keys(PERIODS).map((p) =>
    h("button", { type: "button", class: "secondary small", "data-period": p, "aria-pressed": String(p === period), onclick: () => { period = p; draw(); } }, t(`period_${p}`))));
  const cache = new Map();
  async function draw() {
    for (const b of switcher.querySelectorAll("button")) b.setAttribute("aria-pressed", String(b.dataset.period === period));
    const now = Date.now() / 1000, from = now - PERIODS[period].days * 86400;
    const sections = [];
    for (const resident of residents) {
      let items = cache.get(resident.id);
      if (!items) {
        try {
          ({ items } = await api(`/api/v1/households/${household}/residents/${resident.id}/health/readings`, { query: { since: now - 30 * 86400, limit: 5000 } }));
        } catch (error) { sections.push(card(resident.name, h("p", { class: "muted" }, explainError(error)))); continue; }
        cache.set(resident.id, items);
      }
      const kinds = VITAL_KINDS.filter((k) => items.some((r) => r.kind === k));
      if (!kinds.length) { sections.push(card(resident.name, h("p", { class: "muted" }, t("no_health_data")))); continue; }
      for (const kind of kinds) {
        const series = seriesFor(kind, items, period, now);
        const latest = items.filter((r) => r.kind === kind).sort((a, b) => b.ts - a.ts)[0];
        const count = series[0].points.reduce((n, p) => n + p.count, 0);
        const legend = VITALS[kind].series.map((s) => h("span", { class: "legend" }, swatch(s.color), `${t(s.label)}${s.range ? ` ${t("reference_range")} ${s.range[0]}–${s.range[1]}` : ""}`));
        sections.push(h("section", { class: "card vital-card", "data-kind": kind },
          h("h2", {}, `${resident.name} · ${vitalName(kind)}`),
          h("p", { class: "muted" }, `${t("reading_latest")}: `, h("strong", {}, `${showValue(kind, latest.value)} ${vitalUnit(kind)}`),
            ` · ${t(PERIODS[period].label)} ${count} ${t("readings_n")}`),
          count ? axisChart(series, { from, to: now, unit: vitalUnit(kind), label: `${resident.name} ${vitalName(kind)}`, timeTicks: timeTicks(period, from, now), timeLabel: timeLabel(period) })
            : h("p", { class: "muted" }, t("no_readings_period")),
          h("div", { class: "legend-row" }, legend)));
      }
    }
    if (!residents.length) sections.push(h("p", { class: "muted" }, t("no_vitals")));
    holder.replaceChildren(...sections, h("p", { class: "muted small" }, t("chart_reference_note")));
  }
  draw();
  return [switcher, holder];
}

// -- the alarm PIN ----------------------------------------------------------------------------

export function pinCard(household, me) {
  const box = h("div", { id: "pin-card" });
  const input = (id, label) => h("p", {}, h("label", { for: id }, `${label} `),
    h("input", { id, class: "pin", type: "password", inputmode: "numeric", autocomplete: "off", maxlength: "8", pattern: "[0-9]{4,8}" }));
  (async () => {
    const status = await api(`/api/v1/households/${household}/alarm`);
    const has = (status.users || []).includes(me.name);
    const message = h("p", { role: "status", id: "pin-status" });
    const fields = [has ? input("pin-current", t("current_pin")) : null, input("pin-new", t("new_pin")), input("pin-repeat", t("repeat_pin"))].filter(Boolean);
    const save = h("button", { type: "button", id: "pin-save", onclick: async () => {
      const value = (id) => (box.querySelector(`#${id}`) || {}).value || "";
      message.className = "error";
      if (value("pin-new") !== value("pin-repeat")) { message.textContent = t("pins_differ"); return; }
      try {
        await api(`/api/v1/households/${household}/alarm/pin`, { method: "PUT", body: { pin: value("pin-new"), ...(has ? { current: value("pin-current") } : {}) } });
        message.className = "ok";
        message.textContent = t("pin_saved");
        for (const el of box.querySelectorAll("input")) el.value = "";
      } catch (error) { message.textContent = explainError(error); }
    } }, has ? t("change_pin") : t("set_pin"));
    box.replaceChildren(card(t("my_pin"), h("p", { class: "muted" }, has ? t("pin_is_set") : t("pin_not_set")), ...fields, save, message));
  })().catch((error) => box.replaceChildren(h("p", { class: "error" }, explainError(error))));
  return box;
}

// -- the household's data ---------------------------------------------------------------------

export function dataCard(household, householdName) {
  const message = h("p", { role: "status", id: "data-status" });
  const exportButton = h("button", { type: "button", id: "export-data", class: "secondary", onclick: async () => {
    message.className = "";
    try {
      const data = await api(`/api/v1/households/${household}/export`);
      const link = h("a", { href: URL.createObjectURL(new Blob([JSON.stringify(data, null, 2)], { type: "application/json" })), download: `linli-${householdName || "household"}.json` });
      document.body.append(link);
      link.click();
      link.remove();
      message.className = "ok";
      message.textContent = t("exported");
    } catch (error) { message.className = "error"; message.textContent = explainError(error); }
  } }, t("export_data"));
  // Deleting is two deliberate steps: open the confirmation, then type the word and press the red button.
  const confirmBox = h("div", { class: "confirm hidden", id: "delete-confirm" });
  const openConfirm = h("button", { type: "button", id: "delete-data", class: "danger", onclick: () => {
    const word = h("input", { id: "delete-word", autocomplete: "off", "aria-label": t("delete_confirm_q") });
    const go = h("button", { type: "button", id: "delete-now", class: "danger", onclick: async () => {
      if (word.value.trim() !== t("delete_word")) { message.className = "error"; message.textContent = t("type_delete"); word.focus(); return; }
      try {
        await api(`/api/v1/households/${household}/data`, { method: "DELETE", body: { confirm: household } });
        message.className = "ok";
        message.textContent = t("deleted");
        confirmBox.classList.add("hidden");
      } catch (error) { message.className = "error"; message.textContent = explainError(error); }
    } }, t("delete_now"));
    const cancel = h("button", { type: "button", class: "secondary", id: "delete-cancel", onclick: () => { confirmBox.classList.add("hidden"); openConfirm.focus(); } }, t("cancel"));
    confirmBox.replaceChildren(h("p", {}, t("delete_confirm_q")), word, h("div", { class: "row" }, cancel, go));
    confirmBox.classList.remove("hidden");
    cancel.focus();
  } }, t("delete_data"));
  return card(t("household_data"), h("p", { class: "muted" }, t("export_explain")), exportButton,
    h("p", { class: "muted" }, t("delete_explain")), openConfirm, confirmBox, message);
}

// -- casting -----------------------------------------------------------------------------------

// Outside the home's own network, a phone's video app finds the TV's renderer only once a member
// lets this phone in (for a while, from the address it asks from).
export function castButton(household) {
  const status = h("p", { role: "status", id: "cast-status" });
  const button = h("button", { type: "button", class: "secondary", id: "cast-pair", onclick: async () => {
    try {
      const { until } = await api(`/api/v1/households/${household}/cast/pair`, { method: "POST", body: {} });
      status.className = "ok";
      status.textContent = t("cast_paired").replace("{until}", new Date(until * 1000).toLocaleTimeString(getLocale()));
    } catch (error) { status.className = "error"; status.textContent = explainError(error); }
  } }, t("cast_pair"));
  return h("div", {}, button, status);
}
