// appeal.js drives the appeal form (/appeal): file the appeal with
// POST /v1/appeals, keep the access token in the tab's sessionStorage, upload
// each required document with PUT (the raw file as the body), then submit
// and go to the status page. /appeal?id=<appeal id> resumes the upload step
// of an appeal this tab filed (also after a reviewer asked for information).
"use strict";

(function () {
  const m = window.mfaflow;
  const $ = m.$;
  const root = $("appeal");
  const maxDocument = Number(root.dataset.maxDocument) || 10 * 1024 * 1024;
  const allowedTypes = ["image/jpeg", "image/png", "application/pdf"];

  let appeal = null; // { id, token, required: [doc types], uploaded: Set }

  const fields = ["applicant_type", "account_id", "account_login", "bound_phone", "company_name", "company_reg_number", "name", "id_number", "contact_phone"];
  // The input to focus for each field the API may name.
  const fieldInput = { applicant_type: "type-personal", account_login: "login_id" };
  // What to say for each field the API refuses; the API's message is the fallback.
  const fieldHelp = {
    applicant_type: "Choose a personal or an enterprise account.",
    account_id: "Enter the cloud account ID: letters, digits, '.', '_' or '-'.",
    account_login: "Choose what the account was registered with and enter that QQ number, e-mail address, WeChat ID or official account ID.",
    bound_phone: "Enter the mainland mobile number bound to the account (11 digits).",
    name: "Enter the name exactly as on the ID card.",
    id_number: "Enter the 18-character ID number; its last character is a check digit, so a typo shows here.",
    contact_phone: "Enter a mainland mobile number (11 digits) where we can reach you now.",
    company_name: "Enter the company name exactly as on the business licence.",
    company_reg_number: "Enter the 18-character unified social credit code; its last character is a check character, so a typo shows here.",
  };
  const loginLabels = { qq: "QQ number", email: "E-mail address", wechat: "WeChat ID", wechat_official: "WeChat official account ID" };

  function applicantType() {
    return $("type-enterprise").checked ? "enterprise" : "personal";
  }

  function typeChanged() {
    const enterprise = applicantType() === "enterprise";
    const company = $("company");
    company.hidden = !enterprise;
    company.disabled = !enterprise; // hidden inputs must not block the form
    $("name-label").textContent = enterprise ? "The applicant's name" : "Your name";
  }

  function loginKindChanged() {
    $("login_id_label").textContent = loginLabels[$("login_kind").value] || "Account login";
  }

  function clearErrors() {
    for (const f of fields) {
      const p = $("err-" + f);
      p.textContent = "";
      p.hidden = true;
      const input = $(fieldInput[f] || f);
      if (input) {
        input.removeAttribute("aria-invalid");
      }
    }
    m.result($("form-error"), "");
  }

  // fieldError shows message under the field and focuses it; false when the
  // page has no such field.
  function fieldError(field, message) {
    const p = $("err-" + field);
    if (!p) {
      return false;
    }
    p.textContent = message;
    p.hidden = false;
    const input = $(fieldInput[field] || field);
    if (input) {
      input.setAttribute("aria-invalid", "true");
      input.focus();
    }
    return true;
  }

  function formError(message) {
    m.result($("form-error"), message, "error");
    m.status("The appeal was not filed: see the message in the form.", "error");
    $("form-error").scrollIntoView({ block: "center" });
  }

  function body() {
    const b = {
      account_id: $("account_id").value.trim(),
      applicant_type: applicantType(),
      account_login: { kind: $("login_kind").value, id: $("login_id").value.trim() },
      bound_phone: $("bound_phone").value.trim(),
      name: $("name").value.trim(),
      id_number: $("id_number").value.trim().toUpperCase(),
      contact_phone: $("contact_phone").value.trim(),
    };
    if (b.applicant_type === "enterprise") {
      b.company_name = $("company_name").value.trim();
      b.company_reg_number = $("company_reg_number").value.trim().toUpperCase();
    }
    return b;
  }

  function filingError(e) {
    if (!(e instanceof m.APIError)) {
      formError("Something went wrong: " + e.message);
      return;
    }
    switch (e.code) {
      case "invalid_field":
        if (fieldError(e.field, fieldHelp[e.field] || e.message)) {
          m.status("Check the highlighted field.", "error");
          return;
        }
        formError("Check your details: " + e.message);
        return;
      case "real_name_not_verified":
        formError("This account has not completed real-name verification, so its MFA device cannot be unbound by appeal. " +
          "Complete real-name verification for the account first; then you can file the appeal.");
        return;
      case "identity_mismatch":
        formError("The details do not match the account's real-name record. Check the account, its login, the bound phone, " +
          "the name and the ID number" + (applicantType() === "enterprise" ? ", and the company details" : "") +
          ": they must be exactly those of the verified owner.");
        return;
      case "no_mfa_bound":
        formError("This account has no MFA device bound, so there is nothing to unbind. Sign in with the account's password.");
        return;
      case "rate_limited":
        formError("Too many appeals were filed from this network or for this account. Try again " + m.waitText(e.retryAfter) + ".");
        return;
      case "appeal_in_progress":
        formError("An appeal for this account is already open. Follow it on its status page, or wait until it is closed.");
        return;
      default:
        formError("The appeal could not be filed: " + e.message + " (" + e.code + ").");
    }
  }

  async function fileAppeal() {
    clearErrors();
    m.status("Checking the account…");
    const r = await m.call("POST", "/v1/appeals", { json: body() });
    m.store(m.appealTokenKey(r.appeal_id), r.access_token);
    m.store("mfaflow.appeal.last", r.appeal_id);
    appeal = { id: r.appeal_id, token: r.access_token, required: r.required_documents || ["id_holding_photo"], uploaded: new Set() };
    // The id goes in the URL so a reload resumes here; the token never does.
    history.replaceState(null, "", "/appeal?id=" + encodeURIComponent(r.appeal_id));
    showUploadStep(r.document_deadline);
    m.status("Appeal filed. Now upload the documents.", "ok");
  }

  function showUploadStep(deadline) {
    $("appeal-form").hidden = true;
    $("upload-step").hidden = false;
    let text = "Appeal " + appeal.id + " is filed.";
    if (m.isSet(deadline)) {
      text += " Upload the documents and submit it by " + m.formatTime(deadline) + ".";
    }
    $("filed").textContent = text;
    $("access-token").textContent = appeal.token;
    $("status-link").href = "/appeal/status?id=" + encodeURIComponent(appeal.id);
    for (const t of ["id_holding_photo", "business_licence"]) {
      $("doc-row-" + t).hidden = !appeal.required.includes(t);
    }
    updateSubmit();
    const first = appeal.required.find((t) => !appeal.uploaded.has(t));
    if (first) {
      $("file-" + first).focus();
    }
  }

  function updateSubmit() {
    $("submit-appeal").disabled = !appeal || !appeal.required.every((t) => appeal.uploaded.has(t));
  }

  function docResult(type, message, kind) {
    const p = $("doc-" + type);
    p.replaceChildren();
    if (message instanceof Node) {
      p.append(message);
    } else {
      p.textContent = message;
    }
    p.className = "doc-result" + (kind ? " " + kind : "");
  }

  function uploaded(type, name, r) {
    appeal.uploaded.add(type);
    docResult(type, m.el("span", {},
      "Uploaded" + (name ? " " + name : "") + ": " + m.formatSize(r.size) + ", SHA-256 ",
      m.el("code", { className: "hash" }, r.sha256 || "")), "ok");
    updateSubmit();
  }

  async function upload(type, input) {
    const file = input.files && input.files[0];
    if (!file || !appeal) {
      return;
    }
    if (file.size > maxDocument) {
      docResult(type, file.name + " is too large (" + m.formatSize(file.size) + "); the limit is " + m.formatSize(maxDocument) + ".", "error");
      return;
    }
    if (file.size === 0) {
      docResult(type, file.name + " is empty.", "error");
      return;
    }
    const wasUploaded = appeal.uploaded.has(type);
    docResult(type, "Uploading " + file.name + " (" + m.formatSize(file.size) + ")…");
    input.disabled = true;
    $("submit-appeal").disabled = true;
    try {
      const r = await m.call("PUT", "/v1/appeals/" + encodeURIComponent(appeal.id) + "/documents/" + encodeURIComponent(type), {
        token: appeal.token, body: file, contentType: allowedTypes.includes(file.type) ? file.type : file.type || "application/octet-stream",
      });
      uploaded(type, file.name, r);
      m.status(m.docLabel(type) + " uploaded.", "ok");
    } catch (e) {
      let msg;
      if (e instanceof m.APIError && e.httpStatus === 413) {
        msg = file.name + " is too large. Send a smaller photo or scan (at most " + m.formatSize(maxDocument) + ").";
      } else if (e instanceof m.APIError && e.httpStatus === 415) {
        msg = file.name + " is not accepted: send a JPEG, PNG or PDF file (its content is checked, not just its name).";
      } else if (e instanceof m.APIError && e.code === "deadline_passed") {
        msg = "The document deadline has passed; this appeal can no longer take documents.";
      } else {
        msg = file.name + " was not uploaded: " + e.message + (e.code ? " (" + e.code + ")" : "") + ".";
      }
      if (wasUploaded) {
        msg += " The earlier upload is kept.";
      }
      docResult(type, msg, "error");
      m.status(msg, "error");
    } finally {
      input.disabled = false;
      input.value = "";
      updateSubmit();
    }
  }

  async function submit() {
    m.status("Submitting…");
    try {
      await m.call("POST", "/v1/appeals/" + encodeURIComponent(appeal.id) + "/submit", { token: appeal.token });
    } catch (e) {
      if (e instanceof m.APIError && e.code === "documents_missing") {
        m.status("Upload every required document before submitting.", "error");
        return;
      }
      throw e;
    }
    m.status("Submitted. Opening the status page…", "ok");
    location.assign("/appeal/status?id=" + encodeURIComponent(appeal.id));
  }

  // resume reopens the upload step of an appeal this tab filed.
  async function resume(id) {
    const token = m.load(m.appealTokenKey(id));
    if (!token) {
      m.status("This tab does not hold the access token of appeal " + id + ". Open its status page and paste the token.", "error");
      $("appeal-form").hidden = true;
      const link = m.el("a", { href: "/appeal/status?id=" + encodeURIComponent(id) }, "Open the status page");
      $("status").append(" ", link);
      return;
    }
    const r = await m.call("GET", "/v1/appeals/" + encodeURIComponent(id), { token: token });
    if (r.status !== "collecting_documents") {
      location.replace("/appeal/status?id=" + encodeURIComponent(id));
      return;
    }
    const docs = r.documents || [];
    appeal = { id: id, token: token, required: docs.map((d) => d.type), uploaded: new Set() };
    showUploadStep(r.document_deadline);
    for (const d of docs) {
      if (d.uploaded) {
        uploaded(d.type, "", d);
      }
    }
    m.status("Appeal " + id + ": upload the documents, then submit.", "ok");
  }

  function init() {
    $("max-size").textContent = m.formatSize(maxDocument);
    $("type-personal").addEventListener("change", typeChanged);
    $("type-enterprise").addEventListener("change", typeChanged);
    $("login_kind").addEventListener("change", loginKindChanged);
    typeChanged();
    loginKindChanged();
    $("appeal-form").addEventListener("submit", m.busy($("file-appeal"), fileAppeal, filingError));
    for (const t of ["id_holding_photo", "business_licence"]) {
      const input = $("file-" + t);
      input.addEventListener("change", () => upload(t, input));
    }
    $("submit-appeal").addEventListener("click", m.busy($("submit-appeal"), submit, function (e) {
      m.status("The appeal was not submitted: " + e.message + (e.code ? " (" + e.code + ")" : "") + ".", "error");
    }, updateSubmit));
    const id = root.dataset.appealId;
    if (id) {
      resume(id).catch(function (e) {
        m.status("Appeal " + id + " could not be loaded: " + e.message + ".", "error");
      });
    }
  }

  init();
})();
