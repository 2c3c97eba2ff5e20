// The till's service worker: the app shell (styles, scripts, icons, sound) from the cache, the pages from
// the network with the last copy as a fallback, and never an API answer from the cache.
"use strict";
const CACHE = "tipsplit-shell-v3";
const SHELL = [
  "/static/style.css", "/static/sale.js", "/static/till.js", "/static/till-pair.js", "/static/htmx.min.js",
  "/static/local-time.js",
  "/static/paid.wav",
  "/static/icons/icon-192.png", "/static/icons/icon-512.png", "/manifest.webmanifest",
];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((names) => Promise.all(names.filter((n) => n !== CACHE).map((n) => caches.delete(n))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== self.location.origin) return;
  if (request.mode === "navigate" && url.pathname === "/till") {
    event.respondWith(
      fetch(request)
        .then((response) => {
          if (response.ok) { const copy = response.clone(); caches.open(CACHE).then((c) => c.put("/till", copy)); }
          return response;
        })
        .catch(() => caches.match("/till").then((cached) => cached || Response.error())),
    );
    return;
  }
  if (SHELL.includes(url.pathname)) {
    event.respondWith(
      caches.match(request).then((cached) => {
        const fresh = fetch(request).then((response) => {
          if (response.ok) { const copy = response.clone(); caches.open(CACHE).then((c) => c.put(request, copy)); }
          return response;
        });
        return cached || fresh;
      }),
    );
  }
});
