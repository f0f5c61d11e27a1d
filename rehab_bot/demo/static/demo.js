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

// Reply to a message, as Telegram's swipe or Reply does: ↩ under a message names it above the composer, and
// the next text sent from that chat answers it (the page's reply_to); ✕ or a sent message ends it.
function replyState(form, messageId, quote) {
  form.elements.reply_to.value = messageId || "";
  const shown = form.querySelector(".replying");
  shown.querySelector("q").textContent = quote || "";
  shown.hidden = !messageId;
}
document.addEventListener("click", (event) => {
  const reply = event.target.closest && event.target.closest("a.reply-to");
  const cancel = event.target.closest && event.target.closest("button.cancel-reply");
  if (reply) {
    event.preventDefault(); // the link leads to the message field; the script also says what it answers
    const form = reply.closest(".phone").querySelector("form.composer");
    replyState(form, reply.dataset.message, reply.dataset.quote);
    form.elements.text.focus();
  } else if (cancel) {
    const form = cancel.closest("form.composer");
    replyState(form, "", "");
    form.elements.text.focus();
  }
});
document.addEventListener("htmx:afterRequest", (event) => {
  const form = event.target;
  if (form.matches && form.matches("form.composer") && event.detail.successful) replyState(form, "", "");
});
