// review_queue.js drives the reviewers' queue (/review): it lists
// GET /v1/review/appeals with the filters of the page's form (which the
// server pre-selected from the URL) and links each appeal to its case page.
"use strict";

(function () {
  const m = window.mfaflow;
  const $ = m.$;
  const root = $("review-queue");
  let auth = null;

  function query() {
    const q = new URLSearchParams();
    for (const [id, name] of [["f-status", "status"], ["f-type", "type"], ["f-sla", "sla_breached"]]) {
      const v = $(id).value;
      if (v) {
        q.set(name, v);
      }
    }
    return q.toString();
  }

  function row(a) {
    const link = m.el("a", { href: "/review/case?id=" + encodeURIComponent(a.appeal_id), className: "case-link" }, a.appeal_id);
    const sla = a.sla_breached === true ? m.el("span", { className: "badge rejected" }, "breached") : m.el("span", { className: "muted" }, "ok");
    return m.el("tr", { dataset: { appealId: a.appeal_id } },
      m.el("td", {}, link),
      m.el("td", {}, a.applicant_type || "—"),
      m.el("td", {}, m.el("span", { className: "badge " + (a.status || "") }, m.statusLabel(a.status || "—"))),
      m.el("td", {}, m.formatTime(a.submitted_at)),
      m.el("td", {}, a.assignee || m.el("span", { className: "muted" }, "nobody")),
      m.el("td", {}, sla));
  }

  async function load() {
    const tok = auth.token();
    const body = $("queue");
    if (!tok) {
      body.replaceChildren(m.el("tr", {}, m.el("td", { colSpan: 6, className: "muted" }, "Sign in to see the queue.")));
      m.status("Sign in with your reviewer token.");
      return;
    }
    m.status("Loading the queue…");
    // Every page of the queue (the API pages it by 200), so the oldest
    // appeals, which matter most for the SLA, are never cut off.
    const appeals = [];
    let page = "";
    try {
      for (let n = 0; n < 50; n++) {
        const r = await m.call("GET", "/v1/review/appeals?" + query() + (page ? "&page_token=" + encodeURIComponent(page) : ""), { token: tok });
        appeals.push(...(r.appeals || []));
        page = r.next_page_token || "";
        if (!page) {
          break;
        }
      }
    } catch (e) {
      if (e instanceof m.APIError && e.httpStatus === 401) {
        auth.signedOut();
        m.status("The reviewer token was refused (missing, invalid or expired). Paste a valid one.", "error");
        return;
      }
      if (e instanceof m.APIError && e.httpStatus === 403) {
        m.status("This token has no reviewer role.", "error");
        return;
      }
      throw e;
    }
    appeals.sort((a, b) => String(a.submitted_at || a.started_at).localeCompare(String(b.submitted_at || b.started_at)));
    body.replaceChildren(...appeals.map(row));
    if (!appeals.length) {
      body.append(m.el("tr", {}, m.el("td", { colSpan: 6, className: "muted" }, "No appeals match.")));
    }
    m.status(appeals.length + (appeals.length === 1 ? " appeal" : " appeals") + " (oldest first), as of " + new Date().toLocaleTimeString() + ".", "ok");
  }

  function report(e) {
    m.status("The queue could not be loaded: " + e.message + (e.code ? " (" + e.code + ")" : "") + ".", "error");
  }

  auth = m.reviewerAuth(root, () => load().catch(report));
  $("refresh").addEventListener("click", m.busy($("refresh"), load, report));
  load().catch(report);
})();
