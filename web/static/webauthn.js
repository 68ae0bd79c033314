// webauthn.js: security keys and passkeys in the browser, for the pages
// that bind or use them (SPEC §6c). It defines window.mfaflowWebAuthn and
// shows no text of its own: the page's script words the outcomes.
//
// The API sends the options of navigator.credentials.create and .get as
// JSON with binary fields in base64url ({"publicKey":{…}}, as go-webauthn
// marshals them) and takes the browser's PublicKeyCredential back as JSON,
// binary fields in base64url. The conversions are done here, by hand, so
// that they do not depend on PublicKeyCredential.parseCreationOptionsFromJSON
// or toJSON, which not every browser has.
"use strict";

window.mfaflowWebAuthn = (function () {
  // toBuffer decodes base64url (padded or not; plain base64 is accepted
  // too) into an ArrayBuffer.
  function toBuffer(s) {
    if (s instanceof ArrayBuffer) {
      return s;
    }
    if (ArrayBuffer.isView(s)) {
      return s.buffer.slice(s.byteOffset, s.byteOffset + s.byteLength);
    }
    let b64 = String(s).replace(/-/g, "+").replace(/_/g, "/").replace(/=+$/, "");
    while (b64.length % 4 !== 0) {
      b64 += "=";
    }
    const bin = atob(b64);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) {
      out[i] = bin.charCodeAt(i);
    }
    return out.buffer;
  }

  // fromBuffer encodes an ArrayBuffer or a typed array as base64url
  // without padding.
  function fromBuffer(buf) {
    const bytes = buf instanceof ArrayBuffer ? new Uint8Array(buf) : new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
    let bin = "";
    for (let i = 0; i < bytes.length; i += 0x8000) {
      bin += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    }
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  // publicKeyOf returns the publicKey member of the API's options, which
  // come as {"publicKey":{…}}; bare options are taken as they are.
  function publicKeyOf(options) {
    if (!options || typeof options !== "object") {
      throw new TypeError("webauthn: no options");
    }
    return options.publicKey && typeof options.publicKey === "object" ? options.publicKey : options;
  }

  // withoutNulls drops the members that are null: the browser's
  // dictionaries take a missing member, not null, for "not given".
  function withoutNulls(o) {
    const out = {};
    for (const [k, v] of Object.entries(o)) {
      if (v !== null && v !== undefined) {
        out[k] = v;
      }
    }
    return out;
  }

  function descriptors(list) {
    if (!Array.isArray(list)) {
      return undefined;
    }
    return list.map((d) => withoutNulls(Object.assign({}, d, { id: toBuffer(d.id) })));
  }

  // creationOptions turns the API's creation options into the argument of
  // navigator.credentials.create.
  function creationOptions(options) {
    const pk = withoutNulls(publicKeyOf(options));
    pk.challenge = toBuffer(pk.challenge);
    pk.user = withoutNulls(Object.assign({}, pk.user, { id: toBuffer(pk.user.id) }));
    if (pk.excludeCredentials) {
      pk.excludeCredentials = descriptors(pk.excludeCredentials);
    }
    return { publicKey: pk };
  }

  // requestOptions turns the API's request options into the argument of
  // navigator.credentials.get.
  function requestOptions(options) {
    const pk = withoutNulls(publicKeyOf(options));
    pk.challenge = toBuffer(pk.challenge);
    if (pk.allowCredentials) {
      pk.allowCredentials = descriptors(pk.allowCredentials);
    }
    return { publicKey: pk };
  }

  // rpID is the relying party's id the options name: rp.id of creation
  // options, rpId of request options. Empty when they name none.
  function rpID(options) {
    const pk = publicKeyOf(options);
    return (pk.rp && pk.rp.id) || pk.rpId || "";
  }

  // isIPAddress reports whether host is an IPv4 or IPv6 literal: security
  // keys never work on such an origin, as an RP ID is a domain.
  function isIPAddress(host) {
    return /^\d{1,3}(\.\d{1,3}){3}$/.test(host) || host.includes(":") || /^\[.*\]$/.test(host);
  }

  // originFits reports whether the page's host may use credentials of
  // rpId: the host is the RP ID or a subdomain of it, and not an IP.
  function originFits(rpId, host) {
    host = (host || location.hostname).toLowerCase();
    if (isIPAddress(host)) {
      return false;
    }
    if (!rpId) {
      return true;
    }
    rpId = rpId.toLowerCase();
    return host === rpId || host.endsWith("." + rpId);
  }

  function supported() {
    return !!(window.PublicKeyCredential && navigator.credentials && typeof navigator.credentials.create === "function" && window.isSecureContext);
  }

  function extensionResults(cred) {
    let ext = {};
    try {
      ext = typeof cred.getClientExtensionResults === "function" ? cred.getClientExtensionResults() : {};
    } catch (e) {
      ext = {};
    }
    // Results may hold buffers (prf, largeBlob): base64url them too.
    return JSON.parse(JSON.stringify(ext, (k, v) => (v instanceof ArrayBuffer || ArrayBuffer.isView(v) ? fromBuffer(v) : v)));
  }

  // registrationJSON is the JSON of a new credential, for …/confirm.
  function registrationJSON(cred) {
    const r = cred.response;
    const out = {
      id: cred.id,
      rawId: fromBuffer(cred.rawId),
      type: cred.type,
      response: {
        clientDataJSON: fromBuffer(r.clientDataJSON),
        attestationObject: fromBuffer(r.attestationObject),
        transports: typeof r.getTransports === "function" ? r.getTransports() : [],
      },
      clientExtensionResults: extensionResults(cred),
    };
    if (cred.authenticatorAttachment) {
      out.authenticatorAttachment = cred.authenticatorAttachment;
    }
    return out;
  }

  // assertionJSON is the JSON of an assertion, for …/verify or a proof.
  function assertionJSON(cred) {
    const r = cred.response;
    const out = {
      id: cred.id,
      rawId: fromBuffer(cred.rawId),
      type: cred.type,
      response: {
        clientDataJSON: fromBuffer(r.clientDataJSON),
        authenticatorData: fromBuffer(r.authenticatorData),
        signature: fromBuffer(r.signature),
      },
      clientExtensionResults: extensionResults(cred),
    };
    if (r.userHandle && r.userHandle.byteLength > 0) {
      out.response.userHandle = fromBuffer(r.userHandle);
    }
    if (cred.authenticatorAttachment) {
      out.authenticatorAttachment = cred.authenticatorAttachment;
    }
    return out;
  }

  // OriginError is thrown before the browser is asked when the page's
  // origin cannot use the relying party's credentials.
  class OriginError extends Error {
    constructor(rpId, host) {
      super("webauthn: this origin cannot use credentials of " + (rpId || "this relying party"));
      this.name = "OriginError";
      this.rpId = rpId;
      this.host = host;
    }
  }

  function checkOrigin(options) {
    const rp = rpID(options);
    if (!originFits(rp, location.hostname)) {
      throw new OriginError(rp, location.hostname);
    }
  }

  // create registers a credential with the API's creation options and
  // returns its JSON for the API.
  async function create(options, signal) {
    checkOrigin(options);
    const arg = creationOptions(options);
    if (signal) {
      arg.signal = signal;
    }
    const cred = await navigator.credentials.create(arg);
    if (!cred) {
      throw new DOMException("no credential", "NotAllowedError");
    }
    return registrationJSON(cred);
  }

  // get asks for an assertion with the API's request options and returns
  // its JSON for the API.
  async function get(options, signal) {
    checkOrigin(options);
    const arg = requestOptions(options);
    if (signal) {
      arg.signal = signal;
    }
    const cred = await navigator.credentials.get(arg);
    if (!cred) {
      throw new DOMException("no credential", "NotAllowedError");
    }
    return assertionJSON(cred);
  }

  // failure classifies an error of create or get:
  //   "cancelled"   the user cancelled, the request timed out, or the
  //                 browser refused without saying why (NotAllowedError);
  //   "origin"      the page's origin cannot use the relying party's keys;
  //   "exists"      the key is registered to this account already;
  //   "unsupported" the browser or the key cannot do what was asked;
  //   "failed"      anything else.
  function failure(e) {
    switch (e && e.name) {
      case "NotAllowedError":
      case "AbortError":
        return "cancelled";
      case "OriginError":
      case "SecurityError":
        return "origin";
      case "InvalidStateError":
        return "exists";
      case "NotSupportedError":
        return "unsupported";
    }
    return "failed";
  }

  return {
    toBuffer: toBuffer,
    fromBuffer: fromBuffer,
    creationOptions: creationOptions,
    requestOptions: requestOptions,
    registrationJSON: registrationJSON,
    assertionJSON: assertionJSON,
    rpID: rpID,
    isIPAddress: isIPAddress,
    originFits: originFits,
    supported: supported,
    create: create,
    get: get,
    failure: failure,
    OriginError: OriginError,
  };
})();
