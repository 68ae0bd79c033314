// console.js drives the console demo page (/console): it calls the console
// JSON API with the dev console key the page carries in data-api-key.
// Dev only: a real console keeps its key on its own server.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const root = $("console");
  const apiKey = root.dataset.apiKey || "";
  const devLinks = root.dataset.devLinks === "true";
  const statusEl = $("status");

  // The operation the demo protects.
  const operation = { action: "vm.delete", resource: "vm-123" };

  let binding = null; // { id, type } of the binding in progress
  let grant = null; // the last operation grant
  let qrURL = null; // object URL of the QR image

  class APIError extends Error {
    constructor(code, message, httpStatus, retryAfter) {
      super(message);
      this.code = code;
      this.httpStatus = httpStatus;
      this.retryAfter = retryAfter;
    }
  }

  function show(message, kind) {
    statusEl.textContent = message;
    statusEl.className = "status" + (kind ? " " + kind : "");
  }

  function showError(e) {
    if (e instanceof APIError) {
      let msg = "Error " + e.code + ": " + e.message;
      if (e.retryAfter) {
        msg += " (retry after " + e.retryAfter + " s)";
      }
      show(msg, "error");
    } else {
      show("Error: " + e.message, "error");
    }
  }

  function setResult(el, text, kind) {
    el.textContent = text;
    el.className = "result" + (kind ? " " + kind : "");
    el.hidden = text === "";
  }

  function accountSelect() {
    return $("account");
  }

  function accountID() {
    const s = accountSelect();
    return s ? s.value : "";
  }

  function selectedOption() {
    const s = accountSelect();
    return s && s.selectedIndex >= 0 ? s.options[s.selectedIndex] : null;
  }

  function accountPath() {
    return "/v1/accounts/" + encodeURIComponent(accountID());
  }

  function bindingPath() {
    return accountPath() + "/mfa/bindings/" + encodeURIComponent(binding.id);
  }

  function authHeaders() {
    return { Authorization: "Bearer " + apiKey };
  }

  // call sends a JSON request to the console API and returns the parsed
  // answer; it throws an APIError with the API's error code and message.
  async function call(method, path, body) {
    const opts = { method: method, headers: authHeaders() };
    opts.headers.Accept = "application/json";
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(path, opts);
    } catch (e) {
      throw new APIError("network_error", "the server cannot be reached", 0, null);
    }
    let data = null;
    try {
      data = await res.json();
    } catch (e) {
      data = null;
    }
    if (!res.ok) {
      const err = (data && data.error) || { code: "http_" + res.status, message: res.statusText || "request failed" };
      throw new APIError(err.code, err.message, res.status, res.headers.get("Retry-After"));
    }
    return data || {};
  }

  // action wraps a handler: it blocks the button while the call runs and
  // shows any error in the status line.
  function action(button, fn) {
    return async function (ev) {
      if (ev) {
        ev.preventDefault();
      }
      if (!accountID()) {
        show("Pick an account first.", "error");
        return;
      }
      button.disabled = true;
      button.setAttribute("aria-busy", "true");
      try {
        await fn();
      } catch (e) {
        showError(e);
      } finally {
        button.disabled = false;
        button.removeAttribute("aria-busy");
      }
    };
  }

  function onOff(b) {
    return b ? "on" : "off";
  }

  function formatTime(s) {
    if (!s) {
      return "never";
    }
    const d = new Date(s);
    return isNaN(d) ? s : d.toLocaleString();
  }

  function describeDevice(d) {
    let s = (d.type === "hardware" ? "Hardware token card" : d.type === "virtual" ? "Virtual MFA device" : d.type) + " " + d.id;
    if (d.serial) {
      s += " (SN " + d.serial + ")";
    }
    return s;
  }

  async function refresh() {
    const r = await call("GET", accountPath() + "/mfa");
    const list = $("devices");
    list.replaceChildren();
    const devices = r.devices || [];
    if (devices.length === 0) {
      const li = document.createElement("li");
      li.className = "muted";
      li.textContent = "No MFA device bound.";
      list.append(li);
    }
    for (const d of devices) {
      const li = document.createElement("li");
      const name = document.createElement("strong");
      name.textContent = describeDevice(d);
      const meta = document.createElement("span");
      meta.className = "muted";
      meta.textContent = " · bound " + formatTime(d.bound_at) + " · last used " + formatTime(d.last_used_at);
      li.append(name, meta);
      list.append(li);
    }
    const p = r.protection || {};
    $("protection").textContent = "Login protection: " + onOff(p.login) + " · Operation protection: " + onOff(p.operation);
  }

  function hideSteps() {
    for (const id of ["sms-step", "virtual-step", "hardware-step"]) {
      $(id).hidden = true;
    }
    $("secret").textContent = "";
    const img = $("qr");
    img.removeAttribute("src");
    if (qrURL) {
      URL.revokeObjectURL(qrURL);
      qrURL = null;
    }
  }

  function resetAll() {
    binding = null;
    grant = null;
    hideSteps();
    $("op-reuse").disabled = true;
    for (const id of ["bind-result", "login-result", "op-result"]) {
      setResult($(id), "");
    }
  }

  async function startBinding(type) {
    resetAll();
    const r = await call("POST", accountPath() + "/mfa/bindings", { device_type: type });
    binding = { id: r.binding_id, type: type };
    const opt = selectedOption();
    const masked = opt ? opt.dataset.maskedPhone : "";
    const phone = opt ? opt.dataset.phone : "";
    $("sms-phone").textContent = masked || "the bound phone";
    const link = $("outbox-link");
    if (devLinks && phone) {
      link.href = "/dev/outbox?to=" + encodeURIComponent(phone);
      link.hidden = false;
    } else {
      link.hidden = true;
    }
    $("sms-code").value = "";
    $("sms-step").hidden = false;
    $("sms-code").focus();
    show("SMS code sent to " + (masked || "the bound phone") + ". The binding expires at " + formatTime(r.expires_at) + ".", "ok");
  }

  async function loadQR() {
    const res = await fetch(bindingPath() + "/qr.png", { headers: authHeaders() });
    if (!res.ok) {
      let err = null;
      try {
        err = (await res.json()).error;
      } catch (e) {
        err = null;
      }
      err = err || { code: "http_" + res.status, message: "the QR code could not be loaded" };
      throw new APIError(err.code, err.message, res.status, null);
    }
    const blob = await res.blob();
    if (qrURL) {
      URL.revokeObjectURL(qrURL);
    }
    qrURL = URL.createObjectURL(blob);
    $("qr").src = qrURL;
  }

  async function submitSMS() {
    if (!binding) {
      show("Start a binding first.", "error");
      return;
    }
    const r = await call("POST", bindingPath() + "/sms-code", { code: $("sms-code").value.trim() });
    $("sms-step").hidden = true;
    if (r.status === "awaiting_device_codes") {
      $("secret").textContent = r.secret;
      $("code1").value = "";
      $("code2").value = "";
      $("virtual-step").hidden = false;
      await loadQR();
      $("code1").focus();
      show("Identity verified. Scan the QR code, then enter two consecutive codes.", "ok");
    } else if (r.status === "awaiting_hardware_token") {
      $("serial").value = "";
      $("hw-code").value = "";
      $("hardware-step").hidden = false;
      $("serial").focus();
      show("Identity verified. Enter the card's serial number and its current code.", "ok");
    } else {
      show("Unexpected binding status: " + r.status, "error");
    }
  }

  function bound(r) {
    hideSteps();
    binding = null;
    const p = r.protection || {};
    const d = r.device || {};
    setResult($("bind-result"), "Bound: " + describeDevice(d) + ". Login protection " + onOff(p.login) + ", operation protection " + onOff(p.operation) + ".", "ok");
    show("The MFA device is bound.", "ok");
  }

  async function confirmVirtual() {
    const r = await call("POST", bindingPath() + "/confirm", {
      code1: $("code1").value.trim(),
      code2: $("code2").value.trim(),
      protection: { login: $("scope-login").checked, operation: $("scope-operation").checked },
    });
    bound(r);
    await refresh();
  }

  async function confirmHardware() {
    const r = await call("POST", bindingPath() + "/confirm", {
      serial: $("serial").value.trim(),
      code: $("hw-code").value.trim(),
      protection: { login: $("hw-scope-login").checked, operation: $("hw-scope-operation").checked },
    });
    bound(r);
    await refresh();
  }

  function updateTokenLink() {
    const link = $("token-link");
    const serial = $("serial").value.trim();
    if (devLinks && /^[A-Za-z0-9-]{4,32}$/.test(serial)) {
      link.href = "/dev/hardware-tokens/" + encodeURIComponent(serial) + "/code";
      link.hidden = false;
    } else {
      link.hidden = true;
    }
  }

  async function verifyLogin() {
    const input = $("login-code");
    setResult($("login-result"), "");
    await call("POST", accountPath() + "/mfa/verify", { code: input.value.trim(), purpose: "login" });
    input.value = "";
    setResult($("login-result"), "Login verified: welcome back.", "ok");
    show("Login check passed.", "ok");
    await refresh();
  }

  async function consume() {
    return call("POST", accountPath() + "/mfa/grants/consume", { grant: grant, operation: operation });
  }

  async function deleteVM() {
    const input = $("op-code");
    setResult($("op-result"), "");
    grant = null;
    $("op-reuse").disabled = true;
    const v = await call("POST", accountPath() + "/mfa/verify", { code: input.value.trim(), purpose: "operation", operation: operation });
    input.value = "";
    grant = v.grant;
    await consume();
    $("op-reuse").disabled = false;
    setResult($("op-result"), "VM deleted: vm-123. The grant was used once.", "ok");
    show("Operation verified and performed.", "ok");
    await refresh();
  }

  async function reuseGrant() {
    if (!grant) {
      show("Delete the VM first to get a grant.", "error");
      return;
    }
    try {
      await consume();
      setResult($("op-result"), "The same grant was accepted again. This should not happen.", "error");
      show("The grant was accepted twice.", "error");
    } catch (e) {
      if (e instanceof APIError) {
        setResult($("op-result"), "Refused: " + e.message + " (" + e.code + ").", "refused");
      }
      throw e;
    }
  }

  function init() {
    const sel = accountSelect();
    if (!sel) {
      show("No accounts to work with.", "error");
      for (const b of document.querySelectorAll("button")) {
        b.disabled = true;
      }
      return;
    }
    const refreshBtn = $("refresh");
    refreshBtn.addEventListener("click", action(refreshBtn, refresh));
    sel.addEventListener("change", async function () {
      resetAll();
      show("Account " + accountID() + " selected.");
      try {
        await refresh();
      } catch (e) {
        showError(e);
      }
    });
    const bv = $("bind-virtual");
    bv.addEventListener("click", action(bv, () => startBinding("virtual")));
    const bh = $("bind-hardware");
    bh.addEventListener("click", action(bh, () => startBinding("hardware")));
    $("sms-step").addEventListener("submit", action($("sms-submit"), submitSMS));
    $("virtual-step").addEventListener("submit", action($("confirm"), confirmVirtual));
    $("hardware-step").addEventListener("submit", action($("hw-confirm"), confirmHardware));
    $("serial").addEventListener("input", updateTokenLink);
    $("login-form").addEventListener("submit", action($("login-verify"), verifyLogin));
    $("op-form").addEventListener("submit", action($("op-verify"), deleteVM));
    const reuse = $("op-reuse");
    reuse.addEventListener("click", action(reuse, reuseGrant));
    refresh().then(
      () => show("Account " + accountID() + " loaded. Bind a device to start."),
      showError
    );
  }

  init();
})();
