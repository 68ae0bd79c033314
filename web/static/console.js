// console.js drives the console demo page (/console): it calls the console
// JSON API with the dev console key the page carries in data-api-key.
// Dev only: a real console keeps its key on its own server.
//
// Recovery codes live in this page's memory and DOM only, from the answer
// that carries them until "I have saved them", a reload or a new set: never
// in localStorage, sessionStorage or a cookie.
//
// Security keys and passkeys (SPEC §6c) go through webauthn.js
// (window.mfaflowWebAuthn), which converts between the API's JSON and the
// browser's objects; this script words every outcome.
"use strict";

(function () {
  // Every text the script shows, in one place for the translations to come.
  // {name} is replaced by fmt.
  const T = {
    pickAccount: "Pick an account first.",
    noAccounts: "No accounts to work with.",
    accountSelected: "Account {id} selected.",
    accountLoaded: "Account {id} loaded. Bind a device to start.",
    error: "Error {code}: {message}",
    errorRetry: "Error {code}: {message} (retry after {seconds} s)",
    errorPlain: "Error: {message}",
    networkError: "the server cannot be reached",
    requestFailed: "request failed",
    qrFailed: "the QR code could not be loaded",
    never: "never",
    on: "on",
    off: "off",
    virtualDevice: "Virtual MFA device",
    hardwareDevice: "Hardware token card",
    webauthnDevice: "Security key or passkey",
    deviceSerial: "{device} (SN {serial})",
    deviceKey: "{device} “{name}” ({id})",
    deviceModel: " · model {model}",
    deviceAAGUID: "AAGUID {aaguid}",
    modelUnknown: "not told by the key",
    noDevice: "No MFA device bound.",
    deviceMeta: " · bound {bound} · last used {used}",
    protection: "Login protection: {login} · Operation protection: {operation}",
    recoveryNone: "No recovery codes yet: they come with the first MFA device.",
    recoveryLeft: "Recovery codes left: {n}",
    recoveryLow: "Only {n} recovery codes left. Make a new set before they run out: without a device or a code, only an appeal gets you back in.",
    recoveryOut: "No recovery codes left. Make a new set now: without a device or a code, only an appeal gets you back in.",
    startBinding: "Start a binding first.",
    bindProofNeeded: "This account already has an MFA device. Confirm with a code from it, a recovery code or a bound security key to bind another.",
    regenProofNeeded: "Confirm with a code from a bound device, a recovery code or a bound security key to make a new set.",
    proofNoneChosen: "Without a proof the server will refuse; the appeal is the way back in.",
    smsSent: "SMS code sent to {phone}. The binding expires at {expires}.",
    boundPhone: "the bound phone",
    identityVirtual: "Identity verified. Scan the QR code, then enter two consecutive codes.",
    identityHardware: "Identity verified. Enter the card's serial number and its current code.",
    identityWebAuthn: "Identity verified. Name the key, choose what it protects, then press “Register my security key”.",
    unexpectedStatus: "Unexpected binding status: {status}",
    boundResult: "Bound: {device}. Login protection {login}, operation protection {operation}.",
    bound: "The MFA device is bound.",
    boundWithCodes: "The MFA device is bound. Save your recovery codes now: they are shown only once.",
    codesHeading: "Your recovery codes for {account}",
    codesNewHeading: "Your new recovery codes for {account}",
    codesNew: "A new set of recovery codes is made; the old codes no longer work. Save the new ones now: they are shown only once.",
    copied: "Copied the {n} codes to the clipboard.",
    copyManually: "The codes are selected: press Ctrl+C (⌘C on a Mac) to copy them.",
    downloaded: "Saved as {file}.",
    codesDismissed: "The recovery codes are hidden and gone from this page.",
    fileName: "mfaflow-recovery-codes-{account}.txt",
    fileText: "mfaflow recovery codes\nAccount: {account}\nMade: {time}\n\nEach code works once: to sign in, or to confirm a change such as binding a new phone.\nA new set replaces these. Keep this file somewhere safe.\n\n{codes}\n",
    loginVerified: "Login verified: welcome back.",
    loginRecovery: "Login verified with a recovery code: welcome back. That code no longer works; recovery codes left: {n}.",
    loginPassed: "Login check passed.",
    vmDeleted: "VM deleted: vm-123. The grant was used once.",
    opDone: "Operation verified and performed.",
    deleteFirst: "Delete the VM first to get a grant.",
    grantTwice: "The same grant was accepted again. This should not happen.",
    grantTwiceStatus: "The grant was accepted twice.",
    refused: "Refused: {message} ({code}).",
    loginWebAuthn: "Login verified with your security key: welcome back.",
    keyTouch: "Touch your security key or confirm the passkey in the browser's prompt…",
    keyCancelled: "The security key request was cancelled or timed out (NotAllowedError). Nothing was sent to the server; press the button again when your key is ready.",
    keyExists: "This security key is already bound to this account. Use another key, or remove this one first.",
    keyUnsupported: "This browser cannot use security keys or passkeys here.",
    keyFailed: "The security key did not answer: {message}",
    keyOriginIP: "Security keys and passkeys do not work on an IP address such as {here}: open the console at {url} to use one.",
    keyOrigin: "Security keys and passkeys of this service work only on {rp}, not on {here}: open the console at {url} to use one.",
    keyRegistrationRefused: "The server could not verify the key's answer, so this binding has ended. Start a new binding.",
    keyCloned: "Refused: this security key's signature counter went backwards, so it may be a copy. The owner has been told. If you did not expect this, remove the key.",
    keyRefused: "Refused: the security key's answer was not accepted ({code}).",
  };

  function fmt(key, vars) {
    return T[key].replace(/\{(\w+)\}/g, (m, name) => (vars && name in vars ? String(vars[name]) : m));
  }

  const $ = (id) => document.getElementById(id);
  const root = $("console");
  const apiKey = root.dataset.apiKey || "";
  const devLinks = root.dataset.devLinks === "true";
  const statusEl = $("status");

  // The operation the demo protects.
  const operation = { action: "vm.delete", resource: "vm-123" };

  let binding = null; // { id, type } of the binding in progress
  let bindType = null; // the device type waiting for a step-up proof
  let grant = null; // the last operation grant
  let qrURL = null; // object URL of the QR image
  let deviceCount = 0; // active devices of the account, from the last refresh
  let keyCount = 0; // its security keys and passkeys
  let creation = null; // creation options of the security key binding in progress
  let shown = null; // { account, codes, time } of the recovery codes on show
  let codesURL = null; // object URL of the last download

  class APIError extends Error {
    constructor(code, message, httpStatus, retryAfter) {
      super(message);
      this.code = code;
      this.httpStatus = httpStatus;
      this.retryAfter = retryAfter;
    }
  }

  // KeyError is a security key ceremony that did not give an answer to send:
  // kind is a failure of mfaflowWebAuthn.failure, message the page's text.
  class KeyError extends Error {
    constructor(kind, message) {
      super(message);
      this.kind = kind;
    }
  }

  function show(message, kind) {
    statusEl.textContent = message;
    statusEl.className = "status" + (kind ? " " + kind : "");
  }

  function showError(e) {
    if (e instanceof KeyError) {
      show(e.message, "error");
    } else if (e instanceof APIError) {
      const vars = { code: e.code, message: e.message, seconds: e.retryAfter };
      show(fmt(e.retryAfter ? "errorRetry" : "error", vars), "error");
    } else {
      show(fmt("errorPlain", { message: e.message }), "error");
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
    const opts = { method: method, headers: authHeaders(), cache: "no-store" };
    opts.headers.Accept = "application/json";
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(path, opts);
    } catch (e) {
      throw new APIError("network_error", T.networkError, 0, null);
    }
    let data = null;
    try {
      data = await res.json();
    } catch (e) {
      data = null;
    }
    if (!res.ok) {
      const err = (data && data.error) || { code: "http_" + res.status, message: res.statusText || T.requestFailed };
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
        show(T.pickAccount, "error");
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
    return b ? T.on : T.off;
  }

  function formatTime(s) {
    if (!s) {
      return T.never;
    }
    const d = new Date(s);
    return isNaN(d) ? s : d.toLocaleString();
  }

  function describeDevice(d) {
    if (d.type === "webauthn") {
      return fmt("deviceKey", { device: T.webauthnDevice, name: d.name || "", id: d.id });
    }
    const name = (d.type === "hardware" ? T.hardwareDevice : d.type === "virtual" ? T.virtualDevice : d.type) + " " + d.id;
    return d.serial ? fmt("deviceSerial", { device: name, serial: d.serial }) : name;
  }

  // describeModel is a security key's model: its name when the server
  // knows the AAGUID, else the AAGUID, else that the key did not say.
  function describeModel(d) {
    const model = d.model || (d.aaguid ? fmt("deviceAAGUID", { aaguid: d.aaguid }) : T.modelUnknown);
    return fmt("deviceModel", { model: model });
  }

  async function refresh() {
    const r = await call("GET", accountPath() + "/mfa");
    const list = $("devices");
    list.replaceChildren();
    const devices = r.devices || [];
    deviceCount = devices.length;
    keyCount = devices.filter((d) => d.type === "webauthn").length;
    if (devices.length === 0) {
      const li = document.createElement("li");
      li.className = "muted";
      li.textContent = T.noDevice;
      list.append(li);
    }
    for (const d of devices) {
      const li = document.createElement("li");
      const name = document.createElement("strong");
      name.textContent = describeDevice(d);
      li.append(name);
      if (d.type === "webauthn") {
        const model = document.createElement("span");
        model.className = "model";
        model.textContent = describeModel(d);
        li.append(model);
      }
      const meta = document.createElement("span");
      meta.className = "muted";
      meta.textContent = fmt("deviceMeta", { bound: formatTime(d.bound_at), used: formatTime(d.last_used_at) });
      li.append(meta);
      list.append(li);
    }
    const p = r.protection || {};
    $("protection").textContent = fmt("protection", { login: onOff(p.login), operation: onOff(p.operation) });
    showRecoveryState(devices.length, r.recovery_codes_remaining);
    showKeyChoices();
  }

  // Security keys (SPEC §6c).

  const WA = window.mfaflowWebAuthn;

  // showKeyChoices offers "my security key" wherever a factor is chosen
  // while the account has a key, and takes the choice back when it has none.
  function showKeyChoices() {
    for (const e of document.querySelectorAll(".webauthn-only")) {
      e.hidden = keyCount === 0;
    }
    if (keyCount > 0) {
      return;
    }
    for (const prefix of ["bind-proof", "regen-proof"]) {
      if (proofKind(prefix) === "webauthn") {
        resetProof(prefix);
      }
    }
    if ($("login-kind-webauthn").checked) {
      $("login-kind-code").checked = true;
      loginKindChanged();
    }
    if ($("op-kind-webauthn").checked) {
      $("op-kind-code").checked = true;
      opKindChanged();
    }
  }

  // consoleURL is this page at host (keeping the port, path and query).
  function consoleURL(host) {
    return location.protocol + "//" + host + (location.port ? ":" + location.port : "") + location.pathname + location.search;
  }

  // originText words why keys cannot work on this page's origin; rp is the
  // relying party's id when known. url is where they do work.
  function originText(rp) {
    const here = location.host;
    const url = consoleURL(rp || "localhost");
    const key = WA.isIPAddress(location.hostname) ? "keyOriginIP" : "keyOrigin";
    return { text: fmt(key, { here: here, rp: rp || "localhost", url: "{url}" }), url: url };
  }

  // showOriginNotice explains, above the page's cards, that security keys
  // need the console on its relying party's domain, with a link there.
  function showOriginNotice(rp) {
    const o = originText(rp);
    const notice = $("webauthn-origin");
    const [before, after] = o.text.split("{url}");
    const a = document.createElement("a");
    a.id = "webauthn-origin-link";
    a.href = o.url;
    a.textContent = o.url;
    notice.replaceChildren(before, a, after || "");
    notice.hidden = false;
    return o.text.replace("{url}", o.url);
  }

  // keyReady throws a KeyError when this browser or page cannot use a key
  // at all, before anything is asked of the server.
  function keyReady() {
    if (!WA || !WA.supported()) {
      throw new KeyError("unsupported", T.keyUnsupported);
    }
    if (WA.isIPAddress(location.hostname)) {
      throw new KeyError("origin", showOriginNotice(""));
    }
  }

  // withKey runs a ceremony (WA.create or WA.get with the API's options)
  // and returns the credential JSON for the API; it throws a KeyError
  // worded for the page.
  async function withKey(ceremony, options) {
    keyReady();
    show(T.keyTouch);
    try {
      return await ceremony(options);
    } catch (e) {
      const kind = WA.failure(e);
      switch (kind) {
        case "cancelled":
          throw new KeyError(kind, T.keyCancelled);
        case "origin":
          throw new KeyError(kind, showOriginNotice(WA.rpID(options)));
        case "exists":
          throw new KeyError(kind, T.keyExists);
        case "unsupported":
          throw new KeyError(kind, T.keyUnsupported);
      }
      throw new KeyError(kind, fmt("keyFailed", { message: e && e.message ? e.message : String(e) }));
    }
  }

  // keyAssertion asks the server for a challenge of purpose (and
  // operation) and answers it with a key: {challenge_id, credential}.
  async function keyAssertion(purpose, op) {
    keyReady();
    const body = { purpose: purpose };
    if (op) {
      body.operation = op;
    }
    const ch = await call("POST", accountPath() + "/mfa/webauthn/challenge", body);
    const credential = await withKey(WA.get, ch.request_options);
    return { challenge_id: ch.challenge_id, credential: credential };
  }

  // keyRefusal words the server's refusal of a key's answer in the result
  // element el, for the errors that are about the key.
  function keyRefusal(el, e) {
    if (!(e instanceof APIError)) {
      return;
    }
    if (e.code === "possible_cloned_key") {
      setResult(el, T.keyCloned, "refused");
    } else if (e.code === "invalid_code" || e.code === "code_reused") {
      setResult(el, fmt("keyRefused", { code: e.code }), "refused");
    }
  }

  // showRecoveryState shows how many recovery codes are left, warns at 3
  // or fewer, and offers a new set while the account has a device.
  function showRecoveryState(devices, left) {
    const known = typeof left === "number";
    const warning = $("recovery-warning");
    $("recovery-new").hidden = devices === 0;
    if (devices === 0) {
      $("recovery-left").textContent = T.recoveryNone;
      warning.hidden = true;
      $("regen-step").hidden = true;
      return;
    }
    $("recovery-left").textContent = known ? fmt("recoveryLeft", { n: left }) : "";
    if (known && left <= 3) {
      warning.textContent = left === 0 ? T.recoveryOut : fmt("recoveryLow", { n: left });
      warning.hidden = false;
    } else {
      warning.hidden = true;
    }
  }

  // The proof forms (step-up, SPEC §6a): a device code, a recovery code or
  // neither (the server then refuses and points to the appeal).
  function proofKind(prefix) {
    const checked = document.querySelector('input[name="' + prefix + '-kind"]:checked');
    return checked ? checked.value : "code";
  }

  // setKind shows the input of the chosen kind; the other is disabled so
  // that the browser neither checks nor sends it.
  function setKind(prefix, kind) {
    const code = $(prefix + "-code");
    const recovery = $(prefix + "-recovery");
    $(prefix + "-code-field").hidden = kind !== "code";
    code.disabled = kind !== "code";
    $(prefix + "-recovery-field").hidden = kind !== "recovery_code";
    recovery.disabled = kind !== "recovery_code";
    $(prefix + "-webauthn-help").hidden = kind !== "webauthn";
    const none = $(prefix + "-none-help");
    if (none) {
      none.hidden = kind !== "none";
    }
  }

  function resetProof(prefix) {
    const first = $(prefix + "-kind-code");
    if (first) {
      first.checked = true;
    }
    $(prefix + "-code").value = "";
    $(prefix + "-recovery").value = "";
    setKind(prefix, "code");
  }

  function focusProof(prefix) {
    const kind = proofKind(prefix);
    const input = kind === "code" ? $(prefix + "-code") : kind === "recovery_code" ? $(prefix + "-recovery") : $(prefix + "-kind-" + kind);
    input.focus();
  }

  function normalizeRecovery(v) {
    return v.replace(/\s+/g, "").toUpperCase();
  }

  // readProof returns the proof of the form as the API takes it, or null
  // for "neither". A security key is asked for its answer to a step-up
  // challenge now.
  async function readProof(prefix) {
    switch (proofKind(prefix)) {
      case "code":
        return { code: $(prefix + "-code").value.trim() };
      case "recovery_code":
        return { recovery_code: normalizeRecovery($(prefix + "-recovery").value) };
      case "webauthn":
        return { webauthn: await keyAssertion("step_up") };
    }
    return null;
  }

  function watchKind(prefix) {
    for (const r of document.querySelectorAll('input[name="' + prefix + '-kind"]')) {
      r.addEventListener("change", function () {
        setKind(prefix, proofKind(prefix));
        if (proofKind(prefix) === "none") {
          show(T.proofNoneChosen);
        }
      });
    }
  }

  // A refused proof leaves the form open with the server's answer in the
  // status line; a wrong code is cleared for the next try.
  function proofRefused(prefix, e) {
    if (!(e instanceof APIError)) {
      return;
    }
    if (e.code === "invalid_code" || e.code === "code_reused" || e.code === "invalid_field") {
      $(prefix + "-code").value = "";
      $(prefix + "-recovery").value = "";
      focusProof(prefix);
    }
    if (e.code === "step_up_required") {
      const none = $(prefix + "-none-help");
      if (none) {
        none.hidden = false;
      }
    }
  }

  function hideSteps() {
    for (const id of ["bind-proof-step", "sms-step", "virtual-step", "hardware-step", "webauthn-step"]) {
      $(id).hidden = true;
    }
    creation = null;
    resetProof("bind-proof");
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
    bindType = null;
    grant = null;
    hideSteps();
    $("regen-step").hidden = true;
    resetProof("regen-proof");
    $("op-reuse").disabled = true;
    for (const id of ["bind-result", "login-result", "op-result"]) {
      setResult($(id), "");
    }
  }

  // bindClicked starts a binding; an account that has a device is asked
  // for the step-up proof first, so that no SMS goes out without one.
  async function bindClicked(type) {
    resetAll();
    if (type === "webauthn") {
      keyReady(); // before any proof or SMS: this page cannot use a key
    }
    if (deviceCount > 0) {
      askBindProof(type);
      return;
    }
    await startBinding(type, null);
  }

  function askBindProof(type) {
    bindType = type;
    resetProof("bind-proof");
    $("bind-proof-step").hidden = false;
    focusProof("bind-proof");
    show(T.bindProofNeeded);
  }

  async function submitBindProof() {
    if (!bindType) {
      show(T.startBinding, "error");
      return;
    }
    await startBinding(bindType, await readProof("bind-proof"));
  }

  async function startBinding(type, proof) {
    const body = { device_type: type };
    if (proof) {
      body.proof = proof;
    }
    let r;
    try {
      r = await call("POST", accountPath() + "/mfa/bindings", body);
    } catch (e) {
      if (e instanceof APIError && e.code === "step_up_required" && $("bind-proof-step").hidden) {
        // The page did not know of the device (another tab bound it).
        askBindProof(type);
        await refresh().catch(() => {});
      }
      proofRefused("bind-proof", e);
      throw e;
    }
    hideSteps();
    bindType = null;
    binding = { id: r.binding_id, type: type };
    const opt = selectedOption();
    const masked = opt ? opt.dataset.maskedPhone : "";
    const phone = opt ? opt.dataset.phone : "";
    $("sms-phone").textContent = masked || T.boundPhone;
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
    show(fmt("smsSent", { phone: masked || T.boundPhone, expires: formatTime(r.expires_at) }), "ok");
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
      err = err || { code: "http_" + res.status, message: T.qrFailed };
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
      show(T.startBinding, "error");
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
      show(T.identityVirtual, "ok");
    } else if (r.status === "awaiting_webauthn") {
      creation = r.creation_options;
      $("wa-name").value = "";
      $("webauthn-step").hidden = false;
      $("wa-name").focus();
      show(T.identityWebAuthn, "ok");
    } else if (r.status === "awaiting_hardware_token") {
      $("serial").value = "";
      $("hw-code").value = "";
      $("hardware-step").hidden = false;
      $("serial").focus();
      show(T.identityHardware, "ok");
    } else {
      show(fmt("unexpectedStatus", { status: r.status }), "error");
    }
  }

  function bound(r) {
    hideSteps();
    binding = null;
    const p = r.protection || {};
    const d = r.device || {};
    const result = $("bind-result");
    setResult(result, fmt("boundResult", { device: describeDevice(d), login: onOff(p.login), operation: onOff(p.operation) }), "ok");
    if (Array.isArray(r.recovery_codes) && r.recovery_codes.length > 0) {
      showCodes(r.recovery_codes, "codesHeading");
      show(T.boundWithCodes, "ok");
    } else {
      result.focus();
      show(T.bound, "ok");
    }
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

  // confirmWebAuthn registers a key with the binding's creation options
  // and sends its answer. A cancelled prompt leaves the step open for
  // another try; a refused answer ends the binding.
  async function confirmWebAuthn() {
    if (!binding || !creation) {
      show(T.startBinding, "error");
      return;
    }
    const credential = await withKey(WA.create, creation);
    let r;
    try {
      r = await call("POST", bindingPath() + "/confirm", {
        credential: credential,
        name: $("wa-name").value.trim(),
        protection: { login: $("wa-scope-login").checked, operation: $("wa-scope-operation").checked },
      });
    } catch (e) {
      if (e instanceof APIError && (e.code === "credential_refused" || e.code === "binding_not_found")) {
        hideSteps();
        binding = null;
        setResult($("bind-result"), T.keyRegistrationRefused, "refused");
      }
      throw e;
    }
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

  // Recovery codes on show (SPEC §6b): once, from the answer that made them.

  function showCodes(codes, headingKey) {
    clearCodes();
    shown = { account: accountID(), codes: codes.slice(), time: new Date() };
    const list = $("codes-list");
    for (const c of codes) {
      const li = document.createElement("li");
      const code = document.createElement("code");
      code.textContent = c;
      li.append(code);
      list.append(li);
    }
    $("h-codes").textContent = fmt(headingKey, { account: shown.account });
    $("codes-panel").hidden = false;
    $("h-codes").focus();
  }

  // clearCodes removes the codes from the page and from memory.
  function clearCodes() {
    shown = null;
    $("codes-list").replaceChildren();
    $("codes-note").textContent = "";
    $("codes-panel").hidden = true;
    if (codesURL) {
      URL.revokeObjectURL(codesURL);
      codesURL = null;
    }
  }

  async function copyCodes() {
    if (!shown) {
      return;
    }
    const text = shown.codes.join("\n");
    const note = $("codes-note");
    try {
      if (!navigator.clipboard || !window.isSecureContext) {
        throw new Error("no clipboard");
      }
      await navigator.clipboard.writeText(text);
      note.textContent = fmt("copied", { n: shown.codes.length });
      return;
    } catch (e) {
      // Fall back to the selection below.
    }
    const sel = window.getSelection();
    const range = document.createRange();
    range.selectNodeContents($("codes-list"));
    sel.removeAllRanges();
    sel.addRange(range);
    let ok = false;
    try {
      ok = document.execCommand("copy");
    } catch (e) {
      ok = false;
    }
    if (ok) {
      sel.removeAllRanges();
      note.textContent = fmt("copied", { n: shown.codes.length });
    } else {
      note.textContent = T.copyManually;
    }
  }

  function downloadCodes() {
    if (!shown) {
      return;
    }
    const file = fmt("fileName", { account: shown.account });
    const text = fmt("fileText", { account: shown.account, time: shown.time.toLocaleString(), codes: shown.codes.join("\n") });
    if (codesURL) {
      URL.revokeObjectURL(codesURL);
    }
    codesURL = URL.createObjectURL(new Blob([text], { type: "text/plain;charset=utf-8" }));
    const a = document.createElement("a");
    a.href = codesURL;
    a.download = file;
    a.hidden = true;
    document.body.append(a);
    a.click();
    a.remove();
    $("codes-note").textContent = fmt("downloaded", { file: file });
  }

  function codesDone() {
    clearCodes();
    show(T.codesDismissed);
    $("h-recovery").focus();
  }

  function askRegen() {
    resetProof("regen-proof");
    $("regen-step").hidden = false;
    focusProof("regen-proof");
    show(T.regenProofNeeded);
  }

  async function regenerate() {
    let r;
    try {
      const proof = await readProof("regen-proof");
      r = await call("POST", accountPath() + "/mfa/recovery-codes", proof ? { proof: proof } : {});
    } catch (e) {
      proofRefused("regen-proof", e);
      throw e;
    }
    $("regen-step").hidden = true;
    resetProof("regen-proof");
    showCodes(r.recovery_codes || [], "codesNewHeading");
    show(T.codesNew, "ok");
    await refresh();
  }

  function loginKindChanged() {
    const recovery = $("login-kind-recovery").checked;
    const key = $("login-kind-webauthn").checked;
    $("login-code-field").hidden = recovery || key;
    $("login-code").disabled = recovery || key;
    $("login-recovery-field").hidden = !recovery;
    $("login-recovery").disabled = !recovery;
    $("login-webauthn-field").hidden = !key;
  }

  function opKindChanged() {
    const key = $("op-kind-webauthn").checked;
    $("op-code-field").hidden = key;
    $("op-code").disabled = key;
    $("op-webauthn-field").hidden = !key;
  }

  async function verifyLogin() {
    setResult($("login-result"), "");
    if ($("login-kind-webauthn").checked) {
      await verifyLoginWithKey();
      return;
    }
    const recovery = $("login-kind-recovery").checked;
    const input = recovery ? $("login-recovery") : $("login-code");
    const body = recovery ? { recovery_code: normalizeRecovery(input.value), purpose: "login" } : { code: input.value.trim(), purpose: "login" };
    let r;
    try {
      r = await call("POST", accountPath() + "/mfa/verify", body);
    } finally {
      if (recovery) {
        input.value = ""; // used or refused, a recovery code is not kept on the page
      }
    }
    input.value = "";
    if (recovery) {
      setResult($("login-result"), fmt("loginRecovery", { n: r.recovery_codes_remaining }), "ok");
    } else {
      setResult($("login-result"), T.loginVerified, "ok");
    }
    show(T.loginPassed, "ok");
    await refresh();
  }

  async function verifyLoginWithKey() {
    const body = { webauthn: await keyAssertion("login"), purpose: "login" };
    try {
      await call("POST", accountPath() + "/mfa/verify", body);
    } catch (e) {
      keyRefusal($("login-result"), e);
      throw e;
    }
    setResult($("login-result"), T.loginWebAuthn, "ok");
    show(T.loginPassed, "ok");
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
    let v;
    if ($("op-kind-webauthn").checked) {
      const body = { webauthn: await keyAssertion("operation", operation), purpose: "operation", operation: operation };
      try {
        v = await call("POST", accountPath() + "/mfa/verify", body);
      } catch (e) {
        keyRefusal($("op-result"), e);
        throw e;
      }
    } else {
      v = await call("POST", accountPath() + "/mfa/verify", { code: input.value.trim(), purpose: "operation", operation: operation });
    }
    input.value = "";
    grant = v.grant;
    await consume();
    $("op-reuse").disabled = false;
    setResult($("op-result"), T.vmDeleted, "ok");
    show(T.opDone, "ok");
    await refresh();
  }

  async function reuseGrant() {
    if (!grant) {
      show(T.deleteFirst, "error");
      return;
    }
    try {
      await consume();
      setResult($("op-result"), T.grantTwice, "error");
      show(T.grantTwiceStatus, "error");
    } catch (e) {
      if (e instanceof APIError) {
        setResult($("op-result"), fmt("refused", { message: e.message, code: e.code }), "refused");
      }
      throw e;
    }
  }

  function on(id, type, fn) {
    $(id).addEventListener(type, fn);
  }

  function init() {
    const sel = accountSelect();
    if (!sel) {
      show(T.noAccounts, "error");
      for (const b of document.querySelectorAll("button")) {
        b.disabled = true;
      }
      return;
    }
    on("refresh", "click", action($("refresh"), refresh));
    sel.addEventListener("change", async function () {
      resetAll();
      deviceCount = 0;
      show(fmt("accountSelected", { id: accountID() }));
      try {
        await refresh();
      } catch (e) {
        showError(e);
      }
    });
    on("bind-virtual", "click", action($("bind-virtual"), () => bindClicked("virtual")));
    on("bind-hardware", "click", action($("bind-hardware"), () => bindClicked("hardware")));
    on("bind-webauthn", "click", action($("bind-webauthn"), () => bindClicked("webauthn")));
    on("webauthn-step", "submit", action($("wa-register"), confirmWebAuthn));
    on("bind-proof-step", "submit", action($("bind-proof-submit"), submitBindProof));
    on("bind-proof-cancel", "click", function () {
      hideSteps();
      bindType = null;
      $("bind-virtual").focus();
    });
    on("sms-step", "submit", action($("sms-submit"), submitSMS));
    on("virtual-step", "submit", action($("confirm"), confirmVirtual));
    on("hardware-step", "submit", action($("hw-confirm"), confirmHardware));
    on("serial", "input", updateTokenLink);
    on("recovery-new", "click", askRegen);
    on("regen-step", "submit", action($("regen-submit"), regenerate));
    on("regen-cancel", "click", function () {
      $("regen-step").hidden = true;
      resetProof("regen-proof");
      $("recovery-new").focus();
    });
    on("codes-copy", "click", copyCodes);
    on("codes-download", "click", downloadCodes);
    on("codes-done", "click", codesDone);
    watchKind("bind-proof");
    watchKind("regen-proof");
    for (const r of document.querySelectorAll('input[name="login-kind"]')) {
      r.addEventListener("change", loginKindChanged);
    }
    loginKindChanged();
    for (const r of document.querySelectorAll('input[name="op-kind"]')) {
      r.addEventListener("change", opKindChanged);
    }
    opKindChanged();
    if (WA && WA.isIPAddress(location.hostname)) {
      showOriginNotice("");
    }
    on("login-form", "submit", action($("login-verify"), verifyLogin));
    on("op-form", "submit", action($("op-verify"), deleteVM));
    on("op-reuse", "click", action($("op-reuse"), reuseGrant));
    refresh().then(() => show(fmt("accountLoaded", { id: accountID() })), showError);
  }

  init();
})();
