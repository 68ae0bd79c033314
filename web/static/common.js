// common.js: helpers shared by the appeal and review pages. It defines
// window.mfaflow; each page's own script runs after it (both are deferred).
// Text goes into the page with textContent only, never as HTML.
"use strict";

window.mfaflow = (function () {
  const $ = (id) => document.getElementById(id);

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
  // token (bearer), json (a body to send as JSON), body and contentType (a
  // raw body). It throws an APIError with the API's error code, message and
  // field.
  async function call(method, path, opts) {
    opts = opts || {};
    const init = { method: method, headers: { Accept: "application/json" }, credentials: "omit", cache: "no-store" };
    if (opts.token) {
      init.headers.Authorization = "Bearer " + opts.token;
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
      throw new APIError("network_error", "the server cannot be reached; check the connection and try again", 0, "", null);
    }
    let data = null;
    try {
      data = await res.json();
    } catch (e) {
      data = null;
    }
    if (!res.ok) {
      const err = (data && data.error) || { code: "http_" + res.status, message: res.statusText || "the request failed" };
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

  // status sets the page's status line.
  function status(message, kind) {
    const s = $("status");
    if (!s) {
      return;
    }
    s.textContent = message;
    s.className = "status" + (kind ? " " + kind : "");
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

  function formatTime(t) {
    if (!isSet(t)) {
      return "—";
    }
    const d = new Date(t);
    return isNaN(d) ? String(t) : d.toLocaleString();
  }

  function formatSize(n) {
    n = Number(n);
    if (!(n >= 0)) {
      return "";
    }
    if (n < 1024) {
      return n + " bytes";
    }
    if (n < 1024 * 1024) {
      return (n / 1024).toFixed(1) + " KB";
    }
    return (n / 1024 / 1024).toFixed(1) + " MB";
  }

  function waitText(seconds) {
    const s = Number(seconds);
    if (!(s > 0)) {
      return "later";
    }
    if (s < 90) {
      return "in " + Math.ceil(s) + " seconds";
    }
    if (s < 90 * 60) {
      return "in " + Math.ceil(s / 60) + " minutes";
    }
    return "in " + Math.ceil(s / 3600) + " hours";
  }

  // statusWords say each appeal status in words, with what happens next.
  const statusWords = {
    collecting_documents: ["Waiting for your documents", "Upload the required documents and submit the appeal before the deadline."],
    pending_review: ["Submitted, waiting for review", "A reviewer will check the details and documents. The account's bound phone and e-mail were told about the appeal."],
    in_review: ["Being reviewed", "A reviewer is checking the appeal."],
    cooling_down: ["Approved, waiting out the safety period", "The MFA device will be unbound when the safety period ends. Until then the account owner can cancel, and using the device cancels the appeal."],
    unbound: ["Unbound: the MFA device was removed", "Sign in with the account's password, then bind a new MFA device in security settings."],
    rejected: ["Rejected", "The appeal was not approved. The reason is in the timeline; you may file a new appeal."],
    cancelled: ["Cancelled", "The appeal was cancelled; the MFA device stays bound."],
    expired: ["Expired", "The documents were not submitted before the deadline. You may file a new appeal."],
    ineligible: ["Not eligible", "The account cannot be unbound by appeal."],
  };
  const finalStatuses = ["unbound", "rejected", "cancelled", "expired", "ineligible"];

  function statusLabel(s) {
    return (statusWords[s] || [s])[0];
  }

  const docLabels = {
    id_holding_photo: "Photo of the applicant holding their ID card",
    business_licence: "Business licence",
  };

  function docLabel(t) {
    return docLabels[t] || t;
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
        who.textContent = "Not signed in. Paste your reviewer token to continue.";
        form.hidden = false;
        forget.hidden = true;
        return;
      }
      const c = claims(tok);
      let text = "Signed in as " + (c.sub || "an unknown reviewer");
      if (Array.isArray(c.roles)) {
        text += " (" + c.roles.join(", ") + ")";
      }
      if (c.exp) {
        text += "; the token expires " + formatTime(new Date(c.exp * 1000).toISOString());
      }
      if (!load(key) && dev) {
        text += ". Dev stack: the page carries the dev reviewer token.";
      }
      who.textContent = text + ".";
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
      if (current()) {
        onReady(current());
      }
    });
    render();
    return {
      token: current,
      sub: () => claims(current()).sub || "",
      // signedOut shows the form again after the API refused the token.
      signedOut: function () {
        store(key, null);
        render();
        form.hidden = false;
        $("jwt").focus();
      },
    };
  }

  return {
    $, el, APIError, call, status, result, isSet, formatTime, formatSize, waitText,
    statusWords, finalStatuses, statusLabel, docLabel, store, load, appealTokenKey, busy, reviewerAuth,
  };
})();
