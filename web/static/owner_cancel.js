// owner_cancel.js drives the account owner's cancel page
// (/appeals/{id}/owner-cancel?token=…, linked from the SMS and e-mail): the
// button POSTs the cancel token to /v1/appeals/{id}/cancel. Loading the page
// cancels nothing.
"use strict";

(function () {
  const m = window.mfaflow;
  const $ = m.$;
  const t = m.t;
  const root = $("owner-cancel");
  const id = root.dataset.appealId;
  const token = root.dataset.token;
  const button = $("owner-cancel-button");
  const out = $("result");

  async function cancel() {
    m.result(out, t("page.owner.cancelling"));
    const r = await m.call("POST", "/v1/appeals/" + encodeURIComponent(id) + "/cancel", { json: { token: token } });
    m.result(out, t("page.owner.done", { status: m.statusLabel(r.status) }), "ok");
    button.hidden = true;
  }

  function failed(e) {
    let msg;
    switch (e.code) {
      case "unauthorized":
        msg = t("page.owner.e_link");
        break;
      case "wrong_state":
        msg = t("page.owner.e_closed");
        break;
      case "not_found":
        msg = t("page.owner.e_not_found");
        break;
      default:
        msg = t("page.owner.e_other", { error: m.errorText(e) });
    }
    m.result(out, msg, "error");
  }

  if (id && token) {
    button.addEventListener("click", m.busy(button, cancel, failed));
  }
})();
