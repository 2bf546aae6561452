// download.js: pcap / pcapng download buttons. The download goes through
// fetch with the token (each one is audited by the collector); a token
// without pcap:read is told so next to the buttons.

import { download } from "./api.js";
import { h, announce, bytes } from "./dom.js";

/**
 * downloadButtons(label, basename, pathOf, disabled) -> a group of two
 * buttons; pathOf(format) is the API path for "pcap" or "pcapng".
 */
export function downloadButtons(label, basename, pathOf, disabled = false) {
  const msg = h("p", { class: "dl-msg", role: "status", "aria-live": "polite" });
  const button = (format) => h("button", { type: "button", "data-format": format, disabled,
    onclick: () => start(format) }, "Download " + format);
  const start = async (format) => {
    msg.className = "dl-msg";
    msg.textContent = "Downloading " + format + "…";
    try {
      const r = await download(pathOf(format), basename + "." + format);
      msg.textContent = `Downloaded ${basename}.${format} (${bytes(r.bytes)}).`;
      announce(msg.textContent);
    } catch (e) {
      msg.className = "dl-msg error";
      if (e.status === 403) msg.textContent = "Download refused: your token lacks the pcap:read role.";
      else if (e.status === 413) msg.textContent = "The result is over the retrieval caps: narrow the query. (" + e.message + ")";
      else msg.textContent = "Download failed: " + e.message;
      msg.setAttribute("role", "alert");
    }
  };
  return h("div", { class: "dl", role: "group", "aria-label": label },
    h("span", { class: "dl-label" }, label + ": "), button("pcap"), " ", button("pcapng"),
    disabled ? h("span", { class: "help" }, " (enter a query first)") : "", msg);
}
