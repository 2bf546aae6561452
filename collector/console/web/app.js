// app.js: the console's shell. A hash router (#/search, #/flow/ID,
// #/fleet, #/audit, #/signin) renders one page module into <main>; the
// header holds the navigation, the Community ID pivot box and sign-out.

import { token, clearToken } from "./api.js";
import { fill, h } from "./dom.js";
import { route, go } from "./nav.js";
import * as signin from "./signin.js";
import * as search from "./search.js";
import * as flow from "./flow.js";
import * as fleet from "./fleet.js";
import * as audit from "./audit.js";

const pages = { signin, search, flow, fleet, audit };

let renderSeq = 0;

async function render() {
  const seq = ++renderSeq;
  const r = route();
  const signedIn = token() !== "";
  const name = signedIn ? (pages[r.page] ? r.page : "search") : "signin";
  updateHeader(name, signedIn);
  const main = document.getElementById("main");
  const page = pages[name];
  // A page keeps its DOM when only its parameters change (e.g. a packet
  // picked on the flow page), if its update returns a promise.
  const updating = main.dataset.page === name && page.update ? page.update(main, r) : null;
  if (updating) {
    main.dataset.route = location.hash;
    main.dataset.state = "loading";
    await updating;
    if (seq === renderSeq) main.dataset.state = "done";
    return;
  }
  main.dataset.page = name;
  // data-route and data-state say which route is drawn and whether its
  // data has arrived (tests and the page-timing benchmark wait on them).
  main.dataset.route = location.hash;
  main.dataset.state = "loading";
  fill(main, h("p", { class: "loading" }, "Loading…"));
  try {
    await page.render(main, r, () => seq === renderSeq);
  } catch (e) {
    // A page's own bug (API errors are shown by the pages): say so, and
    // rethrow it uncaught so that it reaches the browser's console.
    if (seq === renderSeq) fill(main, h("p", { class: "error", role: "alert" }, "The console failed: " + String(e.message || e)));
    setTimeout(() => { throw e; });
  }
  if (seq !== renderSeq) return;
  if (page.title) document.title = page.title(r) + " · tapir console";
  main.dataset.state = "done";
  performance.mark("tapir:" + name + ":done");
}

function updateHeader(name, signedIn) {
  for (const a of document.querySelectorAll("[data-nav]")) {
    if (a.dataset.nav === name) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  document.querySelector("header nav").hidden = !signedIn;
  document.getElementById("pivot").hidden = !signedIn;
  document.getElementById("signout").hidden = !signedIn;
}

function pivot(ev) {
  ev.preventDefault();
  const input = document.getElementById("pivot-id");
  const id = input.value.trim();
  if (id === "") return;
  input.value = "";
  go("flow", id);
}

function signout() {
  clearToken();
  go("signin");
}

function start() {
  document.getElementById("pivot").addEventListener("submit", pivot);
  document.getElementById("signout").addEventListener("click", signout);
  window.addEventListener("hashchange", render);
  render();
}

start();
