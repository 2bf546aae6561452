// complete.js: field-name completion for the query box (an ARIA 1.2
// combobox with a listbox) and the field help table, both fed by
// GET /api/v1/fields plus the language's own keywords.

import { getJSON } from "./api.js";
import { h, fill } from "./dom.js";

const KEYWORDS = [
  ["host", "keyword", "host ADDR: either end (src host, dst host)"],
  ["net", "keyword", "net PREFIX, or net ADDR mask MASK"],
  ["port", "keyword", "port N (tcp port 80, src port, dst port)"],
  ["portrange", "keyword", "portrange N-M"],
  ["proto", "keyword", "proto NAME|N; also bare tcp, udp, icmp, icmp6, sctp"],
  ["vlan", "keyword", "vlan N"],
  ["after", "keyword", "after TIME (RFC 3339, unix seconds, 5m ago)"],
  ["before", "keyword", "before TIME"],
  ["and", "operator", "both"], ["or", "operator", "either"], ["not", "operator", "negation"],
];

let fieldsPromise = null;

/** The searchable fields [{name, type, description}], fetched once. */
export function fields() {
  if (!fieldsPromise) {
    fieldsPromise = getJSON("/api/v1/fields")
      .then((list) => (Array.isArray(list) ? list : []))
      .catch(() => []);
  }
  return fieldsPromise;
}

async function candidates() {
  const f = await fields();
  return [...f.map((x) => ({ name: x.name, type: x.type || "", description: x.description || "" })),
    ...KEYWORDS.map(([name, type, description]) => ({ name, type, description }))];
}

/** The word being typed at the caret: [start, end, text]. */
function wordAt(input) {
  const v = input.value, end = input.selectionStart ?? v.length;
  let start = end;
  while (start > 0 && /[\w.@*-]/.test(v[start - 1])) start--;
  return [start, end, v.slice(start, end)];
}

/** Replaces the word at the caret with text and puts the caret after it. */
export function insertAtCaret(input, text) {
  const [start, end] = wordAt(input);
  const v = input.value;
  input.value = v.slice(0, start) + text + v.slice(end);
  const pos = start + text.length;
  input.setSelectionRange(pos, pos);
  input.focus();
}

/** Wraps the query input in a combobox with a suggestion list. */
export function completer(input) {
  const list = h("ul", { id: "q-list", role: "listbox", class: "suggest", hidden: true, "aria-label": "Fields" });
  input.setAttribute("role", "combobox");
  input.setAttribute("aria-autocomplete", "list");
  input.setAttribute("aria-controls", "q-list");
  input.setAttribute("aria-expanded", "false");
  let items = [], active = -1;

  const close = () => {
    list.hidden = true;
    input.setAttribute("aria-expanded", "false");
    input.removeAttribute("aria-activedescendant");
    items = [];
    active = -1;
  };
  const highlight = (i) => {
    active = i;
    [...list.children].forEach((li, k) => li.setAttribute("aria-selected", String(k === i)));
    if (i >= 0) input.setAttribute("aria-activedescendant", "q-opt-" + i);
  };
  const accept = (i) => {
    insertAtCaret(input, items[i].name);
    close();
  };
  const update = async () => {
    const [, , word] = wordAt(input);
    if (word.length < 1) return close();
    const lw = word.toLowerCase();
    const all = await candidates();
    items = all.filter((c) => c.name.toLowerCase().startsWith(lw) && c.name.toLowerCase() !== lw).slice(0, 8);
    if (items.length === 0) return close();
    fill(list, items.map((c, i) => h("li", { id: "q-opt-" + i, role: "option", "aria-selected": "false",
      onmousedown: (ev) => { ev.preventDefault(); accept(i); } },
      h("span", { class: "fname" }, c.name), " ", h("span", { class: "ftype" }, c.type))));
    list.hidden = false;
    input.setAttribute("aria-expanded", "true");
    highlight(0);
  };
  input.addEventListener("input", update);
  input.addEventListener("blur", () => setTimeout(close, 100));
  input.addEventListener("keydown", (ev) => {
    if (list.hidden) return;
    if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
      ev.preventDefault();
      const n = items.length;
      highlight((active + (ev.key === "ArrowDown" ? 1 : n - 1)) % n);
    } else if (ev.key === "Tab" && active >= 0) {
      ev.preventDefault();
      accept(active);
    } else if (ev.key === "Escape") {
      ev.preventDefault();
      close();
    } else if (ev.key === "Enter") {
      close(); // Enter searches; Tab completes
    }
  });
  return h("div", { class: "combo" }, input, list);
}

/** A collapsible table of every searchable field, each insertable. */
export function fieldHelp(input) {
  const body = h("div", {}, h("p", { class: "loading" }, "Loading fields…"));
  const det = h("details", { class: "fieldhelp" }, h("summary", {}, "Field help"), body);
  det.addEventListener("toggle", async () => {
    if (!det.open || body.dataset.loaded) return;
    body.dataset.loaded = "1";
    const all = await candidates();
    fill(body, h("table", {},
      h("caption", {}, "Searchable fields: field == value, field == prefix*, field > N, field exists; combined with and, or, not"),
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Field"), h("th", { scope: "col" }, "Type"),
        h("th", { scope: "col" }, "Description"))),
      h("tbody", {}, all.map((c) => h("tr", {},
        h("th", { scope: "row" }, h("button", { type: "button", class: "link",
          "aria-label": "Insert " + c.name + " into the query",
          onclick: () => insertAtCaret(input, c.name + (c.type === "operator" || c.type === "keyword" ? " " : " == ")) }, c.name)),
        h("td", {}, c.type), h("td", {}, c.description))))));
  });
  return det;
}
