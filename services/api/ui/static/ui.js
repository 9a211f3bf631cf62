// runbus dashboard glue: the CSRF header for htmx writes, and errors shown as notices.
// No inline script anywhere (the CSP forbids it): page behaviour hangs off data attributes.
"use strict";

document.addEventListener("htmx:configRequest", (event) => {
  const token = document.body.dataset.csrf;
  if (token) event.detail.headers["X-CSRF-Token"] = token;
});

// An error answer of an htmx request is an escaped fragment rendered by the server.
document.addEventListener("htmx:responseError", (event) => {
  const box = document.getElementById("notices");
  if (!box) return;
  const note = document.createElement("div");
  note.innerHTML = event.detail.xhr.responseText;
  box.prepend(note.firstElementChild || note);
  while (box.children.length > 5) box.lastElementChild.remove();
});
