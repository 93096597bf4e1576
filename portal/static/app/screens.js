// "电视/屏幕" for household admins: confirm the code a TV shows (typed, or from its QR code: /app/pair?code=…),
// list the paired TVs and boxes, revoke one. Shown with the Family tab, and on its own at /app/pair.
import { api, h } from "/static/shared/api.js";
import { formatTime, t } from "/static/shared/i18n.js";
import { explainError } from "/static/shared/labels.js";

const $ = (s) => document.querySelector(s);

async function listScreens(household) {
  const list = $("#screens-list");
  const { items } = await api(`/api/v1/households/${household}/paired-screens`);
  list.replaceChildren(...(items.length
    ? items.map((s) => h("li", { "data-screen": s.id },
        h("span", { class: "grow" }, `${s.name} · ${t("paired_at")} ${formatTime(s.created)}`),
        h("button", { type: "button", class: "secondary small revoke", onclick: async () => {
          await api(`/api/v1/households/${household}/paired-screens/${s.id}`, { method: "DELETE" });
          await listScreens(household);
        } }, t("revoke"))))
    : [h("li", { class: "muted", id: "no-screens" }, t("no_screens"))]));
}

function section(household, code) {
  const input = h("input", { id: "pair-input", autocomplete: "off", autocapitalize: "characters", maxlength: "12", placeholder: "WDJB-MJHT", value: code });
  const message = h("p", { id: "pair-message", role: "status" });
  const decide = (approve) => async () => {
    message.replaceChildren();
    try {
      await api(approve ? "/api/v1/screens/pair" : "/api/v1/screens/pair/deny", { method: "POST", body: { user_code: input.value } });
      message.replaceChildren(h("span", { id: approve ? "pair-done" : "pair-denied", class: "ok" }, approve ? t("pair_done") : t("pair_denied")));
      input.value = "";
      await listScreens(household);
    } catch (error) {
      message.replaceChildren(h("span", { class: "error" }, explainError(error)));
    }
  };
  return h("section", { class: "card", id: "screens" },
    h("h2", {}, t("screens")),
    h("label", {}, t("pair_code"), input),
    h("div", { class: "row" },
      h("button", { type: "button", id: "pair-confirm", onclick: decide(true) }, t("pair_confirm")),
      h("button", { type: "button", class: "secondary", id: "pair-deny", onclick: decide(false) }, t("pair_deny"))),
    message,
    h("ul", { class: "plain", id: "screens-list" }));
}

// Called once by app.js with the signed-in user.
export function installScreens(user) {
  if (user.role !== "household_admin") return;
  const pairing = location.pathname === "/app/pair";
  const code = new URLSearchParams(location.search).get("code") || "";
  const card = section(user.household_id, code);
  $("#view").after(card);
  // Beside the Family tab (or alone on /app/pair, where a TV's QR code leads).
  const place = () => { card.hidden = !pairing && $("#view").dataset.tab !== "family"; };
  new MutationObserver(place).observe($("#view"), { attributes: true, attributeFilter: ["data-tab"] });
  place();
  listScreens(user.household_id).catch(() => {});
  if (pairing) card.scrollIntoView();
}
