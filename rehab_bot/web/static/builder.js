// The programme builder: nothing a therapist typed is lost without them being asked.
// - "Start" (a fresh starting point) asks first when the draft has unsaved changes;
// - leaving the page with unsaved changes asks the browser's "Leave site?" question (beforeunload).
(function () {
  "use strict";
  var form = document.getElementById("builder");
  if (!form) {
    return;
  }
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
  document.addEventListener("htmx:afterSwap", function () {
    var swapped = document.getElementById("builder");
    if (swapped && swapped.getAttribute("data-unsaved") === "1") {
      unsaved = true; // a row added or removed, a template saved: the patient's plan is still not saved
    }
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

  document.addEventListener("submit", function (event) {
    if (event.target && event.target.id === "builder") {
      leaving = true; // a save, or a refused one shown again (then unsaved once more)
    }
  });
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) {
      leaving = false; // back from the answer to a save (the page restored as it was)
    }
  });
})();
