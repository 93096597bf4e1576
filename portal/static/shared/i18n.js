// Simplified Chinese by default, English on request (saved per user on the server).
const STRINGS = {
  "zh-CN": {
    app_title: "邻里 · 我的家", tv_title: "邻里电视", manage_title: "邻里 · 物业管理",
    sign_in: "登录", sign_out: "退出", name: "用户名", password: "密码", wrong_login: "用户名或密码错误",
    home: "首页", alarm: "安防", health: "健康", care: "关怀", devices: "设备", alerts: "警报",
    announcements: "通知公告", disarmed: "已撤防", arming: "布防中", armed_home: "在家布防", armed_away: "离家布防",
    armed_night: "夜间布防", armed_vacation: "度假布防", pending: "进入延时", triggered: "报警中!",
    arm_home: "在家布防", arm_away: "离家布防", disarm: "撤防", pin: "密码 PIN", open_doors: "未关的门窗",
    nobody_open: "门窗都已关好", who_home: "家中有人", nobody_home: "未检测到有人", latest_vitals: "最新体征",
    no_vitals: "暂无体征数据", open_alerts: "待处理警报", no_alerts: "没有警报", acknowledge: "我知道了",
    acknowledged: "已确认", resolve: "处理完毕", note: "处理说明", check_in: "今日报平安", checked_in: "今天已报平安",
    reminders: "提醒", confirm: "已完成", im_ok: "我没事", call_help: "呼叫帮助", language: "English",
    online: "在线", offline: "离线", battery: "电量", firmware: "固件", last_seen: "最近通信", on: "开", off: "关",
    trends: "趋势", send: "发送", saved: "已保存", live_on: "实时连接", live_off: "正在重连…",
    community: "社区", residents: "住户与角色", inventory: "设备清单", inbox: "待确认设备", queue: "警报队列",
    consent: "授权概览", audit: "审计日志", approve: "批准", reject: "拒绝", assign: "指派", all: "全部",
    building: "楼栋", household: "住户", search: "搜索", title: "标题", body: "内容", scope: "范围",
    whole_community: "全社区", publish: "发布", expires: "到期", escalation_in: "升级倒计时", severity: "级别",
    age: "时长", no_consent: "未授权，不显示健康数据", help_sent: "已呼叫帮助", back: "返回", ok: "确定",
    send_to_tv: "发送到电视", sent: "已发送", open_tv_portal: "在电视上打开邻里",
  },
  en: {
    app_title: "Linli · My home", tv_title: "Linli TV", manage_title: "Linli · Property management",
    sign_in: "Sign in", sign_out: "Sign out", name: "User name", password: "Password", wrong_login: "Wrong user name or password",
    home: "Home", alarm: "Alarm", health: "Health", care: "Care", devices: "Devices", alerts: "Alerts",
    announcements: "Announcements", disarmed: "Disarmed", arming: "Arming", armed_home: "Armed (home)", armed_away: "Armed (away)",
    armed_night: "Armed (night)", armed_vacation: "Armed (vacation)", pending: "Entry delay", triggered: "ALARM!",
    arm_home: "Arm (home)", arm_away: "Arm (away)", disarm: "Disarm", pin: "PIN", open_doors: "Open doors and windows",
    nobody_open: "All doors and windows closed", who_home: "Someone is home", nobody_home: "Nobody detected", latest_vitals: "Latest vitals",
    no_vitals: "No vital signs yet", open_alerts: "Open alerts", no_alerts: "No alerts", acknowledge: "Got it",
    acknowledged: "Acknowledged", resolve: "Resolve", note: "Note", check_in: "I'm fine today", checked_in: "Checked in today",
    reminders: "Reminders", confirm: "Done", im_ok: "I'm OK", call_help: "Call for help", language: "中文",
    online: "online", offline: "offline", battery: "Battery", firmware: "Firmware", last_seen: "Last seen", on: "On", off: "Off",
    trends: "Trends", send: "Send", saved: "Saved", live_on: "Live", live_off: "Reconnecting…",
    community: "Community", residents: "Residents and roles", inventory: "Device inventory", inbox: "Discovery inbox", queue: "Alert queue",
    consent: "Consent overview", audit: "Audit log", approve: "Approve", reject: "Reject", assign: "Assign", all: "All",
    building: "Building", household: "Household", search: "Search", title: "Title", body: "Text", scope: "Scope",
    whole_community: "Whole community", publish: "Publish", expires: "Expires", escalation_in: "Escalates in", severity: "Severity",
    age: "Age", no_consent: "No consent: health values hidden", help_sent: "Help is called", back: "Back", ok: "OK",
    send_to_tv: "Send to the TV", sent: "Sent", open_tv_portal: "Open Linli on the TV",
  },
};

let locale = localStorage.getItem("linli.locale") || "zh-CN";

export const t = (key) => (STRINGS[locale] && STRINGS[locale][key]) || STRINGS["zh-CN"][key] || key;
export const getLocale = () => locale;
export function setLocale(next) {
  locale = STRINGS[next] ? next : "zh-CN";
  localStorage.setItem("linli.locale", locale);
  document.documentElement.lang = locale === "en" ? "en" : "zh-CN";
}
export const formatTime = (ts) => (ts ? new Date(ts * 1000).toLocaleString(locale) : "—");
export const formatNumber = (n, digits = 1) =>
  typeof n === "number" ? n.toLocaleString(locale, { maximumFractionDigits: digits }) : String(n ?? "—");
export function formatAgo(ts) {
  if (!ts) return "—";
  const s = Math.max(0, Math.round(Date.now() / 1000 - ts));
  const rtf = new Intl.RelativeTimeFormat(locale, { numeric: "auto" });
  if (s < 60) return rtf.format(-s, "second");
  if (s < 3600) return rtf.format(-Math.round(s / 60), "minute");
  if (s < 86400) return rtf.format(-Math.round(s / 3600), "hour");
  return rtf.format(-Math.round(s / 86400), "day");
}
export function formatDuration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  const m = Math.floor(s / 60);
  return `${m}:${String(s % 60).padStart(2, "0")}`;
}
setLocale(locale);
