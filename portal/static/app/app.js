// The phone and tablet app: the home at a glance, alarm, health, care, devices; alerts live.
import { api, h, live } from "/static/shared/api.js";
import { formatAgo, formatNumber, formatTime, getLocale, setLocale, showLive, t, translatePage } from "/static/shared/i18n.js";
import { castButton, dataCard, healthView, pinCard } from "/static/app/household.js";
import { consentCard, may, remindersCard, settingsCards, thresholdsCard } from "/static/shared/care.js";
import { HOUSEHOLD_ROLES, accountsEditor } from "/static/shared/accounts.js";
import { installScreens } from "/static/app/screens.js";
import { alertStateName, alertTitle, capabilityName, capabilityValue, deviceName, explainError, roomName, unitText, visibleCapability } from "/static/shared/labels.js";

const $ = (s) => document.querySelector(s);
const state = { me: null, household: null, overview: null, tab: "home", alerts: new Map(), caps: new Map() };
const kindName = (kind) => (t(`kind_${kind}`) === `kind_${kind}` ? kind : t(`kind_${kind}`));
const show = (v) => (v && typeof v === "object" ? ("systolic" in v ? `${Math.round(v.systolic)}/${Math.round(v.diastolic)}` : Object.values(v).map((x) => formatNumber(x)).join("/")) : formatNumber(v));

const translate = () => translatePage("app_title", state.live);

async function refresh() {
  state.overview = await api(`/api/v1/households/${state.household}`);
  $("#household-name").textContent = state.overview.name;
  for (const alert of state.overview.alerts) state.alerts.set(alert.id, alert);
  renderBanner();
  rerender();
}

function renderBanner() {
  const banner = $("#alert-banner");
  const open = [...state.alerts.values()].filter((a) => a.state === "raised" || a.state === "notified");
  banner.classList.toggle("hidden", !open.length);
  // "Call for help" has the focus; "I'm OK" asks again ("No, keep the alarm" focused): one stray tap
  // or Enter never ends an alarm. "I have it" (acknowledge) is for whoever takes care of it.
  const members = state.me && ["resident", "household_admin"].includes(state.me.role);
  const confirmOk = (a, row) => row.replaceChildren(
    h("div", { class: "grow" }, h("strong", {}, t("im_ok_q")), h("div", {}, t("im_ok_explain"))),
    h("button", { type: "button", class: "keep", onclick: () => { delete state.confirming; renderBanner(); } }, t("keep_alarm")),
    h("button", { type: "button", class: "secondary confirm-ok", onclick: () => cancelAlarm(a.id) }, t("yes_im_ok")));
  banner.replaceChildren(...open.map((a) => {
    const row = h("div", { class: "alert", "data-alert": a.id },
      h("div", { class: "grow" }, h("strong", {}, alertTitle(a)), h("div", {}, formatTime(a.raised_at))),
      members ? h("button", { type: "button", class: "help", onclick: () => callHelp(a.id) }, t("help_now")) : "",
      h("button", { type: "button", class: "ack", onclick: () => acknowledge(a.id) }, t("acknowledge")),
      members ? h("button", { type: "button", class: "secondary im-ok", onclick: () => { state.confirming = a.id; confirmOk(a, row); row.querySelector(".keep").focus(); } }, t("im_ok")) : "");
    if (state.confirming === a.id) confirmOk(a, row);
    return row;
  }));
  const first = banner.querySelector(".keep") || banner.querySelector(".help");
  if (first && !banner.contains(document.activeElement)) first.focus();
}

async function cancelAlarm(id) {
  delete state.confirming;
  const alert = await api(`/api/v1/alerts/${id}/cancel`, { method: "POST", body: { note: "resident answered on the phone: I'm OK" } });
  state.alerts.set(alert.id, alert);
  renderBanner();
  rerender();
}

async function callHelp(id) {
  await acknowledge(id).catch(() => {});
  await api(`/api/v1/households/${state.household}/help`, { method: "POST", body: {} });
}

async function acknowledge(id) {
  const alert = await api(`/api/v1/alerts/${id}/acknowledge`, { method: "POST" });
  state.alerts.set(alert.id, alert);
  renderBanner();
  rerender();
}

// The care and family tabs hold forms and load their own data: re-rendering them after a reconnect
// or an acknowledgement would wipe what someone is typing, so only the other tabs are redrawn.
const FORM_TABS = new Set(["care", "family", "alarm"]);

// The Home tab follows the house: a door opening, someone moving, a device dropping off re-reads
// the overview (what is open, who is home) — at most once a second, however busy the house is.
let refreshTimer = null;
function refreshSoon() {
  if (refreshTimer) return;
  refreshTimer = setTimeout(() => {
    refreshTimer = null;
    const typing = document.activeElement && document.activeElement.tagName === "INPUT" && $("#view").contains(document.activeElement);
    if (typing) refreshSoon(); // never redraw under someone's fingers: try again in a second
    else refresh().catch(() => {});
  }, 1000);
}
function rerender() {
  if (!FORM_TABS.has(state.tab) || $("#view").dataset.tab !== state.tab) render();
}

function card(title, ...children) { return h("section", { class: "card" }, h("h2", {}, title), ...children); }

function home() {
  const o = state.overview;
  const alarm = o.alarm ? h("div", { class: `state ${o.alarm.state}`, id: "alarm-state" }, t(o.alarm.state)) : h("div", { class: "muted", id: "alarm-state" }, "—");
  const alerts = [...state.alerts.values()].filter((a) => a.state !== "resolved");
  return [
    card(t("alarm"), alarm),
    card(t("open_doors"), o.open_doors.length
      ? h("ul", { class: "plain" }, o.open_doors.map((d) => h("li", {}, `${deviceName(d)}${roomName(d) ? ` · ${roomName(d)}` : ""}`)))
      : h("p", { class: "ok" }, t("nobody_open"))),
    card(t("who_home"), o.presence.length
      ? h("ul", { class: "plain" }, o.presence.map((p) => h("li", {}, `${p.resident || ""} ${roomName(p) || deviceName(p)}`)))
      : h("p", { class: "muted" }, t("nobody_home"))),
    card(t("latest_vitals"), o.vitals.length
      ? h("ul", { class: "plain", id: "vitals" }, o.vitals.map((v) => h("li", { class: "vital" },
          h("span", {}, `${v.resident} · ${kindName(v.kind)}`), h("strong", {}, `${show(v.value)} ${unitText(v.unit)}`),
          h("span", { class: "muted" }, formatAgo(v.ts)))))
      : h("p", { class: "muted" }, t("no_vitals"))),
    card(t("open_alerts"), alerts.length
      ? h("ul", { class: "plain" }, alerts.map((a) => h("li", { class: `alert sev-${a.severity}`, "data-alert": a.id },
          h("div", { class: "grow" }, h("strong", {}, alertTitle(a)), h("div", { class: "muted" }, `${alertStateName(a.state)} · ${formatAgo(a.raised_at)}`)),
          a.state === "acknowledged" ? h("span", { class: "ok" }, t("acknowledged"))
            : h("button", { type: "button", class: "ack", onclick: () => acknowledge(a.id) }, t("acknowledge")))))
      : h("p", { class: "muted" }, t("no_alerts"))),
    sendToTv(),
    h("section", { class: "card", id: "announcements" }, h("h2", {}, t("announcements")), h("p", { class: "muted", id: "no-announcements" }, "…")),
  ];
}

function sendToTv() {
  const text = h("input", { id: "tv-text", maxlength: "200", "aria-label": t("send_to_tv"), class: "grow" });
  const status = h("p", { role: "status", id: "tv-status" });
  const send = async (path, body) => {
    status.textContent = "";
    try {
      await api(`/api/v1/households/${state.household}/screens/tv/${path}`, { method: "POST", body });
      status.textContent = t("sent");
      status.className = "ok";
    } catch (error) { status.textContent = explainError(error); status.className = "error"; }
  };
  return card(t("send_to_tv"),
    h("div", { class: "row" }, text,
      h("button", { type: "button", id: "tv-send", onclick: () => {
        if (text.value.trim()) { send("notify", { text: text.value.trim() }); return; }
        status.textContent = t("type_first");
        status.className = "error";
        text.focus();
      } }, t("send"))),
    h("div", { class: "row" }, h("button", { type: "button", class: "secondary", onclick: () => send("open", {}) }, t("open_tv_portal"))),
    castButton(state.household),
    status);
}

async function fillAnnouncements() {
  const section = $("#announcements");
  if (!section) return;
  const { items } = await api("/api/v1/announcements");
  const empty = section.querySelector("#no-announcements");
  if (empty) empty.textContent = items.length ? "" : t("no_announcements");
  if (empty && items.length) empty.remove();
  section.append(...items.map((a) => h("div", { class: a.kind === "emergency" ? "notice emergency" : "notice" },
    a.kind === "emergency" ? h("span", { class: "badge" }, t("emergency")) : "",
    h("strong", {}, a.title), h("p", {}, a.body),
    a.source === "region" ? h("small", {}, t("from_region")) : "")));
}

function alarm() {
  const o = state.overview;
  const message = h("div", { id: "alarm-message", role: "status" });
  const pin = h("input", { id: "pin", class: "pin", type: "password", inputmode: "numeric", autocomplete: "off", maxlength: "8", "aria-label": t("pin") });
  const act = async (path, body) => {
    message.replaceChildren();
    message.className = "";
    try {
      const status = await api(`/api/v1/households/${state.household}/alarm/${path}`, { method: "POST", body: { ...body, pin: pin.value } });
      pin.value = "";
      o.alarm = status;
      render();
    } catch (error) {
      // Said by its code in the reader's language; open doors are named, with the way past them.
      message.className = "error";
      message.append(h("p", { id: "alarm-error" }, explainError(error)));
      if (error.code === "open_sensors" && path === "arm") {
        message.append(h("button", { type: "button", id: "arm-force", class: "secondary", onclick: () => act("arm", { ...body, force: true }) }, t("arm_anyway")));
      }
    }
  };
  return [card(t("alarm"),
    h("div", { class: `state ${o.alarm ? o.alarm.state : ""}`, id: "alarm-state" }, o.alarm ? t(o.alarm.state) : "—"),
    h("p", {}, h("label", { for: "pin" }, `${t("pin")} `), pin),
    h("div", { class: "row" },
      h("button", { type: "button", id: "arm-home", onclick: () => act("arm", { mode: "home" }) }, t("arm_home")),
      h("button", { type: "button", id: "arm-away", onclick: () => act("arm", { mode: "away" }) }, t("arm_away")),
      h("button", { type: "button", id: "disarm", class: "secondary", onclick: () => act("disarm", {}) }, t("disarm"))),
    message), pinCard(state.household, state.me)];
}

function health() {
  return healthView(state.household, state.overview.residents);
}

function care() {
  const box = h("div");
  (async () => {
    const c = await api(`/api/v1/households/${state.household}/care`);
    const done = h("p", { id: "checked-in", class: c.checked_in_today ? "ok" : "hidden" }, t("checked_in"));
    box.append(card(t("care"),
      h("button", { type: "button", class: "big", id: "check-in", onclick: async () => {
        await api(`/api/v1/households/${state.household}/care/check-in`, { method: "POST", body: {} });
        done.className = "ok";
      } }, t("check_in")), done));
  })().catch((error) => box.append(h("p", { class: "error" }, error.message)))
    .finally(() => {
      // What the signed-in person may change follows their role (care.js); others read.
      const role = state.me.role;
      box.append(remindersCard(state.household, role), ...settingsCards(state.household, role));
      if (may(role, "thresholds_read")) box.append(thresholdsCard(state.household, role));
      if (may(role, "consent_read")) box.append(consentCard(state.household, role));
    });
  return [box];
}

function devices() {
  const list = h("ul", { class: "plain", id: "device-list" });
  (async () => {
    const { items } = await api(`/api/v1/households/${state.household}/devices`);
    list.append(...items.map((d) => h("li", { "data-device": d.id },
      h("div", { class: "row" }, h("strong", { class: "grow" }, deviceName(d)), h("span", { class: d.available ? "ok" : "muted" }, d.available ? t("online") : t("offline"))),
      h("div", {}, d.capabilities.filter(visibleCapability).map((c) => {
        state.caps.set(`${d.id}/${c.key}`, c);
        const value = h("span", { "data-cap": `${d.id}/${c.key}` }, capabilityValue(c));
        const toggle = c.access === "rw" && typeof c.value !== "object"
          ? h("button", { type: "button", class: "secondary small", onclick: async () => {
              await api(`/api/v1/households/${state.household}/devices/${d.id}/commands`, { method: "POST", body: { capability: c.key, value: !(c.value === true) } }).catch((e) => alert(explainError(e)));
            } }, c.value === true ? t("off") : t("on"))
          : null;
        return h("div", { class: "row muted", "data-cap-key": c.key }, `${capabilityName(c)}: `, value, toggle);
      })))));
  })();
  return [list];
}

// A household admin's family: accounts of the household (add, role, disable, remove) and its people.
function family() {
  const box = h("div", { id: "family" });
  const members = () => api(`/api/v1/households/${state.household}/members`);
  (async () => {
    const { residents } = await members();
    const editor = await accountsEditor({ me: state.me, roles: HOUSEHOLD_ROLES, household: state.household, heading: "h3", list: async () => (await members()).accounts });
    box.append(card(t("family_accounts"), ...editor),
      card(t("people"), residents.length ? h("ul", { class: "plain" }, residents.map((r) => h("li", {}, r.name))) : h("p", { class: "muted" }, t("no_residents"))),
      dataCard(state.household, state.overview && state.overview.name));
  })().catch((error) => box.append(h("p", { class: "error" }, error.message)));
  return [box];
}

const VIEWS = { home, alarm, health, care, devices, family };

function render() {
  for (const b of document.querySelectorAll("#tabs button")) b.setAttribute("aria-current", b.dataset.tab === state.tab ? "page" : "false");
  $("#view").replaceChildren(...VIEWS[state.tab]());
  $("#view").dataset.tab = state.tab;
  if (state.tab === "home") fillAnnouncements().catch(() => {});
}

function onLive(message) {
  if (message.type === "alert" || message.type === "alert_changed") {
    state.alerts.set(message.alert.id, message.alert);
    renderBanner();
    if (state.tab === "home") render();
  } else if (message.type === "state" || message.type === "availability") {
    const el = document.querySelector(`[data-cap="${CSS.escape(`${message.device_id}/${message.capability}`)}"]`);
    const cap = state.caps.get(`${message.device_id}/${message.capability}`);
    if (el && cap) el.textContent = capabilityValue(cap, message.value);
    if (state.tab === "home") refreshSoon();
  } else if (message.type === "alarm" && state.overview) {
    state.overview.alarm = { ...(state.overview.alarm || {}), state: message.state };
    if (state.tab === "home") render();
    const shown = state.tab === "alarm" && $("#alarm-state");
    if (shown) { shown.className = `state ${message.state}`; shown.textContent = t(message.state); }
  } else if (message.type === "announcement" && state.tab === "home") {
    render();
  }
}

async function main() {
  // Tabs answer at once, even before the first data arrives (then the first refresh draws the chosen tab).
  for (const b of document.querySelectorAll("#tabs button")) b.addEventListener("click", () => { state.tab = b.dataset.tab; if (state.overview) render(); });
  const { user } = await api("/api/v1/auth/me");
  state.me = user;
  state.household = user.household_id;
  $('#tabs button[data-tab="family"]').hidden = user.role !== "household_admin";
  installScreens(user);  // the household admin's TVs: pair, list, revoke (screens.js)
  setLocale(user.locale);
  translate();
  $("#language").addEventListener("click", async () => {
    const next = getLocale() === "en" ? "zh-CN" : "en";
    setLocale(next);
    await api("/api/v1/auth/me", { method: "PATCH", body: { locale: next } });
    translate();
    renderBanner();
    render();
  });
  $("#sign-out").addEventListener("click", async () => { await api("/api/v1/auth/logout", { method: "POST" }); location.href = "/login"; });
  await refresh();
  live(onLive, (up) => { state.live = up; showLive(up); if (up) refresh().catch(() => {}); });
  if ("serviceWorker" in navigator) navigator.serviceWorker.register("/app/sw.js", { scope: "/app" }).catch(() => {});
}

main().catch((error) => { $("#view").replaceChildren(h("p", { class: "error" }, error.message)); });
