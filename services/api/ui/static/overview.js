// The overview's live badge: whether the page's event stream is connected right now.
// The htmx SSE extension reconnects by itself; this only says so.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const root = document.getElementById("overview");
  const badge = document.getElementById("overview-live");
  if (!root || !badge || root.dataset.live !== "sse") return;
  const show = (state, text) => {
    badge.classList.remove("on", "paused");
    badge.classList.add(state);
    badge.textContent = text;
    badge.dataset.state = state;
  };
  root.addEventListener("htmx:sseOpen", () => show("on", "live"));
  root.addEventListener("htmx:sseError", () => show("paused", "reconnecting"));
});
