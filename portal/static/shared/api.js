// The portal API from a page: the session cookie rides along; changes carry the CSRF token.
const csrf = () => (document.cookie.match(/(?:^|; )linli_csrf=([^;]*)/) || [])[1] || "";

export class ApiError extends Error {
  constructor(status, code, message, data) {
    super(message);
    this.status = status;
    this.code = code;
    this.data = data || {};
  }
}

export async function api(path, { method = "GET", body, query } = {}) {
  const url = new URL(path, location.origin);
  for (const [k, v] of Object.entries(query || {})) if (v !== undefined && v !== null && v !== "") url.searchParams.set(k, v);
  const headers = { Accept: "application/json" };
  if (method !== "GET") headers["X-CSRF-Token"] = decodeURIComponent(csrf());
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: "same-origin" });
  const data = await response.json().catch(() => ({}));
  if (response.status === 401 && !path.startsWith("/api/v1/auth/")) {
    location.href = `/login?next=${encodeURIComponent(location.pathname)}`;
  }
  if (!response.ok) {
    const error = data.error || {};
    throw new ApiError(response.status, error.code || "error", error.message || response.statusText, error);
  }
  return data;
}

// The live-event WebSocket; reconnects with backoff, calls onMessage(message) for each event.
export function live(onMessage, onState = () => {}) {
  let delay = 500;
  let socket;
  const open = () => {
    socket = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/api/v1/ws`);
    socket.onopen = () => { delay = 500; onState(true); };
    socket.onmessage = (event) => { try { onMessage(JSON.parse(event.data)); } catch (e) { console.error(e); } };
    socket.onclose = () => { onState(false); setTimeout(open, delay); delay = Math.min(delay * 2, 15000); };
  };
  open();
  return () => socket && socket.close();
}

export function escapeHtml(text) {
  return String(text ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

// Build elements without innerHTML: h("button", {class: "x", onclick: fn}, "text", child)
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const child of children.flat()) if (child !== null && child !== undefined && child !== false) el.append(child instanceof Node ? child : String(child));
  return el;
}
