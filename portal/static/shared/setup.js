import { api } from "/static/shared/api.js";

const token = new URLSearchParams(location.hash.slice(1)).get("token") || "";
document.querySelector("#setup").addEventListener("submit", async (event) => {
  event.preventDefault();
  const message = document.querySelector("#message");
  try {
    await api("/api/v1/auth/setup", {
      method: "POST",
      body: {
        token,
        name: document.querySelector("#name").value,
        password: document.querySelector("#password").value,
        ...(document.querySelector("#display").value ? { display_name: document.querySelector("#display").value } : {}),
      },
    });
    history.replaceState(null, "", "/setup");
    location.href = "/manage";
  } catch (error) {
    message.textContent = error.message;
  }
});
