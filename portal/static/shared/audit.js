// Audit entries as sentences, in the reader's language: who did what to what, and whether it worked.
// One formatter for every page that shows the audit log (/manage, /app). An action without a sentence
// of its own (a new one, a typo) still reads as a sentence — never as `user.add {}`.
import { t } from "/static/shared/i18n.js";
import { explainError } from "/static/shared/labels.js";

const known = (key) => t(key) !== key;
const fill = (text, values) => text.replace(/\{(\w+)\}/g, (_, name) => String(values[name] ?? ""));
const roleWord = (role) => (role && known(`role_${role}`) ? t(`role_${role}`) : role || "");

// Detail keys that say something to a reader, in the order they are told; the rest are for machines.
const SHOWN = ["name", "old", "role", "mode", "kind", "purpose", "assignee", "note", "reason", "base_topic"];

function detailOf(entry) {
  const raw = entry.detail;
  if (raw && typeof raw === "object") return raw;
  if (typeof raw === "string" && raw.startsWith("{")) {
    try { return JSON.parse(raw); } catch { return {}; }
  }
  return {};
}

// A household, a user or an item by what people call it: a household by its name (李家 (1-101)).
function targetWord(entry, homes) {
  const target = entry.target ?? "";
  if (homes && homes[target]) return homes[target];
  // a household no longer in the community: its recorded name, else just "a household" — not its id
  const action = String(entry.action || "");
  if (target && (action.startsWith("household.") || target === entry.household_id)) return detailOf(entry).name || t("a_household");
  return String(target);
}

// The words of one entry: what the sentence templates may name.
export function auditWords(entry, homes = {}) {
  const detail = detailOf(entry);
  const words = {
    actor: entry.actor || t("aud_system"),
    target: targetWord(entry, homes),
    household: entry.household_id ? homes[entry.household_id] || t("a_household") : "",
  };
  for (const [key, value] of Object.entries(detail)) {
    if (value === null || value === undefined || typeof value === "object") continue;
    words[key] = String(value);
  }
  if (detail.role) words.role = roleWord(detail.role);
  if (detail.purpose && known(`purpose_${detail.purpose}`)) words.purpose = t(`purpose_${detail.purpose}`);
  if (detail.mode && known(`arm_${detail.mode}`)) words.mode = t(`arm_${detail.mode}`);
  return { words };
}

// The outcome of a refused or failed action, in words ("PIN 不对" rather than `wrong_pin`).
export function outcomeText(outcome) {
  if (!outcome || outcome === "ok") return "";
  if (outcome === "failed") return t("aud_failed");
  return explainError({ code: outcome, message: outcome });
}

// The sentence — "li.manager 给 王家 (1-101) 添加了账号 wang.xiuying（住户）" — with the outcome when it failed.
export function auditSentence(entry, homes = {}) {
  const { words } = auditWords(entry, homes);
  const action = String(entry.action || "");
  const key = `aud_${action.replace(/[^a-z0-9]+/gi, "_")}`;
  let text;
  if (known(key)) {
    text = fill(t(key), words);
  } else {
    // Unknown action: a generic sentence naming the action and its object, plus the details that
    // say something (never the raw `{}`).
    const extra = SHOWN.filter((k) => k in words && !["actor", "target", "household"].includes(k)).map((k) => words[k]);
    text = fill(t(words.target ? "aud_generic_target" : "aud_generic"), { ...words, action });
    if (extra.length) text += `${t("colon")}${extra.join(t("list_sep"))}`;
  }
  const namesHousehold = known(key) && t(key).includes("{household}");
  if (words.household && !namesHousehold && words.household !== words.target) text += fill(t("aud_in_household"), words);
  const outcome = outcomeText(entry.outcome);
  if (outcome) text += fill(t("aud_outcome"), { outcome });
  return text;
}
