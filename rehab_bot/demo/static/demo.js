// rehab-bot demo: keep keyboard focus in the chat after a button press.
// A pressed inline button is replaced when the chat is redrawn; without this the focus would fall
// back to the top of the page. The chat log (tabindex 0) takes it instead, so Tab reaches the new buttons.
document.addEventListener("htmx:beforeRequest", (event) => {
  const log = event.target.closest && event.target.closest(".log");
  if (log && event.target !== log) log.dataset.refocus = "1";
});
document.addEventListener("htmx:afterSwap", (event) => {
  const log = event.target;
  if (!log.dataset || !log.dataset.refocus) return;
  if (!document.activeElement || document.activeElement === document.body) {
    delete log.dataset.refocus;
    log.focus({ preventScroll: true });
  }
});
