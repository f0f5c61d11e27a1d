// rehab-bot's web app: the CSRF header on every htmx request, and the Mini App sign-in.
// No inline scripts anywhere (the Content-Security-Policy allows this origin's files only).
(function () {
  "use strict";
  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }
  document.addEventListener("htmx:configRequest", function (event) {
    event.detail.headers["X-CSRF-Token"] = csrfToken();
  });

  // The Mini App: Telegram opens /app#tgWebAppData=<initData>&tgWebAppVersion=...
  var status = document.getElementById("miniapp-status");
  if (!status) {
    return;
  }
  var initData = "";
  if (window.Telegram && window.Telegram.WebApp && window.Telegram.WebApp.initData) {
    initData = window.Telegram.WebApp.initData;
  } else {
    initData = new URLSearchParams(window.location.hash.slice(1)).get("tgWebAppData") || "";
  }
  // The page in the user's Telegram language (de or en), else the clinic's, as the server rendered it.
  var words = {};
  try {
    var texts = JSON.parse(status.getAttribute("data-texts") || "{}");
    var tg = window.Telegram && window.Telegram.WebApp;
    var user = tg && tg.initDataUnsafe && tg.initDataUnsafe.user;
    if (!user && initData) {
      user = JSON.parse(new URLSearchParams(initData).get("user") || "null");
    }
    var code = String((user && user.language_code) || "")
      .replace("_", "-")
      .split("-")[0]
      .toLowerCase();
    if (texts[code] && code !== document.documentElement.lang) {
      words = texts[code];
      document.documentElement.lang = code;
      document.getElementById("miniapp-title").textContent = words.title;
      status.textContent = words.checking;
    }
  } catch (e) {}
  function failed(said) {
    status.textContent = said || words.failed || status.getAttribute("data-failed");
  }
  if (!initData) {
    failed();
    return;
  }
  var body = new URLSearchParams();
  body.set("init_data", initData);
  body.set("csrf_token", csrfToken());
  // Telegram opened a page of the Mini App (a session, a check-in): go there once signed in.
  body.set("next", window.location.pathname);
  fetch("/app/signin", {
    method: "POST",
    body: body,
    credentials: "same-origin",
    headers: { Accept: "application/json" },
  })
    .then(function (response) {
      return response.json().then(function (data) {
        if (response.ok && data.next) {
          // Signed in; if the page comes back unsigned (a browser that withholds the cookie, as in a
          // third-party iframe), say so instead of signing in again and again.
          var key = "rehab-signin:" + data.next;
          var last = Number(window.sessionStorage.getItem(key) || "0");
          if (Date.now() - last < 10000) {
            failed();
            return;
          }
          window.sessionStorage.setItem(key, String(Date.now()));
          window.location.replace(data.next);
        } else {
          // 403: Telegram vouches for the user, but they are not a patient or staff member (yet): the server
          // says who the app is for and how to join, in their language.
          failed(response.status === 403 ? data.error : "");
        }
      });
    })
    .catch(failed);
})();
