// The TV: arrow keys, OK (Enter) and Back only. Every control is a focusable button; focus is never lost.
import { api, h, live } from "/static/shared/api.js";
import { formatNumber, setLocale, t } from "/static/shared/i18n.js";
import { alertTitle, unitText } from "/static/shared/labels.js";

const $ = (s) => document.querySelector(s);
const state = { household: null, alerts: new Map(), lastTile: 0, dismissed: new Set() };
const COLUMNS = 3;
const BACK_KEYS = new Set(["Escape", "Backspace", "BrowserBack", "GoBack", "XF86Back"]);
const KIND = { blood_pressure: "血压", heart_rate: "心率", spo2: "血氧", glucose: "血糖", weight: "体重", body_temperature: "体温" };
const show = (v) => (v && typeof v === "object" ? `${Math.round(v.systolic)}/${Math.round(v.diastolic)}` : formatNumber(v));

function layer() {
  if (!$("#alert").classList.contains("hidden")) return $("#alert");
  if (!$("#notice").classList.contains("hidden")) return $("#notice");
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
  for (const a of overview.alerts) if (!state.dismissed.has(a.id)) state.alerts.set(a.id, a);
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

// Reminders (medication, the daily check-in) are nudges, not alarms: a calm card, never the red screen.
const CALM = new Set(["reminder", "check_in_reminder"]);
const isOpen = (a) => a.state === "raised" || a.state === "notified";
const isCalm = (a) => CALM.has(a.kind) || a.severity === "info";
// a keyed alert says all in its title; older details are English for the duty desk
const detailOf = (a) => ((a.data && a.data.title_key) ? "" : a.detail || "");

function hideLayer(screen) {
  const wasOpen = !screen.classList.contains("hidden");
  screen.classList.add("hidden");
  delete screen.dataset.alert;
  if (wasOpen) ensureFocus();
}

function showAlert() {
  const open = [...state.alerts.values()].filter(isOpen);
  const alarms = open.filter((a) => !isCalm(a));
  showNotice(open.filter(isCalm));
  const screen = $("#alert");
  if (!alarms.length) { hideLayer(screen); return; }
  const alert = alarms[alarms.length - 1];
  if (screen.dataset.alert === alert.id && !screen.classList.contains("hidden")) return;
  screen.dataset.alert = alert.id;
  alarmChoice(alert);
  screen.classList.remove("hidden");
  $("#call-help").focus();
}

// The alarm screen: "Call for help" has the focus (a stray OK press calls for help, which is safe);
// "I'm OK" asks again, with "No, keep the alarm" focused, so ending an alarm takes a deliberate second step.
function alarmChoice(alert) {
  $("#alert").replaceChildren(
    h("h2", {}, alertTitle(alert)),
    h("p", {}, detailOf(alert)),
    h("div", {},
      h("button", { type: "button", class: "help", id: "call-help", onclick: () => answer(alert, "help") }, `${t("call_help")} · Call for help`),
      h("button", { type: "button", class: "ok", id: "im-ok", onclick: () => confirmOk(alert) }, `${t("im_ok")} · I'm OK`)));
}

function confirmOk(alert) {
  $("#alert").replaceChildren(
    h("h2", {}, t("im_ok_q")),
    h("p", {}, t("im_ok_explain")),
    h("div", {},
      h("button", { type: "button", class: "help", id: "keep-alarm", onclick: () => { alarmChoice(alert); $("#call-help").focus(); } }, t("keep_alarm")),
      h("button", { type: "button", class: "ok", id: "confirm-ok", onclick: () => answer(alert, "ok") }, t("yes_im_ok"))));
  $("#keep-alarm").focus();
}

// A calm card for reminders: the resident confirms with OK, or Back puts it away for now.
function showNotice(items) {
  const card = $("#notice");
  if (!items.length) { hideLayer(card); return; }
  const item = items[items.length - 1];
  if (card.dataset.alert === item.id && !card.classList.contains("hidden")) return;
  card.dataset.alert = item.id;
  const reminderId = item.data && item.data.reminder_id;
  const done = async () => {
    if (reminderId) await api(`/api/v1/households/${state.household}/care/reminders/${reminderId}/confirm`, { method: "POST" }).catch(() => {});
    else if (item.kind === "check_in_reminder") await api(`/api/v1/households/${state.household}/care/check-in`, { method: "POST", body: {} }).catch(() => {});
    else await api(`/api/v1/alerts/${item.id}/acknowledge`, { method: "POST" }).catch(() => {});
    state.alerts.set(item.id, { ...item, state: "acknowledged" });
    showAlert();
    renderTiles().catch(() => {});
  };
  card.replaceChildren(
    h("h2", {}, alertTitle(item)),
    detailOf(item) ? h("p", {}, detailOf(item)) : "",
    h("div", {},
      h("button", { type: "button", id: "notice-done", onclick: done }, t(item.kind === "check_in_reminder" ? "check_in" : "confirm")),
      h("button", { type: "button", id: "notice-later", onclick: () => { state.dismissed.add(item.id); state.alerts.delete(item.id); showAlert(); } }, t("later"))));
  card.classList.remove("hidden");
  if ($("#alert").classList.contains("hidden")) $("#notice-done").focus();
}

async function answer(alert, how) {
  if (how === "ok") {
    // Not a resolution: the alert is kept as "cancelled by the resident"; the duty desk may call back.
    const cancelled = await api(`/api/v1/alerts/${alert.id}/cancel`, { method: "POST", body: { note: "resident answered on the TV: I'm OK" } });
    state.alerts.set(cancelled.id, cancelled);
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
    if (!$("#alert").classList.contains("hidden")) {
      if ($("#keep-alarm")) $("#keep-alarm").click();  // Back on the confirm step keeps the alarm
    } else if (!$("#notice").classList.contains("hidden")) $("#notice-later").click();
    else if (!$("#panel").classList.contains("hidden")) closePanel();
  } else if (event.key === "Enter" && !document.activeElement.matches("button")) {
    ensureFocus();
  }
}

function onLive(message) {
  if (message.type === "alert" || message.type === "alert_changed") {
    if (state.dismissed.has(message.alert.id) && isOpen(message.alert)) return;
    state.alerts.set(message.alert.id, message.alert);
    showAlert();
  } else if (message.type === "announcement" && message.announcement.kind === "emergency") {
    // An emergency broadcast does not wait for someone to open the tile: it is shown now.
    renderTiles().catch(() => {});
    if ($("#alert").classList.contains("hidden")) showNotices([message.announcement]);
  } else if (message.type === "announcement") {
    // An ordinary announcement is a calm panel on the screen, as on the box's own overlay.
    renderTiles().catch(() => {});
    if ($("#alert").classList.contains("hidden") && $("#panel").classList.contains("hidden")) showNotices([message.announcement]);
  } else if (message.type === "alarm" || message.type === "care_changed") {
    renderTiles().catch(() => {});
  }
}

// Not signed in: pair with the remote alone (RFC 8628). The TV shows a code and its QR code; a
// household admin confirms it in the phone app; the TV polls until it has its screen credential.
async function pair() {
  const started = await api("/api/v1/tv/pairings", { method: "POST" });
  const qr = h("img", { id: "pair-qr", alt: "QR", src: started.qr_svg, "data-url": started.verification_uri_complete });
  const again = h("button", { type: "button", id: "pair-again", onclick: () => location.reload() }, t("pair_new_code"));
  $("#tiles").replaceChildren(h("section", { class: "pairing" },
    h("div", {}, h("h2", {}, t("pair_title")), h("p", {}, t("pair_explain")),
      h("p", { class: "pair-code", id: "pair-code" }, started.user_code),
      h("p", { class: "muted" }, started.verification_uri), h("p", { id: "pair-status" }, t("pair_waiting")), again),
    qr));
  again.focus();
  let interval = started.interval;
  const deadline = Date.now() + started.expires_in * 1000;
  for (;;) {
    await new Promise((done) => setTimeout(done, interval * 1000));
    try {
      await api("/api/v1/tv/pairings/token", { method: "POST", body: { device_code: started.device_code } });
      location.replace("/tv/");
      return;
    } catch (error) {
      if (error.code === "slow_down") interval = error.data.interval || interval + 5;
      else if (error.code === "authorization_pending") continue;
      else if (error.code === "access_denied") { $("#pair-status").textContent = t("pair_denied"); return; }
      else if (Date.now() > deadline || error.code === "expired_token" || error.code === "invalid_grant") { location.reload(); return; }
    }
  }
}

async function main() {
  setLocale("zh-CN");  // the TV speaks Chinese by default, whatever the phone is set to
  const me = await api("/api/v1/auth/me").catch((error) => { if (error.status === 401) return null; throw error; });
  if (!me) { await pair(); return; }
  const { user } = me;
  state.household = user.household_id;
  document.addEventListener("keydown", onKey);
  document.addEventListener("focusout", () => setTimeout(ensureFocus, 0));
  setInterval(() => { $("#clock").textContent = new Date().toLocaleTimeString("zh-CN", { hour: "2-digit", minute: "2-digit" }); }, 1000);
  await renderTiles();
  ensureFocus();
  live(onLive, (up) => { if (up) renderTiles().catch(() => {}); });
}

main().catch((error) => { $("#tiles").replaceChildren(h("p", {}, error.message)); });
