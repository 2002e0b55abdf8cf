// paigeant dashboard: live updates from server-sent events. Event data is only ever put into the
// page as text (textContent) or as attributes the server built; never parsed as HTML.
"use strict";
(() => {
  const live = document.getElementById("live");
  if (!live || !window.EventSource) return;

  const setLive = (text, state) => {
    live.textContent = text;
    live.className = "live " + state;
  };

  const rows = document.getElementById("rows");
  const template = document.getElementById("row-template");
  const empty = document.getElementById("empty");
  const statuses = new Set(((rows && rows.dataset.statuses) || "").split(" "));
  const firstPage = live.dataset.firstPage === "yes";

  const field = (tr, name) => tr.querySelector('[data-field="' + name + '"]');

  const fill = (tr, row) => {
    tr.dataset.cid = row.correlation_id;
    const link = field(tr, "link");
    if (typeof row.href === "string" && row.href.startsWith("/")) link.setAttribute("href", row.href);
    field(tr, "correlation_id").textContent = row.correlation_id;
    const badge = field(tr, "status");
    badge.className = "badge status-" + (statuses.has(row.status) ? row.status : "unknown");
    badge.textContent = String(row.status).replace(/_/g, " ");
    const activities = field(tr, "activities");
    activities.replaceChildren();
    (row.activities || []).forEach((name, i) => {
      if (i) {
        const arrow = document.createElement("span");
        arrow.className = "arrow";
        arrow.textContent = "→";
        activities.append(arrow);
      }
      const span = document.createElement("span");
      if (name === row.current) span.className = "current";
      span.textContent = name;
      activities.append(span);
    });
    field(tr, "steps").textContent = row.steps;
    const started = field(tr, "started");
    started.textContent = row.started;
    started.setAttribute("datetime", row.started_iso);
    field(tr, "duration").textContent = row.duration;
    const error = field(tr, "error");
    error.textContent = row.error;
    error.title = row.error_full;
  };

  const find = (cid) => {
    for (const tr of rows.rows) if (tr.dataset.cid === cid) return tr;
    return null;
  };

  const flash = (tr) => {
    tr.classList.remove("fresh");
    void tr.offsetWidth; // restart the highlight
    tr.classList.add("fresh");
  };

  const onWorkflow = (event) => {
    const { match, row } = JSON.parse(event.data);
    const existing = find(row.correlation_id);
    if (!match) {
      if (existing) existing.remove();
      return;
    }
    if (existing) {
      fill(existing, row);
      flash(existing);
    } else if (firstPage) {
      const tr = template.content.firstElementChild.cloneNode(true);
      fill(tr, row);
      rows.prepend(tr);
      flash(tr);
    }
    if (empty) empty.hidden = rows.rows.length > 0;
  };

  const onCounts = (event) => {
    const { counts, total } = JSON.parse(event.data);
    for (const el of document.querySelectorAll("[data-count]")) {
      const name = el.dataset.count;
      const n = name === "total" ? total : counts[name];
      if (typeof n === "number") el.textContent = String(n);
    }
  };

  let dropped = false;
  const source = new EventSource(live.dataset.events);
  source.addEventListener("ready", () => {
    setLive(dropped ? "live (reload for changes made while disconnected)" : "live", "on");
  });
  source.addEventListener("error", () => {
    dropped = true;
    if (source.readyState === EventSource.CLOSED) {
      setLive("disconnected (reload the page)", "off"); // the server refused the stream
    } else {
      setLive("reconnecting…", "off");
    }
  });
  source.addEventListener("reload", () => window.location.reload());
  if (live.dataset.mode === "workflow") {
    source.addEventListener("changed", () => {
      const notice = document.getElementById("changed");
      if (notice) notice.hidden = false;
    });
  } else if (rows && template) {
    source.addEventListener("workflow", onWorkflow);
    source.addEventListener("counts", onCounts);
  }
})();
