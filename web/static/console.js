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
  // Every text the script shows: the catalog key of each (i18n/locales/
  // pages.*.toml), whose text in the page's language the server renders
  // into #i18n-dict. {name} is replaced by fmt. A new text gets a key here
  // and an entry in both catalogs; never an English literal.
  const T = {
    pickAccount: "page.console.pickAccount",
    noAccounts: "page.console.noAccounts",
    accountSelected: "page.console.accountSelected",
    accountLoaded: "page.console.accountLoaded",
    error: "page.console.error",
    errorRetry: "page.console.errorRetry",
    errorPlain: "page.console.errorPlain",
    networkError: "page.console.networkError",
    requestFailed: "page.console.requestFailed",
    qrFailed: "page.console.qrFailed",
    never: "page.console.never",
    on: "page.console.on",
    off: "page.console.off",
    virtualDevice: "page.console.virtualDevice",
    hardwareDevice: "page.console.hardwareDevice",
    webauthnDevice: "page.console.webauthnDevice",
    deviceSerial: "page.console.deviceSerial",
    deviceKey: "page.console.deviceKey",
    deviceModel: "page.console.deviceModel",
    deviceAAGUID: "page.console.deviceAAGUID",
    modelUnknown: "page.console.modelUnknown",
    noDevice: "page.console.noDevice",
    deviceMeta: "page.console.deviceMeta",
    protection: "page.console.protection",
    recoveryNone: "page.console.recoveryNone",
    recoveryLeft: "page.console.recoveryLeft",
    recoveryLow: "page.console.recoveryLow",
    recoveryOut: "page.console.recoveryOut",
    startBinding: "page.console.startBinding",
    bindProofNeeded: "page.console.bindProofNeeded",
    regenProofNeeded: "page.console.regenProofNeeded",
    proofNoneChosen: "page.console.proofNoneChosen",
    smsSent: "page.console.smsSent",
    boundPhone: "page.console.boundPhone",
    identityVirtual: "page.console.identityVirtual",
    identityHardware: "page.console.identityHardware",
    identityWebAuthn: "page.console.identityWebAuthn",
    unexpectedStatus: "page.console.unexpectedStatus",
    resumed: "page.console.resumed",
    bindingCancelled: "page.console.bindingCancelled",
    bindingExpired: "page.console.bindingExpired",
    bindingElsewhere: "page.console.bindingElsewhere",
    boundResult: "page.console.boundResult",
    bound: "page.console.bound",
    boundWithCodes: "page.console.boundWithCodes",
    codesHeading: "page.console.codesHeading",
    codesNewHeading: "page.console.codesNewHeading",
    codesNew: "page.console.codesNew",
    copied: "page.console.copied",
    copyManually: "page.console.copyManually",
    downloaded: "page.console.downloaded",
    codesDismissed: "page.console.codesDismissed",
    fileName: "page.console.fileName",
    fileText: "page.console.fileText",
    loginVerified: "page.console.loginVerified",
    loginRecovery: "page.console.loginRecovery",
    loginPassed: "page.console.loginPassed",
    vmDeleted: "page.console.vmDeleted",
    opDone: "page.console.opDone",
    deleteFirst: "page.console.deleteFirst",
    grantTwice: "page.console.grantTwice",
    grantTwiceStatus: "page.console.grantTwiceStatus",
    refused: "page.console.refused",
    loginWebAuthn: "page.console.loginWebAuthn",
    keyTouch: "page.console.keyTouch",
    keyCancelled: "page.console.keyCancelled",
    keyExists: "page.console.keyExists",
    keyUnsupported: "page.console.keyUnsupported",
    keyFailed: "page.console.keyFailed",
    keyOriginIP: "page.console.keyOriginIP",
    keyOrigin: "page.console.keyOrigin",
    keyRegistrationRefused: "page.console.keyRegistrationRefused",
    keyCloned: "page.console.keyCloned",
    keyRefused: "page.console.keyRefused",
  };

  let dict = {};
  try {
    dict = JSON.parse((document.getElementById("i18n-dict") || {}).textContent || "{}");
  } catch (e) {
    dict = {};
  }
  const lang = document.documentElement.lang || "zh-CN";

  function fmt(key, vars) {
    const id = T[key] || key;
    const text = Object.prototype.hasOwnProperty.call(dict, id) ? dict[id] : id;
    return text.replace(/\{(\w+)\}/g, (m, name) => (vars && name in vars ? String(vars[name]) : m));
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

  // The sticky status line never covers the focused field: the page's
  // scroll padding follows its height.
  if (window.ResizeObserver) {
    new ResizeObserver(() => {
      document.documentElement.style.scrollPaddingTop = (statusEl.offsetHeight + 16) + "px";
    }).observe(statusEl);
  }

  // show sets the status line, a live region: an unchanged message is not
  // written again, so a screen reader announces changes only.
  function show(message, kind) {
    const cls = "status" + (kind ? " " + kind : "");
    if (statusEl.textContent !== message) {
      statusEl.textContent = message;
    }
    if (statusEl.className !== cls) {
      statusEl.className = cls;
    }
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
    opts.headers["Accept-Language"] = lang;
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(path, opts);
    } catch (e) {
      throw new APIError("network_error", fmt("networkError"), 0, null);
    }
    let data = null;
    try {
      data = await res.json();
    } catch (e) {
      data = null;
    }
    if (!res.ok) {
      const err = (data && data.error) || { code: "http_" + res.status, message: res.statusText || fmt("requestFailed") };
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
        show(fmt("pickAccount"), "error");
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
    return b ? fmt("on") : fmt("off");
  }

  // Times in the reader's own zone (the browser's), in the page's language.
  const timeFormat = new Intl.DateTimeFormat(lang, {
    year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", hour12: false, timeZoneName: "shortOffset",
  });

  function formatTime(s) {
    if (!s) {
      return fmt("never");
    }
    const d = new Date(s);
    return isNaN(d) ? s : timeFormat.format(d);
  }

  function describeDevice(d) {
    if (d.type === "webauthn") {
      return fmt("deviceKey", { device: fmt("webauthnDevice"), name: d.name || "", id: d.id });
    }
    const name = (d.type === "hardware" ? fmt("hardwareDevice") : d.type === "virtual" ? fmt("virtualDevice") : d.type) + " " + d.id;
    return d.serial ? fmt("deviceSerial", { device: name, serial: d.serial }) : name;
  }

  // describeModel is a security key's model: its name when the server
  // knows the AAGUID, else the AAGUID, else that the key did not say.
  function describeModel(d) {
    const model = d.model || (d.aaguid ? fmt("deviceAAGUID", { aaguid: d.aaguid }) : fmt("modelUnknown"));
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
      li.textContent = fmt("noDevice");
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
      throw new KeyError("unsupported", fmt("keyUnsupported"));
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
    show(fmt("keyTouch"));
    try {
      return await ceremony(options);
    } catch (e) {
      const kind = WA.failure(e);
      switch (kind) {
        case "cancelled":
          throw new KeyError(kind, fmt("keyCancelled"));
        case "origin":
          throw new KeyError(kind, showOriginNotice(WA.rpID(options)));
        case "exists":
          throw new KeyError(kind, fmt("keyExists"));
        case "unsupported":
          throw new KeyError(kind, fmt("keyUnsupported"));
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
      setResult(el, fmt("keyCloned"), "refused");
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
      $("recovery-left").textContent = fmt("recoveryNone");
      warning.hidden = true;
      $("regen-step").hidden = true;
      return;
    }
    $("recovery-left").textContent = known ? fmt("recoveryLeft", { n: left }) : "";
    if (known && left <= 3) {
      warning.textContent = left === 0 ? fmt("recoveryOut") : fmt("recoveryLow", { n: left });
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
          show(fmt("proofNoneChosen"));
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

  // The binding this page started is remembered in the tab's
  // sessionStorage (its id and device type, per account), so that after a
  // reload the page resumes it, or cancels it, instead of being refused
  // with binding_in_progress until it expires.
  function bindingKey() {
    return "mfaflow.console.binding." + accountID();
  }

  function rememberBinding(b) {
    try {
      if (b) {
        sessionStorage.setItem(bindingKey(), JSON.stringify(b));
      } else {
        sessionStorage.removeItem(bindingKey());
      }
    } catch (e) {
      // No storage (private mode): the binding is not resumed after a reload.
    }
  }

  function rememberedBinding() {
    try {
      const b = JSON.parse(sessionStorage.getItem(bindingKey()) || "null");
      return b && typeof b.id === "string" && b.id ? b : null;
    } catch (e) {
      return null;
    }
  }

  // endBinding forgets the binding in progress: it was bound, cancelled,
  // or it ended on the server.
  function endBinding() {
    binding = null;
    rememberBinding(null);
    $("bind-pending").hidden = true;
  }

  function hideSteps() {
    $("bind-pending").hidden = true;
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
    show(fmt("bindProofNeeded"));
  }

  async function submitBindProof() {
    if (!bindType) {
      show(fmt("startBinding"), "error");
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
      if (e instanceof APIError && e.code === "binding_in_progress") {
        // This page's own binding (another tab of it, or a reload that did
        // not resume it) comes back; one started elsewhere is explained.
        if (await resumeBinding()) {
          return;
        }
        show(fmt("bindingElsewhere", { account: accountID() }), "error");
        return;
      }
      throw e;
    }
    hideSteps();
    bindType = null;
    binding = { id: r.binding_id, type: type };
    rememberBinding(binding);
    showSMSStep();
    const opt = selectedOption();
    show(fmt("smsSent", { phone: (opt && opt.dataset.maskedPhone) || fmt("boundPhone"), expires: formatTime(r.expires_at) }), "ok");
  }

  // showSMSStep shows the SMS code step of the binding in progress.
  function showSMSStep() {
    const opt = selectedOption();
    const masked = opt ? opt.dataset.maskedPhone : "";
    const phone = opt ? opt.dataset.phone : "";
    $("sms-phone").textContent = masked || fmt("boundPhone");
    const link = $("outbox-link");
    if (devLinks && phone) {
      link.href = "/dev/outbox?to=" + encodeURIComponent(phone);
      link.hidden = false;
    } else {
      link.hidden = true;
    }
    $("sms-code").value = "";
    $("sms-step").hidden = false;
    $("bind-pending").hidden = false;
    $("sms-code").focus();
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
      err = err || { code: "http_" + res.status, message: fmt("qrFailed") };
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
      show(fmt("startBinding"), "error");
      return;
    }
    const r = await call("POST", bindingPath() + "/sms-code", { code: $("sms-code").value.trim() });
    $("sms-step").hidden = true;
    const done = { awaiting_device_codes: "identityVirtual", awaiting_webauthn: "identityWebAuthn", awaiting_hardware_token: "identityHardware" };
    if (await showStep(r)) {
      show(fmt(done[r.status]), "ok");
    } else {
      show(fmt("unexpectedStatus", { status: r.status }), "error");
    }
  }

  // showStep shows the step a binding at r.status waits for (r is the SMS
  // step's answer, or a resumed binding's state, which carry the key or
  // the creation options); false for a status no step of the page waits for.
  async function showStep(r) {
    switch (r.status) {
      case "awaiting_sms_code":
        showSMSStep();
        return true;
      case "awaiting_device_codes":
        $("secret").textContent = r.secret;
        $("code1").value = "";
        $("code2").value = "";
        $("virtual-step").hidden = false;
        $("bind-pending").hidden = false;
        await loadQR();
        $("code1").focus();
        return true;
      case "awaiting_webauthn":
        creation = r.creation_options;
        $("wa-name").value = "";
        $("webauthn-step").hidden = false;
        $("bind-pending").hidden = false;
        $("wa-name").focus();
        return true;
      case "awaiting_hardware_token":
        $("serial").value = "";
        $("hw-code").value = "";
        $("hardware-step").hidden = false;
        $("bind-pending").hidden = false;
        $("serial").focus();
        return true;
    }
    return false;
  }

  // resumeBinding brings back the binding this page started for the
  // account (remembered across reloads) at the step it waits for; it
  // returns false when there is none that is still open. A binding that
  // ended on the server is forgotten.
  async function resumeBinding() {
    const b = rememberedBinding();
    if (!b) {
      return false;
    }
    binding = b;
    let r;
    try {
      r = await call("GET", bindingPath());
    } catch (e) {
      if (e instanceof APIError && (e.code === "binding_not_found" || e.code === "wrong_state")) {
        endBinding();
        return false;
      }
      binding = null;
      throw e;
    }
    hideSteps();
    binding = { id: r.binding_id, type: r.device_type };
    if (!(await showStep(r))) {
      endBinding();
      if (r.status === "expired") {
        show(fmt("bindingExpired"), "error");
      }
      return false;
    }
    show(fmt("resumed", { expires: formatTime(r.expires_at) }), "ok");
    return true;
  }

  // cancelBinding cancels the binding in progress (DELETE): the server
  // drops its pending device or card, and a new binding can start at once.
  async function cancelBinding() {
    if (binding) {
      try {
        await call("DELETE", bindingPath());
      } catch (e) {
        if (!(e instanceof APIError && e.code === "binding_not_found")) {
          throw e;
        }
      }
    }
    hideSteps();
    endBinding();
    bindType = null;
    show(fmt("bindingCancelled"), "ok");
    $("bind-virtual").focus();
  }

  function bound(r) {
    hideSteps();
    endBinding();
    const p = r.protection || {};
    const d = r.device || {};
    const result = $("bind-result");
    setResult(result, fmt("boundResult", { device: describeDevice(d), login: onOff(p.login), operation: onOff(p.operation) }), "ok");
    if (Array.isArray(r.recovery_codes) && r.recovery_codes.length > 0) {
      showCodes(r.recovery_codes, "codesHeading");
      show(fmt("boundWithCodes"), "ok");
    } else {
      result.focus();
      show(fmt("bound"), "ok");
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
      show(fmt("startBinding"), "error");
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
        endBinding();
        setResult($("bind-result"), fmt("keyRegistrationRefused"), "refused");
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
      note.textContent = fmt("copyManually");
    }
  }

  function downloadCodes() {
    if (!shown) {
      return;
    }
    const file = fmt("fileName", { account: shown.account });
    const text = fmt("fileText", { account: shown.account, time: timeFormat.format(shown.time), codes: shown.codes.join("\n") });
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
    show(fmt("codesDismissed"));
    $("h-recovery").focus();
  }

  function askRegen() {
    resetProof("regen-proof");
    $("regen-step").hidden = false;
    focusProof("regen-proof");
    show(fmt("regenProofNeeded"));
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
    show(fmt("codesNew"), "ok");
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
      setResult($("login-result"), fmt("loginVerified"), "ok");
    }
    show(fmt("loginPassed"), "ok");
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
    setResult($("login-result"), fmt("loginWebAuthn"), "ok");
    show(fmt("loginPassed"), "ok");
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
    setResult($("op-result"), fmt("vmDeleted"), "ok");
    show(fmt("opDone"), "ok");
    await refresh();
  }

  async function reuseGrant() {
    if (!grant) {
      show(fmt("deleteFirst"), "error");
      return;
    }
    try {
      await consume();
      setResult($("op-result"), fmt("grantTwice"), "error");
      show(fmt("grantTwiceStatus"), "error");
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
      show(fmt("noAccounts"), "error");
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
        await resumeBinding();
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
    on("bind-cancel", "click", action($("bind-cancel"), cancelBinding));
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
    refresh()
      .then(() => resumeBinding())
      .then((resumed) => {
        if (!resumed) {
          show(fmt("accountLoaded", { id: accountID() }));
        }
      })
      .catch(showError);
  }

  init();
})();
