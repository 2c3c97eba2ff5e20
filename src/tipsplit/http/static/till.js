// The till: the cashier enters the amount, the customer picks a tip, pays the QR, everyone sees it paid.
// The device holds no key and no team: it sends only the amount and the tip percentage; the server knows the rest.
// Amounts are kept as integer minor units; the display currency comes first, sats below.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const root = $("till");
  const PRESETS = JSON.parse(root.dataset.presets || "[]");
  const TEAM = JSON.parse(root.dataset.team || "[]");
  const CSRF_TOKEN = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  const MAX_DIGITS = 12;
  const STEPS = ["step-amount", "step-tip", "step-pay", "step-paid"];
  const state = {
    currency: { code: root.dataset.currency, fractionDigits: root.dataset.currency === "BTC" ? 0 : 2, satsPerMinorUnit: 1 },
    priced: root.dataset.currency === "BTC",
    digits: "",
    sale: null,
    source: null,
    countdown: null,
    paidShown: false,
  };

  // ---- formatting ---------------------------------------------------------
  function minorUnits() { return state.digits ? parseInt(state.digits, 10) : 0; }
  function sats(n) { return Math.round(Number(n)).toLocaleString() + " sats"; }
  function money(major) {
    const c = state.currency;
    if (c.code === "BTC") return sats(major);
    try {
      return new Intl.NumberFormat(undefined, {
        style: "currency", currency: c.code,
        minimumFractionDigits: c.fractionDigits, maximumFractionDigits: c.fractionDigits,
      }).format(Number(major));
    } catch (e) { return Number(major).toFixed(c.fractionDigits) + " " + c.code; }
  }
  function majorOf(minor) { return minor / Math.pow(10, state.currency.fractionDigits); }
  function majorString(minor) { return TipsplitSale.majorString(minor, state.currency.fractionDigits); }
  function satsEstimate(minor) { return "≈ " + sats(minor * state.currency.satsPerMinorUnit); }
  function tipMinor(minor, percent) { return Math.round((minor * percent) / 100); }

  // ---- steps, errors, connection -----------------------------------------
  function show(step) { for (const id of STEPS) $(id).hidden = id !== step; }
  function showError(id, message) { const e = $(id); e.textContent = message; e.hidden = false; }
  function hideErrors() { for (const id of ["error", "tip-error"]) { $(id).textContent = ""; $(id).hidden = true; } }
  function online() { return navigator.onLine !== false; }
  function renderConnection() {
    const off = !online();
    $("offline").hidden = !off;
    document.body.classList.toggle("is-offline", off);
    $("charge").disabled = off;
    document.querySelectorAll("#tip-choices button, #custom-ok").forEach((b) => { b.disabled = off; });
  }

  // ---- step 1: the amount ------------------------------------------------
  function renderAmount() {
    const minor = minorUnits();
    $("amount").textContent = money(majorOf(minor));
    $("amount-sats").textContent = state.currency.code !== "BTC" && state.priced && minor > 0 ? satsEstimate(minor) : "\u00a0";
  }
  function press(key) {
    hideErrors();
    state.digits = TipsplitSale.typeDigit(state.digits, key, MAX_DIGITS);
    renderAmount();
  }
  async function loadPrice() {
    if (state.currency.code === "BTC") return;
    try {
      const response = await fetch("/till/price", { credentials: "same-origin" });
      const body = await response.json();
      if (response.status === 401 || response.status === 403) { window.location.assign("/till"); return; }
      if (!response.ok) { showError("error", body.error); return; }
      state.currency = { code: body.currency, fractionDigits: body.fractionDigits, satsPerMinorUnit: body.satsPerMinorUnit };
      state.priced = true;
      renderAmount();
    } catch (e) { renderConnection(); }
  }
  function toTip() {
    hideErrors();
    if (!online()) { renderConnection(); return; }
    if (minorUnits() <= 0) { showError("error", "Enter the amount first."); return; }
    const minor = minorUnits();
    $("tip-base").textContent = money(majorOf(minor));
    const box = $("tip-choices");
    box.textContent = "";
    const choices = PRESETS.map((p) => ({ percent: p, label: p + " %", sub: money(majorOf(tipMinor(minor, p))) }));
    choices.push({ percent: 0, label: "No tip", sub: "" });
    for (const choice of choices) {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "tip-choice" + (choice.percent === 0 ? " no-tip" : "");
      b.dataset.percent = String(choice.percent);
      b.innerHTML = "<b></b><span></span>";
      b.firstChild.textContent = choice.label;
      b.lastChild.textContent = choice.sub;
      b.setAttribute("aria-label", choice.percent ? "Tip " + choice.label + ", " + choice.sub : "No tip");
      b.addEventListener("click", () => charge(choice.percent));
      box.appendChild(b);
    }
    $("custom-tip").value = "";
    $("tip-team").hidden = TEAM.length === 0;
    show("step-tip");
    renderConnection();
  }

  // ---- step 2: the tip, then the invoice ---------------------------------
  async function charge(percent) {
    hideErrors();
    if (!online()) { renderConnection(); return; }
    const minor = minorUnits();
    const buttons = document.querySelectorAll("#tip-choices button, #custom-ok");
    buttons.forEach((b) => { b.disabled = true; });
    try {
      const response = await fetch("/till/invoice", {
        method: "POST", credentials: "same-origin",
        headers: { "content-type": "application/json", "x-csrf-token": CSRF_TOKEN },
        body: JSON.stringify({ amount: majorString(minor), tipPercent: percent }),
      });
      const data = await response.json();
      if (response.status === 401 || response.status === 403 && !data.field) { window.location.assign("/till"); return; }
      if (!response.ok) { showError("tip-error", data.error || "The sale could not be started; nothing was charged."); return; }
      showInvoice(data, minor, percent);
    } catch (e) {
      showError("tip-error", "The server could not be reached; nothing was charged. Check the connection.");
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
      renderConnection();
    }
  }
  function fiatLines(data, minor, percent) {
    if (data.display) {
      const d = data.display;
      return {
        big: money(d.total),
        sub: sats(data.satoshis) + (Number(d.tip) > 0 ? " · incl. " + money(d.tip) + " tip" : ""),
      };
    }
    const tip = data.split.tipAmount;
    return { big: sats(data.satoshis), sub: tip > 0 ? "incl. " + sats(tip) + " tip (" + percent + " %)" : "" };
  }

  // ---- step 3: the QR ----------------------------------------------------
  function showInvoice(data, minor, percent) {
    state.sale = { ...data, lines: fiatLines(data, minor, percent) };
    state.paidShown = false;
    $("pay-fiat").textContent = state.sale.lines.big;
    $("pay-sats").textContent = state.sale.lines.sub;
    $("qr").innerHTML = data.qrSvg;
    $("open-wallet").href = "lightning:" + data.paymentRequest;
    $("pay-note").textContent = "Waiting for payment…";
    $("cancel").hidden = false;
    $("cancel").textContent = "Cancel sale";
    root.dataset.status = "pending";
    startCountdown(new Date(data.expiresAt));
    show("step-pay");
    watch(data.paymentHash);
  }
  function startCountdown(expires) {
    clearInterval(state.countdown);
    state.countdown = TipsplitSale.countdown($("countdown"), expires);
  }
  async function copyInvoice() {
    try { await navigator.clipboard.writeText(state.sale.paymentRequest); $("copy").textContent = "Copied"; }
    catch (e) { $("copy").textContent = "Copy failed"; }
    setTimeout(() => { $("copy").textContent = "Copy invoice"; }, 2000);
  }

  // ---- step 4: paid --------------------------------------------------------
  function names(legs) { return legs.map((l) => "@" + l.recipient).join(", "); }
  function tipsLine(view) {
    const tips = (view.legs || []).filter((l) => l.leg !== "base" && l.status !== "skipped");
    if (!tips.length) return view.status === "completed" ? "Sent to the merchant." : "Sending…";
    const failed = tips.filter((l) => l.status === "failed");
    if (view.status === "completed") return "Tips sent to " + names(tips) + ".";
    if (view.status === "failed") {
      const stuck = failed.length ? names(failed) : "the team";
      return "The customer has paid. The tip for " + stuck + " could not be sent yet; it is kept safe and the owner " +
        "can send it again from the dashboard. Nothing to do here: start the next sale.";
    }
    const retrying = failed.filter((l) => l.retrying);
    if (retrying.length) return "Sending tips to " + names(tips) + "… (trying " + names(retrying) + " again)";
    return "Sending tips to " + names(tips) + "…";
  }
  function showPaid(view) {
    if (!state.paidShown) {
      state.paidShown = true;
      clearInterval(state.countdown);
      $("paid-fiat").textContent = state.sale.lines.big;
      $("paid-sats").textContent = state.sale.lines.sub;
      $("receipt-link").href = "/receipt/" + state.sale.paymentHash;
      show("step-paid");
      const sound = $("paid-sound");
      try { const played = sound.play(); if (played && played.catch) played.catch(() => {}); } catch (e) { /* muted */ }
      $("new-sale").focus();
    }
    $("paid-tips").textContent = tipsLine(view);
    $("paid-tips").className = "center " + (view.status === "failed" ? "warn-text" : view.status === "completed" ? "ok-text" : "");
  }
  function watch(paymentHash) {
    if (state.source) state.source.close();
    const source = new EventSource("/api/payment-status/" + paymentHash + "/events");
    state.source = source;
    source.addEventListener("status", (event) => {
      const view = JSON.parse(event.data);
      if (!state.sale || view.paymentHash !== state.sale.paymentHash) return;
      root.dataset.status = view.status;
      if (["completed", "failed", "expired"].includes(view.status)) { source.close(); state.source = null; }
      if (view.status === "processing" || view.status === "completed" || view.status === "failed") showPaid(view);
      if (view.status === "expired") {
        clearInterval(state.countdown);
        $("pay-note").textContent = "This invoice expired unpaid; nothing was charged.";
        $("cancel").textContent = "New sale";
      }
    });
  }
  async function cancel() {
    const sale = state.sale;
    const unpaid = sale && root.dataset.status === "pending";
    if (unpaid && !window.confirm("Cancel this sale? If the customer pays it anyway, it is still forwarded and the owner sees it flagged.")) return;
    if (unpaid) {
      try {
        await fetch("/till/sales/" + sale.paymentHash + "/cancel", {
          method: "POST", credentials: "same-origin", headers: { "x-csrf-token": CSRF_TOKEN },
        });
      } catch (e) { /* offline: the invoice simply expires unpaid */ }
    }
    newSale();
  }
  function newSale() {
    if (state.source) { state.source.close(); state.source = null; }
    clearInterval(state.countdown);
    state.sale = null;
    state.digits = "";
    delete root.dataset.status;
    $("qr").textContent = "";
    hideErrors();
    renderAmount();
    show("step-amount");
    $("charge").focus();
  }

  // ---- wiring ----------------------------------------------------------------
  const onKey = TipsplitSale.keyboard({
    amountShown: () => !$("step-amount").hidden, paidShown: () => !$("step-paid").hidden, press,
    next: () => toTip(), again: () => newSale(),
  });
  function init() {
    document.querySelectorAll("#keypad .key").forEach((b) => b.addEventListener("click", () => press(b.dataset.key)));
    document.addEventListener("keydown", onKey);
    $("charge").addEventListener("click", toTip);
    $("tip-back").addEventListener("click", () => { hideErrors(); show("step-amount"); });
    $("custom-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const v = parseFloat($("custom-tip").value);
      if (!isFinite(v) || v < 0 || v > 100) { showError("tip-error", "Enter a tip between 0 and 100 %."); return; }
      charge(Math.round(v * 10) / 10);
    });
    $("custom-tip").addEventListener("input", hideErrors);
    $("copy").addEventListener("click", copyInvoice);
    $("cancel").addEventListener("click", cancel);
    $("new-sale").addEventListener("click", newSale);
    window.addEventListener("online", () => { renderConnection(); loadPrice(); });
    window.addEventListener("offline", renderConnection);
    if ("serviceWorker" in navigator) navigator.serviceWorker.register("/sw.js").catch(() => {});
    renderAmount();
    renderConnection();
    loadPrice();
  }
  init();
})();
