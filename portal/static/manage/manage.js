// The property manager's console: alert queue, community tree, devices, inbox, people, consent, care, announcements, audit.
import { api, h, live } from "/static/shared/api.js";
import { addStrings, formatAgo, formatDuration, formatNumber, formatTime, getLocale, setLocale, showLive, t, translatePage } from "/static/shared/i18n.js";
import { PURPOSES, consentState, remindersCard, removeButton, say, settingsCards, statusLine } from "/static/shared/care.js";
import { accountsEditor, roleName } from "/static/shared/accounts.js";
import { alertKindName, alertStateName, alertTitle, deviceName, explainError, householdName, severityName, unitText } from "/static/shared/labels.js";
import { auditSentence } from "/static/shared/audit.js";
import { timelineButton } from "/static/manage/timeline.js";
import { bulkApproval } from "/static/manage/bulk.js";
import { structureEditor } from "/static/manage/structure.js";
import { adaptersPanel } from "/static/manage/adapters.js";

const $ = (s) => document.querySelector(s);
const state = { me: null, section: "queue", alerts: [], households: [] };
const SEV = { critical: 0, high: 1, warning: 2, info: 3 };
const table = (head, rows) => h("table", {}, h("thead", {}, h("tr", {}, head.map((x) => h("th", {}, x)))), h("tbody", {}, rows));
const errorLine = (error) => h("p", { class: "error", role: "alert" }, explainError(error));

async function queue() {
  const [{ items, now }, homes] = await Promise.all([api("/api/v1/alerts", { query: { state: "unresolved", sort: "severity", limit: 200 } }), homeNames()]);
  state.alerts = items;
  const skew = Date.now() / 1000 - now;
  items.sort((a, b) => SEV[a.severity] - SEV[b.severity] || a.raised_at - b.raised_at);
  const rows = items.map((a) => {
    const note = h("input", { placeholder: t("note"), "aria-label": t("note"), class: "note" });
    const assignee = h("input", { placeholder: t("assign"), "aria-label": t("assign"), size: 8 });
    const act = async (path, body) => { try { await api(`/api/v1/alerts/${a.id}/${path}`, { method: "POST", body }); await render(); } catch (e) { alert(explainError(e)); } };
    return h("tr", { class: `sev-${a.severity}`, "data-alert": a.id },
      h("td", { "data-severity": a.severity }, severityName(a.severity)), h("td", {}, householdName(a.household_id, homes)), h("td", {}, h("strong", {}, alertTitle(a)), h("div", { class: "muted", "data-kind": a.kind }, alertKindName(a.kind))),
      h("td", {}, h("span", { class: "timer age", "data-since": a.raised_at - 0 + skew }, formatDuration(Date.now() / 1000 - skew - a.raised_at))),
      h("td", {}, a.next_step_at && a.state !== "acknowledged" ? h("span", { class: "timer escalation", "data-at": a.next_step_at + skew }, "") : "—"),
      h("td", { "data-state": a.state }, alertStateName(a.state), a.acknowledged_by ? h("div", { class: "muted" }, a.acknowledged_by) : "", a.assigned_to ? h("div", { class: "muted" }, `→ ${a.assigned_to.assignee}`) : ""),
      h("td", {}, h("div", { class: "row" },
        a.state === "acknowledged" ? "" : h("button", { type: "button", class: "small ack", onclick: () => act("acknowledge") }, t("acknowledge")),
        assignee, h("button", { type: "button", class: "small secondary", onclick: () => assignee.value && act("assign", { assignee: assignee.value }) }, t("assign")),
        note, h("button", { type: "button", class: "small resolve", onclick: () => act("resolve", { note: note.value }) }, t("resolve")),
        timelineButton(a.id, 7))));
  });
  return [h("h1", {}, t("queue")), items.length ? table([t("severity"), t("household"), t("title"), t("age"), t("escalation_in"), t("status"), ""], rows) : h("p", { class: "muted", id: "queue-empty" }, t("no_alerts"))];
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
  const setup = state.me.role === "manager" ? [await structureEditor(render)] : [];
  return [h("h1", {}, `${tree.name} · ${tree.households}`), h("div", { class: "tree" }, h("ul", {}, tree.buildings.map(building))), ...setup];
}

async function inventory() {
  const tree = await api("/api/v1/community");
  const homes = Object.fromEntries(householdsOf(tree).map((x) => [x.id, x.name]));
  const building = h("select", { "aria-label": t("building") }, h("option", { value: "" }, t("all")), tree.buildings.map((b) => h("option", { value: b.id }, b.name)));
  const online = h("select", { "aria-label": t("online") }, h("option", { value: "" }, t("all")), h("option", { value: "true" }, t("online")), h("option", { value: "false" }, t("offline")));
  const body = h("div");
  const load = async () => {
    const { items, total } = await api("/api/v1/devices", { query: { building_id: building.value, available: online.value, limit: 500 } });
    body.replaceChildren(h("p", { class: "muted" }, `${items.length} / ${total}`), table(["", t("household"), t("devices"), t("battery"), t("firmware"), t("last_seen")],
      items.map((d) => h("tr", { "data-device": d.id }, h("td", {}, h("span", { class: `badge ${d.available ? "good" : "bad"}` }, d.available ? t("online") : t("offline"))),
        h("td", {}, householdName(d.household_id, homes)), h("td", {}, deviceName(d), h("div", { class: "muted" }, d.model)), h("td", {}, d.battery ?? "—"), h("td", {}, d.firmware || "—"), h("td", {}, formatAgo(d.last_seen))))));
  };
  building.addEventListener("change", load);
  online.addEventListener("change", load);
  await load();
  // Below the devices: the adapters that drive them, each one's state and why it is not running.
  return [h("h1", {}, t("inventory")), h("div", { class: "row" }, building, online), body, await adaptersPanel(), await certificationsPanel()];
}

addStrings({
  "zh-CN": { cert_title: "认证", cert_last: "最近一次认证", cert_ok: "已通过", cert_failed: "未通过", cert_none: "尚未认证", cert_counts: "通过 {pass} · 失败 {fail} · 跳过 {skip}", cert_sim: "模拟机顶盒", cert_live: "实机" },
  en: { cert_title: "Certification", cert_last: "Last certification", cert_ok: "certified", cert_failed: "not certified", cert_none: "not certified yet", cert_counts: "{pass} passed · {fail} failed · {skip} skipped", cert_sim: "simulated box", cert_live: "live box" },
});

// Each adapter's last conformance-kit run (`linli certify`, kept by the gateway): when, against what,
// the verdict, and which checks failed — so an operator's claim of "certified" can be looked up.
async function certificationsPanel() {
  const { items } = await api("/api/v1/adapters").catch(() => ({ items: [] }));
  const fill = (text, values) => text.replace(/\{(\w+)\}/g, (_, k) => String(values[k] ?? ""));
  const rows = items.map((a) => {
    const c = a.certification;
    const verdict = !c ? h("span", { class: "muted" }, t("cert_none"))
      : c.error ? h("span", { class: "badge bad" }, c.error)
        : h("span", { class: `badge ${c.certified ? "good" : "bad"}` }, t(c.certified ? "cert_ok" : "cert_failed"));
    const detail = c && !c.error
      ? [h("div", {}, `${formatTime(c.at)} · ${c.version || ""} · ${t(c.simulated ? "cert_sim" : "cert_live")}`), h("div", { class: "muted" }, fill(t("cert_counts"), c.counts)),
        ...(c.failed || []).map((name) => h("div", { class: "error" }, name))]
      : "—";
    return h("tr", { "data-certification": a.id }, h("td", {}, a.name || a.id), h("td", {}, verdict), h("td", {}, detail));
  });
  return h("section", { id: "certifications" }, h("h2", {}, t("cert_title")), table([t("adapters_title"), t("cert_title"), t("cert_last")], rows));
}

// Every household with its building and unit, in tree order (for selects and the consent table).
function householdsOf(tree) {
  return tree.buildings.flatMap((b) => b.units.flatMap((u) => u.households.map((x) => ({ id: x.id, name: x.name, building: b.name, building_id: b.id, unit: u.name }))));
}
// Households by name (李家 (1-101)) for rows that carry only an id: a screen never shows the id.
async function homeNames() {
  const tree = await api("/api/v1/community").catch(() => ({ buildings: [] }));
  return Object.fromEntries(householdsOf(tree).map((x) => [x.id, x.name]));
}
const homeOption = (x, selected) => h("option", { value: x.id, selected }, `${x.name} · ${x.building}`);

async function inbox() {
  const [{ items }, tree] = await Promise.all([api("/api/v1/inbox"), api("/api/v1/community")]);
  const homes = householdsOf(tree);
  const rooms = h("datalist", { id: "rooms" }, t("rooms").split(",").map((r) => h("option", { value: r })));
  // After a bulk approval the list is drawn again, keeping the outcome (and its refusals) in sight.
  const bulk = bulkApproval(items, homes, homeOption, async (outcome) => { await render(); $("#bulk-status")?.replaceWith(outcome); });
  const row = (item) => {
    // No home is chosen for the manager: one click must not adopt a device into the first home in the list.
    const household = h("select", { class: "i-household", required: true, "aria-label": t("household") },
      h("option", { value: "", selected: true }, t("choose_placeholder")), homes.map((x) => homeOption(x, false)));
    const room = h("input", { class: "i-room", list: "rooms", maxlength: 64 });
    const name = h("input", { class: "i-name", maxlength: 128, value: item.name || "" });
    const profile = h("input", { class: "i-profile", maxlength: 128, value: item.profile || "", placeholder: t("no_profile") });
    const status = statusLine();
    const act = async (path, body) => {
      try { await api(`/api/v1/inbox/${encodeURIComponent(item.id)}/${path}`, { method: "POST", body }); await render(); } catch (error) { say(status, error); }
    };
    const form = h("form", { class: "inbox-form", onsubmit: (e) => {
      e.preventDefault();
      const body = { household_id: household.value };
      if (room.value.trim()) body.room = room.value.trim();
      if (name.value.trim()) body.name = name.value.trim();
      if (profile.value.trim()) body.profile_id = profile.value.trim();
      act("approve", body);
    } },
    h("label", { class: "field" }, h("span", {}, t("household")), household), h("label", { class: "field" }, h("span", {}, t("room")), room),
    h("label", { class: "field" }, h("span", {}, t("device_name")), name), h("label", { class: "field" }, h("span", {}, t("profile")), profile),
    h("button", { type: "submit", class: "small approve" }, t("approve")),
    h("button", { type: "button", class: "small secondary reject", onclick: () => act("reject", {}) }, t("reject")),
    h("button", { type: "button", class: "small secondary ignore", onclick: () => act("ignore", {}) }, t("ignore")));
    const sources = Object.keys(item.sources || {}).join(", ");
    return h("tr", { "data-inbox": item.id },
      h("td", {}, bulk.box(item), " ", h("strong", {}, item.name || item.id), h("div", { class: "muted" }, [item.manufacturer, item.model].filter(Boolean).join(" ") || "—"),
        h("div", { class: "muted" }, `${t("source")}: ${sources || "—"}`)),
      // The server's note is English for developers ("no profile" when nothing matched): say it in the reader's words.
      h("td", {}, item.profile || h("span", { class: "muted", title: item.profile_note || "" },
        item.refusal ? item.refusal.message[getLocale()] || item.refusal.message["zh-CN"]
          : !item.profile_note || item.profile_note === "no profile" ? t("no_profile") : item.profile_note)),
      h("td", {}, form, status));
  };
  return [h("h1", {}, t("inbox")), rooms, ...(items.length ? [bulk.bar] : []), bulk.status,
    items.length ? table([t("devices"), t("profile"), ""], items.map(row)) : h("p", { class: "muted" }, t("no_pending"))];
}

// The device plane: the broker, bursts of refusals (anomalies, with the client), and each home's
// MQTT credentials; a new credential's password is shown once, here, and nowhere else.
async function access() {
  const [broker, tree] = await Promise.all([api("/api/v1/mqtt/broker"), api("/api/v1/community")]);
  const homes = householdsOf(tree);
  const control = broker.kind !== "mosquitto" ? t("no_acl") : broker.guard ? t("guard_on") : t("guard_files");
  const facts = [[t("broker"), `${broker.engine || broker.mode} (pid ${broker.pid ?? "—"})`], [t("access_control"), control]];
  if (broker.tls_port) facts.push([t("tls_port"), String(broker.tls_port)]);
  if (broker.reattached) facts.push(["", t("reattached")]);
  const anomalies = [...(broker.anomalies || [])].reverse();
  const household = h("select", { id: "access-household", "aria-label": t("household") }, homes.map((x) => homeOption(x, false)));
  const list = h("div", { id: "access-clients" });
  const once = h("div", { id: "access-once" });
  const status = statusLine();
  const load = async () => {
    if (!household.value) return;
    const { items } = await api(`/api/v1/households/${encodeURIComponent(household.value)}/mqtt-clients`);
    list.replaceChildren(items.length ? table([t("client"), t("kind_device") + " / " + t("kind_bridge"), t("base_topic"), ""], items.map((c) =>
      h("tr", { "data-mqtt-client": c.username }, h("td", {}, c.name || c.username, h("div", { class: "muted" }, c.username)),
        h("td", {}, t(`kind_${c.kind}`)), h("td", {}, c.base_topic || "—"),
        h("td", {}, removeButton(t("revoke"), t("confirm_remove"), async () => {
          await api(`/api/v1/households/${encodeURIComponent(household.value)}/mqtt-clients/${encodeURIComponent(c.username)}`, { method: "DELETE" });
          await load();
        }, { class: "small secondary revoke" })))))
      : h("p", { class: "muted" }, t("no_mqtt_clients")));
  };
  const base = h("input", { id: "access-base", maxlength: 200, placeholder: "zigbee2mqtt-101", required: true });
  const name = h("input", { id: "access-name", maxlength: 120, placeholder: "Zigbee2MQTT" });
  const issue = h("form", { class: "inline", onsubmit: async (e) => {
    e.preventDefault();
    try {
      const body = { kind: "bridge", base_topic: base.value.trim() };
      if (name.value.trim()) body.name = name.value.trim();
      const issued = await api(`/api/v1/households/${encodeURIComponent(household.value)}/mqtt-clients`, { method: "POST", body });
      once.replaceChildren(h("p", { class: "muted" }, t("shown_once")), h("pre", { class: "provisioning" }, JSON.stringify(issued, null, 2)));
      base.value = ""; name.value = "";
      await load();
    } catch (error) { say(status, error); }
  } }, h("label", { class: "field" }, h("span", {}, t("base_topic")), base), h("label", { class: "field" }, h("span", {}, t("device_name")), name),
  h("button", { type: "submit", class: "small" }, t("issue_bridge")));
  household.addEventListener("change", () => { once.replaceChildren(); load(); });
  await load();
  return [h("h1", {}, t("device_access")),
    h("dl", { class: "facts" }, facts.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
    h("h2", {}, t("anomalies")),
    anomalies.length ? table([t("time"), t("status"), t("client"), t("count")], anomalies.map((a) =>
      h("tr", { "data-anomaly": a.kind }, h("td", {}, formatTime(a.ts)), h("td", {}, t(`anomaly_${a.kind}`)),
        h("td", {}, a.client, a.user ? h("div", { class: "muted" }, a.user) : ""), h("td", {}, String(a.count)))))
      : h("p", { class: "muted", id: "no-anomalies" }, t("no_anomalies")),
    h("h2", {}, t("mqtt_clients")), h("div", { class: "row" }, household), list, issue, status, once];
}

const ROLES = ["resident", "household_admin", "carer", "manager", "installer"];

async function residents() {
  const tree = await api("/api/v1/community");
  const homes = householdsOf(tree);
  const filterRole = h("select", { id: "users-filter-role", "aria-label": t("role") }, h("option", { value: "" }, t("all")), ROLES.map((r) => h("option", { value: r }, roleName(r))));
  const filterHome = h("select", { id: "users-filter-household", "aria-label": t("household") }, h("option", { value: "" }, t("all")), homes.map((x) => homeOption(x, false)));
  const list = async () => (await api("/api/v1/users", { query: { role: filterRole.value, household_id: filterHome.value } })).items;
  return [h("h1", {}, t("residents")), ...await accountsEditor({ me: state.me, roles: ROLES, homes, list, filters: [filterRole, filterHome] })];
}

const showValue = (v) => (v && typeof v === "object" ? ("systolic" in v ? `${Math.round(v.systolic)}/${Math.round(v.diastolic)}` : Object.values(v).map((x) => formatNumber(x)).join("/")) : formatNumber(v));

// Who consented to what, per household. Health values appear only in a household's details and only
// where it consents to share them with the community's care desk (the API enforces it as well).
async function consent() {
  const [tree, { items }] = await Promise.all([api("/api/v1/community"), api("/api/v1/consent")]);
  const homes = householdsOf(tree);
  const given = Object.fromEntries(items.map((x) => [x.household_id, x.consent]));
  const building = h("select", { id: "consent-building", "aria-label": t("building") }, h("option", { value: "" }, t("all")), tree.buildings.map((b) => h("option", { value: b.id }, b.name)));
  const body = h("tbody");
  const details = async (x, button, detailRow) => {
    if (detailRow.isConnected) { detailRow.remove(); button.textContent = t("details"); button.setAttribute("aria-expanded", "false"); return; }
    const cell = h("td", { colspan: 6 }, "…");
    detailRow.replaceChildren(cell);
    button.closest("tr").after(detailRow);
    button.textContent = t("hide_details");
    button.setAttribute("aria-expanded", "true");
    try {
      const { consent: records } = await api(`/api/v1/households/${encodeURIComponent(x.id)}/consent`);
      const lines = PURPOSES.map((p) => {
        const r = records[p];
        const st = consentState(r);
        return h("li", { "data-purpose": p }, h("strong", {}, t(`purpose_${p}`)), ": ", h("span", { class: `badge ${st.cls}` }, t(st.key)),
          r ? h("span", { class: "muted" }, ` ${t("recorded_by")} ${r.by} · ${formatTime(r.ts)}${r.note ? ` · ${r.note}` : ""}`) : null);
      });
      let health;
      if (given[x.id] && given[x.id].provider) {
        const overview = await api(`/api/v1/households/${encodeURIComponent(x.id)}`);
        health = overview.vitals.length
          ? h("ul", { class: "vitals" }, overview.vitals.map((v) => h("li", {}, `${v.resident} · ${t(`kind_${v.kind}`)}: ${showValue(v.value)} ${unitText(v.unit)} · ${formatTime(v.ts)}`)))
          : h("p", { class: "muted" }, t("no_vitals"));
      } else {
        health = h("p", { class: "muted no-consent" }, t("no_consent"));
      }
      cell.replaceChildren(h("ul", { class: "plain" }, lines), h("h3", {}, t("health_visible")), health);
    } catch (error) { cell.replaceChildren(errorLine(error)); }
  };
  const fill = () => {
    const yes = (v) => h("span", { class: `badge ${v ? "good" : ""}` }, v ? `✓ ${t("granted")}` : `— ${t("never_asked")}`);
    body.replaceChildren(...homes.filter((x) => !building.value || x.building_id === building.value).map((x) => {
      const c = given[x.id] || {};
      const detailRow = h("tr", { class: "detail", "data-detail": x.id });
      const button = h("button", { type: "button", class: "small secondary details", "aria-expanded": "false", onclick: () => details(x, button, detailRow) }, t("details"));
      return h("tr", { "data-household": x.id }, h("td", {}, h("strong", {}, x.name)), h("td", {}, `${x.building} · ${x.unit}`),
        PURPOSES.map((p) => h("td", { "data-purpose": p }, yes(c[p]))), h("td", {}, button));
    }));
  };
  building.addEventListener("change", fill);
  fill();
  return [h("h1", {}, t("consent")), h("p", { class: "muted" }, t("no_consent")), h("div", { class: "row" }, building),
    h("table", {}, h("thead", {}, h("tr", {}, [t("household"), t("building"), ...PURPOSES.map((p) => t(`purpose_${p}`)), ""].map((x) => h("th", {}, x)))), body)];
}

// Care settings of one household, as the property office may change them (check-in, inactivity, reminders).
async function care() {
  const tree = await api("/api/v1/community");
  const homes = householdsOf(tree);
  if (!state.careHousehold || !homes.some((x) => x.id === state.careHousehold)) state.careHousehold = homes.length ? homes[0].id : null;
  const pick = h("select", { id: "care-household", "aria-label": t("choose_household") }, homes.map((x) => homeOption(x, x.id === state.careHousehold)));
  const view = h("div", { class: "care-grid", id: "care-view" });
  const show = () => {
    state.careHousehold = pick.value;
    view.replaceChildren(...(pick.value ? [remindersCard(pick.value, state.me.role), ...settingsCards(pick.value, state.me.role)] : []));
  };
  pick.addEventListener("change", show);
  show();
  return [h("h1", {}, t("care_settings")), h("label", { class: "field" }, h("span", {}, t("choose_household")), pick), view];
}

async function announcements() {
  const [{ items }, tree] = await Promise.all([api("/api/v1/announcements", { query: { all: "true" } }), api("/api/v1/community")]);
  const homes = householdsOf(tree);
  const buildingName = Object.fromEntries(tree.buildings.map((b) => [b.id, b.name]));
  const homeName = Object.fromEntries(homes.map((x) => [x.id, x.name]));
  const title = h("input", { required: true, maxlength: 120, id: "ann-title" });
  const body = h("textarea", { maxlength: 4000, id: "ann-body", rows: 3, cols: 40 });
  const scope = h("select", { id: "ann-scope" }, h("option", { value: "community" }, t("whole_community")),
    h("optgroup", { label: t("buildings") }, tree.buildings.map((b) => h("option", { value: `building:${b.id}` }, b.name))),
    h("optgroup", { label: t("households") }, homes.map((x) => h("option", { value: `household:${x.id}` }, `${x.name} · ${x.building}`))));
  const starts = h("input", { type: "datetime-local", id: "ann-starts" });
  const expires = h("input", { type: "datetime-local", id: "ann-expires" });
  const message = statusLine("ann-status");
  const when = (input) => new Date(input.value).getTime() / 1000;
  const form = h("form", { class: "inline", id: "ann-form", onsubmit: async (e) => {
    e.preventDefault();
    const [kind, id] = scope.value.split(":");
    try {
      await api("/api/v1/announcements", { method: "POST", body: { title: title.value, body: body.value, scope: kind, ...(id ? { scope_id: id } : {}),
        ...(starts.value ? { starts: when(starts) } : {}), ...(expires.value ? { expires: when(expires) } : {}) } });
      await render();
      const again = $("#ann-status");
      if (again) { again.textContent = t("published"); again.className = "form-status ok"; }
      $("#ann-title").focus();
    } catch (error) { say(message, error); }
  } },
  h("label", { class: "field" }, h("span", {}, t("title")), title), h("label", { class: "field" }, h("span", {}, t("body")), body),
  h("label", { class: "field" }, h("span", {}, t("scope")), scope),
  h("label", { class: "field" }, h("span", {}, t("starts")), starts, h("small", { class: "muted" }, t("starts_hint"))),
  h("label", { class: "field" }, h("span", {}, t("expires")), expires, h("small", { class: "muted" }, t("expires_hint"))),
  h("button", { type: "submit" }, t("publish")));
  const now = Date.now() / 1000;
  const stateOf = (a) => (a.withdrawn ? ["withdrawn", "bad"] : a.starts > now ? ["scheduled", ""] : a.expires && a.expires <= now ? ["expired", ""] : ["live", "good"]);
  const scopeName = (a) => (a.scope === "community" ? t("whole_community") : a.scope === "building" ? `${t("building")} ${buildingName[a.scope_id] || a.scope_id}` : `${t("household")} ${homeName[a.scope_id] || a.scope_id}`);
  if (!items.length) return [h("h1", {}, t("announcements")), form, message, h("p", { class: "muted", id: "ann-empty" }, t("no_announcements"))];
  return [h("h1", {}, t("announcements")), form, message, table([t("title"), t("scope"), `${t("starts")} → ${t("expires")}`, t("status"), ""], items.map((a) => {
    const [key, cls] = stateOf(a);
    return h("tr", { "data-announcement": a.id },
      h("td", {}, h("strong", {}, a.title), h("div", { class: "ann-body" }, a.body)), h("td", {}, scopeName(a)),
      h("td", {}, `${formatTime(a.starts)} → ${a.expires ? formatTime(a.expires) : t("never_expires")}`),
      h("td", {}, h("span", { class: `badge ${cls}` }, t(key))),
      h("td", {}, a.withdrawn ? "" : removeButton(t("withdraw"), t("confirm_remove"), async () => { await api(`/api/v1/announcements/${encodeURIComponent(a.id)}`, { method: "DELETE" }); await render(); }, { class: "small secondary remove withdraw" })));
  }))];
}

async function audit() {
  const q = h("input", { placeholder: t("search"), id: "audit-q" });
  const action = h("input", { placeholder: t("action"), "aria-label": t("action"), size: 12, id: "audit-action" });
  const body = h("div");
  const load = async () => {
    const [{ items, total }, homes] = await Promise.all([api("/api/v1/audit", { query: { q: q.value, action: action.value, limit: 200 } }), homeNames()]);
    // Each entry as a sentence in the reader's language (audit.js); the action code stays for search.
    body.replaceChildren(h("p", { class: "muted" }, `${items.length} / ${total}`), table([t("time"), t("actor"), t("action"), t("household")], items.map((e) =>
      h("tr", { "data-action": e.action, class: e.outcome !== "ok" ? "refused" : "" }, h("td", {}, formatTime(e.ts)), h("td", {}, e.actor, h("div", { class: "muted" }, e.role ? roleName(e.role) : "")),
        h("td", { class: "audit-sentence" }, auditSentence(e, homes)),
        h("td", {}, e.household_id ? householdName(e.household_id, homes) : "—")))));
  };
  const form = h("form", { class: "inline", onsubmit: (e) => { e.preventDefault(); load(); } }, q, action, h("button", { type: "submit" }, t("search")));
  await load();
  return [h("h1", {}, t("audit")), form, body];
}

const SECTIONS = { queue, community, inventory, inbox, access, residents, consent, care, announcements, audit };

async function render() {
  const section = state.section;
  for (const b of document.querySelectorAll("#sections button")) b.setAttribute("aria-current", b.dataset.section === section ? "page" : "false");
  let content;
  try { content = await SECTIONS[section](); } catch (error) { content = [errorLine(error)]; }
  // Another section chosen while this one was loading: that one is drawn, not this late answer.
  if (section !== state.section) return;
  $("#view").replaceChildren(...content);
  tick();
}

function translate() {
  translatePage("manage_title", state.live);
  // The running version (ETSI EN 303 645 5.3: staff can see whether an update is due; docs/updating.md).
  if (state.me) $("#who").textContent = `${state.me.display_name} (${roleName(state.me.role)})${state.gateway ? ` · Linli ${state.gateway.version}` : ""}`;
}

async function main() {
  // Sections answer at once, even before the first data arrives (then the first render draws the chosen one).
  for (const b of document.querySelectorAll("#sections button")) b.addEventListener("click", () => { state.section = b.dataset.section; if (state.me) render(); });
  const { user, gateway } = await api("/api/v1/auth/me");
  state.me = user;
  state.gateway = gateway;
  setLocale(user.locale);
  translate();
  $("#language").addEventListener("click", async () => {
    const next = getLocale() === "en" ? "zh-CN" : "en";
    setLocale(next);
    await api("/api/v1/auth/me", { method: "PATCH", body: { locale: next } });
    translate();
    render();
  });
  $("#sign-out").addEventListener("click", async () => { await api("/api/v1/auth/logout", { method: "POST" }); location.href = "/login"; });
  if (user.role === "installer") {
    // An installer works with devices only; the API refuses the rest, so the console does not offer it.
    for (const b of document.querySelectorAll("#sections button")) b.hidden = !["queue", "community", "inventory", "inbox", "access"].includes(b.dataset.section);
    state.section = "inventory";
  }
  await render();
  setInterval(tick, 1000);
  live((message) => { if ((message.type === "alert_changed" || message.type === "alert") && state.section === "queue") render(); },
    (up) => { state.live = up; showLive(up); });
}

main().catch((error) => $("#view").replaceChildren(errorLine(error)));
