// Pairs this device with a till: the link's fragment (#token) never reaches a server log; it is posted once,
// the server answers with a cookie, and the fragment is removed from the address bar and history.
"use strict";
(function () {
  const token = window.location.hash.slice(1);
  const error = document.getElementById("pair-error");
  const status = document.getElementById("pair-status");
  if (!token || !error) return;
  history.replaceState(null, "", window.location.pathname);
  const csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  if (status) status.textContent = "Opening the till…";
  fetch("/till/pair", {
    method: "POST", credentials: "same-origin",
    headers: { "content-type": "application/json", "x-csrf-token": csrf }, body: JSON.stringify({ token }),
  }).then(async (response) => {
    if (response.ok) { window.location.replace("/till"); return; }
    const body = await response.json().catch(() => ({}));
    error.textContent = body.error || "This till link could not be opened.";
    error.hidden = false;
    if (status) status.textContent = "";
  }).catch(() => {
    error.textContent = "The server could not be reached. Check the connection and open the link again.";
    error.hidden = false;
  });
})();
