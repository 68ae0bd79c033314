// review_queue.js drives the reviewers' queue (/review): it lists
// GET /v1/review/appeals with the filters of the page's form (which the
// server pre-selected from the URL) and links each appeal to its case page.
// The default view ("todo") is the work to do: appeals waiting for review,
// and appeals one reviewer approved that need a second approval, except
// those the signed-in reviewer approved.
"use strict";

(function () {
  const m = window.mfaflow;
  const $ = m.$;
  const t = m.t;
  const root = $("review-queue");
  let auth = null;

  const typeKeys = { personal: "page.type.personal", enterprise: "page.type.enterprise" };
  const columns = ["page.queue.col_appeal", "page.queue.col_type", "page.queue.col_status", "page.queue.col_submitted", "page.queue.col_assignee", "page.queue.col_sla"];

  // queries returns the API queries of the chosen filters: two for the
  // default view, one otherwise.
  function queries() {
    const q = new URLSearchParams();
    for (const [id, name] of [["f-type", "type"], ["f-sla", "sla_breached"]]) {
      const v = $(id).value;
      if (v) {
        q.set(name, v);
      }
    }
    const status = $("f-status").value;
    const withParam = (k, v) => {
      const c = new URLSearchParams(q);
      c.set(k, v);
      return c.toString();
    };
    if (status === "todo") {
      return [withParam("status", "pending_review"), withParam("awaiting", "second_approval")];
    }
    if (status === "second_approval") {
      return [withParam("awaiting", "second_approval")];
    }
    return [status ? withParam("status", status) : q.toString()];
  }

  // secondApproval is true for an appeal one reviewer approved that waits
  // for a second one.
  function secondApproval(a) {
    return a.status === "in_review" && !a.assignee && Array.isArray(a.approved_by) && a.approved_by.length > 0;
  }

  function cell(i, ...children) {
    return m.el("td", { dataset: { label: t(columns[i]) } }, ...children);
  }

  function row(a) {
    const link = m.el("a", { href: "/review/case?id=" + encodeURIComponent(a.appeal_id), className: "case-link" }, a.appeal_id);
    const sla = a.sla_breached === true ? m.el("span", { className: "badge rejected" }, t("page.sla.breached")) : m.el("span", { className: "muted" }, t("page.sla.ok"));
    const second = secondApproval(a);
    const badge = second ? m.el("span", { className: "badge second_approval" }, t("page.st.second_approval")) :
      m.el("span", { className: "badge " + (a.status || "") }, m.statusLabel(a.status || "—"));
    let assignee = a.assignee || m.el("span", { className: "muted" }, t("page.common.nobody"));
    if (second) {
      assignee = m.el("span", { className: "muted" }, t("page.queue.approved_by", { who: a.approved_by.join(", ") }));
    }
    return m.el("tr", { dataset: { appealId: a.appeal_id } },
      cell(0, link),
      cell(1, typeKeys[a.applicant_type] ? t(typeKeys[a.applicant_type]) : a.applicant_type || "—"),
      cell(2, badge),
      cell(3, m.formatTime(a.submitted_at)),
      cell(4, assignee),
      cell(5, sla));
  }

  async function list(query) {
    // Every page of the queue (the API pages it by 200), so the oldest
    // appeals, which matter most for the SLA, are never cut off.
    const appeals = [];
    let page = "";
    for (let n = 0; n < 50; n++) {
      const r = await m.call("GET", "/v1/review/appeals?" + query + (page ? "&page_token=" + encodeURIComponent(page) : ""), auth.opts());
      appeals.push(...(r.appeals || []));
      page = r.next_page_token || "";
      if (!page) {
        break;
      }
    }
    return appeals;
  }

  function empty(text) {
    return m.el("tr", {}, m.el("td", { colSpan: 6, className: "muted" }, text));
  }

  async function load() {
    const body = $("queue");
    if (!auth.signedIn()) {
      body.replaceChildren(empty(auth.ended() ? t("page.staff.expired") : t("page.queue.sign_in")));
      m.status(auth.ended() ? t("page.staff.expired") : t("page.queue.sign_in_status"), auth.ended() ? "error" : undefined);
      return;
    }
    m.status(t("page.queue.loading"));
    let appeals = [];
    try {
      for (const q of queries()) {
        appeals.push(...await list(q));
      }
    } catch (e) {
      if (e instanceof m.APIError && e.httpStatus === 401) {
        if (e.code === "session_expired") {
          auth.signedOut(e.code);
          body.replaceChildren(empty(t("page.staff.expired")));
          return;
        }
        auth.signedOut();
        m.status(t("page.queue.refused"), "error");
        return;
      }
      if (e instanceof m.APIError && e.httpStatus === 403) {
        m.status(t("page.queue.no_role"), "error");
        return;
      }
      throw e;
    }
    if ($("f-status").value === "todo") {
      // A reviewer who gave the first approval cannot give the second.
      const me = auth.sub();
      appeals = appeals.filter((a) => !(secondApproval(a) && me && a.approved_by.includes(me)));
    }
    appeals.sort((a, b) => String(a.submitted_at || a.started_at).localeCompare(String(b.submitted_at || b.started_at)));
    body.replaceChildren(...appeals.map(row));
    if (!appeals.length) {
      body.append(empty(t("page.queue.none")));
    }
    m.status(m.plural("page.queue.count", appeals.length, { time: new Date().toLocaleTimeString(m.lang) }), "ok");
  }

  function report(e) {
    m.status(t("page.queue.failed", { error: m.errorText(e) }), "error");
  }

  auth = m.reviewerAuth(root, () => load().catch(report));
  $("refresh").addEventListener("click", m.busy($("refresh"), load, report));
  auth.ready.then(load).catch(report);
})();
