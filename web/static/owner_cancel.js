// owner_cancel.js drives the account owner's cancel page
// (/appeals/{id}/owner-cancel?token=…, linked from the SMS and e-mail): the
// button POSTs the cancel token to /v1/appeals/{id}/cancel. Loading the page
// cancels nothing.
"use strict";

(function () {
  const m = window.mfaflow;
  const $ = m.$;
  const root = $("owner-cancel");
  const id = root.dataset.appealId;
  const token = root.dataset.token;
  const button = $("owner-cancel-button");
  const out = $("result");

  async function cancel() {
    m.result(out, "Cancelling…");
    const r = await m.call("POST", "/v1/appeals/" + encodeURIComponent(id) + "/cancel", { json: { token: token } });
    m.result(out, "The appeal is " + m.statusLabel(r.status).toLowerCase() + ". Nobody will unbind the MFA device through it. " +
      "If you did not file it, change the account's password now.", "ok");
    button.hidden = true;
  }

  function failed(e) {
    let msg;
    switch (e.code) {
      case "unauthorized":
        msg = "This cancel link is not valid. Open the link from the message again, or copy it whole.";
        break;
      case "wrong_state":
        msg = "This appeal can no longer be cancelled: it is already closed (unbound, rejected, cancelled or expired).";
        break;
      case "not_found":
        msg = "There is no such appeal.";
        break;
      default:
        msg = "The appeal was not cancelled: " + e.message + ". Try again.";
    }
    m.result(out, msg, "error");
  }

  if (id && token) {
    button.addEventListener("click", m.busy(button, cancel, failed));
  }
})();
