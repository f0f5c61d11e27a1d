// rehab-bot demo: keep keyboard focus in the chat when it is redrawn.
// The chat log is redrawn after a button press and whenever a message arrives (it polls every second),
// and each redraw replaces every button in it. Focus that was in the log stays there: on the same button
// (the same message, row and column) if it is still drawn, so a keyboard user's Enter still presses it;
// otherwise (a pressed button that is gone) on the chat log itself (tabindex 0), so Tab reaches the new
// buttons, not the page's top.
function focusKey(element) {
  return element && element.classList && element.classList.contains("kb") ? element.getAttribute("hx-vals") : null;
}
document.addEventListener("htmx:beforeSwap", (event) => {
  const log = event.target;
  if (!log.classList || !log.classList.contains("log")) return;
  delete log.dataset.focusKey;
  delete log.dataset.hadFocus;
  if (log !== document.activeElement && log.contains(document.activeElement)) {
    log.dataset.hadFocus = "1";
    const key = focusKey(document.activeElement);
    if (key) log.dataset.focusKey = key;
  }
});
document.addEventListener("htmx:afterSwap", (event) => {
  const log = event.target;
  if (!log.dataset || !log.dataset.hadFocus) return;
  const key = log.dataset.focusKey;
  delete log.dataset.focusKey;
  delete log.dataset.hadFocus;
  const same = key && Array.from(log.querySelectorAll("button.kb")).find((button) => focusKey(button) === key);
  if (same) same.focus({ preventScroll: true });
  else if (!document.activeElement || document.activeElement === document.body) log.focus({ preventScroll: true });
});
