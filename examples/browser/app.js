// A browser client of auth-api, on another origin than the API: plain JavaScript, no build.
// The API must list this page's origin in CORS_ALLOWED_ORIGINS. Point the page at the
// API with ?api=http://127.0.0.1:8000 (the default).
"use strict";

const API = new URLSearchParams(location.search).get("api") || "http://127.0.0.1:8000";
const STATE_CHANGING = new Set(["POST", "PUT", "PATCH", "DELETE"]);
let refreshes = 0;
let mfaToken = null; // what a correct password was answered with, on an account with 2FA
let refreshing = null; // one refresh at a time, shared by every request that needs it

// The readable CSRF cookies the API sets next to its HttpOnly token cookies. Cookies
// ignore ports, so a page on the API's host (any port) can read them.
function cookie(name) {
  const found = document.cookie.split("; ").find((c) => c.startsWith(name + "="));
  return found ? decodeURIComponent(found.slice(name.length + 1)) : null;
}

function send(method, path, body) {
  const headers = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  // Requests authenticated by the access cookie echo csrf_access_token.
  if (STATE_CHANGING.has(method)) headers["X-CSRF-Token"] = cookie("csrf_access_token") || "";
  return fetch(API + path, {
    method,
    headers,
    credentials: "include", // send and accept the cookies cross-origin
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

// POST /auth/refresh with the refresh cookie, echoing csrf_refresh_token.
function refresh() {
  if (!refreshing) {
    refreshing = fetch(API + "/auth/refresh", {
      method: "POST",
      credentials: "include",
      headers: { "X-CSRF-Token": cookie("csrf_refresh_token") || "" },
    })
      .then((response) => {
        if (response.ok) document.getElementById("refreshes").textContent = String(++refreshes);
        return response.ok;
      })
      .finally(() => { refreshing = null; });
  }
  return refreshing;
}

// A request with the access cookie; on an expired (or gone) access token, refresh once
// and retry.
async function call(method, path, body) {
  const response = await send(method, path, body);
  if (response.status !== 401 || !cookie("csrf_refresh_token")) return response;
  const problem = await response.clone().json().catch(() => ({}));
  if (problem.code !== "token_expired" && problem.code !== "token_missing") return response;
  return (await refresh()) ? send(method, path, body) : response;
}

function say(text) {
  document.getElementById("status").textContent = text;
}

async function problemText(response) {
  const problem = await response.json().catch(() => ({}));
  return `${response.status} ${problem.code || ""}: ${problem.detail || problem.title || ""}`;
}

// fetch() says only "Failed to fetch" both when nothing answers at API and when the API
// answered without letting this origin in (CORS). A no-cors request tells them apart: it
// succeeds whenever the server answers at all, and no CORS header is needed to send it.
async function whyFetchFailed(error) {
  const reachable = await fetch(API + "/healthz", { mode: "no-cors" }).then(() => true, () => false);
  if (reachable) {
    return `The API at ${API} answered, but not to this page: add ${location.origin} to ` +
      "its CORS_ALLOWED_ORIGINS and restart it.";
  }
  return `Nothing answers at ${API} (${error.message}): is the server running on that ` +
    "port? Start it with scripts/run, or point this page at it with ?api=.";
}

function credentials() {
  return {
    email: document.getElementById("email").value,
    password: document.getElementById("password").value,
  };
}

const actions = {
  async register() {
    const response = await send("POST", "/auth/register", credentials());
    say(response.status === 201 ? "Registered." : "Not registered: " + (await problemText(response)));
  },
  async login() {
    const response = await send("POST", "/auth/login", {
      ...credentials(),
      device_name: "browser example",
      transport: "cookie",
      remember: document.getElementById("remember").checked,
    });
    if (response.status === 401) {
      const problem = await response.clone().json().catch(() => ({}));
      if (problem.code === "mfa_required") {
        // The second step: the same login finishes with a code and this single-use token.
        mfaToken = problem.mfa_token;
        document.getElementById("code-step").hidden = false;
        return say("Code needed: enter the code from your authenticator app.");
      }
    }
    if (!response.ok) return say("Not logged in: " + (await problemText(response)));
    const body = await response.json();
    say(`Logged in (token_type ${body.token_type}, access for ${body.expires_in} s).`);
  },
  async "verify-code"() {
    const typed = document.getElementById("login-code").value.trim();
    // Six digits are a TOTP code; anything else is taken as a recovery code.
    const proof = /^\d{3} ?\d{3}$/.test(typed) ? { code: typed } : { recovery_code: typed };
    const response = await send("POST", "/auth/mfa/verify", {
      mfa_token: mfaToken,
      transport: "cookie",
      ...proof,
    });
    if (!response.ok) return say("Code refused: " + (await problemText(response)));
    mfaToken = null;
    document.getElementById("code-step").hidden = true;
    document.getElementById("login-code").value = "";
    const body = await response.json();
    say(`Logged in with two factors (access for ${body.expires_in} s).`);
  },
  async enrol() {
    const response = await call("POST", "/me/mfa/totp");
    if (!response.ok) return say("Two-factor setup refused: " + (await problemText(response)));
    const enrolment = await response.json();
    // The QR code is drawn here from otpauth_uri: the secret never goes to a third party.
    const qr = qrcode(0, "M");
    qr.addData(enrolment.otpauth_uri);
    qr.make();
    document.getElementById("qr").innerHTML = qr.createSvgTag({ cellSize: 4, margin: 2 });
    const secret = document.getElementById("mfa-secret");
    secret.textContent = enrolment.secret;
    secret.dataset.otpauthUri = enrolment.otpauth_uri;
    document.getElementById("enrolment").hidden = false;
    say("Scan the QR code, then confirm with a code.");
  },
  async "confirm-enrolment"() {
    const code = document.getElementById("enrol-code").value.trim();
    const response = await call("POST", "/me/mfa/totp/confirm", { code });
    if (!response.ok) return say("Code refused: " + (await problemText(response)));
    const { recovery_codes: codes } = await response.json();
    document.getElementById("enrolment").hidden = true;
    document.getElementById("qr").replaceChildren();
    document.getElementById("recovery-codes").replaceChildren(
      ...codes.map((c) => Object.assign(document.createElement("li"), { textContent: c })),
    );
    say("Two-factor login is on. Keep the recovery codes somewhere safe: they are shown once.");
  },
  async "show-me"() {
    const response = await call("GET", "/me");
    if (!response.ok) {
      document.getElementById("me").textContent = "";
      return say("Not signed in: " + (await problemText(response)));
    }
    const me = await response.json();
    document.getElementById("me").textContent =
      `${me.email}\nid ${me.id}\nrole ${me.role}\ntwo-factor ${me.mfa_enabled ? "on" : "off"}`;
    say("Fetched /me.");
  },
  async "list-sessions"() {
    const response = await call("GET", "/auth/sessions");
    if (!response.ok) return say("Sessions refused: " + (await problemText(response)));
    const list = document.getElementById("sessions");
    list.replaceChildren(
      ...(await response.json()).sessions.map((s) => {
        const item = document.createElement("li");
        item.className = s.current ? "session current" : "session";
        item.textContent = `${s.device_name || "unnamed"} since ${s.created_at}` +
          (s.current ? " (this browser)" : "");
        return item;
      }),
    );
    say("Listed sessions.");
  },
  async forgot() {
    const response = await send("POST", "/auth/password/forgot", {
      email: document.getElementById("email").value,
    });
    say(response.status === 202
      ? "If an account has this address, a reset link is on its way."
      : "Not sent: " + (await problemText(response)));
  },
  async reset() {
    const response = await send("POST", "/auth/password/reset", {
      token: document.getElementById("reset-token").value,
      new_password: document.getElementById("new-password").value,
    });
    say(response.status === 204
      ? "Password changed; every session was signed out. Log in with the new password."
      : "Not changed: " + (await problemText(response)));
  },
  async logout() {
    const response = await call("POST", "/auth/logout");
    if (response.status !== 204) return say("Logout refused: " + (await problemText(response)));
    document.getElementById("me").textContent = "";
    document.getElementById("sessions").replaceChildren();
    say("Logged out.");
  },
};

for (const [id, action] of Object.entries(actions)) {
  document.getElementById(id).addEventListener("click", () => {
    say("Working...");
    action().catch(async (error) => say(await whyFetchFailed(error)));
  });
}

// A message's link: PUBLIC_LINK_BASE#action=...&token=... (the fragment never reaches a server).
function followLink() {
  const link = new URLSearchParams(location.hash.slice(1));
  const action = link.get("action");
  const token = link.get("token") || "";
  if (action !== "reset-password" && action !== "verify-email") return;
  // Out of the address bar and history once read: a reload must not replay a used token.
  history.replaceState(null, "", location.pathname + location.search);
  if (action === "reset-password") {
    document.getElementById("reset-token").value = token;
    say("Choose a new password.");
  } else {
    send("POST", "/auth/email/verify", { token }).then(async (response) =>
      say(response.status === 204 ? "Address verified." : "Not verified: " + (await problemText(response))),
    ).catch(async (error) => say(await whyFetchFailed(error)));
  }
}

followLink();
// A link opened in a tab already showing this page only changes the fragment: no reload.
window.addEventListener("hashchange", followLink);
