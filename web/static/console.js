// Live updates without a build step: an element with data-live="PATH" is refreshed from PATH?partial=1
// every few seconds (server-rendered, escaped HTML), while the page is visible and "live" is not unticked.
// A refresh that is sent to the login page (the session expired or was ended) takes the browser there.
"use strict";
(function () {
  const PERIOD_MS = 3000;
  function refresh(el) {
    const box = document.getElementById("live");
    if (document.hidden || (box && !box.checked)) return;
    const url = new URL(el.dataset.live, window.location.href);
    new URLSearchParams(window.location.search).forEach((v, k) => url.searchParams.set(k, v));
    url.searchParams.set("partial", "1");
    fetch(url, { credentials: "same-origin", redirect: "manual" })
      .then((r) => {
        if (r.type === "opaqueredirect" || r.status === 401) {
          const here = window.location.pathname + window.location.search;
          window.location.assign("/login?next=" + encodeURIComponent(here));
          return Promise.reject(r.status);
        }
        return r.ok ? r.text() : Promise.reject(r.status);
      })
      .then((html) => { el.innerHTML = html; })
      .catch(() => {});
  }
  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll("[data-live]").forEach((el) => setInterval(() => refresh(el), PERIOD_MS));
  });
})();
