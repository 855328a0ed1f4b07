// The session's CSRF token (base.html's meta tag), sent with every state-changing fetch.
function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

// Dashboard behaviour: lead selection (per row, or every lead matching the filter),
// the scheduling modal with its live summary, and submitting to the JSON API.
// Plain JavaScript, no build step.
// Numbers page: the header checkbox ticks every row (the bulk form posts them).
(function () {
  "use strict";
  const all = document.getElementById("numbers-all");
  if (!all) return;
  all.addEventListener("change", function () {
    document.querySelectorAll("input.pick-number").forEach(function (box) { box.checked = all.checked; });
  });
})();

(function () {
  "use strict";
  const table = document.getElementById("leads-table");
  if (!table) return;

  const KEY = "dialer.selection";
  const button = document.getElementById("schedule-button");
  const countEl = document.getElementById("selected-count");
  const info = document.getElementById("selection-info");
  const selectAll = document.getElementById("select-all");
  const modal = document.getElementById("schedule-modal");
  const confirmation = document.getElementById("schedule-confirmation");
  const total = Number(table.dataset.total || 0);
  // "Select all" selects every lead matching the filter; the pending ones among them
  // are what gets scheduled, so that is the count the button and the modal use.
  const schedulable = Number(table.dataset.schedulable || 0);
  const filter = { status: table.dataset.status || null, q: table.dataset.q || null };
  const filterKey = JSON.stringify(filter);

  // Ticked ids survive paging (sessionStorage); "all matching" is tied to the filter.
  let state = load();

  function load() {
    try {
      const s = JSON.parse(sessionStorage.getItem(KEY) || "null");
      if (s && Array.isArray(s.ids)) return { ids: new Set(s.ids), all: s.all && s.filter === filterKey };
    } catch (_) { /* start empty */ }
    return { ids: new Set(), all: false };
  }
  function save() {
    sessionStorage.setItem(KEY, JSON.stringify({ ids: [...state.ids], all: state.all, filter: filterKey }));
  }
  function selectedCount() { return state.all ? schedulable : state.ids.size; }
  function rows() { return [...table.querySelectorAll("input.row-select")]; }

  function render() {
    const n = selectedCount();
    countEl.textContent = String(n);
    button.hidden = n === 0;
    selectAll.checked = state.all;
    for (const box of rows()) box.checked = state.all || state.ids.has(Number(box.value));
    info.textContent = state.all
      ? `All ${total} leads matching the filter are selected (${schedulable} pending will be called)`
      : (n ? `${n} selected` : "");
    save();
  }

  table.addEventListener("change", (e) => {
    const box = e.target;
    if (box === selectAll) {
      state = { ids: new Set(), all: selectAll.checked };
    } else if (box.classList.contains("row-select")) {
      if (state.all) { // leaving "all matching": keep this page's ticks, minus this one
        state = { ids: new Set(rows().map((b) => Number(b.value))), all: false };
      }
      const id = Number(box.value);
      if (box.checked) state.ids.add(id); else state.ids.delete(id);
    }
    render();
  });

  // ---- modal ----
  const el = (id) => document.getElementById(id);
  const tz = modal.dataset.timezone;

  // Date and time are wall-clock values in the configured zone. Intl resolves them to
  // instants so the summary stays right across a DST change.
  const zoneFormat = new Intl.DateTimeFormat("en-US", {
    timeZone: tz, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit",
  });
  function wallParts(utcMs) {
    const p = Object.fromEntries(zoneFormat.formatToParts(new Date(utcMs)).map((x) => [x.type, x.value]));
    return p;
  }
  function offsetMs(utcMs) {
    const p = wallParts(utcMs);
    return Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour % 24, +p.minute, +p.second) - utcMs;
  }
  function startInstant() {
    const [y, m, d] = el("start-date").value.split("-").map(Number);
    const [hh, mm] = el("start-time").value.split(":").map(Number);
    const wall = Date.UTC(y, m - 1, d, hh, mm);
    const guess = wall - offsetMs(wall);
    return wall - offsetMs(guess);
  }
  function fmt(utcMs) {
    const p = wallParts(utcMs);
    return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute} ${tz}`;
  }
  function updateSummary() {
    const n = selectedCount();
    const per = Number(el("parallel-calls").value);
    const interval = Number(el("interval-seconds").value);
    const batches = Math.ceil(n / per);
    el("sum-leads").textContent = String(n);
    el("sum-batches").textContent = String(batches);
    el("sum-per-batch").textContent = String(Math.min(per, n));
    const start = startInstant();
    if (isNaN(start)) { el("sum-start").textContent = el("sum-end").textContent = "—"; return; }
    el("sum-start").textContent = fmt(start);
    el("sum-end").textContent = fmt(start + Math.max(batches - 1, 0) * interval * 1000);
  }
  for (const id of ["start-date", "start-time", "parallel-calls", "interval-seconds"]) {
    el(id).addEventListener("input", updateSummary);
    el(id).addEventListener("change", updateSummary);
  }

  button.addEventListener("click", () => {
    el("schedule-error").hidden = true;
    updateSummary();
    modal.showModal();
  });
  el("schedule-cancel").addEventListener("click", () => modal.close());

  el("schedule-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = {
      start_at: { date: el("start-date").value, time: el("start-time").value, timezone: tz },
      parallel_calls: Number(el("parallel-calls").value),
      interval_seconds: Number(el("interval-seconds").value),
      campaign_id: Number(el("campaign").value),
    };
    if (state.all) body.select = filter; else body.lead_ids = [...state.ids];
    el("schedule-submit").disabled = true;
    try {
      const resp = await fetch("/api/schedule-bulk-calls", {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken() },
        body: JSON.stringify(body),
      });
      const data = await resp.json();
      if (!resp.ok) throw new Error(data.error || resp.statusText);
      modal.close();
      let text = `Scheduled ${data.total_leads} calls in ${data.total_batches} batches`;
      if (data.skipped) text += ` (${data.skipped} skipped: not pending)`;
      confirmation.textContent = text + ".";
      confirmation.hidden = false;
      state = { ids: new Set(), all: false };
      render();
      refreshRows();
    } catch (err) {
      el("schedule-error").textContent = err.message;
      el("schedule-error").hidden = false;
    } finally {
      el("schedule-submit").disabled = false;
    }
  });

  // Statuses change under the user's eyes: refresh the visible rows every few seconds.
  async function refreshRows() {
    const ids = rows().map((b) => Number(b.value));
    if (!ids.length) return;
    const params = new URLSearchParams();
    if (filter.status) params.set("status", filter.status);
    if (filter.q) params.set("q", filter.q);
    params.set("limit", "500");
    params.set("cursor", String(Math.max(...ids) + 1));
    try {
      const resp = await fetch("/api/leads?" + params);
      if (!resp.ok) return;
      const data = await resp.json();
      const byId = new Map(data.leads.map((l) => [l.id, l]));
      for (const tr of table.querySelectorAll("tbody tr")) {
        const lead = byId.get(Number(tr.dataset.id));
        if (!lead) continue;
        const badge = tr.querySelector(".status");
        badge.textContent = lead.status;
        badge.className = "status s-" + lead.status;
        tr.dataset.status = lead.status;
        tr.children[6].textContent = String(lead.attempts);
      }
    } catch (_) { /* offline for a moment; try again next tick */ }
  }
  setInterval(refreshRows, 3000);
  render();
})();
