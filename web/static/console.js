// Live updates without a build step: an element with data-live="PATH" is refreshed from PATH?partial=1
// every few seconds (server-rendered, escaped HTML), while the page is visible and "live" is not unticked.
"use strict";
(function () {
  const PERIOD_MS = 3000;
  function refresh(el) {
    const box = document.getElementById("live");
    if (document.hidden || (box && !box.checked)) return;
    const url = new URL(el.dataset.live, window.location.href);
    new URLSearchParams(window.location.search).forEach((v, k) => url.searchParams.set(k, v));
    url.searchParams.set("partial", "1");
    fetch(url, { credentials: "same-origin" })
      .then((r) => (r.ok ? r.text() : Promise.reject(r.status)))
      .then((html) => { el.innerHTML = html; })
      .catch(() => {});
  }
  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll("[data-live]").forEach((el) => setInterval(() => refresh(el), PERIOD_MS));
  });
})();
