// The property manager's console: alert queue, community tree, devices, inbox, people, consent, announcements, audit.
import { api, h, live } from "/static/shared/api.js";
import { formatAgo, formatDuration, formatTime, getLocale, setLocale, t } from "/static/shared/i18n.js";

const $ = (s) => document.querySelector(s);
const state = { me: null, section: "queue", alerts: [], households: [] };
const SEV = { critical: 0, high: 1, warning: 2, info: 3 };
const table = (head, rows) => h("table", {}, h("thead", {}, h("tr", {}, head.map((x) => h("th", {}, x)))), h("tbody", {}, rows));
const errorLine = (error) => h("p", { class: "error", role: "alert" }, error.message);

async function queue() {
  const { items, now } = await api("/api/v1/alerts", { query: { state: "unresolved", sort: "severity", limit: 200 } });
  state.alerts = items;
  const skew = Date.now() / 1000 - now;
  items.sort((a, b) => SEV[a.severity] - SEV[b.severity] || a.raised_at - b.raised_at);
  const rows = items.map((a) => {
    const note = h("input", { placeholder: t("note"), "aria-label": t("note"), class: "note" });
    const assignee = h("input", { placeholder: t("assign"), "aria-label": t("assign"), size: 8 });
    const act = async (path, body) => { try { await api(`/api/v1/alerts/${a.id}/${path}`, { method: "POST", body }); await render(); } catch (e) { alert(e.message); } };
    return h("tr", { class: `sev-${a.severity}`, "data-alert": a.id },
      h("td", {}, a.severity), h("td", {}, a.household_id), h("td", {}, h("strong", {}, a.title), h("div", { class: "muted" }, a.kind)),
      h("td", {}, h("span", { class: "timer age", "data-since": a.raised_at - 0 + skew }, formatDuration(Date.now() / 1000 - skew - a.raised_at))),
      h("td", {}, a.next_step_at && a.state !== "acknowledged" ? h("span", { class: "timer escalation", "data-at": a.next_step_at + skew }, "") : "—"),
      h("td", {}, a.state, a.acknowledged_by ? h("div", { class: "muted" }, a.acknowledged_by) : "", a.assigned_to ? h("div", { class: "muted" }, `→ ${a.assigned_to.assignee}`) : ""),
      h("td", {}, h("div", { class: "row" },
        a.state === "acknowledged" ? "" : h("button", { type: "button", class: "small ack", onclick: () => act("acknowledge") }, t("acknowledge")),
        assignee, h("button", { type: "button", class: "small secondary", onclick: () => assignee.value && act("assign", { assignee: assignee.value }) }, t("assign")),
        note, h("button", { type: "button", class: "small resolve", onclick: () => act("resolve", { note: note.value }) }, t("resolve")))));
  });
  return [h("h1", {}, t("queue")), items.length ? table([t("severity"), t("household"), t("title"), t("age"), t("escalation_in"), "", ""], rows) : h("p", { class: "muted", id: "queue-empty" }, t("no_alerts"))];
}

function tick() {
  const now = Date.now() / 1000;
  for (const el of document.querySelectorAll(".timer.age")) el.textContent = formatDuration(now - Number(el.dataset.since));
  for (const el of document.querySelectorAll(".timer.escalation")) el.textContent = formatDuration(Number(el.dataset.at) - now);
}

async function community() {
  const tree = await api("/api/v1/community");
  $("#community-name").textContent = tree.name;
  const household = (x) => h("li", { "data-household": x.id }, `${x.name} `,
    h("span", { class: "badge" }, `${x.status.devices_online}/${x.status.devices} ${t("online")}`), " ",
    x.status.open_alerts ? h("span", { class: "badge bad" }, `${x.status.open_alerts} ${t("alerts")}`) : "",
    x.status.alarm ? h("span", { class: "badge" }, t(x.status.alarm)) : "",
    x.status.low_battery ? h("span", { class: "badge bad" }, `${t("battery")} ${x.status.low_battery}`) : "");
  const unit = (u) => h("li", {}, u.name, h("ul", {}, u.households.map(household)));
  const building = (b) => h("li", {}, h("strong", {}, b.name), h("ul", {}, b.units.map(unit)));
  return [h("h1", {}, `${tree.name} · ${tree.households}`), h("div", { class: "tree" }, h("ul", {}, tree.buildings.map(building)))];
}

async function inventory() {
  const tree = await api("/api/v1/community");
  const building = h("select", { "aria-label": t("building") }, h("option", { value: "" }, t("all")), tree.buildings.map((b) => h("option", { value: b.id }, b.name)));
  const online = h("select", { "aria-label": t("online") }, h("option", { value: "" }, t("all")), h("option", { value: "true" }, t("online")), h("option", { value: "false" }, t("offline")));
  const body = h("div");
  const load = async () => {
    const { items, total } = await api("/api/v1/devices", { query: { building_id: building.value, available: online.value, limit: 500 } });
    body.replaceChildren(h("p", { class: "muted" }, `${items.length} / ${total}`), table(["", t("household"), t("devices"), t("battery"), t("firmware"), t("last_seen")],
      items.map((d) => h("tr", { "data-device": d.id }, h("td", {}, h("span", { class: `badge ${d.available ? "good" : "bad"}` }, d.available ? t("online") : t("offline"))),
        h("td", {}, d.household_id), h("td", {}, d.name, h("div", { class: "muted" }, d.model)), h("td", {}, d.battery ?? "—"), h("td", {}, d.firmware || "—"), h("td", {}, formatAgo(d.last_seen))))));
  };
  building.addEventListener("change", load);
  online.addEventListener("change", load);
  await load();
  return [h("h1", {}, t("inventory")), h("div", { class: "row" }, building, online), body];
}

async function inbox() {
  const [{ items }, tree] = await Promise.all([api("/api/v1/inbox"), api("/api/v1/community")]);
  const households = tree.buildings.flatMap((b) => b.units.flatMap((u) => u.households));
  return [h("h1", {}, t("inbox")), items.length ? table(["", "", t("household"), ""], items.map((item) => {
    const target = h("select", { "aria-label": t("household") }, households.map((x) => h("option", { value: x.id }, x.name)));
    const act = async (path, body) => { try { await api(`/api/v1/inbox/${encodeURIComponent(item.id)}/${path}`, { method: "POST", body }); await render(); } catch (e) { alert(e.message); } };
    return h("tr", { "data-inbox": item.id }, h("td", {}, h("strong", {}, item.name || item.id)), h("td", {}, item.profile_id || "—"), h("td", {}, target),
      h("td", {}, h("button", { type: "button", class: "small approve", onclick: () => act("approve", { household_id: target.value }) }, t("approve")), " ",
        h("button", { type: "button", class: "small secondary", onclick: () => act("reject", {}) }, t("reject"))));
  })) : h("p", { class: "muted" }, "—")];
}

async function residents() {
  const { items } = await api("/api/v1/users");
  const name = h("input", { placeholder: t("name"), required: true });
  const role = h("select", {}, ["resident", "household_admin", "carer", "manager", "installer"].map((r) => h("option", { value: r }, r)));
  const household = h("input", { placeholder: t("household") });
  const out = h("div");
  const form = h("form", { class: "inline", onsubmit: async (e) => {
    e.preventDefault();
    try {
      const made = await api("/api/v1/users", { method: "POST", body: { name: name.value, role: role.value, ...(household.value ? { household_id: household.value } : {}) } });
      out.replaceChildren(h("p", {}, `${made.user.name}: `, h("span", { class: "secret" }, made.password), " (shown once)"));
    } catch (error) { out.replaceChildren(errorLine(error)); }
  } }, name, role, household, h("button", { type: "submit" }, "+"));
  return [h("h1", {}, t("residents")), form, out, table([t("name"), "role", t("household")], items.map((u) => h("tr", {}, h("td", {}, u.display_name, h("div", { class: "muted" }, u.name)), h("td", {}, u.role), h("td", {}, u.household_id || "—"))))];
}

async function consent() {
  const { items } = await api("/api/v1/consent").catch(() => ({ items: [] }));
  const yes = (v) => h("span", { class: `badge ${v ? "good" : ""}` }, v ? "✓" : "—");
  return [h("h1", {}, t("consent")), h("p", { class: "muted" }, t("no_consent")), table([t("household"), "carer", "provider", "export"], items.map((x) => h("tr", {}, h("td", {}, x.household_id), h("td", {}, yes(x.consent.carer)), h("td", {}, yes(x.consent.provider)), h("td", {}, yes(x.consent.export)))))];
}

async function announcements() {
  const { items } = await api("/api/v1/announcements", { query: { all: "true" } });
  const tree = await api("/api/v1/community");
  const title = h("input", { placeholder: t("title"), required: true, maxlength: 120, id: "ann-title" });
  const body = h("textarea", { placeholder: t("body"), maxlength: 4000, id: "ann-body" });
  const scope = h("select", { id: "ann-scope" }, h("option", { value: "community" }, t("whole_community")),
    tree.buildings.map((b) => h("option", { value: `building:${b.id}` }, b.name)),
    tree.buildings.flatMap((b) => b.units.flatMap((u) => u.households)).map((x) => h("option", { value: `household:${x.id}` }, x.name)));
  const starts = h("input", { type: "datetime-local", "aria-label": "starts" });
  const expires = h("input", { type: "datetime-local", "aria-label": t("expires") });
  const message = h("p");
  const form = h("form", { class: "inline", onsubmit: async (e) => {
    e.preventDefault();
    const [kind, id] = scope.value.split(":");
    try {
      await api("/api/v1/announcements", { method: "POST", body: { title: title.value, body: body.value, scope: kind, ...(id ? { scope_id: id } : {}),
        ...(starts.value ? { starts: new Date(starts.value).getTime() / 1000 } : {}), ...(expires.value ? { expires: new Date(expires.value).getTime() / 1000 } : {}) } });
      await render();
    } catch (error) { message.replaceChildren(errorLine(error)); }
  } }, title, body, scope, h("label", {}, "⏱", starts), h("label", {}, t("expires"), expires), h("button", { type: "submit" }, t("publish")));
  return [h("h1", {}, t("announcements")), form, message, table([t("title"), t("scope"), "", ""], items.map((a) => h("tr", { "data-announcement": a.id },
    h("td", {}, h("strong", {}, a.title), h("div", {}, a.body)), h("td", {}, `${a.scope} ${a.scope_id || ""}`), h("td", {}, `${formatTime(a.starts)} → ${a.expires ? formatTime(a.expires) : "∞"}`),
    h("td", {}, a.withdrawn ? "✗" : h("button", { type: "button", class: "small secondary", onclick: async () => { await api(`/api/v1/announcements/${a.id}`, { method: "DELETE" }); await render(); } }, "✗")))))];
}

async function audit() {
  const q = h("input", { placeholder: t("search"), id: "audit-q" });
  const action = h("input", { placeholder: "action", size: 12 });
  const body = h("div");
  const load = async () => {
    const { items, total } = await api("/api/v1/audit", { query: { q: q.value, action: action.value, limit: 200 } });
    body.replaceChildren(h("p", { class: "muted" }, `${items.length} / ${total}`), table(["", "", "", t("household"), ""], items.map((e) =>
      h("tr", {}, h("td", {}, formatTime(e.ts)), h("td", {}, e.actor, h("div", { class: "muted" }, e.role || "")), h("td", {}, e.action, e.outcome !== "ok" ? h("div", { class: "error" }, e.outcome) : ""), h("td", {}, e.household_id || "—"), h("td", {}, e.target || "", h("div", { class: "muted" }, JSON.stringify(e.detail)))))));
  };
  const form = h("form", { class: "inline", onsubmit: (e) => { e.preventDefault(); load(); } }, q, action, h("button", { type: "submit" }, t("search")));
  await load();
  return [h("h1", {}, t("audit")), form, body];
}

const SECTIONS = { queue, community, inventory, inbox, residents, consent, announcements, audit };

async function render() {
  for (const b of document.querySelectorAll("#sections button")) b.setAttribute("aria-current", b.dataset.section === state.section ? "page" : "false");
  try { $("#view").replaceChildren(...(await SECTIONS[state.section]())); tick(); }
  catch (error) { $("#view").replaceChildren(errorLine(error)); }
}

function translate() {
  for (const el of document.querySelectorAll("[data-t]")) el.textContent = t(el.dataset.t);
  $("#language").textContent = t("language");
  $("#sign-out").textContent = t("sign_out");
  document.title = t("manage_title");
}

async function main() {
  const { user } = await api("/api/v1/auth/me");
  state.me = user;
  setLocale(user.locale);
  translate();
  $("#who").textContent = `${user.display_name} (${user.role})`;
  for (const b of document.querySelectorAll("#sections button")) b.addEventListener("click", () => { state.section = b.dataset.section; render(); });
  $("#language").addEventListener("click", async () => {
    const next = getLocale() === "en" ? "zh-CN" : "en";
    setLocale(next);
    await api("/api/v1/auth/me", { method: "PATCH", body: { locale: next } });
    translate();
    render();
  });
  $("#sign-out").addEventListener("click", async () => { await api("/api/v1/auth/logout", { method: "POST" }); location.href = "/login"; });
  if (user.role === "installer") state.section = "inventory";
  await render();
  setInterval(tick, 1000);
  live((message) => { if ((message.type === "alert_changed" || message.type === "alert") && state.section === "queue") render(); },
    (up) => { $("#live").textContent = up ? `● ${t("live_on")}` : t("live_off"); });
}

main().catch((error) => $("#view").replaceChildren(errorLine(error)));
