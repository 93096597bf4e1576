// Read-only community view: households on the left, the chosen home's devices live on the right.
const $ = (sel) => document.querySelector(sel);
let households = [];
let current = null;

const ACTIVE_WORDS = {
  contact: ["开", "关"], motion: ["有人", "无人"], occupancy: ["有人", "无人"], smoke: ["烟雾!", "正常"],
  gas: ["燃气!", "正常"], water_leak: ["漏水!", "正常"], tamper: ["被拆!", "正常"], sos_button: ["求助!", "正常"],
  fall: ["跌倒!", "正常"], bed_occupancy: ["在床", "离床"], presence: ["在家", "无人"], switch: ["开", "关"],
};

// UCUM codes as people read them.
const UNIT_LABELS = { Cel: "°C", "mm[Hg]": "mmHg", "/min": "次/分", "kW.h": "kWh", "1": "" };
const unitLabel = (unit) => (unit in UNIT_LABELS ? UNIT_LABELS[unit] : unit || "");

function formatValue(cap) {
  if (cap.value === null || cap.value === undefined) return "—";
  if (typeof cap.value === "boolean") {
    const words = ACTIVE_WORDS[cap.kind] || ["是", "否"];
    return `<span class="${cap.value ? "active" : ""}">${words[cap.value ? 0 : 1]}</span>`;
  }
  if (typeof cap.value === "object") {
    return Object.entries(cap.value).map(([k, v]) => `${escapeHtml(k)} ${escapeHtml(v)}`).join(" / ") +
      ` ${unitLabel(cap.unit)}`;
  }
  const v = typeof cap.value === "number" ? Math.round(cap.value * 100) / 100 : escapeHtml(cap.value);
  const unit = unitLabel(cap.unit);
  return unit ? `${v} ${unit}` : `${v}`;
}

function ago(ts) {
  if (!ts) return "—";
  const s = Math.max(0, Math.round(Date.now() / 1000 - ts));
  return s < 60 ? `${s} 秒前` : s < 3600 ? `${Math.round(s / 60)} 分钟前` : `${Math.round(s / 3600)} 小时前`;
}

function escapeHtml(text) {
  return String(text ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

function renderHouseholds() {
  const term = $("#filter").value.trim().toLowerCase();
  const list = $("#households");
  list.replaceChildren(...households
    .filter((h) => !term || `${h.id} ${h.name}`.toLowerCase().includes(term))
    .map((h) => {
      const li = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.id = h.id;
      button.setAttribute("aria-current", String(h.id === current));
      button.innerHTML = `${escapeHtml(h.name)} <span class="count">${h.devices_available}/${h.devices}</span>`;
      button.addEventListener("click", () => { current = h.id; renderHouseholds(); refreshDevices(); });
      li.append(button);
      return li;
    }));
}

async function refreshSummary() {
  const status = await (await fetch("/api/v1/status")).json();
  $("#summary").textContent =
    `${status.community.name} · ${status.households} 户 households · ${status.devices_available}/${status.devices} 设备在线 online · ` +
    `已接收 ${status.ingest.accepted} 条 messages`;
  households = (await (await fetch("/api/v1/households")).json()).items;
  if (!current && households.length) current = households[0].id;
  renderHouseholds();
}

async function refreshDevices() {
  if (!current) return;
  const response = await fetch(`/api/v1/households/${encodeURIComponent(current)}/devices`);
  if (!response.ok) return;
  const devices = (await response.json()).items;
  const household = households.find((h) => h.id === current);
  $("#household-title").textContent = household ? household.name : current;
  const table = $("#devices");
  table.hidden = false;
  table.tBodies[0].innerHTML = devices.map((d) => `
    <tr data-device="${escapeHtml(d.id)}">
      <td>${escapeHtml(d.name)}<br><small class="offline">${escapeHtml(d.model)}</small></td>
      <td>${escapeHtml(d.room || "")}</td>
      <td>${d.capabilities.map((c) => `${escapeHtml(c.key)}: ${formatValue(c)}`).join("<br>")}</td>
      <td class="${d.available ? "online" : "offline"}">${d.available ? "在线" : "离线"}</td>
      <td>${ago(d.last_seen)}</td>
    </tr>`).join("");
}

const SOURCE_LABELS = { mqtt: "MQTT", zeroconf: "mDNS", ssdp: "SSDP/UPnP" };

async function refreshInbox() {
  const response = await fetch("/api/v1/inbox?status=pending");
  const section = $("#inbox");
  if (!response.ok) { section.hidden = true; return; }  // discovery not running
  const inbox = await response.json();
  section.hidden = false;
  $("#inbox-count").textContent = `${inbox.total} 待确认 pending`;
  $("#inbox-items").tBodies[0].innerHTML = inbox.items.map((item) => `
    <tr data-inbox="${escapeHtml(item.id)}">
      <td>${escapeHtml(item.name || "—")}<br><small class="offline">${escapeHtml(item.category || "")}</small></td>
      <td>${escapeHtml([item.manufacturer, item.model].filter(Boolean).join(" ") || "—")}${item.firmware ? `<br><small class="offline">${escapeHtml(item.firmware)}</small>` : ""}</td>
      <td>${Object.keys(item.sources).map((s) => escapeHtml(SOURCE_LABELS[s] || s)).join(" + ")}</td>
      <td><small>${escapeHtml(item.address || "")}</small></td>
      <td>${item.profile ? escapeHtml(item.profile) : '<span class="offline">无匹配 no profile</span>'}</td>
    </tr>`).join("");
}

async function tick() {
  try { await refreshSummary(); await refreshDevices(); await refreshInbox(); }
  catch (error) { $("#summary").textContent = `网关无响应 · gateway not answering (${error})`; }
}

$("#filter").addEventListener("input", renderHouseholds);
tick();
setInterval(tick, 2000);
