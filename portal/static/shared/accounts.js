// Accounts and roles, shared by the manager's console (every account, any household) and a household
// admin's phone (their own household's residents, admins and carers). Add (the generated password is
// shown once), change the role, disable or re-enable, remove; the API decides again on every change.
import { api, h } from "/static/shared/api.js";
import { t } from "/static/shared/i18n.js";
import { removeButton, statusLine } from "/static/shared/care.js";

export const HOUSEHOLD_ROLES = ["resident", "household_admin", "carer"];
export const roleName = (role) => t(`role_${role}`);
const sayError = (line, error) => { line.textContent = error.message; line.className = "form-status error"; };
const label = (text, control) => h("label", { class: "field" }, h("span", {}, text), control);

// `homes` (id, name, building) lets the manager pick any household; a household admin has `household` fixed.
function roleAndHousehold({ roles, homes, household }, role, current, cls) {
  const roleSelect = h("select", { class: `${cls}-role`, "aria-label": t("role") }, roles.map((r) => h("option", { value: r, selected: r === role }, roleName(r))));
  if (!homes) return [roleSelect, { value: household, disabled: false }];
  const homeSelect = h("select", { class: `${cls}-household`, "aria-label": t("household") },
    h("option", { value: "" }, t("no_household")), homes.map((x) => h("option", { value: x.id, selected: x.id === current }, `${x.name} · ${x.building}`)));
  const follow = () => {
    const needs = HOUSEHOLD_ROLES.includes(roleSelect.value);
    homeSelect.disabled = !needs;
    homeSelect.required = needs;
    if (!needs) homeSelect.value = "";
  };
  roleSelect.addEventListener("change", follow);
  follow();
  return [roleSelect, homeSelect];
}

/**
 * The add form, the secret shown once, and the table of accounts.
 * options: { me, roles, homes?, household?, list: async () => accounts, filters?: [elements], heading?: "h2" }
 */
export async function accountsEditor(options) {
  const { me, homes } = options;
  const homeName = Object.fromEntries((homes || []).map((x) => [x.id, x.name]));
  const list = h("div", { id: "user-list" });
  const secret = h("div", { id: "user-secret", role: "alert" });
  const load = async (focus) => {
    const items = await options.list();
    list.replaceChildren(h("p", { class: "muted" }, `${t("accounts")}: ${items.length}`),
      h("div", { class: "table-wrap" }, h("table", {}, h("thead", {}, h("tr", {}, [t("name"), t("role"), t("status"), ""].map((x) => h("th", {}, x)))), h("tbody", {}, items.map(row)))));
    if (focus) { const el = list.querySelector(focus); if (el) el.focus(); }
  };
  const row = (u) => {
    const self = me && u.id === me.id;
    // Someone this editor may not manage (a household admin looking at, say, a provider) is listed, not offered.
    const manageable = !self && options.roles.includes(u.role);
    const [role, household] = roleAndHousehold(options, u.role, u.household_id, "u");
    const status = statusLine();
    const at = `tr[data-user="${CSS.escape(u.name)}"]`;
    const change = async (body, focus) => {
      try { await api(`/api/v1/users/${encodeURIComponent(u.id)}`, { method: "PATCH", body }); await load(`${at} ${focus}`); } catch (error) { sayError(status, error); }
    };
    return h("tr", { "data-user": u.name, class: u.disabled ? "disabled" : "" },
      h("td", {}, h("strong", {}, u.display_name), h("div", { class: "muted" }, u.name), homes && u.household_id ? h("div", { class: "muted" }, homeName[u.household_id] || u.household_id) : null),
      h("td", {}, !manageable ? roleName(u.role) : h("div", { class: "row" }, role, homes ? household : null,
        h("button", { type: "button", class: "small secondary u-save", onclick: () => change({ role: role.value, household_id: household.value || null }, ".u-save") }, t("change_role")))),
      h("td", {}, h("span", { class: `badge ${u.disabled ? "bad" : "good"}` }, u.disabled ? t("disabled") : t("active")), self ? h("div", { class: "muted" }, t("you")) : null),
      h("td", {}, !manageable ? "" : h("div", { class: "row" },
        h("button", { type: "button", class: "small secondary u-toggle", onclick: () => change({ disabled: !u.disabled }, ".u-toggle") }, u.disabled ? t("enable") : t("disable")),
        removeButton(t("remove"), t("confirm_remove"), async () => {
          try { await api(`/api/v1/users/${encodeURIComponent(u.id)}`, { method: "DELETE" }); await load("#new-user-name"); } catch (error) { sayError(status, error); }
        }, { class: "small secondary remove u-remove" })), status));
  };
  const name = h("input", { id: "new-user-name", required: true, maxlength: 64, pattern: "[A-Za-z0-9][A-Za-z0-9._@\\-]{1,63}", autocomplete: "off" });
  const display = h("input", { id: "new-user-display", maxlength: 64, autocomplete: "off" });
  const [role, household] = roleAndHousehold(options, "resident", "", "new-user");
  role.id = "new-user-role";
  if (homes) household.id = "new-user-household";
  const message = statusLine("user-add-status");
  const form = h("form", { class: "inline", id: "user-add", onsubmit: async (e) => {
    e.preventDefault();
    message.textContent = "";
    try {
      const made = await api("/api/v1/users", { method: "POST", body: { name: name.value.trim(), role: role.value,
        ...(household.value ? { household_id: household.value } : {}), ...(display.value.trim() ? { display_name: display.value.trim() } : {}) } });
      secret.replaceChildren(h("p", {}, h("strong", {}, made.user.name), ` (${roleName(made.user.role)}) — ${t("password_once")} `,
        h("code", { class: "secret", id: "new-password" }, made.password)));
      form.reset();
      role.dispatchEvent(new Event("change"));
      await load();
      name.focus();
    } catch (error) { sayError(message, error); }
  } },
  label(t("name"), name), label(t("display_name"), display), label(t("role"), role), homes ? label(t("household"), household) : null,
  h("button", { type: "submit" }, t("add_account")));
  for (const filter of options.filters || []) filter.addEventListener("change", () => load());
  await load();
  const heading = options.heading || "h2";
  return [h(heading, {}, t("add_account")), form, message, secret, h(heading, {}, t("accounts")),
    options.filters ? h("div", { class: "row" }, options.filters) : null, list];
}
