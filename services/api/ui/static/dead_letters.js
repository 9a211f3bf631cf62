// The dead-letter console's live tail: pause and resume, and "select every row".
// Rows arrive (htmx SSE extension) in the hidden #dl-incoming buffer, newest first. While live
// they move straight to the top of the table; while paused they stay in the buffer and are only
// counted; resume moves them all up, in order. No inline script (the CSP forbids it).
"use strict";

(() => {
  const state = { paused: false };

  function pendingRows() {
    const buffer = document.getElementById("dl-incoming");
    return buffer ? Array.from(buffer.children) : [];
  }

  function showCount() {
    const note = document.getElementById("dl-pending");
    if (!note) return;
    const count = pendingRows().length;
    note.dataset.count = String(count);
    note.textContent = state.paused && count ? `${count} new while paused` : "";
  }

  function flush() {
    const table = document.getElementById("dl-rows");
    if (!table || state.paused) return showCount();
    // The buffer is newest first: prepend oldest first so the newest ends on top.
    for (const row of pendingRows().reverse()) {
      row.classList.add("dl-fresh");
      table.prepend(row);
    }
    const empty = document.getElementById("dl-empty");
    if (empty && table.children.length) empty.remove();
    showCount();
  }

  function setPaused(paused) {
    state.paused = paused;
    const button = document.getElementById("dl-pause");
    const line = document.getElementById("dl-live-state");
    const word = document.getElementById("dl-live-word");
    if (button) {
      button.textContent = paused ? "resume" : "pause";
      button.setAttribute("aria-pressed", String(paused));
    }
    if (line) {
      line.classList.toggle("on", !paused);
      line.classList.toggle("paused", paused);
    }
    if (word) word.textContent = paused ? "paused" : "live";
    flush();
  }

  function wire(root) {
    const buffer = root.querySelector ? root.querySelector("#dl-incoming") : null;
    if (buffer && !buffer.dataset.watched) {
      buffer.dataset.watched = "1";
      new MutationObserver(flush).observe(buffer, { childList: true });
      setPaused(false);
    }
    const pause = root.querySelector ? root.querySelector("#dl-pause") : null;
    if (pause && !pause.dataset.wired) {
      pause.dataset.wired = "1";
      pause.addEventListener("click", () => setPaused(!state.paused));
    }
    const all = root.querySelector ? root.querySelector("#dl-all") : null;
    if (all && !all.dataset.wired) {
      all.dataset.wired = "1";
      all.addEventListener("change", () => {
        for (const box of document.querySelectorAll("#dl-rows input[name=id]")) box.checked = all.checked;
      });
    }
  }

  // htmx:load fires for the page and for every swapped-in section (a filter change).
  document.addEventListener("htmx:load", (event) => wire(event.detail.elt));
  document.addEventListener("DOMContentLoaded", () => wire(document));
})();
