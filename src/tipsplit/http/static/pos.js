// tipsplit POS page: keypad, tips, recipients, and the live status of one sale.
// The device remembers only recipients' usernames and shares, tip presets and the currency (localStorage);
// the merchant's key stays on the server. Amounts are kept as integer minor units.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const store = {
    get(key, fallback) {
      try { const v = localStorage.getItem("tipsplit." + key); return v === null ? fallback : JSON.parse(v); }
      catch (e) { return fallback; }
    },
    set(key, value) { try { localStorage.setItem("tipsplit." + key, JSON.stringify(value)); } catch (e) { /* private mode */ } },
  };

  const state = {
    currency: { code: "BTC", fractionDigits: 0, satsPerMinorUnit: 1 },
    digits: "",
    tip: { kind: "unset", percent: null },
    source: null,
    countdown: null,
  };
  const MAX_DIGITS = 12;
  const CSRF_TOKEN = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  // ---- formatting -------------------------------------------------------
  function minorUnits() { return state.digits ? parseInt(state.digits, 10) : 0; }
  function formatMinor(minor) {
    const c = state.currency;
    if (c.code === "BTC") return minor.toLocaleString("en-US") + " sats";
    const major = minor / Math.pow(10, c.fractionDigits);
    try {
      return new Intl.NumberFormat("en-US", {
        style: "currency", currency: c.code,
        minimumFractionDigits: c.fractionDigits, maximumFractionDigits: c.fractionDigits,
      }).format(major);
    } catch (e) { return major.toFixed(c.fractionDigits) + " " + c.code; }
  }
  function majorString(minor) { return TipsplitSale.majorString(minor, state.currency.fractionDigits); }
  function sats(n) { return Number(n).toLocaleString("en-US") + " sats"; }

  // ---- tip presets and recipients --------------------------------------
  function presets() {
    const saved = store.get("presets", [10, 15, 20]);
    return Array.isArray(saved) && saved.length ? saved : [10, 15, 20];
  }
  function tipPercent() {
    if (state.tip.kind === "none") return 0;
    if (state.tip.kind === "custom") {
      const v = parseFloat($("custom-tip").value);
      return isFinite(v) && v >= 0 ? Math.min(v, 100) : 0;
    }
    return state.tip.percent ?? 0;
  }
  function renderPresets() {
    const box = $("tip-presets");
    box.textContent = "";
    const choices = presets().map((p) => ({ kind: "preset", percent: p, label: p + " %" }));
    choices.push({ kind: "none", percent: 0, label: "No tip" });
    for (const choice of choices) {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "chip";
      b.textContent = choice.label;
      b.setAttribute("role", "radio");
      const on = state.tip.kind === choice.kind && (choice.kind === "none" || state.tip.percent === choice.percent);
      b.setAttribute("aria-checked", on ? "true" : "false");
      b.addEventListener("click", () => {
        hideError();
        state.tip = { kind: choice.kind, percent: choice.percent };
        $("custom-tip").value = "";
        renderPresets();
        renderTotals();
      });
      box.appendChild(b);
    }
  }
  function recipients() { const r = store.get("recipients", []); return Array.isArray(r) ? r : []; }
  function saveRecipients() {
    const rows = [...document.querySelectorAll("#recipient-list li")].map((li) => ({
      username: li.querySelector(".username").value.trim().replace(/^@/, ""),
      share: li.querySelector(".share").value.trim(),
    }));
    store.set("recipients", rows);
  }
  function addRecipientRow(rec) {
    const li = document.createElement("li");
    const n = document.querySelectorAll("#recipient-list li").length + 1;
    li.innerHTML =
      '<input class="username" type="text" autocomplete="off" autocapitalize="none" spellcheck="false" maxlength="50" placeholder="username">' +
      '<input class="share" type="number" inputmode="decimal" min="0" max="100" step="any" placeholder="share %">' +
      '<button type="button" class="remove link">Remove</button>';
    const [user, share, remove] = li.children;
    user.setAttribute("aria-label", "Recipient " + n + " username");
    share.setAttribute("aria-label", "Recipient " + n + " share in percent");
    remove.setAttribute("aria-label", "Remove recipient " + n);
    user.value = rec.username || "";
    share.value = rec.share || "";
    const edited = () => { saveRecipients(); hideError(); };
    user.addEventListener("input", edited);
    share.addEventListener("input", edited);
    remove.addEventListener("click", () => { li.remove(); saveRecipients(); });
    $("recipient-list").appendChild(li);
    return li;
  }
  function renderRecipients() {
    $("recipient-list").textContent = "";
    const saved = recipients();
    (saved.length ? saved : [{ username: "", share: "" }]).forEach(addRecipientRow);
  }

  // ---- totals and currency ----------------------------------------------
  function renderTotals() {
    const base = minorUnits();
    const tip = Math.round((base * tipPercent()) / 100);
    $("amount").textContent = formatMinor(base);
    $("total-base").textContent = formatMinor(base);
    $("total-tip").textContent = formatMinor(tip) + " (" + tipPercent() + " %)";
    let total = formatMinor(base + tip);
    if (state.currency.code !== "BTC" && base > 0) {
      total += " ≈ " + sats(Math.round((base + tip) * state.currency.satsPerMinorUnit));
    }
    $("total-all").textContent = total;
  }
  async function loadCurrency(code) {
    try {
      const response = await fetch("/pos/currency/" + encodeURIComponent(code), { credentials: "same-origin" });
      const body = await response.json();
      if (!response.ok) { showError(body.error || "could not load the currency"); return; }
      state.currency = { code: body.currency, fractionDigits: body.fractionDigits, satsPerMinorUnit: body.satsPerMinorUnit };
      state.digits = "";
      store.set("currency", body.currency);
      $("pos").dataset.currency = body.currency;
      hideError();
      renderTotals();
    } catch (e) { showError("The server could not be reached."); }
  }

  // ---- keypad -----------------------------------------------------------
  function press(key) {
    hideError();
    state.digits = TipsplitSale.typeDigit(state.digits, key, MAX_DIGITS);
    renderTotals();
  }
  const onKey = TipsplitSale.keyboard({
    amountShown: () => !$("entry").hidden, paidShown: () => !$("done").hidden, press, next: () => charge(), again: () => reset(),
  });

  // ---- errors -----------------------------------------------------------
  function showError(message) { const e = $("error"); e.textContent = message; e.hidden = false; }
  function hideError() { const e = $("error"); e.textContent = ""; e.hidden = true; }

  // ---- a sale ------------------------------------------------------------
  function orderRecipients() {
    saveRecipients();
    return recipients()
      .filter((r) => r.username)
      .map((r) => ({ username: r.username, share: r.share === "" ? null : Number(r.share) }));
  }
  async function charge() {
    hideError();
    const base = minorUnits();
    if (base <= 0) { showError("Enter an amount first."); return; }
    const percent = tipPercent();
    const recs = percent > 0 ? orderRecipients() : [];
    if (percent > 0 && !recs.length) { showError("A tip needs at least one tip recipient (a Blink username)."); return; }
    const body = { displayCurrency: state.currency.code, amount: majorString(base), tipPercent: percent, recipients: recs };
    $("charge").disabled = true;
    try {
      const response = await fetch("/pos/invoice", {
        method: "POST", credentials: "same-origin",
        headers: { "content-type": "application/json", "x-csrf-token": CSRF_TOKEN }, body: JSON.stringify(body),
      });
      const data = await response.json();
      if (response.status === 401) { window.location.assign("/"); return; }
      if (!response.ok) { showError(data.error + (data.field ? " (" + data.field + ")" : "")); return; }
      showInvoice(data);
    } catch (e) {
      showError("The server could not be reached; nothing was charged.");
    } finally {
      $("charge").disabled = false;
    }
  }

  function legLabel(leg) { return leg.leg === "base" ? "Merchant" : "@" + leg.recipient; }
  function showInvoice(data) {
    $("entry").hidden = true;
    $("done").hidden = true;
    $("invoice").hidden = false;
    $("qr").innerHTML = data.qrSvg;
    $("payment-request").value = data.paymentRequest;
    $("open-wallet").href = "lightning:" + data.paymentRequest;
    const split = data.split;
    $("invoice-amount").textContent =
      sats(data.satoshis) + " · base " + sats(split.baseAmount) + " + tip " + sats(split.tipAmount);
    $("invoice").dataset.paymentHash = data.paymentHash;
    $("invoice").dataset.status = "pending";
    renderProgress({ status: "pending", legs: split.legs.map((l) => ({ ...l, status: l.skipped ? "skipped" : "pending" })) });
    startCountdown(new Date(data.expiresAt));
    watch(data.paymentHash);
    $("copy").focus();
  }
  function startCountdown(expires) {
    clearInterval(state.countdown);
    state.countdown = TipsplitSale.countdown($("countdown"), expires);
  }
  function step(text, cls) {
    const li = document.createElement("li");
    li.textContent = text;
    li.className = cls;
    return li;
  }
  const LEG_WORDS = {
    pending: ["waiting", "todo"], invoiced: ["sending…", "doing"], paying: ["sending…", "doing"],
    succeeded: ["forwarded", "ok"], failed: ["failed", "bad"], skipped: ["skipped (0 sats)", "skip"],
  };
  function plural(n, word) { return n + " " + word + (n === 1 ? "" : "s"); }
  // What a leg's line says. "retrying" only while the server says attempts remain (leg.retrying);
  // a leg whose attempts are spent says it failed, and nothing more happens to it on its own.
  function legWords(leg) {
    if (leg.status === "failed" && leg.retrying) {
      return ["not paid yet, retrying (" + plural(leg.attemptsLeft, "attempt") + " left)", "doing"];
    }
    if (leg.status === "failed") return ["failed after " + plural(leg.attempts, "attempt"), "bad"];
    return LEG_WORDS[leg.status] || [leg.status, "todo"];
  }
  function renderProgress(view) {
    const list = $("progress");
    list.textContent = "";
    const paid = view.status !== "pending" && view.status !== "expired";
    list.appendChild(step(paid ? "Paid by the customer" : "Waiting for payment…", paid ? "ok" : "doing"));
    for (const leg of view.legs || []) {
      const [word, cls] = legWords(leg);
      const reason = leg.status === "failed" && leg.reason ? " — " + leg.reason : "";
      list.appendChild(step(legLabel(leg) + ": " + sats(leg.amount) + " — " + word + reason, paid ? cls : "todo"));
    }
  }
  function processingNote(view) {
    const retrying = (view.legs || []).filter((l) => l.status === "failed" && l.retrying);
    if (!retrying.length) return "Paid. Forwarding the base and the tips…";
    return "Paid. Not forwarded yet: " +
      retrying.map((l) => legLabel(l) + " (" + l.reason + "; retrying, " + plural(l.attemptsLeft, "attempt") + " left)")
        .join(", ") + ".";
  }
  function watch(paymentHash) {
    if (state.source) state.source.close();
    const source = new EventSource("/api/payment-status/" + paymentHash + "/events");
    state.source = source;
    source.addEventListener("status", (event) => {
      const view = JSON.parse(event.data);
      $("invoice").dataset.status = view.status;
      renderProgress(view);
      if (["completed", "failed", "expired"].includes(view.status)) { source.close(); state.source = null; }
      if (view.status === "processing") $("status-note").textContent = processingNote(view);
      if (view.status === "completed") showDone(view);
      if (view.status === "failed") showFailed(view);
      if (view.status === "expired") {
        $("status-note").textContent = "The invoice expired unpaid; nothing was charged. Start a new sale.";
      }
    });
  }
  function showFailed(view) {
    const bad = (view.legs || []).filter((l) => l.status === "failed")
      .map((l) => legLabel(l) + (l.reason ? " (" + l.reason + ")" : "")).join(", ");
    $("invoice-title").textContent = "Paid, but forwarding failed";
    $("status-note").textContent =
      "The customer has paid and the money is safe on the POS account. Not forwarded: " + (bad || "some legs") +
      ". Every attempt has been used, so this payment stays failed until an operator retries it from the " +
      "dashboard (a retry never pays a leg twice). You can start the next sale.";
    $("cancel").textContent = "Next sale";
  }
  function showDone(view) {
    clearInterval(state.countdown);
    $("invoice").hidden = true;
    $("done").hidden = false;
    $("done").dataset.paymentHash = view.paymentHash;
    const list = $("done-legs");
    list.textContent = "";
    for (const leg of view.legs || []) {
      const word = leg.status === "skipped" ? "skipped (0 sats)" : "forwarded";
      list.appendChild(step(legLabel(leg) + ": " + sats(leg.amount) + " " + word, "ok"));
    }
    $("next-sale").focus();
  }
  function reset() {
    if (state.source) { state.source.close(); state.source = null; }
    clearInterval(state.countdown);
    state.digits = "";
    $("invoice").hidden = true;
    $("done").hidden = true;
    $("entry").hidden = false;
    $("invoice-title").textContent = "Scan to pay";
    $("status-note").textContent = "";
    $("cancel").textContent = "Cancel (new sale)";
    $("qr").textContent = "";
    hideError();
    renderTotals();
    $("charge").focus();
  }
  async function copyInvoice() {
    const field = $("payment-request");
    try { await navigator.clipboard.writeText(field.value); $("copy").textContent = "Copied"; }
    catch (e) { field.select(); $("copy").textContent = "Selected — copy it"; }
    setTimeout(() => { $("copy").textContent = "Copy"; }, 2000);
  }

  // ---- wiring -----------------------------------------------------------
  function init() {
    document.querySelectorAll("#keypad .key").forEach((b) => b.addEventListener("click", () => press(b.dataset.key)));
    document.addEventListener("keydown", onKey);
    $("custom-tip").addEventListener("input", () => {
      state.tip = $("custom-tip").value === "" ? { kind: "unset", percent: null } : { kind: "custom", percent: null };
      renderPresets();
      renderTotals();
    });
    $("presets").value = presets().join(", ");
    $("presets").addEventListener("change", () => {
      const list = $("presets").value.split(",").map((s) => parseFloat(s)).filter((v) => isFinite(v) && v > 0 && v <= 100);
      store.set("presets", list.length ? list : [10, 15, 20]);
      state.tip = { kind: "unset", percent: null };
      renderPresets();
      renderTotals();
    });
    $("add-recipient").addEventListener("click", () => addRecipientRow({}).querySelector(".username").focus());
    $("charge").addEventListener("click", charge);
    $("copy").addEventListener("click", copyInvoice);
    $("cancel").addEventListener("click", reset);
    $("next-sale").addEventListener("click", reset);
    $("wallet").addEventListener("change", () => $("wallet-form").submit());
    const currency = $("currency");
    currency.value = store.get("currency", "BTC");
    if (!currency.value) currency.value = "BTC";
    currency.addEventListener("change", () => loadCurrency(currency.value));
    renderPresets();
    renderRecipients();
    loadCurrency(currency.value);
  }
  init();
})();
