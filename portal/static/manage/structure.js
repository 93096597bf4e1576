// Setting up the community (manager): add, rename and remove buildings, units and households.
// Shown under the community tree; every change goes through /api/v1/{buildings,units,households}
// and the whole section is drawn again from the server afterwards.
import { api, h } from "/static/shared/api.js";
import { getLocale, t } from "/static/shared/i18n.js";
import { removeButton, statusLine } from "/static/shared/care.js";
import { explainError } from "/static/shared/labels.js";

const ID_PATTERN = "[A-Za-z0-9][A-Za-z0-9._:@\\-]{0,63}";
const enc = encodeURIComponent;

// A removal refused because something is still inside: say what, in the reader's words.
function explain(error) {
  const holds = error && error.code === "conflict" && error.data && error.data.holds;
  if (!holds) return explainError(error);
  const parts = Object.entries(holds).map(([what, n]) => `${n} ${t(`st_${what}`)}`);
  return t("st_in_use").replace("{what}", parts.join(getLocale() === "en" ? ", " : "、"));
}

function field(label, input) {
  return h("label", { class: "field" }, h("span", {}, label), input);
}

const idInput = (id) => h("input", { id, pattern: ID_PATTERN, maxlength: 64, size: 10, placeholder: t("st_id_auto"), title: t("st_id_hint") });

// Tell the outcome on the freshly drawn section (the old one is gone after a change).
function report(message, ok) {
  const line = document.querySelector("#structure-status");
  if (!line) return;
  line.textContent = message;
  line.className = `form-status ${ok ? "ok" : "error"}`;
}

export async function structureEditor(redraw) {
  const tree = await api("/api/v1/structure");
  const status = statusLine("structure-status");
  const change = async (path, method, body, done) => {
    try {
      await api(path, { method, body });
    } catch (error) {
      status.textContent = explain(error);
      status.className = "form-status error";
      return false;
    }
    await redraw();
    report(done, true);
    return true;
  };

  const units = tree.buildings.flatMap((b) => b.units.map((u) => ({ ...u, building: b.name })));

  // -- add forms -------------------------------------------------------------------------------
  const buildingName = h("input", { id: "new-building-name", required: true, maxlength: 64, placeholder: t("st_building_example") });
  const buildingId = idInput("new-building-id");
  const addBuilding = h("form", { class: "inline", id: "add-building", onsubmit: async (e) => {
    e.preventDefault();
    const body = { name: buildingName.value.trim(), ...(buildingId.value ? { id: buildingId.value } : {}) };
    if (await change("/api/v1/buildings", "POST", body, t("st_added"))) document.querySelector("#new-unit-name")?.focus();
  } }, field(t("st_building_name"), buildingName), field(t("st_id"), buildingId), h("button", { type: "submit" }, t("st_add_building")));

  const unitBuilding = h("select", { id: "new-unit-building", required: true },
    h("option", { value: "" }, t("choose_placeholder")), tree.buildings.map((b) => h("option", { value: b.id }, b.name)));
  if (tree.buildings.length === 1) unitBuilding.value = tree.buildings[0].id;
  const unitName = h("input", { id: "new-unit-name", required: true, maxlength: 64, placeholder: t("st_unit_example") });
  const unitId = idInput("new-unit-id");
  const addUnit = h("form", { class: "inline", id: "add-unit", onsubmit: async (e) => {
    e.preventDefault();
    const body = { name: unitName.value.trim(), ...(unitId.value ? { id: unitId.value } : {}) };
    if (await change(`/api/v1/buildings/${enc(unitBuilding.value)}/units`, "POST", body, t("st_added"))) document.querySelector("#new-household-name")?.focus();
  } }, field(t("building"), unitBuilding), field(t("st_unit_name"), unitName), field(t("st_id"), unitId), h("button", { type: "submit" }, t("st_add_unit")));

  const householdUnit = h("select", { id: "new-household-unit", required: true },
    h("option", { value: "" }, t("choose_placeholder")), units.map((u) => h("option", { value: u.id }, `${u.building} · ${u.name}`)));
  if (units.length === 1) householdUnit.value = units[0].id;
  const householdName = h("input", { id: "new-household-name", required: true, maxlength: 64, placeholder: t("st_household_example") });
  const householdId = idInput("new-household-id");
  const addHousehold = h("form", { class: "inline", id: "add-household", onsubmit: async (e) => {
    e.preventDefault();
    const body = { name: householdName.value.trim(), ...(householdId.value ? { id: householdId.value } : {}) };
    if (await change(`/api/v1/units/${enc(householdUnit.value)}/households`, "POST", body, t("st_added"))) document.querySelector("#new-household-name")?.focus();
  } }, field(t("st_unit"), householdUnit), field(t("st_household_name"), householdName), field(t("st_id"), householdId), h("button", { type: "submit" }, t("st_add_household")));

  // -- the tree, each part renamable and removable -------------------------------------------
  const node = (kind, item, path, extra, children) => {
    // the id stays out of sight (a tooltip for whoever scripts against it): people see names
    const label = h("strong", { class: "st-name", title: item.id }, item.name);
    const input = h("input", { class: "st-rename-input", required: true, maxlength: 64, value: item.name, "aria-label": t("st_new_name") });
    const form = h("form", { class: "st-rename-form", hidden: true, onsubmit: async (e) => {
      e.preventDefault();
      await change(path, "PATCH", { name: input.value.trim() }, t("saved"));
    } }, input, h("button", { type: "submit", class: "small" }, t("save")),
    h("button", { type: "button", class: "small secondary", onclick: () => { form.hidden = true; label.hidden = false; } }, t("cancel")));
    const rename = h("button", { type: "button", class: "small secondary st-rename", onclick: () => { form.hidden = false; label.hidden = true; input.focus(); input.select(); } }, t("st_rename"));
    const remove = removeButton(t("remove"), t("confirm_remove"), async () => {
      if (!(await change(path, "DELETE", undefined, t("st_removed")))) throw new Error(status.textContent);
    }, { class: "small secondary remove st-remove" });
    return h("li", { [`data-${kind}`]: item.id }, h("div", { class: "row" }, label, form, extra || "", rename, remove), children || "");
  };
  const household = (x) => node("household", x, `/api/v1/households/${enc(x.id)}`,
    h("span", { class: "badge" }, `${x.devices} ${t("st_devices")} · ${x.residents.length} ${t("st_residents")}`));
  const unit = (u) => node("unit", u, `/api/v1/units/${enc(u.id)}`, null, h("ul", {}, u.households.map(household)));
  const building = (b) => node("building", b, `/api/v1/buildings/${enc(b.id)}`, null, h("ul", {}, b.units.map(unit)));

  return h("section", { class: "card", id: "structure" },
    h("h2", {}, t("st_setup")),
    h("p", { class: "muted" }, t("st_intro")),
    addBuilding,
    tree.buildings.length ? addUnit : "",
    units.length ? addHousehold : "",
    status,
    tree.buildings.length
      ? h("div", { class: "tree" }, h("ul", { id: "structure-tree" }, tree.buildings.map(building)))
      : h("p", { class: "muted", id: "structure-empty" }, t("st_empty")));
}
