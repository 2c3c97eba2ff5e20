// Times in the viewer's own time zone; the receipt's print and share buttons.
"use strict";
(function () {
  function localTimes(root) {
    root.querySelectorAll("time.local").forEach((el) => {
      const when = new Date(el.getAttribute("datetime"));
      if (!isNaN(when)) el.textContent = when.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
    });
  }
  localTimes(document);
  document.addEventListener("htmx:afterSwap", (event) => localTimes(event.target));
  const print = document.getElementById("print");
  if (print) print.addEventListener("click", () => window.print());
  const share = document.getElementById("share");
  if (share) {
    share.addEventListener("click", async () => {
      const url = window.location.href.split("?")[0];
      try {
        if (navigator.share) { await navigator.share({ title: document.title, url }); return; }
        await navigator.clipboard.writeText(url);
        share.textContent = "Link copied";
      } catch (e) { window.prompt("Copy this link", url); }
    });
  }
})();
