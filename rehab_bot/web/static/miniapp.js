// The patients' Mini App inside Telegram (its theme is miniapp-theme.js, in <head>): BackButton, MainButton, haptics, the exercise player,
// the progress chart. Telegram's own script (vendor/telegram/telegram-web-app.js) loads first; outside
// Telegram (a plain browser) every Telegram call is skipped and the pages work as plain forms.
(function () {
  "use strict";
  var tg = window.Telegram && window.Telegram.WebApp;

  if (tg) {
    try {
      tg.ready();
      tg.expand();
    } catch (e) {}
  }

  // --- BackButton: every page but the Mini App's home goes back to it (not for a patient still enrolling,
  // data-enrolling: the home page is not theirs yet; Telegram's own close button ends the app).
  if (tg && tg.BackButton) {
    var home = !document.body.hasAttribute("data-enrolling");
    if (home && window.location.pathname !== "/app/home" && window.location.pathname !== "/app") {
      tg.BackButton.onClick(function () {
        window.location.assign("/app/home");
      });
      tg.BackButton.show();
    } else {
      tg.BackButton.hide();
    }
  }

  // --- haptic feedback when a session or check-in is saved (or a red flag shown).
  var haptic = document.querySelector("[data-haptic]");
  if (haptic && tg && tg.HapticFeedback) {
    tg.HapticFeedback.notificationOccurred(haptic.getAttribute("data-haptic"));
  }

  // --- MainButton: submits the page's main form once it is on screen.
  function mainButtonFor(form) {
    if (!tg || !tg.MainButton || !form) {
      return;
    }
    tg.MainButton.setText(form.getAttribute("data-main-text") || "OK");
    tg.MainButton.onClick(function () {
      if (form.reportValidity()) {
        form.requestSubmit();
      }
    });
  }
  var answerForm = document.getElementById("answer-form");
  if (answerForm) {
    mainButtonFor(answerForm);
    tg && tg.MainButton && tg.MainButton.show();
  }

  // --- the exercise player: one card at a time, Back and Next, hold timer, repetition and set counter.
  var player = document.getElementById("player");
  if (player) {
    var steps = Array.prototype.slice.call(player.querySelectorAll("[data-step]"));
    var nav = player.querySelector(".app-steps");
    var back = player.querySelector("[data-back]");
    var next = player.querySelector("[data-next]");
    var position = player.querySelector("[data-position]");
    var finishForm = document.getElementById("finish-form");
    var current = 0;
    // The card on screen survives a reload of the page (the Mini App menu's Reload, a page the webview reloads):
    // kept for this tab only, so a session opened afresh from the chat starts at its first card.
    var remembered = "rehab-player:" + window.location.pathname;
    function remember(index) {
      try {
        window.sessionStorage.setItem(remembered, String(index));
      } catch (e) {}
    }
    function recalled() {
      try {
        return parseInt(window.sessionStorage.getItem(remembered) || "0", 10) || 0;
      } catch (e) {
        return 0;
      }
    }
    if (finishForm) {
      mainButtonFor(finishForm);
    }
    // The finish card's answers outlive a sign-in. A Save sent after the web session ended ([web]
    // idle_minutes: a long session played without a request) comes back as the sign-in page, which opens
    // this page again; one sent after Telegram's initData is too old to sign in with is repeated from the
    // chat's button, in a new webview. Either way the answers are filled in again and the patient is told
    // to tap Save: nothing is recorded without it. They are kept on this device under the page's address
    // until the session shows as recorded, for at most KEEP_MS.
    var KEEP_MS = 12 * 3600 * 1000;
    var keptKey = "rehab-finish:" + window.location.pathname;
    var store = null;
    try {
      store = window.localStorage;
      for (var i = store.length - 1; i >= 0; i--) {
        var key = store.key(i);
        if (key && key.indexOf("rehab-finish:") === 0) {
          var at = 0;
          try {
            at = Number((JSON.parse(store.getItem(key) || "{}") || {}).at) || 0;
          } catch (e) {} // unreadable: removed as too old
          if (Date.now() - at > KEEP_MS || (key === keptKey && !finishForm)) {
            store.removeItem(key); // too old, or this session is recorded (or closed) now
          }
        }
      }
    } catch (e) {
      store = null;
    }
    var restored = false;
    if (finishForm && store) {
      try {
        var kept = JSON.parse(store.getItem(keptKey) || "null");
        var answers = kept && Array.isArray(kept.answers) ? kept.answers : [];
        finishForm.querySelectorAll('input[type="radio"]').forEach(function (radio) {
          answers.forEach(function (pair) {
            if (radio.name === pair[0] && radio.value === pair[1]) {
              radio.checked = true;
              restored = true;
            }
          });
        });
      } catch (e) {}
      finishForm.addEventListener("submit", function () {
        var answers = [];
        finishForm.querySelectorAll('input[type="radio"]:checked').forEach(function (radio) {
          answers.push([radio.name, radio.value]);
        });
        try {
          store.setItem(keptKey, JSON.stringify({ at: Date.now(), answers: answers }));
        } catch (e) {}
      });
      var keptNote = document.getElementById("answers-kept");
      if (restored && keptNote) {
        keptNote.hidden = false;
      }
    }
    // What to stop when the patient leaves a card: its hold timer (filled in below).
    var leaving = [];
    function show(index) {
      leaving.forEach(function (stop) {
        stop();
      });
      current = Math.max(0, Math.min(index, steps.length - 1));
      steps.forEach(function (step, i) {
        step.hidden = i !== current;
      });
      back.disabled = current === 0;
      next.hidden = current === steps.length - 1;
      position.textContent = current + 1 + " / " + steps.length;
      remember(current);
      var onFinish = steps[current] && steps[current].id === "finish";
      if (tg && tg.MainButton && finishForm) {
        onFinish ? tg.MainButton.show() : tg.MainButton.hide();
      }
      if (tg && tg.HapticFeedback) {
        tg.HapticFeedback.selectionChanged();
      }
    }
    if (steps.length > 1 && !document.getElementById("finished")) {
      nav.hidden = false;
      // Back and Next open the card at its top (a long card would otherwise open where the last one was
      // scrolled to, part-way down), its heading focused for a screen reader.
      function toTop() {
        steps[current].scrollIntoView({ block: "start", behavior: "instant" });
        steps[current].querySelector("h2").focus({ preventScroll: true });
      }
      back.addEventListener("click", function () {
        show(current - 1);
        toTop();
      });
      next.addEventListener("click", function () {
        show(current + 1);
        toTop();
      });
      steps.forEach(function (step) {
        var heading = step.querySelector("h2");
        if (heading) {
          heading.setAttribute("tabindex", "-1");
        }
      });
      show(restored ? steps.length - 1 : recalled()); // answers filled in again: on their card
    }

    player.querySelectorAll("[data-timer]").forEach(function (box) {
      var seconds = parseInt(box.getAttribute("data-timer"), 10);
      var button = box.querySelector("[data-timer-start]");
      var left = box.querySelector("[data-timer-left]");
      var said = box.querySelector("[data-timer-said]");
      var timer = null;
      // Stopped and set back to the full hold when the patient leaves the card.
      function stop() {
        if (timer) {
          clearInterval(timer);
          timer = null;
        }
        left.textContent = seconds + " s";
        said.textContent = "";
      }
      leaving.push(stop);
      button.addEventListener("click", function () {
        var remaining = seconds;
        stop();
        said.textContent = box.getAttribute("data-said-start");
        timer = setInterval(function () {
          remaining -= 1;
          left.textContent = remaining + " s";
          if (remaining <= 0) {
            clearInterval(timer);
            timer = null;
            said.textContent = box.getAttribute("data-said-done");
            if (tg && tg.HapticFeedback) {
              tg.HapticFeedback.notificationOccurred("success");
            }
          } else if (remaining % 10 === 0) {
            said.textContent = box.getAttribute("data-said-left").replace("%s", String(remaining));
          }
        }, 1000);
      });
    });

    player.querySelectorAll("[data-reps]").forEach(function (box) {
      var reps = parseInt(box.getAttribute("data-reps"), 10);
      var sets = parseInt(box.getAttribute("data-sets"), 10);
      var repOut = box.querySelector("[data-rep]");
      var setOut = box.querySelector("[data-set]");
      var rep = 0;
      var set = 1;
      box.querySelector("[data-rep-add]").addEventListener("click", function () {
        if (rep < reps) {
          rep += 1;
        } else if (set < sets) {
          set += 1;
          rep = 1;
        }
        repOut.textContent = String(rep);
        setOut.textContent = String(set);
        // The last repetition of the last set: say that all sets are done (the counter goes no further).
        box.querySelector("[data-all-done]").hidden = !(rep === reps && set === sets);
        if (tg && tg.HapticFeedback) {
          tg.HapticFeedback.impactOccurred("light");
        }
      });
    });
  }

  // --- the message form: a photo over the limit ([care] photo_max_bytes, rendered by the server into
  // data-photo-max) is refused here, before sending, so the typed text stays in the box.
  document.querySelectorAll("form[data-photo-max]").forEach(function (form) {
    var max = parseInt(form.getAttribute("data-photo-max"), 10);
    var input = form.querySelector("input[type=file]");
    var note = form.querySelector("#photo-error");
    if (!input || !note || !(max > 0)) {
      return;
    }
    function tooLarge() {
      var file = input.files && input.files[0];
      var over = !!file && file.size > max;
      note.textContent = over ? form.getAttribute("data-photo-too-large") : "";
      note.hidden = !over;
      return over;
    }
    input.addEventListener("change", tooLarge);
    form.addEventListener("submit", function (event) {
      if (tooLarge()) {
        event.preventDefault();
        input.focus();
      }
    });
  });

  // --- the progress chart (uPlot, vendored): days from the first day on the x axis.
  var chart = document.getElementById("progress-chart");
  if (chart && window.uPlot) {
    var data = JSON.parse(chart.getAttribute("data-series"));
    var style = getComputedStyle(document.body);
    var ink = style.color;
    var width = Math.max(280, chart.clientWidth || 320);
    new window.uPlot(
      {
        width: width,
        height: 260,
        scales: { x: { time: false }, pct: { range: [0, 100] }, y: { range: [0, 10] } },
        axes: [
          { label: chart.getAttribute("data-label-day"), stroke: ink },
          { scale: "y", stroke: ink },
          { scale: "pct", side: 1, stroke: ink, grid: { show: false } },
        ],
        series: [
          { label: chart.getAttribute("data-label-day") },
          { label: chart.getAttribute("data-label-pain"), scale: "y", stroke: "#c0392b", width: 2, spanGaps: true },
          { label: chart.getAttribute("data-label-mood"), scale: "y", stroke: "#2471a3", width: 2, spanGaps: true },
          {
            label: chart.getAttribute("data-label-sessions"),
            scale: "pct",
            stroke: "#1e8449",
            width: 1,
            dash: [4, 4],
            spanGaps: true,
          },
        ],
      },
      [data.day, data.pain, data.mood, data.sessions],
      chart
    );
  }
})();
