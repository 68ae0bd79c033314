// review_case.js drives a reviewer's case page (/review/case?id=…): it shows
// GET /v1/review/appeals/{id} (masked PII, documents through their signed,
// short-lived links, timeline, audit trail) and claims and decides the
// appeal. Every load of the case is audited by the API.
"use strict";

(function () {
  const m = window.mfaflow;
  const $ = m.$;
  const t = m.t;
  const root = $("review-case");
  const id = root.dataset.appealId;
  let auth = null;
  let current = null; // the case as last loaded

  const loginKeys = { qq: "page.login.qq", email: "page.login.email", wechat: "page.login.wechat", wechat_official: "page.login.wechat_official" };
  const typeKeys = { personal: "page.type.personal", enterprise: "page.type.enterprise" };
  const auditColumns = ["page.case.col_when", "page.case.col_actor", "page.case.col_action", "page.case.col_outcome", "page.case.col_details"];
  const actionKeys = {
    "appeal.create": "page.action.appeal_create", "appeal.document": "page.action.appeal_document", "appeal.submit": "page.action.appeal_submit",
    "appeal.claim": "page.action.appeal_claim", "appeal.decide": "page.action.appeal_decide", "appeal.cancel": "page.action.appeal_cancel",
    "appeal.expire": "page.action.appeal_expire", "appeal.sla_breached": "page.action.appeal_sla_breached", "appeal.unbind": "page.action.appeal_unbind",
    "appeal.documents_deleted": "page.action.appeal_documents_deleted", "appeal.view": "page.action.appeal_view", "appeal.access": "page.action.appeal_access",
    "document.upload": "page.action.document_upload", "document.view": "page.action.document_view",
  };
  const outcomeKeys = { ok: "page.outcome.ok", denied: "page.outcome.denied", invalid: "page.outcome.invalid", failed: "page.outcome.failed" };

  // Errors of claim and decision, in words (by the API's error code).
  const actionErrors = {
    self_review: "page.case.e_self_review",
    same_reviewer: "page.case.e_same_reviewer",
    not_assignee: "page.case.e_not_assignee",
    wrong_state: "page.case.e_wrong_state",
    unauthorized: "page.case.e_unauthorized",
    forbidden: "page.case.e_forbidden",
    session_expired: "page.staff.expired",
    csrf_failed: "page.staff.csrf",
  };
  const actionError_ = (e) => (e instanceof m.APIError && actionErrors[e.code]) ? t(actionErrors[e.code]) : "";

  function facts(dl, pairs) {
    dl.replaceChildren();
    for (const [k, v] of pairs) {
      dl.append(m.el("dt", {}, k), m.el("dd", {}, v instanceof Node ? v : String(v === undefined || v === null || v === "" ? "—" : v)));
    }
  }

  function renderDocuments(c) {
    const box = $("documents");
    box.replaceChildren();
    let expires = null;
    for (const d of c.documents || []) {
      const label = m.docLabel(d.type);
      if (!d.uploaded) {
        box.append(m.el("div", { className: "document missing" }, m.el("strong", {}, label), t("page.case.doc_missing")));
        continue;
      }
      expires = d.url_expires_at;
      const meta = m.el("p", { className: "muted" }, t("page.case.doc_meta", { size: m.formatSize(d.size), type: d.content_type || "", time: m.formatTime(d.uploaded_at) }) + " SHA-256 ",
        m.el("code", { className: "hash" }, d.sha256 || ""));
      const open = m.el("a", { href: d.url, target: "_blank", rel: "noopener noreferrer" }, d.content_type === "application/pdf" ? t("page.case.open_pdf") : t("page.case.open_full"));
      const fig = m.el("figure", { className: "document", id: "doc-" + d.type });
      if (String(d.content_type).startsWith("image/")) {
        fig.append(m.el("img", { src: d.url, alt: t("page.case.doc_alt", { doc: label, id: c.appeal_id }), id: "doc-img-" + d.type, loading: "eager" }));
      }
      fig.append(m.el("figcaption", {}, m.el("strong", {}, label), " · ", open, meta));
      box.append(fig);
    }
    $("links-expire").textContent = expires ? t("page.case.links_expire", { time: m.formatTime(expires) }) : "";
  }

  function renderHistory(c) {
    const tl = $("timeline");
    tl.replaceChildren();
    for (const e of c.timeline || []) {
      const li = m.el("li", {}, m.el("time", { dateTime: e.at }, m.formatTime(e.at)), " ", m.el("strong", {}, m.statusLabel(e.status)));
      if (e.note) {
        li.append(": " + m.noteText(e.note));
      }
      tl.append(li);
    }
    const audit = $("audit");
    audit.replaceChildren();
    for (const a of c.audit || []) {
      const details = Object.entries(a.details || {}).map(([k, v]) => k + "=" + v).join(", ");
      const cells = [m.formatTime(a.at), a.actor, actionKeys[a.action] ? m.el("span", {}, t(actionKeys[a.action]), " ", m.el("code", { className: "code" }, a.action)) : a.action,
        m.el("span", { className: "outcome " + a.outcome }, outcomeKeys[a.outcome] ? t(outcomeKeys[a.outcome]) : a.outcome), details];
      audit.append(m.el("tr", { dataset: { action: a.action } }, ...cells.map((v, i) => m.el("td", { dataset: { label: t(auditColumns[i]) } }, v))));
    }
    if (!audit.children.length) {
      audit.append(m.el("tr", {}, m.el("td", { colSpan: 5, className: "muted" }, t("page.case.no_entries"))));
    }
  }

  function renderActions(c) {
    const me = auth.sub();
    const open = c.status === "pending_review" || c.status === "in_review";
    $("actions").hidden = false;
    const mine = me && c.assignee === me;
    let note;
    const approvedByMe = (c.approvals || []).some((a) => a.reviewer === me);
    if (!open) {
      note = t("page.case.n_closed", { status: m.statusLabel(c.status) });
    } else if (!c.assignee && approvedByMe) {
      note = t("page.case.n_you_approved");
    } else if (!c.assignee && (c.approvals || []).length) {
      note = t("page.case.n_second");
    } else if (!c.assignee) {
      note = t("page.case.n_nobody");
    } else if (mine) {
      note = t("page.case.n_mine");
    } else {
      note = t("page.case.n_held", { who: c.assignee });
    }
    if (open && c.approvals_needed > 1) {
      note += " " + t("page.case.n_needs", { needed: c.approvals_needed, has: (c.approvals || []).length });
    }
    $("assign-note").textContent = note;
    $("claim").disabled = !open || !!mine;
    const decide = open && c.status === "in_review";
    for (const input of $("decision-form").elements) {
      input.disabled = !decide;
    }
  }

  // clear removes the case from the page.
  function clear() {
    current = null;
    for (const sec of ["case", "actions", "history"]) {
      $(sec).hidden = true;
    }
    for (const el of ["case-id", "case-status", "facts", "applicant", "links-expire", "documents", "timeline", "audit"]) {
      $(el).replaceChildren();
    }
  }

  function render(c) {
    current = c;
    $("case").hidden = false;
    $("history").hidden = false;
    $("case-id").textContent = c.appeal_id;
    const badge = $("case-status");
    badge.textContent = m.statusLabel(c.status);
    badge.className = "badge " + c.status;
    const approvals = (c.approvals || []).map((a) => a.reviewer).join(", ");
    facts($("facts"), [
      [t("page.case.f_account"), c.account_id],
      [t("page.case.f_type"), typeKeys[c.applicant_type] ? t(typeKeys[c.applicant_type]) : c.applicant_type],
      [t("page.case.f_submitted"), m.formatTime(c.submitted_at)],
      [t("page.case.f_assignee"), c.assignee || t("page.common.nobody")],
      [t("page.case.f_approvals"), t("page.case.approvals_of", { has: (c.approvals || []).length, needed: c.approvals_needed || 1 }) + (approvals ? " (" + approvals + ")" : "")],
      [t("page.case.f_sla"), c.sla_breached ? t("page.sla.breached") : t("page.sla.ok")],
      [t("page.case.f_cooldown"), m.isSet(c.cool_down_until) ? m.formatTime(c.cool_down_until) : "—"],
    ]);
    const a = c.applicant || {};
    const pairs = [
      [t("page.case.f_login"), a.login ? (loginKeys[a.login.kind] ? t(loginKeys[a.login.kind]) : a.login.kind) + " " + a.login.id : ""],
      [t("page.case.f_bound_phone"), a.bound_phone],
    ];
    if (c.applicant_type === "enterprise") {
      pairs.push([t("page.case.f_company"), a.company_name], [t("page.case.f_credit_code"), a.company_reg_number]);
    }
    pairs.push([t("page.case.f_name"), a.name], [t("page.case.f_id_number"), a.id_number], [t("page.case.f_contact_phone"), a.contact_phone]);
    facts($("applicant"), pairs);
    renderDocuments(c);
    renderHistory(c);
    renderActions(c);
  }

  async function load() {
    if (!id) {
      return;
    }
    if (!auth.signedIn()) {
      // Signed out (a forgotten token): nothing the last reviewer saw
      // stays on the page, the applicant's data and documents least of all.
      clear();
      m.status(auth.ended() ? t("page.staff.expired") : t("page.case.sign_in"), auth.ended() ? "error" : undefined);
      return;
    }
    let c;
    try {
      c = await m.call("GET", "/v1/review/appeals/" + encodeURIComponent(id), auth.opts());
    } catch (e) {
      if (e instanceof m.APIError && e.httpStatus === 401) {
        auth.signedOut(e.code);
        if (e.code === "session_expired") {
          return;
        }
      }
      throw e;
    }
    render(c);
    m.status(t("page.case.loaded", { status: m.statusLabel(c.status) }), "ok");
  }

  function actionError(e) {
    const msg = actionError_(e) || t("page.case.refused", { error: m.errorText(e) });
    m.result($("action-result"), msg, "error");
    m.status(msg, "error");
    if (e instanceof m.APIError && e.httpStatus === 401) {
      auth.signedOut(e.code);
      return;
    }
    load().catch(loadError);
  }

  function loadError(e) {
    const msg = (e instanceof m.APIError && e.code === "not_found") ? t("page.common.no_appeal", { id: id }) :
      actionError_(e) || t("page.case.load_failed", { error: m.errorText(e) });
    m.status(msg, "error");
  }

  async function claim() {
    m.result($("action-result"), "");
    const r = await m.call("POST", "/v1/review/appeals/" + encodeURIComponent(id) + "/claim", auth.opts());
    m.result($("action-result"), t("page.case.claimed", { status: m.statusLabel(r.status) }), "ok");
    await load();
    m.status(t("page.case.claimed_short"), "ok");
  }

  const decisionDone = {
    approve: (r) => r.status === "in_review" ? t("page.case.approved_first", { has: r.approvals, needed: r.approvals_needed }) :
      t("page.case.approved", { status: m.statusLabel(r.status) }),
    reject: () => t("page.case.rejected"),
    request_info: () => t("page.case.info_requested"),
  };

  async function decide() {
    m.result($("action-result"), "");
    const checked = document.querySelector('input[name="decision"]:checked');
    if (!checked) {
      m.result($("action-result"), t("page.case.choose"), "error");
      return;
    }
    const reason = $("reason").value.trim();
    if (checked.value !== "approve" && !reason) {
      m.result($("action-result"), checked.value === "reject" ? t("page.case.need_reason") : t("page.case.need_info"), "error");
      $("reason").focus();
      return;
    }
    const r = await m.call("POST", "/v1/review/appeals/" + encodeURIComponent(id) + "/decision", auth.opts({
      json: { decision: checked.value, reason: reason },
    }));
    const msg = decisionDone[checked.value](r);
    $("reason").value = "";
    checked.checked = false;
    await load();
    m.result($("action-result"), msg, "ok");
    m.status(msg, "ok");
  }

  auth = m.reviewerAuth(root, () => load().catch(loadError));
  const again = () => current && renderActions(current);
  $("claim").addEventListener("click", m.busy($("claim"), claim, actionError, again));
  $("decision-form").addEventListener("submit", m.busy($("decide"), decide, actionError, again));
  if (id) {
    auth.ready.then(load).catch(loadError);
  } else {
    m.status(t("page.case.none"), "error");
  }
})();
