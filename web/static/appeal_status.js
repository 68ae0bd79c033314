// appeal_status.js drives the applicant's status page
// (/appeal/status?id=<appeal id>): it reads the appeal's access token from
// the tab's sessionStorage (or a pasted one), shows GET /v1/appeals/{id},
// refreshes while the appeal is open, and cancels it on request.
"use strict";

(function () {
  const m = window.mfaflow;
  const $ = m.$;
  const t = m.t;
  const root = $("appeal-status");
  const pollMillis = 3000;
  const cancellable = ["collecting_documents", "pending_review", "in_review", "cooling_down"];

  let id = root.dataset.appealId || "";
  let token = "";
  let timer = null;
  let last = null; // the last status shown

  function askToken(message, kind) {
    stopPolling();
    $("appeal-card").hidden = true;
    $("token-form").hidden = false;
    $("appeal-id").value = id;
    m.status(message, kind);
    (id ? $("access-token") : $("appeal-id")).focus();
  }

  function stopPolling() {
    if (timer) {
      clearTimeout(timer);
      timer = null;
    }
  }

  function renderDocuments(docs) {
    const list = $("documents");
    list.replaceChildren();
    for (const d of docs || []) {
      const li = m.el("li", {}, m.el("strong", {}, m.docLabel(d.type)), ": ");
      if (d.uploaded) {
        li.append(t("page.astatus.doc_uploaded", { time: m.formatTime(d.uploaded_at), size: m.formatSize(d.size) }) + " SHA-256 ", m.el("code", { className: "hash" }, d.sha256 || ""));
      } else {
        li.append(m.el("span", { className: "muted" }, t("page.astatus.doc_missing")));
      }
      list.append(li);
    }
    if (!list.children.length) {
      list.append(m.el("li", { className: "muted" }, t("page.astatus.no_docs")));
    }
  }

  function renderTimeline(events) {
    const list = $("timeline");
    list.replaceChildren();
    for (const e of events || []) {
      const li = m.el("li", {}, m.el("time", { dateTime: e.at }, m.formatTime(e.at)), " ", m.el("strong", {}, m.statusLabel(e.status)));
      if (e.note) {
        li.append(": " + m.noteText(e.note));
      }
      list.append(li);
    }
    if (!list.children.length) {
      list.append(m.el("li", { className: "muted" }, t("page.astatus.nothing_yet")));
    }
  }

  function render(r) {
    $("token-form").hidden = true;
    $("appeal-card").hidden = false;
    $("appeal-id-text").textContent = r.appeal_id || id;
    const words = m.statusWords[r.status] || [r.status, ""];
    const badge = $("status-words");
    badge.textContent = words[0];
    badge.className = "badge " + r.status;
    $("status-explain").textContent = words[1];

    const deadline = $("deadline");
    if (r.status === "collecting_documents" && m.isSet(r.document_deadline)) {
      deadline.textContent = t("page.astatus.due", { time: m.formatTime(r.document_deadline) });
      deadline.hidden = false;
    } else if (r.status === "cooling_down" && m.isSet(r.cool_down_until)) {
      deadline.textContent = t("page.astatus.unbind_at", { time: m.formatTime(r.cool_down_until) });
      deadline.hidden = false;
    } else {
      deadline.hidden = true;
    }
    $("continue").hidden = r.status !== "collecting_documents";
    $("continue-link").href = "/appeal?id=" + encodeURIComponent(id);

    renderDocuments(r.documents);
    renderTimeline(r.timeline);

    const canCancel = cancellable.includes(r.status);
    $("cancel").hidden = !canCancel;
    if (!canCancel) {
      $("cancel-confirm").hidden = true;
    }
    last = r.status;
  }

  async function refresh() {
    stopPolling();
    let r;
    try {
      r = await m.call("GET", "/v1/appeals/" + encodeURIComponent(id), { token: token });
    } catch (e) {
      if (e instanceof m.APIError && (e.httpStatus === 401 || e.httpStatus === 403)) {
        m.store(m.appealTokenKey(id), null);
        askToken(t("page.astatus.bad_token", { id: id }), "error");
        return;
      }
      if (e instanceof m.APIError && e.httpStatus === 404) {
        m.status(t("page.common.no_appeal", { id: id }), "error");
        return;
      }
      m.status(t("page.astatus.retrying", { error: e.message }), "error");
      timer = setTimeout(refresh, pollMillis * 2);
      return;
    }
    const changed = last !== null && last !== r.status;
    render(r);
    const open = !m.finalStatuses.includes(r.status);
    const key = changed ? (open ? "page.astatus.now_open" : "page.astatus.now") : (open ? "page.astatus.is_open" : "page.astatus.is");
    m.status(t(key, { status: m.statusLabel(r.status) }), changed || !open ? "ok" : "");
    if (open) {
      timer = setTimeout(refresh, pollMillis);
    }
  }

  function start() {
    token = m.load(m.appealTokenKey(id)) || "";
    if (!token) {
      askToken(t("page.astatus.paste"));
      return;
    }
    refresh();
  }

  async function cancel() {
    const r = await m.call("POST", "/v1/appeals/" + encodeURIComponent(id) + "/cancel", { token: token });
    $("cancel-confirm").hidden = true;
    m.status(t("page.astatus.cancelled", { status: m.statusLabel(r.status) }), "ok");
    await refresh();
  }

  function init() {
    if (!id) {
      id = m.load("mfaflow.appeal.last") || "";
      if (id) {
        history.replaceState(null, "", "/appeal/status?id=" + encodeURIComponent(id));
      }
    }
    $("token-form").addEventListener("submit", function (ev) {
      ev.preventDefault();
      const newID = $("appeal-id").value.trim();
      const newToken = $("access-token").value.trim();
      if (!/^apl_[A-Za-z0-9_-]{1,64}$/.test(newID)) {
        m.status(t("page.astatus.not_id"), "error");
        $("appeal-id").focus();
        return;
      }
      id = newID;
      m.store(m.appealTokenKey(id), newToken);
      $("access-token").value = "";
      history.replaceState(null, "", "/appeal/status?id=" + encodeURIComponent(id));
      start();
    });
    $("refresh").addEventListener("click", m.busy($("refresh"), refresh, (e) => m.status(e.message, "error")));
    $("cancel").addEventListener("click", function () {
      $("cancel-confirm").hidden = false;
      $("cancel-no").focus();
    });
    $("cancel-no").addEventListener("click", function () {
      $("cancel-confirm").hidden = true;
      $("cancel").focus();
    });
    $("cancel-yes").addEventListener("click", m.busy($("cancel-yes"), cancel, function (e) {
      const msg = e.code === "wrong_state" ? t("page.astatus.e_moved_on") : t("page.astatus.e_cancel", { error: m.errorText(e) });
      m.status(msg, "error");
      refresh();
    }));
    if (!id) {
      askToken(t("page.astatus.enter"));
      return;
    }
    start();
  }

  init();
})();
