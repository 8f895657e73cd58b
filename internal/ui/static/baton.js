// baton status page: keeps the server-rendered page live from the API's
// event stream (GET /v1/events) by fetching the page's live part again
// after events; no timer runs while nothing happens.
"use strict";
(function () {
  const main = document.getElementById("main");
  const live = document.getElementById("live");
  const liveText = document.getElementById("live-text");
  const readOnly = main.dataset.readonly === "true";
  let pending = null, inflight = false, again = false;

  function setLive(state, text) {
    live.className = "live " + state;
    liveText.textContent = text;
  }

  async function refresh() {
    pending = null;
    if (inflight) { again = true; return; }
    inflight = true;
    try {
      const r = await fetch("/ui/fragment", { credentials: "same-origin", cache: "no-store" });
      if (r.ok) {
        const html = await r.text();
        // Keep the keyboard focus across the refresh: the same button or
        // element (by id or command) is focused again.
        const f = document.activeElement;
        const key = f && main.contains(f) ? (f.id ? "#" + CSS.escape(f.id) : f.dataset.cmd ? `[data-cmd="${f.dataset.cmd}"]` : null) : null;
        main.innerHTML = html;
        wire();
        if (key) { const back = main.querySelector(key); if (back) back.focus(); }
        document.title = document.querySelector("#self .role").textContent + " · baton";
      }
    } catch (e) { /* the stream's error handler shows the state */ }
    inflight = false;
    if (again) { again = false; schedule(); }
  }
  function schedule() { if (!pending) pending = setTimeout(refresh, 120); }

  function connect() {
    const es = new EventSource("/v1/events");
    es.addEventListener("subscribed", () => { setLive("on", "live"); schedule(); });
    for (const t of ["transition", "takeover", "action", "path", "peer", "drop", "samples", "sync_refusal"]) {
      es.addEventListener(t, schedule);
    }
    es.addEventListener("dropped", () => setLive("off", "catching up"));
    es.onerror = () => setLive("off", "reconnecting");
  }

  const dialog = document.getElementById("confirm");
  function wire() {
    if (readOnly) return;
    for (const b of main.querySelectorAll("button[data-cmd]")) {
      b.disabled = false;
      b.onclick = () => ask(b.dataset.confirm, () => run(b.dataset.cmd, b.textContent));
    }
    const hint = document.getElementById("cmd-hint");
    if (hint) hint.hidden = true;
  }
  function ask(text, then) {
    document.getElementById("confirm-text").textContent = text;
    dialog.returnValue = "";
    dialog.onclose = () => { if (dialog.returnValue === "ok") then(); };
    dialog.showModal();
  }
  async function run(path, label) {
    const toast = document.getElementById("toast");
    toast.hidden = false;
    toast.className = "toast";
    toast.textContent = label + "…";
    try {
      const r = await fetch(path, { method: "POST", credentials: "same-origin", headers: { "X-Baton-UI": "1" } });
      const body = await r.json().catch(() => ({}));
      toast.className = "toast " + (r.ok ? "ok" : "bad");
      toast.textContent = r.ok ? label + ": done" : label + " refused: " + (body.error || r.status);
    } catch (e) {
      toast.className = "toast bad";
      toast.textContent = label + " failed: " + e;
    }
    schedule();
  }

  const scheme = document.getElementById("scheme");
  const saved = localStorage.getItem("baton-scheme");
  if (saved) document.documentElement.dataset.scheme = saved;
  scheme.hidden = false;
  scheme.onclick = () => {
    const dark = getComputedStyle(document.documentElement).colorScheme === "dark";
    const next = dark ? "light" : "dark";
    document.documentElement.dataset.scheme = next;
    localStorage.setItem("baton-scheme", next);
  };

  wire();
  if (window.EventSource) connect();
})();
