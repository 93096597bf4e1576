// The TV: arrow keys, OK (Enter) and Back only. Every control is a focusable button; focus is never lost.
import { api, h, live } from "/static/shared/api.js";
import { formatNumber, setLocale, t } from "/static/shared/i18n.js";
import { alertTitle, unitText } from "/static/shared/labels.js";

const $ = (s) => document.querySelector(s);
const state = { household: null, alerts: new Map(), lastTile: 0 };
const COLUMNS = 3;
const BACK_KEYS = new Set(["Escape", "Backspace", "BrowserBack", "GoBack", "XF86Back"]);
const KIND = { blood_pressure: "血压", heart_rate: "心率", spo2: "血氧", glucose: "血糖", weight: "体重", body_temperature: "体温" };
const show = (v) => (v && typeof v === "object" ? `${Math.round(v.systolic)}/${Math.round(v.diastolic)}` : formatNumber(v));

function layer() {
  if (!$("#alert").classList.contains("hidden")) return $("#alert");
  if (!$("#panel").classList.contains("hidden")) return $("#panel");
  return $("#tiles");
}

function focusables(root) { return [...root.querySelectorAll("button:not([disabled])")]; }

function ensureFocus() {
  const root = layer();
  if (!root.contains(document.activeElement)) {
    const items = focusables(root);
    const index = root === $("#tiles") ? Math.min(state.lastTile, items.length - 1) : 0;
    if (items[index]) items[index].focus();
  }
}

// The tiles are a grid: an arrow moves one row or column; off an edge it does nothing (no wrap
// into the next row or another column, which lands on a tile the resident did not aim at).
function gridStep(index, count, key) {
  const row = Math.floor(index / COLUMNS);
  const column = index % COLUMNS;
  if (key === "ArrowLeft") return column > 0 ? index - 1 : index;
  if (key === "ArrowRight") return column < COLUMNS - 1 && index + 1 < count ? index + 1 : index;
  if (key === "ArrowUp") return row > 0 ? index - COLUMNS : index;
  if (key === "ArrowDown") return index + COLUMNS < count ? index + COLUMNS : index;
  return index;
}

// A panel taller than the screen: Up and Down scroll its text when there is no control that
// way to go to (or the next one is still out of sight), so every line can be read with the remote.
function scrollPanel(panel, items, index, key) {
  if (key !== "ArrowUp" && key !== "ArrowDown") return false;
  const down = key === "ArrowDown";
  const step = Math.max(80, Math.round(panel.clientHeight * 0.6));
  const canScroll = down ? panel.scrollTop + panel.clientHeight < panel.scrollHeight - 1 : panel.scrollTop > 0;
  if (!canScroll) return false;
  const box = panel.getBoundingClientRect();
  const target = items[index + (down ? 1 : -1)];
  const unseen = !target || (down ? target.getBoundingClientRect().top >= box.bottom - 8 : target.getBoundingClientRect().bottom <= box.top + 8);
  if (!unseen) return false;
  panel.scrollBy({ top: down ? step : -step });
  return true;
}

function move(key) {
  const root = layer();
  const items = focusables(root);
  const index = Math.max(0, items.indexOf(document.activeElement));
  if (root === $("#tiles")) {
    const next = gridStep(index, items.length, key);
    items[next].focus();
    state.lastTile = next;
    return;
  }
  if (root === $("#panel") && scrollPanel(root, items, index, key)) return;
  const step = { ArrowLeft: -1, ArrowUp: -1, ArrowRight: 1, ArrowDown: 1 }[key];
  items[Math.min(items.length - 1, Math.max(0, index + step))].focus();
}

function openPanel(title, ...content) {
  const back = h("button", { type: "button", id: "panel-back", onclick: closePanel }, `${t("back")}`);
  const panel = $("#panel");
  panel.replaceChildren(h("h2", {}, title), ...content, h("div", { class: "panel-actions" }, back));
  panel.classList.remove("hidden");
  // Start at the top (the heading and the first lines); Back stays in sight, pinned to the bottom.
  focusables(panel)[0].focus({ preventScroll: true });
  panel.scrollTop = 0;
}

const emptyLine = (key) => h("p", { class: "empty" }, t(key));

function closePanel() {
  $("#panel").classList.add("hidden");
  ensureFocus();
}

function tile(id, title, detail, onclick, extra = "") {
  return h("button", { type: "button", class: `tile ${extra}`, id, onclick }, h("span", {}, title), h("small", {}, detail));
}

async function renderTiles() {
  const [overview, care, notices] = await Promise.all([
    api(`/api/v1/households/${state.household}`),
    api(`/api/v1/households/${state.household}/care`).catch(() => null),
    api("/api/v1/announcements").catch(() => ({ items: [] })),
  ]);
  $("#title").textContent = `邻里 · ${overview.name}`;
  for (const a of overview.alerts) state.alerts.set(a.id, a);
  const done = care && care.checked_in_today;
  const vitals = overview.vitals.map((v) => `${KIND[v.kind] || v.kind} ${show(v.value)}`).join(" · ") || t("no_vitals");
  const tiles = [
    tile("tile-check-in", done ? "✓ " + t("checked_in") : t("check_in"), "按 OK 报平安", checkIn, done ? "done" : ""),
    tile("tile-reminders", t("reminders"), care ? `${care.reminders.length} 项` : "—", () => openPanel(t("reminders"),
      care && care.reminders.length ? "" : emptyLine("no_reminders"),
      h("ul", {}, (care ? care.reminders : []).map((r) => h("li", {}, `${r.times.join(" ")} ${r.title} `,
        h("button", { type: "button", onclick: async (e) => {
          await api(`/api/v1/households/${state.household}/care/reminders/${r.id}/confirm`, { method: "POST" });
          e.target.textContent = "✓"; } }, t("confirm"))))))),
    tile("tile-announcements", t("announcements"), notices.items[0] ? notices.items[0].title : "—", () => showNotices(notices.items)),
    tile("tile-vitals", t("latest_vitals"), vitals, () => openPanel(t("latest_vitals"),
      overview.vitals.length ? "" : emptyLine("no_vitals"),
      h("ul", {}, overview.vitals.map((v) => h("li", {}, `${v.resident} · ${KIND[v.kind] || v.kind}: ${show(v.value)} ${unitText(v.unit)}`))))),
    tile("tile-alarm", t("alarm"), overview.alarm ? t(overview.alarm.state) : "—", () => openPanel(t("alarm"),
      h("p", {}, overview.alarm ? t(overview.alarm.state) : "—"), h("p", {}, "布防与撤防请用手机 · Arm and disarm on the phone"))),
    tile("tile-help", t("call_help"), "呼叫物业与家人", confirmHelp),
  ];
  // A re-render (after a check-in, a live update) must not move the resident's focus: the
  // same tile keeps it, even if arrows were pressed while the data was being fetched.
  const focusedId = $("#tiles").contains(document.activeElement) ? document.activeElement.id : null;
  $("#tiles").replaceChildren(...tiles);
  if (focusedId || layer() === $("#tiles")) {
    const items = focusables($("#tiles"));
    const same = items.findIndex((b) => b.id === focusedId);
    if (same >= 0) state.lastTile = same;
    (items[state.lastTile] || items[0]).focus();
  }
  showAlert();
}

function showNotices(items) {
  openPanel(t("announcements"), items.length ? "" : emptyLine("no_announcements"), ...items.map((a) => h("div", { class: a.kind === "emergency" ? "emergency" : "" },
    h("h3", {}, a.kind === "emergency" ? `⚠ ${t("emergency")} · ${a.title}` : a.title), h("p", {}, a.body),
    a.source === "region" ? h("small", {}, t("from_region")) : "")));
}

async function checkIn() {
  await api(`/api/v1/households/${state.household}/care/check-in`, { method: "POST", body: {} });
  await renderTiles();
}

// The help tile is big and OK is easy to press by mistake: it asks first (OK calls, Back cancels).
function confirmHelp() {
  openPanel(t("call_help_q"), h("p", {}, t("call_help_explain")),
    h("button", { type: "button", id: "help-confirm", class: "danger", onclick: () => callHelp().catch((error) => openPanel(t("call_help"), h("p", {}, error.message))) }, t("call_now")));
}

async function callHelp() {
  await api(`/api/v1/households/${state.household}/help`, { method: "POST", body: {} });
  openPanel(t("help_sent"), h("p", {}, "物业值班与家人已收到 · The duty desk and your family are told"));
}

function showAlert() {
  const open = [...state.alerts.values()].filter((a) => a.state === "raised" || a.state === "notified");
  const screen = $("#alert");
  if (!open.length) {
    const wasOpen = !screen.classList.contains("hidden");
    screen.classList.add("hidden");
    if (wasOpen) ensureFocus();
    return;
  }
  const alert = open[open.length - 1];
  if (screen.dataset.alert === alert.id && !screen.classList.contains("hidden")) return;
  screen.dataset.alert = alert.id;
  screen.replaceChildren(
    h("h2", {}, alertTitle(alert)),
    // a keyed alert says all in its title; older details are English for the duty desk
    h("p", {}, (alert.data && alert.data.title_key) ? "" : alert.detail || ""),
    h("div", {},
      h("button", { type: "button", class: "ok", id: "im-ok", onclick: () => answer(alert, "ok") }, `${t("im_ok")} · I'm OK`),
      h("button", { type: "button", class: "help", id: "call-help", onclick: () => answer(alert, "help") }, `${t("call_help")} · Call for help`)));
  screen.classList.remove("hidden");
  $("#im-ok").focus();
}

async function answer(alert, how) {
  if (how === "ok") {
    const resolved = await api(`/api/v1/alerts/${alert.id}/resolve`, { method: "POST", body: { note: "resident answered on the TV: I'm OK" } });
    state.alerts.set(resolved.id, resolved);
  } else {
    const acknowledged = await api(`/api/v1/alerts/${alert.id}/acknowledge`, { method: "POST" }).catch(() => alert);
    state.alerts.set(acknowledged.id, acknowledged);
    await callHelp();
  }
  showAlert();
}

function onKey(event) {
  if (event.key.startsWith("Arrow")) { event.preventDefault(); move(event.key); }
  else if (BACK_KEYS.has(event.key)) {
    event.preventDefault();
    if (!$("#panel").classList.contains("hidden") && $("#alert").classList.contains("hidden")) closePanel();
  } else if (event.key === "Enter" && !document.activeElement.matches("button")) {
    ensureFocus();
  }
}

function onLive(message) {
  if (message.type === "alert" || message.type === "alert_changed") {
    state.alerts.set(message.alert.id, message.alert);
    showAlert();
  } else if (message.type === "announcement" && message.announcement.kind === "emergency") {
    // An emergency broadcast does not wait for someone to open the tile: it is shown now.
    renderTiles().catch(() => {});
    if ($("#alert").classList.contains("hidden")) showNotices([message.announcement]);
  } else if (message.type === "announcement" || message.type === "alarm" || message.type === "care_changed") {
    renderTiles().catch(() => {});
  }
}

async function main() {
  setLocale("zh-CN");  // the TV speaks Chinese by default, whatever the phone is set to
  const { user } = await api("/api/v1/auth/me");
  state.household = user.household_id;
  document.addEventListener("keydown", onKey);
  document.addEventListener("focusout", () => setTimeout(ensureFocus, 0));
  setInterval(() => { $("#clock").textContent = new Date().toLocaleTimeString("zh-CN", { hour: "2-digit", minute: "2-digit" }); }, 1000);
  await renderTiles();
  ensureFocus();
  live(onLive, (up) => { if (up) renderTiles().catch(() => {}); });
}

main().catch((error) => { $("#tiles").replaceChildren(h("p", {}, error.message)); });
