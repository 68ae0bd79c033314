// appeal.js drives the appeal form (/appeal): file the appeal with
// POST /v1/appeals, keep the access token in the tab's sessionStorage, upload
// each required document with PUT (the raw file as the body), then submit
// and go to the status page. /appeal?id=<appeal id> resumes the upload step
// of an appeal this tab filed (also after a reviewer asked for information).
"use strict";

(function () {
  const m = window.mfaflow;
  const $ = m.$;
  const t = m.t;
  const root = $("appeal");
  const maxDocument = Number(root.dataset.maxDocument) || 10 * 1024 * 1024;
  const allowedTypes = ["image/jpeg", "image/png", "application/pdf"];

  let appeal = null; // { id, token, required: [doc types], uploaded: Set }

  const fields = ["applicant_type", "account_id", "account_login", "bound_phone", "company_name", "company_reg_number", "name", "id_number", "contact_phone"];
  // The input to focus for each field the API may name.
  const fieldInput = { applicant_type: "type-personal", account_login: "login_id" };
  // What to say for each field the API refuses; the API's message is the fallback.
  const fieldHelp = {
    applicant_type: "page.appeal.h_applicant_type",
    account_id: "page.appeal.h_account_id",
    account_login: "page.appeal.h_account_login",
    bound_phone: "page.appeal.h_bound_phone",
    name: "page.appeal.h_name",
    id_number: "page.appeal.h_id_number",
    contact_phone: "page.appeal.h_contact_phone",
    company_name: "page.appeal.h_company_name",
    company_reg_number: "page.appeal.h_company_reg_number",
  };
  const loginLabels = { qq: "page.login_id.qq", email: "page.login_id.email", wechat: "page.login_id.wechat", wechat_official: "page.login_id.wechat_official" };

  function applicantType() {
    return $("type-enterprise").checked ? "enterprise" : "personal";
  }

  function typeChanged() {
    const enterprise = applicantType() === "enterprise";
    const company = $("company");
    company.hidden = !enterprise;
    company.disabled = !enterprise; // hidden inputs must not block the form
    $("name-label").textContent = enterprise ? t("page.appeal.applicant_name") : t("page.appeal.your_name");
  }

  function loginKindChanged() {
    $("login_id_label").textContent = t(loginLabels[$("login_kind").value] || "page.login_id.other");
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
    m.status(t("page.appeal.not_filed"), "error");
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
      formError(t("page.appeal.wrong", { error: e.message }));
      return;
    }
    switch (e.code) {
      case "invalid_field":
        if (fieldError(e.field, fieldHelp[e.field] ? t(fieldHelp[e.field]) : e.message)) {
          m.status(t("page.appeal.check_field"), "error");
          return;
        }
        formError(t("page.appeal.check_details", { error: e.message }));
        return;
      case "real_name_not_verified":
        formError(t("page.appeal.e_real_name"));
        return;
      case "identity_mismatch":
        formError(t(applicantType() === "enterprise" ? "page.appeal.e_mismatch_enterprise" : "page.appeal.e_mismatch"));
        return;
      case "no_mfa_bound":
        formError(t("page.appeal.e_no_mfa"));
        return;
      case "rate_limited":
        formError(t("page.appeal.e_rate", { wait: m.waitText(e.retryAfter) }));
        return;
      case "appeal_in_progress":
        formError(t("page.appeal.e_in_progress"));
        return;
      default:
        formError(t("page.appeal.e_other", { error: m.errorText(e) }));
    }
  }

  async function fileAppeal() {
    clearErrors();
    m.status(t("page.appeal.checking"));
    const r = await m.call("POST", "/v1/appeals", { json: body() });
    m.store(m.appealTokenKey(r.appeal_id), r.access_token);
    m.store("mfaflow.appeal.last", r.appeal_id);
    appeal = { id: r.appeal_id, token: r.access_token, required: r.required_documents || ["id_holding_photo"], uploaded: new Set() };
    // The id goes in the URL so a reload resumes here; the token never does.
    history.replaceState(null, "", "/appeal?id=" + encodeURIComponent(r.appeal_id));
    showUploadStep(r.document_deadline);
    m.status(t("page.appeal.filed_status"), "ok");
  }

  function showUploadStep(deadline) {
    $("appeal-form").hidden = true;
    $("upload-step").hidden = false;
    let text = t("page.appeal.filed", { id: appeal.id });
    if (m.isSet(deadline)) {
      text += " " + t("page.appeal.filed_by", { time: m.formatTime(deadline) });
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
      t("page.appeal.uploaded", { name: name ? " " + name : "", size: m.formatSize(r.size) }) + " SHA-256 ",
      m.el("code", { className: "hash" }, r.sha256 || "")), "ok");
    updateSubmit();
  }

  async function upload(type, input) {
    const file = input.files && input.files[0];
    if (!file || !appeal) {
      return;
    }
    if (file.size > maxDocument) {
      docResult(type, t("page.appeal.too_large", { name: file.name, size: m.formatSize(file.size), max: m.formatSize(maxDocument) }), "error");
      return;
    }
    if (file.size === 0) {
      docResult(type, t("page.appeal.empty", { name: file.name }), "error");
      return;
    }
    const wasUploaded = appeal.uploaded.has(type);
    docResult(type, t("page.appeal.uploading", { name: file.name, size: m.formatSize(file.size) }));
    input.disabled = true;
    $("submit-appeal").disabled = true;
    try {
      const r = await m.call("PUT", "/v1/appeals/" + encodeURIComponent(appeal.id) + "/documents/" + encodeURIComponent(type), {
        token: appeal.token, body: file, contentType: allowedTypes.includes(file.type) ? file.type : file.type || "application/octet-stream",
      });
      uploaded(type, file.name, r);
      m.status(t("page.appeal.doc_uploaded", { doc: m.docLabel(type) }), "ok");
    } catch (e) {
      let msg;
      if (e instanceof m.APIError && e.httpStatus === 413) {
        msg = t("page.appeal.e_413", { name: file.name, max: m.formatSize(maxDocument) });
      } else if (e instanceof m.APIError && e.httpStatus === 415) {
        msg = t("page.appeal.e_415", { name: file.name });
      } else if (e instanceof m.APIError && e.code === "deadline_passed") {
        msg = t("page.appeal.e_deadline");
      } else {
        msg = t("page.appeal.e_upload", { name: file.name, error: m.errorText(e) });
      }
      if (wasUploaded) {
        msg += " " + t("page.appeal.earlier_kept");
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
    m.status(t("page.appeal.submitting"));
    try {
      await m.call("POST", "/v1/appeals/" + encodeURIComponent(appeal.id) + "/submit", { token: appeal.token });
    } catch (e) {
      if (e instanceof m.APIError && e.code === "documents_missing") {
        m.status(t("page.appeal.e_docs_missing"), "error");
        return;
      }
      throw e;
    }
    m.status(t("page.appeal.submitted"), "ok");
    location.assign("/appeal/status?id=" + encodeURIComponent(appeal.id));
  }

  // resume reopens the upload step of an appeal this tab filed.
  async function resume(id) {
    const token = m.load(m.appealTokenKey(id));
    if (!token) {
      m.status(t("page.appeal.no_token", { id: id }), "error");
      $("appeal-form").hidden = true;
      const link = m.el("a", { href: "/appeal/status?id=" + encodeURIComponent(id) }, t("page.appeal.open_status"));
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
    m.status(t("page.appeal.resumed", { id: id }), "ok");
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
      m.status(t("page.appeal.e_submit", { error: m.errorText(e) }), "error");
    }, updateSubmit));
    const id = root.dataset.appealId;
    if (id) {
      resume(id).catch(function (e) {
        m.status(t("page.appeal.e_resume", { id: id, error: m.errorText(e) }), "error");
      });
    }
  }

  init();
})();
