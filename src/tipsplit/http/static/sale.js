// What the key-in-browser POS and the till share: amounts as a currency's minor units, an invoice's countdown,
// and the keyboard on the amount and "paid" screens.
"use strict";
window.TipsplitSale = Object.freeze({
  /** Minor units (cents, yen) as the decimal string the server parses, e.g. 1250 with 2 digits → "12.50". */
  majorString(minor, fractionDigits) {
    if (fractionDigits === 0) return String(minor);
    const s = String(minor).padStart(fractionDigits + 1, "0");
    return s.slice(0, -fractionDigits) + "." + s.slice(-fractionDigits);
  },
  /** Show the time left until `expires` in `element` every second; returns the timer, which stops itself at 0. */
  countdown(element, expires) {
    let timer = null;
    const tick = () => {
      const left = Math.max(0, Math.floor((expires - Date.now()) / 1000));
      const h = Math.floor(left / 3600), m = Math.floor((left % 3600) / 60), s = left % 60;
      element.textContent = (h ? h + ":" + String(m).padStart(2, "0") : m) + ":" + String(s).padStart(2, "0");
      if (left === 0 && timer !== null) clearInterval(timer);
    };
    tick();
    timer = setInterval(tick, 1000);
    return timer;
  },
  /** The digits typed so far after one key of the keypad: C clears, ⌫ erases, no leading 0, at most `max`. */
  typeDigit(digits, key, max) {
    if (key === "C") return "";
    if (key === "⌫") return digits.slice(0, -1);
    if (/^\d$/.test(key) && digits.length < max && !(key === "0" && !digits)) return digits + key;
    return digits;
  },
  /**
   * A keydown handler: digits, Backspace and Escape/Delete go to `press` while the amount screen shows, Enter calls
   * `next` there and `again` on the "paid" screen. Keys typed into form fields are theirs.
   */
  keyboard({ amountShown, paidShown, press, next, again }) {
    return (event) => {
      const t = event.target;
      if (t instanceof HTMLInputElement || t instanceof HTMLSelectElement || t instanceof HTMLTextAreaElement) return;
      const enter = event.key === "Enter" && !(t instanceof HTMLButtonElement);
      if (amountShown()) {
        if (/^\d$/.test(event.key)) press(event.key);
        else if (event.key === "Backspace") press("⌫");
        else if (event.key === "Escape" || event.key === "Delete") press("C");
        else if (enter) next();
        else return;
      } else if (paidShown() && enter) {
        again();
      } else {
        return;
      }
      event.preventDefault();
    };
  },
});
