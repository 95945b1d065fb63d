// signoff web console: live updates over server-sent events and keyboard shortcuts.
// No inline scripts anywhere: the Content-Security-Policy allows only this file.
(function () {
  "use strict";
  const page = document.body.dataset.page;

  async function fetchHtml(url) {
    const response = await fetch(url, { credentials: "same-origin" });
    if (response.redirected || !response.ok) { return null; }
    const holder = document.createElement("div");
    holder.innerHTML = await response.text();  // our own server-rendered, escaped HTML
    return holder;
  }

  async function refreshRows(list) {
    const fresh = await fetchHtml("/inbox/rows?" + list.dataset.query);
    if (!fresh) { return; }
    list.replaceChildren(...fresh.childNodes);
    if (current >= 0) { select(Math.min(current, rows().length - 1)); }
  }

  async function refreshCard(card) {
    const fresh = await fetchHtml("/items/" + encodeURIComponent(card.dataset.item) + "/card");
    const next = fresh && fresh.querySelector("article");
    const shown = card.querySelector("article");
    if (!next || !shown || next.dataset.stamp === shown.dataset.stamp) { return; }
    if (shown.querySelector("details[open]") && next.dataset.state === "pending") {
      // The reviewer is editing and the item is still open: keep their form, update the rest.
      [".context", ".history", ".quorum"].forEach(function (selector) {
        const from = next.querySelector(selector);
        const to = shown.querySelector(selector);
        if (from && to) { to.replaceWith(from); }
      });
      shown.dataset.stamp = next.dataset.stamp;
      return;
    }
    card.replaceChildren(next);
  }

  function listen() {
    if (!window.EventSource || (page !== "inbox" && page !== "item")) { return; }
    const events = new EventSource("/events");
    function changed(id) {
      if (page === "item") {
        const card = document.getElementById("card");
        if (card && (id === null || card.dataset.item === id)) { refreshCard(card); }
      } else {
        const list = document.getElementById("rows");
        if (list) { refreshRows(list); }
      }
    }
    events.addEventListener("item", function (event) { changed(JSON.parse(event.data).id); });
    // Changes between rendering the page and (re)connecting were not pushed: catch up.
    events.addEventListener("open", function () { changed(null); });
  }

  let current = -1;
  function rows() { return Array.from(document.querySelectorAll("tr.row")); }
  function select(index) {
    const all = rows();
    all.forEach(function (row) { row.classList.remove("selected"); });
    if (!all.length) { current = -1; return; }
    current = Math.max(0, Math.min(index, all.length - 1));
    all[current].classList.add("selected");
    all[current].scrollIntoView({ block: "nearest" });
  }

  function openPanel(id) {
    const panel = document.getElementById(id);
    if (!panel) { return; }
    panel.open = true;
    const field = panel.querySelector("input[type=text], textarea, select");
    if (field) { field.focus(); }
  }

  function onKey(event) {
    const target = event.target;
    if (event.ctrlKey || event.metaKey || event.altKey) { return; }
    if (target.closest && target.closest("input, textarea, select")) { return; }
    const key = event.key;
    if (page === "inbox") {
      if (key === "j") { select(current + 1); }
      else if (key === "k") { select(current - 1); }
      else if ((key === "o" || key === "Enter") && current >= 0) { window.location = rows()[current].dataset.href; }
      else if (["a", "e", "r", "d"].includes(key) && current >= 0) {
        const panel = { a: "approve", e: "edit", r: "reject", d: "redraft" }[key];
        window.location = rows()[current].dataset.href + "#" + panel;
      } else { return; }
      event.preventDefault();
    } else if (page === "item") {
      if (key === "a") { const b = document.getElementById("approve"); if (b) { b.click(); } }
      else if (key === "e") { openPanel("edit"); }
      else if (key === "r") { openPanel("reject"); }
      else if (key === "d") { openPanel("redraft"); }  // reject and redraft, where offered
      else { return; }
      event.preventDefault();
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    listen();
    document.addEventListener("keydown", onKey);
    if (page === "item") {
      const hash = window.location.hash.slice(1);
      if (hash === "edit" || hash === "reject" || hash === "redraft") { openPanel(hash); }
      if (hash === "approve") { const b = document.getElementById("approve"); if (b) { b.focus(); } }
    }
  });
})();
