// Simplified Chinese by default, English on request (saved per user on the server).
const STRINGS = {
  "zh-CN": {
    app_title: "邻里 · 我的家", tv_title: "邻里电视", manage_title: "邻里 · 物业管理",
    sign_in: "登录", sign_out: "退出", name: "用户名", password: "密码", wrong_login: "用户名或密码错误",
    home: "首页", alarm: "安防", health: "健康", care: "关怀", devices: "设备", alerts: "警报",
    announcements: "通知公告", emergency: "紧急通知", from_region: "来自区域平台", disarmed: "已撤防", arming: "布防中", armed_home: "在家布防", armed_away: "离家布防",
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
    save: "保存", cancel: "取消", edit: "编辑", remove: "删除", confirm_remove: "确认删除？",
    status: "状态", details: "详情", hide_details: "收起", read_only: "只读（由家庭管理员修改）",
    accounts: "账号", add_account: "添加账号", display_name: "显示名称", role: "角色", no_household: "不属于住户",
    role_resident: "住户", role_household_admin: "家庭管理员", role_carer: "家属照护人", role_manager: "物业管理员",
    role_installer: "安装人员", role_provider: "服务商",
    password_once: "初始密码只显示这一次，请记下并转交本人：", change_role: "更改角色", disable: "停用", enable: "启用",
    disabled: "已停用", active: "正常", you: "本人",
    purpose_carer: "家属照护人", purpose_provider: "服务机构与社区健康服务", purpose_export: "自动导出",
    granted: "已同意", withdrawn: "已撤回", never_asked: "未授权", recorded_by: "记录人", grant: "同意", withdraw: "撤回",
    consent_intro: "健康数据只在您同意时才分享给以下对象，可随时撤回。", health_visible: "物业可见的健康数据",
    room: "房间", device_name: "设备名称", profile: "设备配置", no_profile: "无匹配配置", source: "来源",
    no_pending: "没有待确认的设备",
    rooms: "客厅,主卧,次卧,卫生间,厨房,玄关,阳台,书房,餐厅",
    starts: "开始时间", starts_hint: "留空：立即发布", expires_hint: "留空：不过期", scheduled: "待发布", live: "发布中",
    expired: "已过期", buildings: "楼栋", households: "住户", never_expires: "不过期", published: "已发布",
    care_settings: "关怀设置", check_in_settings: "每日报平安", check_in_enabled: "需要每日报平安",
    check_in_by: "报平安截止时间", grace_min: "宽限（分钟）", inactivity: "无活动提醒",
    inactivity_enabled: "家中长时间无活动时提醒", daytime_limit_h: "白天无活动上限（小时）",
    overnight_limit_h: "全天无活动上限（小时）", day_starts: "白天开始", day_ends: "白天结束",
    away: "外出中（暂停无活动提醒）", learned: "按家庭日常作息自动调整", reminder_title: "提醒内容", reminder_kind: "类型",
    medication: "用药", appointment: "预约", times: "时间", add_time: "添加时间", remove_time: "删除这个时间",
    for_whom: "提醒对象", whole_household: "全家", window_min: "确认时限（分钟）", add_reminder: "添加提醒",
    no_reminders: "暂无提醒", thresholds: "体征提醒阈值",
    not_diagnosis: "这些阈值只用于发出提醒，不是诊断。身体不适请联系医生。",
    th_systolic_crisis: "收缩压危急（高于，mmHg）", th_diastolic_crisis: "舒张压危急（高于，mmHg）",
    th_systolic_low: "收缩压过低（不高于，mmHg）", th_systolic_high: "收缩压过高（不低于，mmHg）",
    th_heart_rate_low: "心率过低（不高于，次/分）", th_heart_rate_high: "心率过高（不低于，次/分）",
    th_spo2_low: "血氧过低（不高于，%）", th_temperature_low: "体温过低（不高于，°C）",
    th_temperature_high: "体温过高（不低于，°C）", th_glucose_low: "血糖偏低（不高于，mg/dL）",
    th_glucose_urgent: "血糖危急（低于，mg/dL）", no_residents: "尚未登记家庭成员", consent_section: "健康数据授权",
    choose_household: "选择住户", family: "家人", family_accounts: "家人账号", people: "家庭成员",
    kind_blood_pressure: "血压", kind_heart_rate: "心率", kind_spo2: "血氧", kind_glucose: "血糖", kind_weight: "体重",
    kind_body_temperature: "体温",
  },
  en: {
    app_title: "Linli · My home", tv_title: "Linli TV", manage_title: "Linli · Property management",
    sign_in: "Sign in", sign_out: "Sign out", name: "User name", password: "Password", wrong_login: "Wrong user name or password",
    home: "Home", alarm: "Alarm", health: "Health", care: "Care", devices: "Devices", alerts: "Alerts",
    announcements: "Announcements", emergency: "Emergency", from_region: "From the region", disarmed: "Disarmed", arming: "Arming", armed_home: "Armed (home)", armed_away: "Armed (away)",
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
    save: "Save", cancel: "Cancel", edit: "Edit", remove: "Remove", confirm_remove: "Really remove?",
    status: "Status", details: "Details", hide_details: "Hide", read_only: "Read only (the household admin changes this)",
    accounts: "Accounts", add_account: "Add an account", display_name: "Display name", role: "Role", no_household: "No household",
    role_resident: "Resident", role_household_admin: "Household admin", role_carer: "Family carer", role_manager: "Property manager",
    role_installer: "Installer", role_provider: "Service provider",
    password_once: "The initial password is shown only this once; write it down and hand it over:", change_role: "Change role",
    disable: "Disable", enable: "Enable", disabled: "Disabled", active: "Active", you: "You",
    purpose_carer: "Family carers", purpose_provider: "Service providers and the community care desk", purpose_export: "Automatic export",
    granted: "Granted", withdrawn: "Withdrawn", never_asked: "Not given", recorded_by: "Recorded by", grant: "Grant", withdraw: "Withdraw",
    consent_intro: "Health data is shared only with those you consent to; you can withdraw at any time.", health_visible: "Health values the office may see",
    room: "Room", device_name: "Device name", profile: "Device profile", no_profile: "No matching profile", source: "Source",
    no_pending: "No devices waiting",
    rooms: "Living room,Master bedroom,Bedroom,Bathroom,Kitchen,Hallway,Balcony,Study,Dining room",
    starts: "Starts", starts_hint: "Empty: publish now", expires_hint: "Empty: no expiry", scheduled: "Scheduled", live: "Live",
    expired: "Expired", buildings: "Buildings", households: "Households", never_expires: "No expiry", published: "Published",
    care_settings: "Care settings", check_in_settings: "Daily check-in", check_in_enabled: "Ask for a daily check-in",
    check_in_by: "Check in by", grace_min: "Grace (minutes)", inactivity: "Inactivity alerts",
    inactivity_enabled: "Alert when the home is quiet for too long", daytime_limit_h: "Daytime limit (hours)",
    overnight_limit_h: "Round-the-clock limit (hours)", day_starts: "Day starts", day_ends: "Day ends",
    away: "Away (inactivity alerts paused)", learned: "Adapt to the household's routine", reminder_title: "What to remember", reminder_kind: "Kind",
    medication: "Medication", appointment: "Appointment", times: "Times", add_time: "Add a time", remove_time: "Remove this time",
    for_whom: "For", whole_household: "Whole household", window_min: "Confirm within (minutes)", add_reminder: "Add a reminder",
    no_reminders: "No reminders", thresholds: "Vital-sign alert thresholds",
    not_diagnosis: "These thresholds only raise alerts: they are not a diagnosis. If you feel unwell, contact a doctor.",
    th_systolic_crisis: "Systolic crisis (above, mmHg)", th_diastolic_crisis: "Diastolic crisis (above, mmHg)",
    th_systolic_low: "Systolic low (at or below, mmHg)", th_systolic_high: "Systolic high (at or above, mmHg)",
    th_heart_rate_low: "Heart rate low (at or below, /min)", th_heart_rate_high: "Heart rate high (at or above, /min)",
    th_spo2_low: "SpO₂ low (at or below, %)", th_temperature_low: "Temperature low (at or below, °C)",
    th_temperature_high: "Temperature high (at or above, °C)", th_glucose_low: "Glucose low (at or below, mg/dL)",
    th_glucose_urgent: "Glucose urgent (below, mg/dL)", no_residents: "No residents registered yet", consent_section: "Health data consent",
    choose_household: "Choose a household", family: "Family", family_accounts: "Family accounts", people: "People in the household",
    kind_blood_pressure: "Blood pressure", kind_heart_rate: "Heart rate", kind_spo2: "SpO₂", kind_glucose: "Glucose", kind_weight: "Weight",
    kind_body_temperature: "Body temperature",
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
