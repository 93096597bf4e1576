import { api } from "/static/shared/api.js";
import { t } from "/static/shared/i18n.js";

for (const el of document.querySelectorAll("[data-t]")) el.textContent = t(el.dataset.t);
const home = (user) => (["manager", "installer"].includes(user.role) ? "/manage" : "/app");

document.querySelector("#login").addEventListener("submit", async (event) => {
  event.preventDefault();
  const message = document.querySelector("#message");
  message.textContent = "";
  try {
    const { user } = await api("/api/v1/auth/login", {
      method: "POST",
      body: { name: document.querySelector("#name").value, password: document.querySelector("#password").value },
    });
    const next = new URLSearchParams(location.search).get("next");
    location.href = next && next.startsWith("/") && !next.startsWith("//") ? next : home(user);
  } catch (error) {
    message.textContent = error.code === "invalid_credentials" ? t("wrong_login") : error.message;
  }
});
