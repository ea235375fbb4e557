// A browser client of auth-api, on another origin than the API: plain JavaScript, no build.
// The API must list this page's origin in CORS_ALLOWED_ORIGINS. Point the page at the
// API with ?api=http://127.0.0.1:8000 (the default).
"use strict";

const API = new URLSearchParams(location.search).get("api") || "http://127.0.0.1:8000";
const STATE_CHANGING = new Set(["POST", "PUT", "PATCH", "DELETE"]);
let refreshes = 0;
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
    if (!response.ok) return say("Not logged in: " + (await problemText(response)));
    const body = await response.json();
    say(`Logged in (token_type ${body.token_type}, access for ${body.expires_in} s).`);
  },
  async "show-me"() {
    const response = await call("GET", "/me");
    if (!response.ok) {
      document.getElementById("me").textContent = "";
      return say("Not signed in: " + (await problemText(response)));
    }
    const me = await response.json();
    document.getElementById("me").textContent = `${me.email}\nid ${me.id}\nrole ${me.role}`;
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
