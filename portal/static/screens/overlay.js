// The TV overlay: the message from the page's own query, in large type, coloured by its level.
// Everything is set with textContent, so a message is shown as written and can never become markup.
const LEVELS = new Set(["info", "warning", "alarm"]);
const query = new URLSearchParams(location.search);
const text = (query.get("text") || "").slice(0, 500);
const title = (query.get("title") || "").slice(0, 100);
const level = LEVELS.has(query.get("level")) ? query.get("level") : "info";

const overlay = document.querySelector(".overlay");
const heading = overlay.querySelector("h1");
overlay.className = `overlay level-${level}`;
overlay.querySelector("p").textContent = text;
if (title) {
  heading.textContent = title;
  heading.hidden = false;
  document.title = title;
}
overlay.hidden = false;
