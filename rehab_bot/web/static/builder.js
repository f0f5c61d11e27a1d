// The programme builder: nothing a therapist typed is lost without them being asked.
// - "Start" (a fresh starting point) asks first when the draft has unsaved changes;
// - leaving the page with unsaved changes asks the browser's "Leave site?" question (beforeunload);
// - a save keeps the draft in this tab's sessionStorage until the builder shows again: when the session
//   had ended (401), the builder opened after signing in fills the draft in (an edit, never a save) and
//   says so. The key names the staff member and the patient (data-draft-key).
(function () {
  "use strict";
  var form = document.getElementById("builder");
  if (!form) {
    return;
  }
  var key = "rehab-builder-draft:" + form.getAttribute("data-draft-key");
  var unsaved = form.getAttribute("data-unsaved") === "1"; // a posted draft shown again
  var leaving = false; // a save or a confirmed Start: the browser need not ask again

  function inBuilder(element) {
    return element && element.closest && element.closest("#builder");
  }
  function changed(event) {
    if (inBuilder(event.target)) {
      unsaved = true;
    }
  }
  document.addEventListener("input", changed);
  document.addEventListener("change", changed);
  // An edit (a row moved, added or removed, a session or phase added or removed) swaps the builder in anew,
  // so the focus would fall back to the page and a keyboard user would tab through it all again. It goes:
  // - after Move up/down, to the same button of the moved exercise in its new place (else its other one);
  // - after Add exercise, to the new exercise's choice; after Add a different session or Add phase, to the
  //   first field of the new one;
  // - after a removal, to the Add button of the session (or the phase, or the builder) it was in.
  var edit = null;
  document.addEventListener("htmx:beforeRequest", function (event) {
    var value = (event.detail.elt && event.detail.elt.getAttribute && event.detail.elt.getAttribute("value")) || "";
    var found = /^([a-z]+-[a-z]+)(?::(\d+))?(?::(\d+))?(?::(\d+))?$/.exec(value);
    edit = found ? { verb: found[1], at: [found[2], found[3], found[4]].filter(Boolean).map(Number) } : null;
  });
  function phaseOf(builder, pi) {
    return builder.querySelector('fieldset.phase[data-phase="' + pi + '"]');
  }
  function sessionOf(builder, pi, si) {
    var phase = phaseOf(builder, pi);
    return phase && phase.querySelector('article.session[data-session="' + si + '"]');
  }
  function target(builder, e) {
    var at = e.at;
    if (e.verb === "item-up" || e.verb === "item-down") {
      var way = e.verb.slice(5);
      var other = way === "up" ? "down" : "up";
      var row = at[0] + ":" + at[1] + ":" + (at[2] + (way === "up" ? -1 : 1));
      return (
        builder.querySelector('button[value="item-' + way + ":" + row + '"]') ||
        builder.querySelector('button[value="item-' + other + ":" + row + '"]')
      );
    }
    if (e.verb === "add-item") {
      var items = sessionOf(builder, at[0], at[1]);
      var all = items ? items.querySelectorAll(".item select") : [];
      return all.length ? all[all.length - 1] : null;
    }
    if (e.verb === "remove-item") {
      return builder.querySelector('button[value="add-item:' + at[0] + ":" + at[1] + '"]');
    }
    if (e.verb === "add-session") {
      var sessions = phaseOf(builder, at[0]);
      var list = sessions ? sessions.querySelectorAll("article.session") : [];
      return list.length ? list[list.length - 1].querySelector("button, select, input") : null;
    }
    if (e.verb === "remove-session") {
      return builder.querySelector('button[value="add-session:' + at[0] + '"]');
    }
    if (e.verb === "add-phase") {
      var phases = builder.querySelectorAll("fieldset.phase");
      return phases.length ? phases[phases.length - 1].querySelector("input") : null;
    }
    if (e.verb === "remove-phase") {
      return builder.querySelector('button[value="add-phase"]');
    }
    return null;
  }
  document.addEventListener("htmx:afterSwap", function () {
    var swapped = document.getElementById("builder");
    if (swapped && swapped.getAttribute("data-unsaved") === "1") {
      unsaved = true; // a row added or removed, a template saved: the patient's plan is still not saved
    }
    var focus = swapped && edit ? target(swapped, edit) : null;
    if (focus) {
      focus.focus();
    }
    edit = null;
  });

  var start = document.getElementById("start-form");
  if (start) {
    start.addEventListener("submit", function (event) {
      if (unsaved && !window.confirm(start.getAttribute("data-confirm"))) {
        event.preventDefault();
        return;
      }
      leaving = true;
    });
  }

  window.addEventListener("beforeunload", function (event) {
    if (unsaved && !leaving) {
      event.preventDefault();
      event.returnValue = ""; // older browsers ask only with a returnValue
    }
  });

  function draftOf(builder, submitter) {
    var data = new URLSearchParams(new FormData(builder, submitter || undefined));
    data.delete("csrf_token");
    data.delete("action");
    return data;
  }
  document.addEventListener("submit", function (event) {
    var builder = event.target;
    if (!builder || builder.id !== "builder") {
      return;
    }
    leaving = true;
    try {
      window.sessionStorage.setItem(key, draftOf(builder, event.submitter).toString());
    } catch (error) {
      // storage full or refused: the save goes ahead as without this page's help
    }
  });
  // A row added, a preview or a template after the session ended: htmx shows nothing for a 401, so say it,
  // and keep the draft as a save would.
  document.addEventListener("htmx:responseError", function (event) {
    var builder = document.getElementById("builder");
    if (event.detail.xhr.status !== 401 || !builder) {
      return;
    }
    try {
      window.sessionStorage.setItem(key, draftOf(builder).toString());
    } catch (error) {
      // storage full or refused: the notice still says to sign in
    }
    document.getElementById("signed-out").hidden = false;
  });
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) {
      leaving = false; // back from the answer to a save (the page restored as it was)
    }
  });

  var kept = window.sessionStorage.getItem(key);
  window.sessionStorage.removeItem(key);
  var fresh = !unsaved && new URLSearchParams(window.location.search).get("saved") !== "1";
  if (!kept || !fresh) {
    return; // saved, or the draft is shown by the server (a refused save): nothing to fill in
  }
  // The builder opened again after a save that did not arrive (the session had ended): fill the draft in
  // through the edit endpoint, which checks the staff member's rights and saves nothing.
  var body = new URLSearchParams(kept);
  var meta = document.querySelector('meta[name="csrf-token"]');
  body.set("csrf_token", meta ? meta.getAttribute("content") : "");
  body.set("action", "");
  fetch(form.getAttribute("action").replace(/\/save$/, "/edit"), {
    method: "POST",
    body: body,
    credentials: "same-origin",
    headers: { "HX-Request": "true" },
  })
    .then(function (response) {
      return response.ok ? response.text() : Promise.reject(response.status);
    })
    .then(function (html) {
      var current = document.getElementById("builder");
      current.outerHTML = html;
      var restored = document.getElementById("builder");
      if (window.htmx) {
        window.htmx.process(restored);
      }
      unsaved = true;
      document.getElementById("draft-restored").hidden = false;
    })
    .catch(function () {
      window.sessionStorage.setItem(key, kept); // kept for the next time the builder opens
    });
})();
