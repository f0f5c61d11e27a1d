// Telegram's theme for the patients' Mini App: light or dark, and its colours as CSS variables
// (miniapp.css uses them). It runs in <head>, before the page is drawn, not with the deferred
// miniapp.js: applied after the first paint, the page flashed in the browser's own scheme, and Pico's
// 0.2 s colour transitions then ran from that scheme's link colours to the right ones.
(function () {
  "use strict";
  var tg = window.Telegram && window.Telegram.WebApp;
  var root = document.documentElement;
  if (!tg) {
    return;
  }
  function applyTheme() {
    var params = tg.themeParams || {};
    Object.keys(params).forEach(function (key) {
      if (/^#[0-9a-fA-F]{3,8}$/.test(String(params[key]))) {
        root.style.setProperty("--tg-" + key.replace(/_/g, "-"), params[key]);
      }
    });
    if (tg.colorScheme === "dark" || tg.colorScheme === "light") {
      root.setAttribute("data-theme", tg.colorScheme);
    }
    root.classList.add("in-telegram");
  }
  applyTheme();
  // A theme changed in Telegram while a page is open recolours it at once: without this, Pico's 0.2 s
  // colour transitions ran the links from the old scheme's colour to the new one, below the contrast
  // ratio meanwhile (the light theme's dark blue on the dark background).
  function themeChanged() {
    root.classList.add("theme-switching");
    applyTheme();
    void document.body.offsetHeight; // the new colours are computed while transitions are off
    window.requestAnimationFrame(function () {
      window.requestAnimationFrame(function () {
        root.classList.remove("theme-switching");
      });
    });
  }
  if (tg.onEvent) {
    tg.onEvent("themeChanged", themeChanged);
  }
})();
