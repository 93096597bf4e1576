// Vital signs as people read them: names, units and adult reference ranges, in both languages.
// The ranges are general adult references to read a chart by (shaded behind the line), not the
// household's alert thresholds and not a diagnosis; the page says so under every chart.
import { addStrings, t } from "/static/shared/i18n.js";

addStrings({
  "zh-CN": {
    v_blood_pressure: "血压", v_systolic: "收缩压", v_diastolic: "舒张压", v_heart_rate: "心率", v_spo2: "血氧",
    v_glucose: "血糖", v_weight: "体重", v_body_temperature: "体温",
    u_mmHg: "毫米汞柱", u_bpm: "次/分", u_pct: "%", u_mgdl: "毫克/分升", u_kg: "千克", u_cel: "°C",
    period_day: "日", period_week: "周", period_month: "月", reference_range: "参考范围",
    chart_reference_note: "阴影为成人一般参考范围，仅供查看趋势，不作诊断。", no_readings_period: "这段时间没有测量记录",
    readings_n: "次测量", last_24h: "最近 24 小时", last_7d: "最近 7 天", last_30d: "最近 30 天",
  },
  en: {
    v_blood_pressure: "Blood pressure", v_systolic: "Systolic", v_diastolic: "Diastolic", v_heart_rate: "Heart rate",
    v_spo2: "Blood oxygen", v_glucose: "Blood glucose", v_weight: "Weight", v_body_temperature: "Body temperature",
    u_mmHg: "mmHg", u_bpm: "beats/min", u_pct: "%", u_mgdl: "mg/dL", u_kg: "kg", u_cel: "°C",
    period_day: "Day", period_week: "Week", period_month: "Month", reference_range: "reference range",
    chart_reference_note: "Shading is a general adult reference range, for reading trends; not a diagnosis.",
    no_readings_period: "No measurements in this period", readings_n: "measurements",
    last_24h: "last 24 hours", last_7d: "last 7 days", last_30d: "last 30 days",
  },
});

// Per kind: the series it draws (a reading's value, or one part of it), the unit, and the reference band.
export const VITALS = {
  blood_pressure: { unit: "u_mmHg", series: [
    { part: "systolic", label: "v_systolic", range: [90, 139], color: "#0b5cad" },
    { part: "diastolic", label: "v_diastolic", range: [60, 89], color: "#7a3fb0" },
  ] },
  heart_rate: { unit: "u_bpm", series: [{ label: "v_heart_rate", range: [60, 100], color: "#c0392b" }] },
  spo2: { unit: "u_pct", series: [{ label: "v_spo2", range: [95, 100], color: "#0b7a4b" }] },
  glucose: { unit: "u_mgdl", series: [{ label: "v_glucose", range: [70, 140], color: "#b8860b" }] },
  weight: { unit: "u_kg", series: [{ label: "v_weight", range: null, color: "#555" }] },
  body_temperature: { unit: "u_cel", series: [{ label: "v_body_temperature", range: [36.0, 37.3], color: "#d35400" }] },
};
export const VITAL_KINDS = Object.keys(VITALS);
export const PERIODS = { day: { days: 1, label: "last_24h" }, week: { days: 7, label: "last_7d" }, month: { days: 30, label: "last_30d" } };

export const vitalName = (kind) => t(`v_${kind}`);
export const vitalUnit = (kind) => t(VITALS[kind].unit);

// The number a series takes from one reading (a cuff's reading holds several parts).
function partOf(value, part) {
  if (part) return value && typeof value === "object" && typeof value[part] === "number" ? value[part] : null;
  return typeof value === "number" ? value : null;
}

// Readings of one kind → per series, the points to draw: each reading over a day; a daily
// min/mean/max over a week or a month (local days, so a day's readings are one bar).
export function seriesFor(kind, readings, period, now = Date.now() / 1000) {
  const spec = VITALS[kind];
  const from = now - PERIODS[period].days * 86400;
  const mine = readings.filter((r) => r.kind === kind && r.ts >= from).sort((a, b) => a.ts - b.ts);
  return spec.series.map((s) => {
    const raw = mine.map((r) => ({ ts: r.ts, v: partOf(r.value, s.part) })).filter((p) => p.v !== null);
    if (period === "day") return { ...s, points: raw.map((p) => ({ ts: p.ts, min: p.v, mean: p.v, max: p.v, count: 1 })) };
    const days = new Map();
    for (const p of raw) {
      const d = new Date(p.ts * 1000);
      const key = new Date(d.getFullYear(), d.getMonth(), d.getDate(), 12).getTime() / 1000;
      const day = days.get(key) || { ts: key, min: Infinity, max: -Infinity, sum: 0, count: 0 };
      day.min = Math.min(day.min, p.v); day.max = Math.max(day.max, p.v); day.sum += p.v; day.count += 1;
      days.set(key, day);
    }
    return { ...s, points: [...days.values()].map((d) => ({ ts: d.ts, min: d.min, max: d.max, mean: d.sum / d.count, count: d.count })) };
  });
}
