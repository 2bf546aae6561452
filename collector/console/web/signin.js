// signin.js: the sign-in page. The token is checked against the API
// (GET /api/v1/sensors) and kept in sessionStorage for this tab only.

import { setToken, clearToken, call } from "./api.js";
import { h, fill, announce } from "./dom.js";
import { go, route } from "./nav.js";

export function title() {
  return "Sign in";
}

export async function render(main) {
  const input = h("input", { id: "token", name: "token", type: "password", autocomplete: "off", required: true,
    spellcheck: "false", "aria-describedby": "token-help" });
  const msg = h("p", { id: "signin-msg", "aria-live": "assertive" });
  const form = h("form", { class: "signin", onsubmit: (ev) => submit(ev, input, msg) },
    h("h1", {}, "Sign in"),
    h("label", { for: "token" }, "API token"),
    input,
    h("p", { id: "token-help", class: "help" },
      "A token made by ", h("code", {}, "tapir token create"),
      ". It stays in this browser tab only, and is sent to this collector with every request."),
    h("button", { type: "submit" }, "Sign in"),
    msg);
  fill(main, form);
  input.focus();
}

async function submit(ev, input, msg) {
  ev.preventDefault();
  const t = input.value.trim();
  if (t === "") return;
  setToken(t);
  try {
    await call("/api/v1/sensors");
  } catch (e) {
    // 403: the token is valid but lacks flows:read; it may still fetch pcaps.
    if (e.status !== 403) {
      clearToken();
      msg.className = "error";
      msg.textContent = e.status === 401 ? "The collector refused this token." : "Sign-in failed: " + e.message;
      input.focus();
      return;
    }
  }
  announce("Signed in");
  const r = route();
  if (r.page === "signin") go("search");
  else go(r.page, r.arg, Object.fromEntries(r.params));
}
