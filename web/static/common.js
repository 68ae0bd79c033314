// common.js: helpers shared by the appeal and review pages. It defines
// window.mfaflow; each page's own script runs after it (both are deferred).
// Text goes into the page with textContent only, never as HTML.
"use strict";

window.mfaflow = (function () {
  const $ = (id) => document.getElementById(id);

  // The page's language (<html lang>) and its texts: the server renders the
  // catalog texts this page's scripts use as JSON (#i18n-dict). t(key, vars)
  // returns one with {name} filled from vars; a key the page lacks comes
  // back as itself, which the tests look for.
  const lang = document.documentElement.lang || "zh-CN";
  let dict = {};
  try {
    dict = JSON.parse(($("i18n-dict") || {}).textContent || "{}");
  } catch (e) {
    dict = {};
  }
  function t(key, vars) {
    const s = Object.prototype.hasOwnProperty.call(dict, key) ? dict[key] : key;
    return s.replace(/\{(\w+)\}/g, (all, name) => (vars && vars[name] !== undefined ? String(vars[name]) : all));
  }
  // plural picks key_one or key_other by n (Chinese has one form: both say the same).
  function plural(key, n, vars) {
    return t(new Intl.PluralRules(lang).select(n) === "one" ? key + "_one" : key + "_other", Object.assign({ n: n }, vars));
  }

  class APIError extends Error {
    constructor(code, message, httpStatus, field, retryAfter) {
      super(message);
      this.code = code;
      this.httpStatus = httpStatus;
      this.field = field || "";
      this.retryAfter = retryAfter;
    }
  }

  // call sends a request to the JSON API and returns the parsed answer. opts:
  // token (bearer), session (send the staff session cookie) and csrf (its
  // CSRF token, for POSTs), json (a body to send as JSON), body and
  // contentType (a raw body). It throws an APIError with the API's error
  // code, message and field.
  async function call(method, path, opts) {
    opts = opts || {};
    // Accept-Language is the page's language, so that the API's error
    // messages come in the language the reader chose.
    const init = { method: method, headers: { Accept: "application/json", "Accept-Language": lang }, credentials: opts.session ? "same-origin" : "omit", cache: "no-store" };
    if (opts.token) {
      init.headers.Authorization = "Bearer " + opts.token;
    }
    if (opts.csrf) {
      init.headers["X-CSRF-Token"] = opts.csrf;
    }
    if (opts.json !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(opts.json);
    } else if (opts.body !== undefined) {
      init.headers["Content-Type"] = opts.contentType || "application/octet-stream";
      init.body = opts.body;
    }
    let res;
    try {
      res = await fetch(path, init);
    } catch (e) {
      throw new APIError("network_error", t("page.err.network"), 0, "", null);
    }
    let data = null;
    try {
      data = await res.json();
    } catch (e) {
      data = null;
    }
    if (!res.ok) {
      const err = (data && data.error) || { code: "http_" + res.status, message: t("page.err.http", { status: res.status }) };
      throw new APIError(err.code, err.message, res.status, err.field, res.headers.get("Retry-After"));
    }
    return data || {};
  }

  // el builds an element: el("td", {className: "x"}, "text", child…).
  function el(tag, props, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (k === "dataset") {
        Object.assign(e.dataset, v);
      } else if (k in e) {
        e[k] = v;
      } else {
        e.setAttribute(k, v);
      }
    }
    for (const c of children) {
      if (c === null || c === undefined || c === false) {
        continue;
      }
      e.append(c instanceof Node ? c : String(c));
    }
    return e;
  }

  // status sets the page's status line, a live region: an unchanged
  // message is not written again, so a screen reader announces changes only.
  function status(message, kind) {
    const s = $("status");
    if (!s) {
      return;
    }
    const cls = "status" + (kind ? " " + kind : "");
    if (s.textContent !== message) {
      s.textContent = message;
    }
    if (s.className !== cls) {
      s.className = cls;
    }
  }

  // The sticky status line never covers the focused field: the page's
  // scroll padding follows its height.
  (function () {
    const s = $("status");
    if (!s || !window.ResizeObserver) {
      return;
    }
    new ResizeObserver(() => {
      document.documentElement.style.scrollPaddingTop = (s.offsetHeight + 16) + "px";
    }).observe(s);
  })();

  // errorText says an API error in words: the API's message, which follows
  // the page's language, with its code for support.
  function errorText(e) {
    return e.message + (e.code && e.code !== "network_error" ? " (" + e.code + ")" : "");
  }

  function result(node, message, kind) {
    node.textContent = message || "";
    node.className = "result" + (kind ? " " + kind : "");
    node.hidden = !message;
  }

  // isSet is false for a missing time and for Go's zero time.
  function isSet(t) {
    return !!t && !String(t).startsWith("0001-01-01");
  }

  // formatTime shows a time in the reader's own time zone (the browser's),
  // in the page's language, with the zone's offset.
  const timeFormat = new Intl.DateTimeFormat(lang, {
    year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", hour12: false, timeZoneName: "shortOffset",
  });
  function formatTime(t) {
    if (!isSet(t)) {
      return "—";
    }
    const d = new Date(t);
    return isNaN(d) ? String(t) : timeFormat.format(d);
  }

  function formatSize(n) {
    n = Number(n);
    if (!(n >= 0)) {
      return "";
    }
    if (n < 1024) {
      return t("page.size.bytes", { n: n });
    }
    if (n < 1024 * 1024) {
      return (n / 1024).toFixed(1) + " KB";
    }
    return (n / 1024 / 1024).toFixed(1) + " MB";
  }

  function waitText(seconds) {
    const s = Number(seconds);
    if (!(s > 0)) {
      return t("page.wait.later");
    }
    if (s < 90) {
      return plural("page.wait.seconds", Math.ceil(s));
    }
    if (s < 90 * 60) {
      return plural("page.wait.minutes", Math.ceil(s / 60));
    }
    return plural("page.wait.hours", Math.ceil(s / 3600));
  }

  // statusKeys name each appeal status's words (the badge, the same as the
  // queue's filter) and what happens next.
  const statusKeys = {
    collecting_documents: ["page.st.collecting_documents", "page.st_explain.collecting_documents"],
    pending_review: ["page.st.pending_review", "page.st_explain.pending_review"],
    in_review: ["page.st.in_review", "page.st_explain.in_review"],
    cooling_down: ["page.st.cooling_down", "page.st_explain.cooling_down"],
    unbound: ["page.st.unbound", "page.st_explain.unbound"],
    rejected: ["page.st.rejected", "page.st_explain.rejected"],
    cancelled: ["page.st.cancelled", "page.st_explain.cancelled"],
    expired: ["page.st.expired", "page.st_explain.expired"],
    ineligible: ["page.st.ineligible", "page.st_explain.ineligible"],
  };
  const statusWords = {};
  for (const [s, keys] of Object.entries(statusKeys)) {
    statusWords[s] = [t(keys[0]), t(keys[1])];
  }
  const finalStatuses = ["unbound", "rejected", "cancelled", "expired", "ineligible"];

  function statusLabel(s) {
    return (statusWords[s] || [s])[0];
  }

  const docKeys = { id_holding_photo: "page.doc.id_holding_photo", business_licence: "page.doc.business_licence" };

  function docLabel(d) {
    return docKeys[d] ? t(docKeys[d]) : d;
  }

  // A timeline's notes come from the appeal's workflow, in English (a
  // workflow's history keeps its words). noteText shows the notes the
  // system writes in the page's language, a time in them in the reader's
  // zone; any other note (a reviewer's reason) is shown as written.
  const noteRules = [
    [/^appeal filed; upload the documents by (\d{4}-\d{2}-\d{2} \d{2}:\d{2}) UTC$/, "page.note.filed"],
    [/^submitted for review$/, "page.note.submitted"],
    [/^a reviewer is looking at the appeal$/, "page.note.in_review"],
    [/^a second reviewer is looking at the appeal$/, "page.note.second_reviewer"],
    [/^approved by one reviewer; a second reviewer must approve$/, "page.note.first_approval"],
    [/^approved; the MFA devices will be unbound at (\d{4}-\d{2}-\d{2} \d{2}:\d{2}) UTC unless the account owner cancels$/, "page.note.approved"],
    [/^cancelled by the applicant$/, "page.note.cancelled_applicant"],
    [/^cancelled by the account owner$/, "page.note.cancelled_owner"],
    [/^the MFA device was used, so it is not lost$/, "page.note.device_used"],
    [/^a recovery code of the account was used, so the owner can still sign in$/, "page.note.recovery_used"],
    [/^the token card was resynchronised, so it is not lost$/, "page.note.resynced"],
    [/^the documents were not submitted by the deadline$/, "page.note.expired"],
    [/^the MFA devices were unbound; sign in and bind a new device$/, "page.note.unbound"],
    [/^documents kept until (\d{4}-\d{2}-\d{2} \d{2}:\d{2}) UTC, then deleted$/, "page.note.kept_until"],
    [/^documents deleted after the retention period$/, "page.note.deleted"],
    [/^(id_holding_photo|business_licence) received$/, "page.note.doc_received"],
    [/^(id_holding_photo|business_licence) replaced$/, "page.note.doc_replaced"],
  ];

  function noteText(note) {
    for (const [re, key] of noteRules) {
      const m = re.exec(note);
      if (!m) {
        continue;
      }
      const arg = m[1] || "";
      return t(key, { time: arg ? formatTime(arg.replace(" ", "T") + ":00Z") : "", doc: arg ? docLabel(arg) : "" });
    }
    return note;
  }

  // Storage in the tab's sessionStorage; a browser that refuses it gets an
  // in-memory map for this page only.
  const memory = new Map();
  function store(key, value) {
    try {
      if (value === null) {
        sessionStorage.removeItem(key);
      } else {
        sessionStorage.setItem(key, value);
      }
    } catch (e) {
      if (value === null) {
        memory.delete(key);
      } else {
        memory.set(key, value);
      }
    }
  }
  function load(key) {
    try {
      const v = sessionStorage.getItem(key);
      if (v !== null) {
        return v;
      }
    } catch (e) {
      // fall through to memory
    }
    return memory.has(key) ? memory.get(key) : null;
  }

  const appealTokenKey = (id) => "mfaflow.appeal." + id;

  // busy runs fn with button disabled and reports errors with onError;
  // after, when given, runs last (to set the button's state anew).
  function busy(button, fn, onError, after) {
    return async function (ev) {
      if (ev) {
        ev.preventDefault();
      }
      if (button.disabled) {
        return;
      }
      button.disabled = true;
      button.setAttribute("aria-busy", "true");
      try {
        await fn();
      } catch (e) {
        onError(e);
      } finally {
        button.disabled = false;
        button.removeAttribute("aria-busy");
        if (after) {
          after();
        }
      }
    };
  }

  // reviewerAuth wires the reviewer sign-in card. The token comes from the
  // tab's sessionStorage, else from the page's dev token; onReady(token)
  // runs whenever a token is set.
  function reviewerAuth(root, onReady) {
    const key = "mfaflow.reviewer.jwt";
    const form = $("auth-form");
    const who = $("auth-who");
    const forget = $("auth-forget");
    const dev = root.dataset.devToken || "";

    function claims(tok) {
      try {
        const part = tok.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
        return JSON.parse(atob(part + "===".slice((part.length + 3) % 4)));
      } catch (e) {
        return {};
      }
    }

    function current() {
      return load(key) || dev;
    }

    function render() {
      const tok = current();
      if (!tok) {
        who.textContent = t("page.auth.paste");
        form.hidden = false;
        forget.hidden = true;
        return;
      }
      const c = claims(tok);
      let text = t("page.auth.signed_in", { sub: c.sub || t("page.auth.unknown") });
      if (Array.isArray(c.roles)) {
        text += " (" + c.roles.join(", ") + ")";
      }
      if (c.exp) {
        text += t("page.auth.expires", { time: formatTime(new Date(c.exp * 1000).toISOString()) });
      }
      if (!load(key) && dev) {
        text += t("page.auth.dev");
      }
      who.textContent = text + t("page.common.stop");
      form.hidden = true;
      forget.hidden = !load(key);
    }

    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      const v = $("jwt").value.trim();
      if (!v) {
        return;
      }
      store(key, v);
      $("jwt").value = "";
      render();
      onReady(v);
    });
    forget.addEventListener("click", function () {
      store(key, null);
      render();
      // With no token left the page clears what the forgotten one showed.
      onReady(current());
    });
    render();

    // Staff sign-in through the company IdP (SPEC §5b): GET /auth/session
    // says who is signed in and gives the CSRF token the POSTs carry. A
    // session, when there is one, is used instead of a token.
    let session = null;
    let ended = false; // the session ended: the page asks to sign in again
    const staff = $("staff");
    function renderStaff(text) {
      if (!staff) {
        return;
      }
      staff.hidden = false;
      $("staff-sign-in").href = "/auth/login?return=" + encodeURIComponent(location.pathname + location.search);
      $("staff-sign-in").hidden = !!session;
      $("staff-sign-out").hidden = !session;
      $("auth").hidden = !!session;
      $("staff-who").textContent = session ? t("page.staff.signed_in", {
        name: session.name || session.subject, roles: (session.roles || []).join(", "), time: formatTime(session.expires_at),
      }) : (text || t("page.staff.not_signed_in"));
    }
    async function loadSession() {
      try {
        session = await call("GET", "/auth/session", { session: true });
      } catch (e) {
        session = null;
        if (e instanceof APIError && e.code === "sign_in_unavailable") {
          return;
        }
        ended = e instanceof APIError && e.code === "session_expired";
        renderStaff(ended ? t("page.staff.expired") : "");
        return;
      }
      renderStaff();
    }
    // A sign-in that did not happen comes back with ?sign_in=<reason>.
    const refusals = { no_role: "page.staff.e_no_role", failed: "page.staff.e_failed", idp_unreachable: "page.staff.e_unreachable", unavailable: "page.staff.e_failed" };
    const refused = refusals[new URLSearchParams(location.search).get("sign_in")];
    const ready = staff ? loadSession().then(() => {
      if (refused && !session) {
        renderStaff(t(refused));
        status(t(refused), "error");
      }
    }) : Promise.resolve();
    if (staff) {
      $("staff-sign-out").addEventListener("click", busy($("staff-sign-out"), async function () {
        await call("POST", "/auth/logout", { session: true, csrf: session ? session.csrf_token : "" });
        session = null;
        ended = false;
        renderStaff(t("page.staff.signed_out"));
        status(t("page.staff.signed_out"), "ok");
        onReady(current());
      }, (e) => status(errorText(e), "error")));
    }
    return {
      token: () => (session ? "" : current()),
      ready: ready,
      signedIn: () => !!session || !!current(),
      // ended is true when the session ended (the page says "sign in again").
      ended: () => ended,
      // opts are the call options that authenticate: the session (with
      // its CSRF token), else the bearer token.
      opts: (extra) => Object.assign(session ? { session: true, csrf: session.csrf_token } : { token: current() }, extra || {}),
      sub: () => (session ? session.subject : claims(current()).sub || ""),
      // signedOut shows the form again after the API refused the token,
      // or asks to sign in again when the session ended (code).
      signedOut: function (code) {
        if (session || code === "session_expired") {
          session = null;
          ended = true;
          renderStaff(t("page.staff.expired"));
          status(t("page.staff.expired"), "error");
          return;
        }
        store(key, null);
        render();
        form.hidden = false;
        $("jwt").focus();
      },
    };
  }

  return {
    $, el, t, plural, lang, errorText, APIError, call, status, result, isSet, formatTime, formatSize, waitText,
    statusWords, finalStatuses, statusLabel, docLabel, noteText, store, load, appealTokenKey, busy, reviewerAuth,
  };
})();
