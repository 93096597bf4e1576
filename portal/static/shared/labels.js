// Words for what the API sends as stable codes: error codes, alert severities/states/kinds,
// capability kinds and units. The API's own messages are English for developers; a page shows these.
import { formatNumber, getLocale, t } from "/static/shared/i18n.js";

// t() answers the key itself when it has no string: `known` tells a translation from a miss.
const known = (key) => t(key) !== key;
const fill = (text, values) => text.replace(/\{(\w+)\}/g, (_, name) => String(values[name] ?? ""));

// An ApiError in the reader's language, by its code; the server's message only for a code we do not know.
export function explainError(error) {
  const data = (error && error.data) || {};
  switch (error && error.code) {
    case "open_sensors": {
      const names = (data.sensors || []).map((s) => (s.room ? `${s.name} (${s.room})` : s.name)).join(getLocale() === "en" ? ", " : "、");
      return fill(t("err_open_sensors"), { names });
    }
    case "locked_out": return fill(t("err_locked_out"), { seconds: data.retry_after_s ?? data.remaining_s ?? "?" });
    case "invalid_body": return /pin/i.test(error.message || "") ? t("err_pin_format") : error.message;
    case "invalid_pin": return t("err_pin_format");
    default:
      return error && known(`err_${error.code}`) ? t(`err_${error.code}`) : (error && error.message) || String(error);
  }
}

export const severityName = (s) => (known(`sev_${s}`) ? t(`sev_${s}`) : s);
export const alertStateName = (s) => (known(`alert_${s}`) ? t(`alert_${s}`) : s);
export const alertKindName = (k) => (known(`akind_${k}`) ? t(`akind_${k}`) : k);

// Capabilities a resident has no use for: radio link quality, the set-top box's adapter details and
// command-only channels (keys pressed, the last notice sent, the portal page state).
const INTERNAL = new Set(["linkquality", "signal", "rssi", "meta", "keys", "notify", "portal", "channel", "app", "media"]);
export const visibleCapability = (c) => !INTERNAL.has(c.key) && !INTERNAL.has(c.kind);
// The name of a capability: its kind's word first (a plug's "power" key is power usage, a TV's is its power switch).
export function capabilityName(c) {
  for (const name of [c.kind, c.key]) {
    if (name && known(`cap_${name}`)) return t(`cap_${name}`);
    if (name && known(`kind_${name}`)) return t(`kind_${name}`);  // the health kinds (blood pressure, SpO₂…)
  }
  return c.key;
}

const UNITS = { "mm[Hg]": "mmHg", Cel: "°C", "kW.h": "kWh", "1": "" };
export const unitText = (unit) => (unit === "/min" ? t("unit_per_min") : unit in UNITS ? UNITS[unit] : unit || "");

// A capability's value as a resident reads it (set-top box states are objects: each gets its one line).
export function capabilityValue(c, value = c.value) {
  if (value === null || value === undefined) return "—";
  if (typeof value === "boolean") return value ? t("on") : t("off");
  if (typeof value === "object") {
    if ("systolic" in value) return `${Math.round(value.systolic)}/${Math.round(value.diastolic)}${unitText(c.unit) ? ` ${unitText(c.unit)}` : ""}`;
    if ("on" in value) return value.on ? t("on") : t("off");
    if ("level" in value) return value.muted ? `${value.level} · ${t("muted")}` : String(value.level);
    if ("source" in value) return value.source === "none" ? t("playing_nothing") : value.title || (value.channel && value.channel.name) || value.source;
    return Object.values(value).filter((x) => typeof x === "number" || typeof x === "string").map((x) => formatNumber(x)).join("/") || "—";
  }
  const unit = unitText(c.unit);
  return `${formatNumber(value)}${unit ? ` ${unit}` : ""}`;
}

// -- names in the reader's language ------------------------------------------------------------
// A device's and a room's name may come in several languages (`names`, `room_names`: {"zh-CN": "前门",
// "en": "Front door"}); a page shows the reader's form, then the Chinese one, then whatever there is.
export function pickForm(forms, fallback = "") {
  if (!forms || typeof forms !== "object") return forms ?? fallback;
  return forms[getLocale()] || forms["zh-CN"] || Object.values(forms)[0] || fallback;
}
export const deviceName = (d) => pickForm(d && d.names, d && d.name) || t("a_device");
export const roomName = (d) => pickForm(d && d.room_names, d && d.room);
// "前门 · 玄关" — a device with its room, when it has one.
export const deviceWhere = (d) => { const room = roomName(d); return room ? `${deviceName(d)} · ${room}` : deviceName(d); };

// A household by its family name and unit (李家 (1-101)), never by its id: `homes` maps ids to names.
export const householdName = (id, homes) => (id && homes && homes[id]) || (id ? t("a_household") : "—");

// An alert's title in the reader's language: services send a key and its parameters (data.title_key,
// data.params; names as forms), and `title` — the Chinese sentence — for alerts from before that.
export function alertTitle(a) {
  const data = (a && a.data) || {};
  const key = data.title_key;
  if (!key || !known(`at_${key}`)) return (a && a.title) || "";
  const p = data.params || {};
  const words = Object.fromEntries(Object.entries(p).map(([k, v]) => [k, pickForm(v, "")]));
  if (key === "vital_sign" && words.kind) words.kind = known(`kind_${words.kind}`) ? t(`kind_${words.kind}`) : words.kind;
  if (key === "vital_sign" && p.unattributed) words.who = `${words.who} (${t("unattributed")})`;
  if (words.unit !== undefined) words.unit = unitText(words.unit);
  const heading = fill(t(`at_${key}`), words);
  const subject = [words.who, words.device && (words.room ? fill(t("in_room"), words) : words.device)].filter(Boolean).join(" · ");
  return subject && !t(`at_${key}`).includes("{") ? `${heading}${t("colon")}${subject}` : heading;
}
