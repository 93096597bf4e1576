// Care settings, shared by the phone app (/app) and the manager's console (/manage): the daily
// check-in, inactivity alerts, reminders, a resident's vital-sign thresholds and the household's
// consent. Who may change what mirrors the API's roles so nobody is offered a form that would be
// refused; the server checks every change again. Everything is built with h(): data stays text.
import { api, h } from "/static/shared/api.js";
import { formatTime, t } from "/static/shared/i18n.js";

const MAY = {
  settings: ["household_admin", "manager"],
  reminders: ["household_admin", "carer", "manager"],
  confirm: ["resident", "household_admin"],
  thresholds_read: ["resident", "household_admin", "carer"],
  thresholds: ["household_admin"],
  consent_read: ["resident", "household_admin", "carer", "manager"],
  consent: ["household_admin"],
};
export const may = (role, what) => MAY[what].includes(role);

export const PURPOSES = ["carer", "provider", "export"];
const THRESHOLDS = ["systolic_crisis", "diastolic_crisis", "systolic_low", "systolic_high", "heart_rate_low", "heart_rate_high",
  "spo2_low", "temperature_low", "temperature_high", "glucose_low", "glucose_urgent"];

// "07:30" ⇄ 7.5 (the inactivity day is kept in hours by the server)
const toHours = (hhmm) => { const [hh, mm] = hhmm.split(":").map(Number); return hh + mm / 60; };
const toHhmm = (hours) => { const m = Math.min(Math.round(hours * 60), 23 * 60 + 59); return `${String(Math.floor(m / 60)).padStart(2, "0")}:${String(m % 60).padStart(2, "0")}`; };

export function field(label, input, hint) {
  return h("label", { class: "field" }, h("span", {}, label), input, hint ? h("small", { class: "muted" }, hint) : null);
}

export function statusLine(id) { return h("p", { role: "status", class: "form-status", ...(id ? { id } : {}) }); }

export function say(line, error) {
  line.textContent = error ? error.message : t("saved");
  line.className = `form-status ${error ? "error" : "ok"}`;
}

function card(title, id, ...children) { return h("section", { class: "card", id }, h("h2", {}, title), ...children); }

// A card whose content is (re)loaded by `fill(box)`; errors are shown in place, not thrown.
function loading(title, id, fill) {
  const box = h("div");
  const reload = () => fill(box, reload).catch((error) => box.replaceChildren(h("p", { class: "error" }, error.message)));
  reload();
  return card(title, id, box);
}

function checkbox(id, checked) { return h("input", { type: "checkbox", id, checked: Boolean(checked) }); }

function checkInForm(base, settings, editable, status) {
  const c = settings.check_in;
  const enabled = checkbox("check-in-enabled", c.enabled);
  const by = h("input", { type: "time", id: "check-in-by", value: c.by, required: true });
  const grace = h("input", { type: "number", id: "check-in-grace", min: 5, max: 1440, step: 1, value: c.grace_min, required: true });
  return h("form", { class: "stack", id: "care-check-in", onsubmit: async (e) => {
    e.preventDefault();
    try {
      await api(`${base}/settings`, { method: "PATCH", body: { check_in: { enabled: enabled.checked, by: by.value, grace_min: Number(grace.value) } } });
      say(status);
    } catch (error) { say(status, error); }
  } }, h("fieldset", { disabled: !editable },
    h("label", { class: "check" }, enabled, t("check_in_enabled")),
    field(t("check_in_by"), by), field(t("grace_min"), grace),
    editable ? h("button", { type: "submit" }, t("save")) : h("p", { class: "muted" }, t("read_only"))), status);
}

function inactivityForm(base, settings, editable, status) {
  const s = settings.inactivity;
  const enabled = checkbox("inactivity-enabled", s.enabled);
  const hoursInput = (id, seconds) => h("input", { type: "number", id, min: 0.25, max: 72, step: 0.25, value: Math.round((seconds / 3600) * 100) / 100, required: true });
  const daytime = hoursInput("inactivity-daytime", s.daytime_limit_s);
  const overnight = hoursInput("inactivity-overnight", s.overnight_limit_s);
  const starts = h("input", { type: "time", id: "inactivity-day-starts", value: toHhmm(s.day_starts_h), required: true });
  const ends = h("input", { type: "time", id: "inactivity-day-ends", value: toHhmm(s.day_ends_h), required: true });
  const away = checkbox("inactivity-away", settings.away);
  const learned = "learned" in s ? checkbox("inactivity-learned", s.learned) : null;
  // Only what was changed is sent: a value the form cannot show exactly (a day ending at 24:00)
  // is not rounded by merely saving, and settings this page does not know stay as they are.
  const initial = { daytime: daytime.value, overnight: overnight.value, starts: starts.value, ends: ends.value };
  return h("form", { class: "stack", id: "care-inactivity", onsubmit: async (e) => {
    e.preventDefault();
    const changes = { enabled: enabled.checked };
    if (daytime.value !== initial.daytime) changes.daytime_limit_s = Math.round(Number(daytime.value) * 3600);
    if (overnight.value !== initial.overnight) changes.overnight_limit_s = Math.round(Number(overnight.value) * 3600);
    if (starts.value !== initial.starts) changes.day_starts_h = toHours(starts.value);
    if (ends.value !== initial.ends) changes.day_ends_h = toHours(ends.value);
    if (learned) changes.learned = learned.checked;
    try {
      await api(`${base}/settings`, { method: "PATCH", body: { inactivity: changes, away: away.checked } });
      Object.assign(initial, { daytime: daytime.value, overnight: overnight.value, starts: starts.value, ends: ends.value });
      say(status);
    } catch (error) { say(status, error); }
  } }, h("fieldset", { disabled: !editable },
    h("label", { class: "check" }, enabled, t("inactivity_enabled")),
    field(t("daytime_limit_h"), daytime), field(t("overnight_limit_h"), overnight),
    h("div", { class: "row" }, field(t("day_starts"), starts), field(t("day_ends"), ends)),
    learned ? h("label", { class: "check" }, learned, t("learned")) : null,
    h("label", { class: "check" }, away, t("away")),
    editable ? h("button", { type: "submit" }, t("save")) : h("p", { class: "muted" }, t("read_only"))), status);
}

export function settingsCards(household, role) {
  const base = `/api/v1/households/${encodeURIComponent(household)}/care`;
  const editable = may(role, "settings");
  let pending = null;
  const once = () => (pending ||= api(base).then((c) => c.settings));
  return [
    loading(t("check_in_settings"), "check-in-settings", async (box) => box.replaceChildren(checkInForm(base, await once(), editable, statusLine("check-in-status")))),
    loading(t("inactivity"), "inactivity-settings", async (box) => box.replaceChildren(inactivityForm(base, await once(), editable, statusLine("inactivity-status")))),
  ];
}

// -- reminders ------------------------------------------------------------------------

function reminderForm({ reminder, residents, onSave, onCancel, id }) {
  const r = reminder || { title: "", kind: "medication", times: ["08:00"], resident_id: null, window_min: 60 };
  const title = h("input", { class: "r-title", maxlength: 120, required: true, value: r.title });
  const kind = h("select", { class: "r-kind" }, ["medication", "appointment"].map((k) => h("option", { value: k, selected: k === r.kind }, t(k))));
  const times = h("div", { class: "row r-times" });
  const addTime = (value) => {
    const input = h("input", { type: "time", class: "r-time", value, required: true, "aria-label": t("times") });
    const wrap = h("span", { class: "time" }, input, h("button", { type: "button", class: "secondary small", "aria-label": t("remove_time"), title: t("remove_time"), onclick: () => {
      if (times.querySelectorAll(".r-time").length > 1) { wrap.remove(); times.querySelector(".r-time").focus(); }
    } }, "×"));
    times.append(wrap);
    return input;
  };
  for (const value of r.times) addTime(value);
  const resident = h("select", { class: "r-resident" }, h("option", { value: "" }, t("whole_household")),
    residents.map((x) => h("option", { value: x.id, selected: x.id === r.resident_id }, x.name)));
  const windowMin = h("input", { type: "number", class: "r-window", min: 5, max: 720, step: 1, value: r.window_min, required: true });
  const status = statusLine();
  return h("form", { class: "stack reminder-form", ...(id ? { id } : {}), onsubmit: async (e) => {
    e.preventDefault();
    const body = { title: title.value.trim(), kind: kind.value, times: [...times.querySelectorAll(".r-time")].map((x) => x.value).filter(Boolean), window_min: Number(windowMin.value) };
    if (resident.value) body.resident_id = resident.value;
    try { await onSave(body); } catch (error) { say(status, error); }
  } },
  field(t("reminder_title"), title), h("div", { class: "row" }, field(t("reminder_kind"), kind), field(t("for_whom"), resident)),
  h("fieldset", { class: "times" }, h("legend", {}, t("times")), times,
    h("button", { type: "button", class: "secondary small add-time", onclick: () => addTime("12:00").focus() }, `+ ${t("add_time")}`)),
  field(t("window_min"), windowMin),
  h("div", { class: "row" }, h("button", { type: "submit" }, reminder ? t("save") : t("add_reminder")),
    onCancel ? h("button", { type: "button", class: "secondary", onclick: onCancel }, t("cancel")) : null),
  status);
}

// A remove button that asks once more in place (no native dialog: it works the same by keyboard).
export function removeButton(label, confirmLabel, onRemove, extra = {}) {
  let armed = false;
  const button = h("button", { type: "button", class: "secondary small remove", ...extra, onclick: async () => {
    if (!armed) { armed = true; button.textContent = confirmLabel; button.classList.add("danger"); return; }
    button.disabled = true;
    try { await onRemove(); } catch (error) { button.disabled = false; button.textContent = error.message; }
  } }, label);
  button.addEventListener("blur", () => { if (armed && !button.disabled) { armed = false; button.textContent = label; button.classList.remove("danger"); } });
  return button;
}

export function remindersCard(household, role) {
  const base = `/api/v1/households/${encodeURIComponent(household)}/care`;
  const editable = may(role, "reminders");
  return loading(t("reminders"), "reminders", async (box, reload) => {
    const [{ items }, { items: residents }] = await Promise.all([
      api(`${base}/reminders`), api(`/api/v1/households/${encodeURIComponent(household)}/residents`).catch(() => ({ items: [] }))]);
    const names = Object.fromEntries(residents.map((x) => [x.id, x.name]));
    const afterChange = async (focusSelector) => { await reload(); const el = box.querySelector(focusSelector); if (el) el.focus(); };
    const row = (r) => {
      const li = h("li", { class: "reminder", "data-reminder": r.id });
      const view = () => li.replaceChildren(
        h("div", { class: "row" },
          h("span", { class: "grow" }, h("strong", { class: "r-when" }, r.times.join(" ")), " · ", h("span", { class: "r-what" }, r.title),
            h("span", { class: "muted" }, ` · ${t(r.kind)}${r.resident_id ? ` · ${names[r.resident_id] || r.resident_id}` : ""}`)),
          may(role, "confirm") ? h("button", { type: "button", class: "secondary small confirm", onclick: async (e) => {
            await api(`${base}/reminders/${encodeURIComponent(r.id)}/confirm`, { method: "POST" });
            e.target.disabled = true;
          } }, t("confirm")) : null,
          editable ? h("button", { type: "button", class: "secondary small edit", onclick: () => {
            li.replaceChildren(reminderForm({ reminder: r, residents,
              onSave: async (body) => { await api(`${base}/reminders/${encodeURIComponent(r.id)}`, { method: "PUT", body }); await afterChange("#reminder-add .r-title"); },
              onCancel: () => { view(); li.querySelector(".edit").focus(); } }));
            li.querySelector(".r-title").focus();
          } }, t("edit")) : null,
          editable ? removeButton(t("remove"), t("confirm_remove"), async () => {
            await api(`${base}/reminders/${encodeURIComponent(r.id)}`, { method: "DELETE" });
            await afterChange("#reminder-add .r-title");
          }) : null));
      view();
      return li;
    };
    // replaceChildren() would write a null as the text "null": the read-only view passes none.
    box.replaceChildren(...[
      items.length ? h("ul", { class: "plain", id: "reminder-list" }, items.map(row)) : h("p", { class: "muted", id: "reminder-list" }, t("no_reminders")),
      editable ? h("details", { class: "add", open: true }, h("summary", {}, t("add_reminder")),
        reminderForm({ residents, id: "reminder-add", onSave: async (body) => {
          await api(`${base}/reminders`, { method: "POST", body });
          await afterChange("#reminder-add .r-title");
        } })) : null].filter(Boolean));
  });
}

// -- thresholds -------------------------------------------------------------------------

export function thresholdsCard(household, role) {
  const editable = may(role, "thresholds");
  return loading(t("thresholds"), "thresholds", async (box) => {
    const note = h("p", { class: "note", id: "not-diagnosis" }, t("not_diagnosis"));
    const { items: residents } = await api(`/api/v1/households/${encodeURIComponent(household)}/residents`);
    if (!residents.length) { box.replaceChildren(note, h("p", { class: "muted" }, t("no_residents"))); return; }
    const forms = await Promise.all(residents.map(async (resident) => {
      const url = `/api/v1/households/${encodeURIComponent(household)}/health/thresholds/${encodeURIComponent(resident.id)}`;
      try {
        const { thresholds } = await api(url);
        const inputs = THRESHOLDS.filter((k) => k in thresholds).map((k) => h("input", { type: "number", step: "any", name: k, class: "th", value: thresholds[k], required: true }));
        const status = statusLine();
        return h("form", { class: "stack thresholds", "data-resident": resident.id, onsubmit: async (e) => {
          e.preventDefault();
          const changes = {};
          for (const input of inputs) if (Number(input.value) !== thresholds[input.name]) changes[input.name] = Number(input.value);
          try {
            const saved = await api(url, { method: "PATCH", body: changes });
            Object.assign(thresholds, saved.thresholds);
            say(status);
          } catch (error) { say(status, error); }
        } }, h("h3", {}, resident.name), h("fieldset", { disabled: !editable, class: "grid" }, inputs.map((input) => field(t(`th_${input.name}`), input))),
        editable ? h("button", { type: "submit" }, t("save")) : h("p", { class: "muted" }, t("read_only")), status);
      } catch (error) {
        return h("div", {}, h("h3", {}, resident.name), h("p", { class: "error" }, error.message));
      }
    }));
    box.replaceChildren(note, ...forms);
  });
}

// -- consent ----------------------------------------------------------------------------

export function consentState(record) {
  if (!record) return { key: "never_asked", cls: "" };
  return record.granted ? { key: "granted", cls: "good" } : { key: "withdrawn", cls: "bad" };
}

export function consentCard(household, role) {
  const editable = may(role, "consent");
  const url = `/api/v1/households/${encodeURIComponent(household)}/consent`;
  return loading(t("consent_section"), "consent", async (box, reload) => {
    const { consent } = await api(url);
    const status = statusLine("consent-status");
    box.replaceChildren(h("p", { class: "muted" }, t("consent_intro")), h("ul", { class: "plain" }, PURPOSES.map((purpose) => {
      const record = consent[purpose];
      const state = consentState(record);
      return h("li", { class: "row", "data-purpose": purpose },
        h("span", { class: "grow" }, h("strong", {}, t(`purpose_${purpose}`)), h("br"),
          h("span", { class: `badge ${state.cls}` }, t(state.key)),
          record ? h("span", { class: "muted" }, ` ${record.by} · ${formatTime(record.ts)}`) : null),
        editable ? h("button", { type: "button", class: `small consent-toggle ${record && record.granted ? "secondary" : ""}`, onclick: async () => {
          try {
            await api(url, { method: "POST", body: { purpose, granted: !(record && record.granted) } });
            await reload();
            const again = box.querySelector(`[data-purpose="${purpose}"] .consent-toggle`);
            if (again) again.focus();
            say(box.querySelector(".form-status"));
          } catch (error) { say(status, error); }
        } }, record && record.granted ? t("withdraw") : t("grant")) : null);
    })), status);
  });
}
