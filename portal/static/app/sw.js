// The phone app's service worker: the page shell works offline; data always comes from the network.
const SHELL = "linli-app-v1";
const FILES = ["/app", "/static/shared/base.css", "/static/app/app.css", "/static/app/app.js", "/static/shared/api.js",
  "/static/shared/i18n.js", "/static/shared/charts.js", "/static/app/icon.svg"];
self.addEventListener("install", (event) => event.waitUntil(caches.open(SHELL).then((c) => c.addAll(FILES)).catch(() => {})));
self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.pathname.startsWith("/api/")) return;
  event.respondWith(fetch(event.request).catch(() => caches.match(event.request)));
});
