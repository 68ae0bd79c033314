// review_case.js drives a reviewer's case page (/review/case?id=…): it shows
// GET /v1/review/appeals/{id} (masked PII, documents through their signed,
// short-lived links, timeline, audit trail) and claims and decides the
// appeal. Every load of the case is audited by the API.
"use strict";

(function () {
  const m = window.mfaflow;
  const $ = m.$;
  const root = $("review-case");
  const id = root.dataset.appealId;
  let auth = null;
  let current = null; // the case as last loaded

  const loginKinds = { qq: "QQ", email: "E-mail", wechat: "WeChat", wechat_official: "WeChat official account" };

  // Errors of claim and decision, in words.
  const actionErrors = {
    self_review: "You cannot review this appeal: it is on your own account (or you filed it). Another reviewer must take it.",
    same_reviewer: "You have already approved this appeal. Its policy needs a second, different reviewer to approve it.",
    not_assignee: "Claim the appeal before deciding it (another reviewer may hold it).",
    wrong_state: "The appeal is not at a step that allows this; it may have moved on. The case was reloaded.",
    unauthorized: "Your reviewer token was refused (invalid or expired). Paste a valid one.",
    forbidden: "Your token has no reviewer role.",
  };

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
        box.append(m.el("div", { className: "document missing" }, m.el("strong", {}, label), ": not uploaded."));
        continue;
      }
      expires = d.url_expires_at;
      const meta = m.el("p", { className: "muted" }, m.formatSize(d.size) + " " + (d.content_type || "") + ", uploaded " + m.formatTime(d.uploaded_at) + ". SHA-256 ",
        m.el("code", { className: "hash" }, d.sha256 || ""));
      const open = m.el("a", { href: d.url, target: "_blank", rel: "noopener noreferrer" }, d.content_type === "application/pdf" ? "Open the PDF" : "Open full size");
      const fig = m.el("figure", { className: "document", id: "doc-" + d.type });
      if (String(d.content_type).startsWith("image/")) {
        fig.append(m.el("img", { src: d.url, alt: label + " of appeal " + c.appeal_id, id: "doc-img-" + d.type, loading: "eager" }));
      }
      fig.append(m.el("figcaption", {}, m.el("strong", {}, label), " · ", open, meta));
      box.append(fig);
    }
    $("links-expire").textContent = expires ? "Document links work until " + m.formatTime(expires) + "; reload the case for fresh ones. Every view is audited." : "";
  }

  function renderHistory(c) {
    const tl = $("timeline");
    tl.replaceChildren();
    for (const e of c.timeline || []) {
      const li = m.el("li", {}, m.el("time", { dateTime: e.at }, m.formatTime(e.at)), " ", m.el("strong", {}, m.statusLabel(e.status)));
      if (e.note) {
        li.append(": " + e.note);
      }
      tl.append(li);
    }
    const audit = $("audit");
    audit.replaceChildren();
    for (const a of c.audit || []) {
      const details = Object.entries(a.details || {}).map(([k, v]) => k + "=" + v).join(", ");
      audit.append(m.el("tr", {},
        m.el("td", {}, m.formatTime(a.at)), m.el("td", {}, a.actor), m.el("td", {}, a.action),
        m.el("td", {}, m.el("span", { className: "outcome " + a.outcome }, a.outcome)), m.el("td", {}, details)));
    }
    if (!audit.children.length) {
      audit.append(m.el("tr", {}, m.el("td", { colSpan: 5, className: "muted" }, "No entries.")));
    }
  }

  function renderActions(c) {
    const me = auth.sub();
    const open = c.status === "pending_review" || c.status === "in_review";
    $("actions").hidden = false;
    const mine = me && c.assignee === me;
    let note;
    if (!open) {
      note = "This appeal is " + m.statusLabel(c.status).toLowerCase() + ": nothing to decide.";
    } else if (!c.assignee) {
      note = "Nobody holds this appeal. Claim it to decide it.";
    } else if (mine) {
      note = "You hold this appeal. Record your decision.";
    } else {
      note = "Held by " + c.assignee + ".";
    }
    if (open && c.approvals_needed > 1) {
      note += " Needs " + c.approvals_needed + " approvals from different reviewers; has " + (c.approvals || []).length + ".";
    }
    $("assign-note").textContent = note;
    $("claim").disabled = !open || !!mine;
    const decide = open && c.status === "in_review";
    for (const input of $("decision-form").elements) {
      input.disabled = !decide;
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
    facts($("facts"), [
      ["Account", c.account_id],
      ["Type", c.applicant_type],
      ["Submitted", m.formatTime(c.submitted_at)],
      ["Assignee", c.assignee || "nobody"],
      ["Approvals", (c.approvals || []).length + " of " + (c.approvals_needed || 1)],
      ["Review SLA", c.sla_breached ? "breached" : "within SLA"],
      ["Cool-down until", m.isSet(c.cool_down_until) ? m.formatTime(c.cool_down_until) : "—"],
    ]);
    const a = c.applicant || {};
    const pairs = [
      ["Login", a.login ? (loginKinds[a.login.kind] || a.login.kind) + " " + a.login.id : ""],
      ["Bound phone", a.bound_phone],
    ];
    if (c.applicant_type === "enterprise") {
      pairs.push(["Company", a.company_name], ["Unified social credit code", a.company_reg_number]);
    }
    pairs.push(["Name", a.name], ["ID number", a.id_number], ["Contact phone", a.contact_phone]);
    facts($("applicant"), pairs);
    renderDocuments(c);
    renderHistory(c);
    renderActions(c);
  }

  async function load() {
    if (!id) {
      return;
    }
    const tok = auth.token();
    if (!tok) {
      m.status("Sign in with your reviewer token to open the case.");
      return;
    }
    let c;
    try {
      c = await m.call("GET", "/v1/review/appeals/" + encodeURIComponent(id), { token: tok });
    } catch (e) {
      if (e instanceof m.APIError && e.httpStatus === 401) {
        auth.signedOut();
      }
      throw e;
    }
    render(c);
    m.status("Case loaded: " + m.statusLabel(c.status) + ".", "ok");
  }

  function actionError(e) {
    const msg = (e instanceof m.APIError && actionErrors[e.code]) || "Refused: " + e.message + (e.code ? " (" + e.code + ")" : "") + ".";
    m.result($("action-result"), msg, "error");
    m.status(msg, "error");
    if (e instanceof m.APIError && e.httpStatus === 401) {
      auth.signedOut();
      return;
    }
    load().catch(loadError);
  }

  function loadError(e) {
    const msg = (e instanceof m.APIError && e.code === "not_found") ? "There is no appeal " + id + "." :
      (e instanceof m.APIError && actionErrors[e.code]) || "The case could not be loaded: " + e.message + (e.code ? " (" + e.code + ")" : "") + ".";
    m.status(msg, "error");
  }

  async function claim() {
    m.result($("action-result"), "");
    const r = await m.call("POST", "/v1/review/appeals/" + encodeURIComponent(id) + "/claim", { token: auth.token() });
    m.result($("action-result"), "Claimed: the appeal is " + m.statusLabel(r.status).toLowerCase() + " and assigned to you.", "ok");
    await load();
    m.status("Claimed.", "ok");
  }

  const decisionDone = {
    approve: (r) => r.status === "in_review" ? "Approved. " + r.approvals + " of " + r.approvals_needed + " approvals: a second reviewer must approve too." :
      "Approved: the appeal is " + m.statusLabel(r.status).toLowerCase() + ".",
    reject: () => "Rejected. The applicant sees the reason.",
    request_info: () => "Information requested. The appeal went back to the applicant for documents.",
  };

  async function decide() {
    m.result($("action-result"), "");
    const checked = document.querySelector('input[name="decision"]:checked');
    if (!checked) {
      m.result($("action-result"), "Choose a decision.", "error");
      return;
    }
    const reason = $("reason").value.trim();
    if (checked.value !== "approve" && !reason) {
      m.result($("action-result"), checked.value === "reject" ? "Give the reason for the rejection." : "Say what information is needed.", "error");
      $("reason").focus();
      return;
    }
    const r = await m.call("POST", "/v1/review/appeals/" + encodeURIComponent(id) + "/decision", {
      token: auth.token(), json: { decision: checked.value, reason: reason },
    });
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
    load().catch(loadError);
  } else {
    m.status("No appeal chosen.", "error");
  }
})();
