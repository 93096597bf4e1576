// Simplified Chinese by default, English on request (saved per user on the server).
const STRINGS = {
  "zh-CN": {
    device_access: "设备接入", broker: "消息代理", access_control: "访问控制", guard_on: "逐设备授权（含拒绝计数）",
    guard_files: "逐设备授权（密码与访问控制文件，不计拒绝次数）", no_acl: "仅限本机（无逐设备授权）",
    anomalies: "异常", no_anomalies: "没有异常", anomaly_refused_publishes: "越权发布", anomaly_refused_subscriptions: "越权订阅",
    anomaly_refused_logins: "密码错误", client: "客户端", count: "次数", refused_logins: "登录被拒",
    mqtt_clients: "设备与网关凭据", no_mqtt_clients: "这户还没有设备凭据", issue_bridge: "为网关（如 Zigbee2MQTT）签发凭据",
    base_topic: "主题前缀", kind_device: "设备", kind_bridge: "网关", revoke: "吊销", shown_once: "密码只显示这一次，请立即配置到设备：",
    tls_port: "TLS 端口", reattached: "接管了上次留下的代理进程",
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
    // Portal polish (QA): errors by code, empty states, alert words, capability names.
    choose_placeholder: "请选择…", ignore: "忽略", no_announcements: "暂无通知公告", nothing_here: "这里暂时没有内容",
    type_first: "请先输入要发送的文字", arm_anyway: "仍然布防（绕过这些门窗）",
    err_open_sensors: "还有门窗没关：{names}。请先关好，或绕过它们布防（直到下次撤防）。",
    err_wrong_pin: "密码 PIN 不对，请重新输入", err_locked_out: "密码错误次数太多，请 {seconds} 秒后再试",
    err_no_pin: "这个家还没有设置报警密码 PIN：请家庭管理员先设置", err_pin_required: "请输入密码 PIN",
    err_alarm_active: "警报正在进行：请先撤防，再重新布防", err_pin_format: "密码 PIN 是 4 到 8 位数字",
    err_forbidden: "您没有权限做这个操作", err_unavailable: "服务暂时不可用，请稍后再试",
    sev_critical: "紧急", sev_high: "高", sev_warning: "警告", sev_info: "提示",
    alert_raised: "新警报", alert_notified: "已通知", alert_acknowledged: "已确认", alert_resolved: "已处理",
    akind_sos: "紧急求助", akind_fall: "跌倒", akind_inactivity: "长时间无活动", akind_missed_check_in: "未报平安",
    akind_missed_medication: "未按时用药", akind_intrusion: "入侵", akind_smoke: "烟雾", akind_gas: "燃气泄漏",
    akind_water_leak: "漏水", akind_tamper: "设备被拆动", akind_vital_sign: "体征异常", akind_device_offline: "设备离线",
    time: "时间", actor: "操作人", action: "操作", target: "对象",
    cap_contact: "门窗", cap_motion: "移动", cap_occupancy: "有人", cap_smoke: "烟雾", cap_gas: "燃气", cap_water_leak: "漏水",
    cap_glass_break: "玻璃破碎", cap_tamper: "防拆", cap_siren: "警笛", cap_lock: "门锁", cap_sos_button: "求助按钮",
    cap_fall: "跌倒", cap_bed_occupancy: "在床", cap_presence: "有人", cap_activity: "活动", cap_temperature: "温度",
    cap_humidity: "湿度", cap_battery: "电量", cap_power_usage: "功率", cap_energy: "用电量", cap_switch: "开关",
    cap_light: "灯", cap_illuminance: "光照", cap_power: "电源", cap_volume: "音量", cap_now_playing: "正在播放",
    cap_in_bed: "在床", cap_door: "门", cap_leak: "漏水", cap_relay: "开关", cap_pulse: "脉搏", cap_sos: "求助按钮",
    muted: "静音", playing_nothing: "无", unit_per_min: "次/分",
    call_help_q: "要呼叫帮助吗？", call_help_explain: "按 OK 通知物业值班与家人，按返回取消", call_now: "呼叫",
    // Community setup (manager): buildings, units, households.
    st_setup: "社区设置", st_intro: "先添加楼栋，再在楼栋里添加单元，在单元里添加住户；之后就可以把设备批准到住户、为住户添加账号。",
    st_building_name: "楼栋名称", st_unit_name: "单元名称", st_household_name: "住户名称", st_unit: "单元",
    st_id: "编号（可选）", st_id_auto: "自动生成", st_id_hint: "字母、数字或 ._:@-，最多 64 个字符；留空则自动生成",
    st_add_building: "添加楼栋", st_add_unit: "添加单元", st_add_household: "添加住户",
    st_building_example: "例如：1号楼", st_unit_example: "例如：1单元", st_household_example: "例如：101 张家",
    st_rename: "改名", st_new_name: "新名称", st_added: "已添加", st_removed: "已删除",
    st_empty: "社区里还没有楼栋：从添加第一栋楼开始。",
    st_in_use: "还不能删除：里面还有 {what}。请先删除或移走它们。",
    st_units: "个单元", st_households: "户住户", st_devices: "台设备", st_residents: "位家庭成员", st_accounts: "个账号",
    // Chinese first (issue 14): names, alert titles by key, audit sentences, validation errors.
    a_device: "设备", a_household: "一户住户", unattributed: "未确认是谁", colon: "：", list_sep: "、", in_room: "{device}（{room}）",
    at_sos: "紧急求助", at_help: "呼叫帮助", at_fall: "检测到跌倒", at_smoke: "烟雾报警", at_gas: "燃气泄漏", at_water_leak: "漏水",
    at_tamper: "设备被拆动", at_intrusion: "入侵报警", at_keypad_locked: "报警密码多次错误，键盘已锁定",
    at_inactivity: "长时间无活动", at_missed_check_in: "今天 {by} 前未报平安（宽限 {grace} 分钟）", at_check_in_reminder: "请按“确定”报平安",
    at_reminder_medication: "用药提醒：{title}", at_reminder_appointment: "预约提醒：{title}",
    at_missed_medication: "未确认服药：{title}（{when}）", at_missed_appointment: "未确认预约：{title}（{when}）",
    at_vital_sign: "{label}：{who} {kind} {value} {unit}", at_device_offline: "设备离线",
    aud_system: "系统", aud_failed: "用户名或密码不对", aud_outcome: "（未成功：{outcome}）", aud_in_household: "（{household}）",
    aud_generic: "{actor} 执行了操作“{action}”", aud_generic_target: "{actor} 对 {target} 执行了操作“{action}”",
    aud_login: "{actor} 登录了", aud_logout: "{actor} 退出了登录", aud_token_create: "{actor} 为 {target} 创建了接口令牌",
    aud_user_add: "{actor} 添加了账号 {target}（{role}）", aud_user_role: "{actor} 把 {target} 的角色改为{role}",
    aud_user_password: "{actor} 修改了 {target} 的密码", aud_user_delete: "{actor} 删除了账号 {target}",
    aud_user_disable: "{actor} 停用了账号 {target}", aud_user_enable: "{actor} 启用了账号 {target}",
    aud_building_add: "{actor} 添加了楼栋 {name}", aud_building_rename: "{actor} 把楼栋 {old} 改名为 {name}", aud_building_remove: "{actor} 删除了一栋楼",
    aud_unit_add: "{actor} 添加了单元 {name}", aud_unit_rename: "{actor} 把单元 {old} 改名为 {name}", aud_unit_remove: "{actor} 删除了一个单元",
    aud_household_add: "{actor} 添加了住户 {target}", aud_household_rename: "{actor} 把住户 {old} 改名为 {name}", aud_household_remove: "{actor} 删除了一户住户",
    aud_resident_add: "{actor} 登记了家庭成员 {name}", aud_resident_update: "{actor} 修改了家庭成员 {name} 的资料", aud_resident_remove: "{actor} 移除了一位家庭成员",
    aud_alarm_arm: "{actor} 布防（{mode}）", aud_alarm_disarm: "{actor} 撤防", aud_alarm_pin: "{actor} 设置了报警密码 PIN",
    aud_device_approve: "{actor} 批准了一台新设备", aud_device_reject: "{actor} 拒绝了一台设备", aud_device_ignore: "{actor} 忽略了一台设备",
    aud_device_restore: "{actor} 把一台设备放回待确认", aud_mqtt_client_issue: "{actor} 签发了设备接入凭据 {target}",
    aud_mqtt_client_revoke: "{actor} 吊销了设备接入凭据 {target}", aud_announcement_add: "{actor} 发布了通知公告", aud_announcement_withdraw: "{actor} 撤回了一条通知公告",
    aud_export_fhir: "{actor} 导出了健康数据", aud_export_household: "{actor} 导出了这户的全部数据", aud_privacy_delete: "{actor} 删除了这户的全部数据",
    aud_consent_grant: "{actor} 同意向{purpose}分享健康数据", aud_consent_withdraw: "{actor} 撤回了对{purpose}的健康数据授权",
    aud_health_thresholds: "{actor} 修改了体征提醒阈值", aud_alert_acknowledge: "{actor} 确认了一条警报", aud_alert_resolve: "{actor} 处理完毕一条警报",
    aud_alert_assign: "{actor} 把一条警报指派给 {assignee}", aud_provider_key_issue: "{actor} 为服务商签发了接口密钥", aud_provider_key_revoke: "{actor} 吊销了服务商接口密钥",
    // TV pairing and safe alarm dialogs (issue 14)
    im_ok_q: "真的没事吗？", im_ok_explain: "取消后物业值班会回电确认。按“保留警报”继续求助。", keep_alarm: "不，保留警报", yes_im_ok: "是的，我没事，取消警报",
    later: "稍后", alert_cancelled: "居民已取消 · 待回电", aud_alert_cancel: "{actor} 取消了一条警报（我没事）",
    pair_title: "连接这台电视", pair_explain: "请家庭管理员在手机“邻里”App 中扫码，或打开下面的网址输入这串字母：",
    pair_waiting: "等待确认…", pair_denied: "家庭管理员拒绝了这台电视。按 OK 重新获取代码。", pair_new_code: "换一个代码",
    screens: "电视/屏幕", no_screens: "还没有连接的电视", pair_code: "电视上显示的代码", pair_confirm: "连接这台电视", pair_deny: "不是我的电视",
    pair_done: "已连接，电视马上会显示您的家", paired_at: "连接于", aud_screen_pair: "{actor} 连接了一台电视", aud_screen_confirm: "{actor} 确认了电视连接代码",
    aud_screen_deny: "{actor} 拒绝了一台电视的连接", aud_screen_revoke: "{actor} 断开了一台电视", help_now: "呼叫帮助",
  },
  en: {
    device_access: "Device access", broker: "Broker", access_control: "Access control", guard_on: "per device (refusals counted)",
    guard_files: "per device (password and ACL files; refusals not counted)", no_acl: "this machine only (no per-device ACL)",
    anomalies: "Anomalies", no_anomalies: "No anomalies", anomaly_refused_publishes: "refused publishes", anomaly_refused_subscriptions: "refused subscriptions",
    anomaly_refused_logins: "wrong passwords", client: "Client", count: "Count", refused_logins: "Refused logins",
    mqtt_clients: "Device and bridge credentials", no_mqtt_clients: "No credentials in this home yet", issue_bridge: "Issue a credential for a bridge (e.g. Zigbee2MQTT)",
    base_topic: "Base topic", kind_device: "device", kind_bridge: "bridge", revoke: "Revoke", shown_once: "The password is shown this once: configure the device now:",
    tls_port: "TLS port", reattached: "took over the broker a previous gateway left running",
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
    // Portal polish (QA): errors by code, empty states, alert words, capability names.
    choose_placeholder: "Choose…", ignore: "Ignore", no_announcements: "No announcements", nothing_here: "Nothing here yet",
    type_first: "Type a message first", arm_anyway: "Arm anyway (bypass them)",
    err_open_sensors: "Still open: {names}. Close them, or arm anyway and bypass them until the next disarm.",
    err_wrong_pin: "Wrong PIN: please try again", err_locked_out: "Too many wrong PINs: try again in {seconds} s",
    err_no_pin: "This home has no alarm PIN yet: ask the household admin to set one", err_pin_required: "Enter your PIN",
    err_alarm_active: "The alarm is going off: disarm first, then arm again", err_pin_format: "A PIN is 4 to 8 digits",
    err_forbidden: "You may not do this", err_unavailable: "The service is not available right now: try again later",
    sev_critical: "Critical", sev_high: "High", sev_warning: "Warning", sev_info: "Info",
    alert_raised: "New", alert_notified: "Notified", alert_acknowledged: "Acknowledged", alert_resolved: "Resolved",
    akind_sos: "SOS", akind_fall: "Fall", akind_inactivity: "Inactivity", akind_missed_check_in: "Missed check-in",
    akind_missed_medication: "Missed medication", akind_intrusion: "Intrusion", akind_smoke: "Smoke", akind_gas: "Gas leak",
    akind_water_leak: "Water leak", akind_tamper: "Tamper", akind_vital_sign: "Vital signs", akind_device_offline: "Device offline",
    time: "Time", actor: "Who", action: "Action", target: "Target",
    cap_contact: "Door/window", cap_motion: "Motion", cap_occupancy: "Occupancy", cap_smoke: "Smoke", cap_gas: "Gas", cap_water_leak: "Water leak",
    cap_glass_break: "Glass break", cap_tamper: "Tamper", cap_siren: "Siren", cap_lock: "Lock", cap_sos_button: "SOS button",
    cap_fall: "Fall", cap_bed_occupancy: "In bed", cap_presence: "Presence", cap_activity: "Activity", cap_temperature: "Temperature",
    cap_humidity: "Humidity", cap_battery: "Battery", cap_power_usage: "Power", cap_energy: "Energy", cap_switch: "Switch",
    cap_light: "Light", cap_illuminance: "Light level", cap_power: "Power", cap_volume: "Volume", cap_now_playing: "Now playing",
    cap_in_bed: "In bed", cap_door: "Door", cap_leak: "Leak", cap_relay: "Switch", cap_pulse: "Pulse", cap_sos: "SOS button",
    muted: "Muted", playing_nothing: "Nothing", unit_per_min: "/min",
    call_help_q: "Call for help?", call_help_explain: "OK tells the duty desk and your family; Back cancels", call_now: "Call",
    // Community setup (manager): buildings, units, households.
    st_setup: "Community setup", st_intro: "Add a building, then units in it, then households in a unit; devices can then be approved into a household and accounts added for it.",
    st_building_name: "Building name", st_unit_name: "Unit name", st_household_name: "Household name", st_unit: "Unit",
    st_id: "Id (optional)", st_id_auto: "generated", st_id_hint: "Letters, digits or ._:@-, up to 64; leave empty for a generated one",
    st_add_building: "Add building", st_add_unit: "Add unit", st_add_household: "Add household",
    st_building_example: "e.g. Building 1", st_unit_example: "e.g. Entrance 1", st_household_example: "e.g. 101 Zhang",
    st_rename: "Rename", st_new_name: "New name", st_added: "Added", st_removed: "Removed",
    st_empty: "No buildings yet: start by adding the first one.",
    st_in_use: "Cannot remove it yet: it still has {what}. Remove or move them first.",
    st_units: "units", st_households: "households", st_devices: "devices", st_residents: "residents", st_accounts: "accounts",
    // Chinese first (issue 14): names, alert titles by key, audit sentences, validation errors.
    a_device: "a device", a_household: "a household", unattributed: "not yet known who", colon: ": ", list_sep: ", ", in_room: "{device} ({room})",
    at_sos: "SOS", at_help: "Call for help", at_fall: "Fall detected", at_smoke: "Smoke alarm", at_gas: "Gas leak", at_water_leak: "Water leak",
    at_tamper: "Device tampered with", at_intrusion: "Intrusion", at_keypad_locked: "Alarm keypad locked: repeated wrong PINs",
    at_inactivity: "No activity at home", at_missed_check_in: "No check-in today by {by} (+{grace} min)", at_check_in_reminder: "Please check in: press OK",
    at_reminder_medication: "Medication: {title}", at_reminder_appointment: "Appointment: {title}",
    at_missed_medication: "Medication not confirmed: {title} ({when})", at_missed_appointment: "Appointment not confirmed: {title} ({when})",
    at_vital_sign: "{label}: {who} {kind} {value} {unit}", at_device_offline: "Device offline",
    aud_system: "The system", aud_failed: "wrong user name or password", aud_outcome: " (not done: {outcome})", aud_in_household: " ({household})",
    aud_generic: "{actor} did “{action}”", aud_generic_target: "{actor} did “{action}” on {target}",
    aud_login: "{actor} signed in", aud_logout: "{actor} signed out", aud_token_create: "{actor} created an API token for {target}",
    aud_user_add: "{actor} added the account {target} ({role})", aud_user_role: "{actor} made {target} {role}",
    aud_user_password: "{actor} changed the password of {target}", aud_user_delete: "{actor} removed the account {target}",
    aud_user_disable: "{actor} disabled the account {target}", aud_user_enable: "{actor} enabled the account {target}",
    aud_building_add: "{actor} added the building {name}", aud_building_rename: "{actor} renamed the building {old} to {name}", aud_building_remove: "{actor} removed a building",
    aud_unit_add: "{actor} added the unit {name}", aud_unit_rename: "{actor} renamed the unit {old} to {name}", aud_unit_remove: "{actor} removed a unit",
    aud_household_add: "{actor} added the household {target}", aud_household_rename: "{actor} renamed the household {old} to {name}", aud_household_remove: "{actor} removed a household",
    aud_resident_add: "{actor} registered {name} as a resident", aud_resident_update: "{actor} changed the details of {name}", aud_resident_remove: "{actor} removed a resident",
    aud_alarm_arm: "{actor} armed the alarm ({mode})", aud_alarm_disarm: "{actor} disarmed the alarm", aud_alarm_pin: "{actor} set an alarm PIN",
    aud_device_approve: "{actor} approved a new device", aud_device_reject: "{actor} rejected a device", aud_device_ignore: "{actor} ignored a device",
    aud_device_restore: "{actor} put a device back in the inbox", aud_mqtt_client_issue: "{actor} issued the device credential {target}",
    aud_mqtt_client_revoke: "{actor} revoked the device credential {target}", aud_announcement_add: "{actor} published an announcement", aud_announcement_withdraw: "{actor} withdrew an announcement",
    aud_export_fhir: "{actor} exported health data", aud_export_household: "{actor} exported all of the household's data", aud_privacy_delete: "{actor} deleted all of the household's data",
    aud_consent_grant: "{actor} consented to share health data with {purpose}", aud_consent_withdraw: "{actor} withdrew consent to share health data with {purpose}",
    aud_health_thresholds: "{actor} changed the vital-sign thresholds", aud_alert_acknowledge: "{actor} acknowledged an alert", aud_alert_resolve: "{actor} resolved an alert",
    aud_alert_assign: "{actor} assigned an alert to {assignee}", aud_provider_key_issue: "{actor} issued a provider API key", aud_provider_key_revoke: "{actor} revoked a provider API key",
    // TV pairing and safe alarm dialogs (issue 14)
    im_ok_q: "Are you really OK?", im_ok_explain: "If you cancel, the duty desk will call you back to check. Choose \u201ckeep the alarm\u201d to go on calling for help.", keep_alarm: "No, keep the alarm", yes_im_ok: "Yes, I'm OK: cancel the alarm",
    later: "Later", alert_cancelled: "Cancelled by the resident · call back", aud_alert_cancel: "{actor} cancelled an alert (I'm OK)",
    pair_title: "Connect this TV", pair_explain: "A household admin scans this code in the Linli app, or opens the address below and types these letters:",
    pair_waiting: "Waiting for confirmation…", pair_denied: "The household admin refused this TV. Press OK for a new code.", pair_new_code: "New code",
    screens: "TVs and screens", no_screens: "No TV connected yet", pair_code: "The code on the TV", pair_confirm: "Connect this TV", pair_deny: "Not my TV",
    pair_done: "Connected: the TV shows your home in a moment", paired_at: "Connected", aud_screen_pair: "{actor} connected a TV", aud_screen_confirm: "{actor} confirmed a TV's code",
    aud_screen_deny: "{actor} refused a TV", aud_screen_revoke: "{actor} disconnected a TV", help_now: "Call for help",
  },
};

let locale = localStorage.getItem("linli.locale") || "zh-CN";

export const t = (key) => (STRINGS[locale] && STRINGS[locale][key]) || STRINGS["zh-CN"][key] || key;
export const getLocale = () => locale;
// A screen's own words, kept beside the screen: { "zh-CN": {...}, en: {...} }. A key that exists
// already keeps its words (another screen relies on them): the clash is reported, not applied.
export function addStrings(more) {
  for (const [lang, words] of Object.entries(more)) {
    const table = (STRINGS[lang] ||= {});
    for (const [key, text] of Object.entries(words)) {
      if (key in table && table[key] !== text) console.warn(`i18n: "${key}" is taken (${lang}); keeping "${table[key]}"`);
      else table[key] = text;
    }
  }
}
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

// The page chrome every signed-in page shares, in the current language: labelled elements
// (data-t), the language and sign-out buttons, the live indicator (`live`: undefined until
// the socket has answered once), and the window title.
export function translatePage(titleKey, live) {
  for (const el of document.querySelectorAll("[data-t]")) el.textContent = t(el.dataset.t);
  document.querySelector("#language").textContent = t("language");
  document.querySelector("#sign-out").textContent = t("sign_out");
  document.title = t(titleKey);
  showLive(live);
}

export function showLive(live) {
  if (live !== undefined) document.querySelector("#live").textContent = live ? `● ${t("live_on")}` : t("live_off");
}
