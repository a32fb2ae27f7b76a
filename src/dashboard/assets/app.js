// The dashboard's page: plain DOM, no framework. Every string that comes
// from the bus is put in the page as text (textContent, text nodes); nothing
// here builds HTML from strings. Live through the server's event stream
// (/api/stream); the browser reconnects it by itself after a restart.
"use strict";

const view = document.getElementById("view");
const natsBadge = document.getElementById("nats-status");
const liveBadge = document.getElementById("live");
const tokenInput = document.getElementById("token");
const flash = document.getElementById("flash");
const approvalCount = document.getElementById("approval-count");

// ---- DOM helpers: text only --------------------------------------------

/** h("td", { className, dataset, title, onclick, ... }, ...children): strings become text nodes. */
function h(tag, props, ...children) {
  const el = document.createElement(tag);
  setProps(el, props);
  append(el, children);
  return el;
}

const SVG_NS = "http://www.w3.org/2000/svg";
function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "className") el.setAttribute("class", v);
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "dataset") for (const [dk, dv] of Object.entries(v)) el.dataset[dk] = dv;
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function setProps(el, props) {
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null) continue;
    if (k === "dataset") for (const [dk, dv] of Object.entries(v)) el.dataset[dk] = String(dv);
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (
      k === "className" ||
      k === "value" ||
      k === "hidden" ||
      k === "disabled" ||
      k === "type"
    )
      el[k] = v;
    else el.setAttribute(k, String(v));
  }
}

function append(el, children) {
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replaces the view's content (arrays flattened, null and false left out). */
function show(...children) {
  delete view.dataset.mission;
  view.replaceChildren();
  append(view, children);
}

function link(href, ...children) {
  return h("a", { href, "data-link": "" }, ...children);
}

/** What a person typed in a field, kept across live re-renders of the view. */
const drafts = new Map();
function draftInput(key, props) {
  const focused = document.activeElement && document.activeElement.dataset.draft === key;
  const input = h("input", { ...props, value: drafts.get(key) || "", dataset: { draft: key } });
  input.addEventListener("input", () => drafts.set(key, input.value));
  if (focused) queueMicrotask(() => input.focus());
  return input;
}

function stateBadge(state) {
  return h("span", { className: "state", dataset: { state } }, state);
}

function fmtDuration(ms) {
  if (ms === null || ms === undefined) return "–";
  const sec = Math.round(ms / 1000);
  if (sec < 60) return `${sec}s`;
  const m = Math.floor(sec / 60);
  if (m < 60) return `${m}m ${sec % 60}s`;
  return `${Math.floor(m / 60)}h ${m % 60}m`;
}

function fmtTime(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  return (
    d.toLocaleTimeString([], { hour12: false }) + "." + String(d.getMilliseconds()).padStart(3, "0")
  );
}

function bar(fraction, over) {
  const f = Math.max(0, Math.min(1, fraction || 0));
  const fill = h("span", {});
  // Through the CSSOM: the policy refuses style attributes.
  fill.style.width = `${Math.round(f * 100)}%`;
  return h("span", { className: over ? "bar over" : "bar" }, fill);
}

function showFlash(text, kind) {
  flash.hidden = false;
  flash.dataset.kind = kind;
  flash.textContent = text;
}

// ---- token and actions -------------------------------------------------

(function takeTokenFromUrl() {
  const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (m) {
    sessionStorage.setItem("swarm-dashboard-token", decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }
  tokenInput.value = sessionStorage.getItem("swarm-dashboard-token") || "";
  tokenInput.addEventListener("change", () =>
    sessionStorage.setItem("swarm-dashboard-token", tokenInput.value.trim()),
  );
})();

async function act(path, body) {
  const token = tokenInput.value.trim();
  const res = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
    body: JSON.stringify(body),
  });
  const out = await res.json().catch(() => ({}));
  if (!res.ok) {
    showFlash(`${res.status}: ${out.error || res.statusText}`, "error");
    return null;
  }
  return out;
}

// ---- data --------------------------------------------------------------

async function getJson(path) {
  const res = await fetch(path, { cache: "no-store" });
  const body = await res.json().catch(() => ({}));
  return { status: res.status, body };
}

// ---- routing -----------------------------------------------------------

function route() {
  const p = location.pathname;
  let m;
  if ((m = /^\/missions\/([^/]+)\/tasks\/([^/]+)\/?$/.exec(p)))
    return { name: "task", mission: decodeURIComponent(m[1]), task: decodeURIComponent(m[2]) };
  if ((m = /^\/missions\/([^/]+)\/?$/.exec(p)))
    return { name: "mission", mission: decodeURIComponent(m[1]) };
  if (p === "/agents") return { name: "agents" };
  if (p === "/approvals") return { name: "approvals" };
  if (p === "/events") return { name: "events" };
  return { name: "missions" };
}

document.addEventListener("click", (ev) => {
  const a = ev.target.closest && ev.target.closest("a[data-link]");
  if (!a || ev.metaKey || ev.ctrlKey || ev.button !== 0) return;
  ev.preventDefault();
  navigate(a.getAttribute("href"));
});
window.addEventListener("popstate", () => render());

function navigate(href) {
  history.pushState(null, "", href);
  flash.hidden = true;
  render();
}

// ---- rendering ---------------------------------------------------------

let rendering = null;
let again = false;
/** Renders the current route; a render asked for while one runs happens once after it. */
async function render() {
  if (rendering) {
    again = true;
    return rendering;
  }
  rendering = (async () => {
    do {
      again = false;
      const r = route();
      try {
        await RENDERERS[r.name](r);
      } catch (err) {
        show(h("p", { className: "not-found" }, `Could not load this view: ${err.message}`));
      }
    } while (again);
  })();
  await rendering;
  rendering = null;
  document.body.dataset.rendered = String(Date.now());
}

const RENDERERS = {
  missions: renderMissions,
  mission: renderMission,
  task: renderTask,
  agents: renderAgents,
  approvals: renderApprovals,
  events: renderEvents,
};

function notFound(text) {
  show(
    h(
      "div",
      { className: "not-found", "data-testid": "not-found" },
      h("h1", {}, "Not found"),
      h("p", {}, text),
      link("/", "All missions"),
    ),
  );
}

async function renderMissions() {
  const { body } = await getJson("/api/missions");
  const rows = (body.missions || []).map((m) =>
    h(
      "tr",
      { dataset: { missionId: m.id } },
      h("td", {}, link(`/missions/${encodeURIComponent(m.id)}`, m.id)),
      h("td", {}, m.title),
      h("td", {}, stateBadge(m.status)),
      h(
        "td",
        { className: "progress" },
        bar(m.progress.total ? m.progress.succeeded / m.progress.total : 0),
        `${m.progress.succeeded}/${m.progress.total}`,
        m.progress.failed ? ` (${m.progress.failed} failed)` : "",
      ),
      h("td", {}, fmtDuration(m.duration_ms)),
      h("td", {}, tokenList(m.tokens)),
      h("td", {}, m.submitted_by || "–"),
    ),
  );
  show(
    h("h1", {}, "Missions"),
    rows.length
      ? h(
          "table",
          { "data-testid": "missions" },
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              ["mission", "title", "status", "progress", "duration", "tokens", "submitted by"].map(
                (t) => h("th", {}, t),
              ),
            ),
          ),
          h("tbody", {}, rows),
        )
      : h("p", { className: "muted" }, "No missions on this swarm yet."),
  );
}

function tokenList(tokens) {
  const entries = Object.entries(tokens || {});
  if (!entries.length) return "–";
  return entries.map(([model, c]) =>
    h("div", {}, `${model}: ${c.input_tokens} in / ${c.output_tokens} out`),
  );
}

/** The last layout, kept while the plan's shape is the same: live updates only recolour. */
let layoutCache = { key: "", layout: null };

/** The plan's shape: its tasks, waves and edges (states left out). */
function layoutKey(mission) {
  return (
    mission.id +
    "|" +
    mission.tasks.map((t) => `${t.id}@${t.wave}`).join(",") +
    "|" +
    mission.edges.map((e) => e.from + ">" + e.to).join(",")
  );
}

function layoutPlan(mission) {
  const key = layoutKey(mission);
  if (layoutCache.key === key) return layoutCache.layout;
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: "LR", nodesep: 14, ranksep: 50, marginx: 10, marginy: 30 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const t of mission.tasks) g.setNode(t.id, { width: 170, height: 42 });
  for (const e of mission.edges) g.setEdge(e.from, e.to);
  // Waves as columns: an invisible anchor per wave, before its tasks and after the
  // wave before's anchor, so a task never sits left of an earlier wave.
  const waves = [...new Set(mission.tasks.map((t) => t.wave))].sort((a, b) => a - b);
  for (const [i, w] of waves.entries()) {
    g.setNode(`wave:${w}`, { width: 1, height: 1 });
    if (i > 0) g.setEdge(`wave:${waves[i - 1]}`, `wave:${w}`, { weight: 0 });
  }
  for (const t of mission.tasks) g.setEdge(`wave:${t.wave}`, t.id, { weight: 0 });
  dagre.layout(g);
  const nodes = new Map(mission.tasks.map((t) => [t.id, g.node(t.id)]));
  const labels = waves.map((w) => {
    const xs = mission.tasks.filter((t) => t.wave === w).map((t) => nodes.get(t.id).x);
    return { wave: w, x: xs.reduce((a, b) => a + b, 0) / xs.length };
  });
  const layout = {
    width: g.graph().width,
    height: g.graph().height,
    nodes,
    labels,
    edges: mission.edges.map((e) => ({ ...e, points: g.edge(e.from, e.to).points })),
  };
  layoutCache = { key, layout };
  return layout;
}

function renderGraph(mission) {
  const layout = layoutPlan(mission);
  const onPath = new Set(mission.critical_path);
  const next = new Map(mission.critical_path.map((id, i) => [id, mission.critical_path[i + 1]]));
  const svg = s("svg", {
    width: layout.width,
    height: layout.height,
    "data-testid": "plan-graph",
    role: "img",
  });
  svg.append(
    s(
      "title",
      {},
      `Plan of ${mission.id}: ${mission.tasks.length} tasks in ${mission.waves.length} waves`,
    ),
  );
  for (const l of layout.labels)
    svg.append(
      s(
        "text",
        { className: "wave-label", x: l.x.toFixed(1), y: 16, "text-anchor": "middle" },
        `wave ${l.wave}`,
      ),
    );
  for (const e of layout.edges) {
    const d = e.points
      .map((p, i) => `${i ? "L" : "M"}${p.x.toFixed(1)},${p.y.toFixed(1)}`)
      .join(" ");
    const critical = next.get(e.from) === e.to;
    svg.append(
      s("path", {
        d,
        className: critical ? "edge critical" : "edge",
        dataset: { from: e.from, to: e.to },
      }),
    );
  }
  for (const t of mission.tasks) {
    const n = layout.nodes.get(t.id);
    const x = n.x - n.width / 2;
    const y = n.y - n.height / 2;
    const g = s(
      "g",
      {
        className: onPath.has(t.id) ? "node critical" : "node",
        dataset: { taskId: t.id, state: t.state },
        transform: `translate(${x.toFixed(1)},${y.toFixed(1)})`,
        onclick: () =>
          navigate(`/missions/${encodeURIComponent(mission.id)}/tasks/${encodeURIComponent(t.id)}`),
      },
      s("title", {}, `${t.id}: ${t.title} (${t.state})`),
      s("rect", { width: n.width, height: n.height }),
      s("text", { x: 8, y: 16 }, truncate(`${t.id} · ${t.agent}`, 26)),
      s("text", { x: 8, y: 32 }, truncate(`w${t.wave} ${t.title}`, 26)),
    );
    svg.append(g);
  }
  return svg;
}

function truncate(text, n) {
  return text.length > n ? text.slice(0, n - 1) + "…" : text;
}

async function renderMission(r) {
  const { status, body } = await getJson(`/api/missions/${encodeURIComponent(r.mission)}`);
  if (status === 404)
    return notFound(
      `No mission ${r.mission} is known to this dashboard. It may not be submitted yet, or its events were removed from SQUAD_EVENTS.`,
    );
  const m = body.mission;
  const finished = ["completed", "failed", "cancelled"].includes(m.status);
  const reason = draftInput(`cancel:${m.id}`, {
    type: "text",
    placeholder: "reason (optional)",
    "data-testid": "cancel-reason",
  });
  const cancelButton = h(
    "button",
    {
      "data-testid": "cancel",
      disabled: finished,
      onclick: async () => {
        const out = await act(
          `/api/missions/${encodeURIComponent(m.id)}/cancel`,
          reason.value.trim() ? { reason: reason.value.trim() } : {},
        );
        if (out) showFlash(`cancel requested for ${m.id}`, "ok");
      },
    },
    "Cancel mission",
  );
  const tokenBudget = m.budget.tokens;
  const timeBudget = m.budget.time_s;
  const taskRows = m.tasks.map((t) =>
    h(
      "tr",
      { dataset: { taskId: t.id, state: t.state } },
      h(
        "td",
        {},
        link(`/missions/${encodeURIComponent(m.id)}/tasks/${encodeURIComponent(t.id)}`, t.id),
      ),
      h("td", {}, String(t.wave)),
      h("td", {}, t.title),
      h("td", {}, t.agent),
      h("td", { className: "task-state" }, stateBadge(t.state)),
      h("td", { className: "attempts" }, String(t.attempts.length)),
      h("td", {}, t.depends_on.join(", ") || "–"),
      h("td", { className: "critical-cell" }, t.critical ? "yes" : ""),
    ),
  );
  const head = h(
    "div",
    { id: "mission-head" },
    h("h1", {}, m.title, " ", stateBadge(m.status)),
    h(
      "p",
      { className: "muted" },
      `${m.id} · submitted by ${m.submitted_by || "?"} · planner ${m.planner || "explicit plan"} · revision ${m.revision}`,
    ),
    m.reason ? h("p", { "data-testid": "mission-reason" }, m.reason) : null,
    h("div", { className: "actions" }, reason, cancelButton),
    h(
      "div",
      { className: "gauges" },
      h(
        "div",
        { "data-testid": "gauge-tokens" },
        "tokens ",
        bar(
          tokenBudget ? m.used.tokens / tokenBudget : 0,
          tokenBudget && m.used.tokens > tokenBudget,
        ),
        tokenBudget ? `${m.used.tokens} / ${tokenBudget}` : `${m.used.tokens} (no budget)`,
      ),
      h(
        "div",
        { "data-testid": "gauge-time" },
        "time ",
        bar(
          timeBudget && m.used.time_s !== null ? m.used.time_s / timeBudget : 0,
          timeBudget && m.used.time_s > timeBudget,
        ),
        timeBudget
          ? `${fmtDuration(m.duration_ms)} / ${fmtDuration(timeBudget * 1000)}`
          : `${fmtDuration(m.duration_ms)} (no budget)`,
      ),
      h(
        "div",
        {},
        `progress ${m.progress.succeeded}/${m.progress.total}`,
        m.progress.failed ? `, ${m.progress.failed} failed` : "",
      ),
    ),
  );
  const criticalLine = `critical path: ${m.critical_path.join(" → ") || "–"}`;
  // The same plan already on the page: patch it in place (a plan of 1,000 tasks
  // is not drawn again for a state change), replace only the head.
  if (view.dataset.mission === m.id && layoutCache.key === layoutKey(m) && m.tasks.length) {
    view.querySelector("#mission-head").replaceWith(head);
    patchPlan(m);
    view.querySelector("#critical-line").textContent = criticalLine;
    return;
  }
  show(
    head,
    h("h2", {}, "Plan"),
    m.strategy ? h("p", { className: "muted" }, m.strategy) : null,
    m.tasks.length
      ? h("div", { className: "graph" }, renderGraph(m))
      : h("p", { className: "muted" }, "Not planned yet."),
    h("p", { className: "muted", id: "critical-line" }, criticalLine),
    h("h2", {}, "Waves"),
    h(
      "ul",
      {},
      m.waves.map((w) => h("li", {}, `wave ${w.wave}: ${w.task_ids.join(", ")}`)),
    ),
    h("h2", {}, "Tasks"),
    h(
      "table",
      { "data-testid": "tasks" },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ["task", "wave", "title", "agent", "state", "attempts", "depends on", "critical"].map(
            (t) => h("th", {}, t),
          ),
        ),
      ),
      h("tbody", {}, taskRows),
    ),
  );
  if (m.tasks.length) view.dataset.mission = m.id;
}

/** States, critical path and attempt counts of a plan already drawn. */
function patchPlan(m) {
  const onPath = new Map(m.critical_path.map((id, i) => [id, m.critical_path[i + 1]]));
  const nodes = new Map([...view.querySelectorAll("svg .node")].map((n) => [n.dataset.taskId, n]));
  const rows = new Map(
    [...view.querySelectorAll("tr[data-task-id]")].map((r) => [r.dataset.taskId, r]),
  );
  for (const t of m.tasks) {
    const node = nodes.get(t.id);
    if (node) {
      if (node.dataset.state !== t.state) {
        node.dataset.state = t.state;
        node.querySelector("title").textContent = `${t.id}: ${t.title} (${t.state})`;
      }
      node.classList.toggle("critical", t.critical);
    }
    const row = rows.get(t.id);
    if (row) {
      if (row.dataset.state !== t.state) {
        row.dataset.state = t.state;
        row.querySelector(".task-state").replaceChildren(stateBadge(t.state));
      }
      row.querySelector(".attempts").textContent = String(t.attempts.length);
      row.querySelector(".critical-cell").textContent = t.critical ? "yes" : "";
    }
  }
  for (const e of view.querySelectorAll("svg .edge"))
    e.classList.toggle("critical", onPath.get(e.dataset.from) === e.dataset.to);
}

async function renderTask(r) {
  const { status, body } = await getJson(
    `/api/missions/${encodeURIComponent(r.mission)}/tasks/${encodeURIComponent(r.task)}`,
  );
  if (status === 404)
    return notFound(`No task ${r.task} in mission ${r.mission} is known to this dashboard.`);
  const t = body.task;
  show(
    h("p", {}, link(`/missions/${encodeURIComponent(r.mission)}`, `← ${r.mission}`)),
    h("h1", {}, `${t.id}: `, t.title, " ", stateBadge(t.state)),
    h(
      "p",
      { className: "muted" },
      `agent ${t.agent} · wave ${t.wave} · depends on ${t.depends_on.join(", ") || "nothing"}`,
    ),
    t.run.length ? h("div", {}, h("h2", {}, "run"), h("pre", {}, t.run.join("\n"))) : null,
    t.verify.length ? h("div", {}, h("h2", {}, "verify"), h("pre", {}, t.verify.join("\n"))) : null,
    t.attempts.length
      ? t.attempts.map((a) => renderAttempt(a, t.run.length > 0))
      : h("p", { className: "muted" }, "No attempt yet."),
  );
}

/** One model call in an attempt's timeline; its reply is text (h makes text nodes), never markup. */
function renderModelCall(c) {
  const asked = c.tool_calls.length ? `asked for ${c.tool_calls.join(", ")}` : "answered in text";
  return h(
    "li",
    { dataset: { tool: "model", kind: "model", call: String(c.call) } },
    h("strong", {}, `model call ${c.call}`),
    ` · ${c.model} · ${c.input_tokens} input / ${c.output_tokens} output tokens`,
    ` · ${c.duration_ms} ms · ${asked}`,
    c.finish_reason ? ` · ${c.finish_reason}` : "",
    ` · ended ${fmtTime(c.ended_at)}`,
    c.text ? h("div", { className: "muted" }, "reply") : null,
    c.text ? h("pre", { className: "reply" }, c.text) : null,
  );
}

/** `runSteps`: the task has `run` steps (no model): its steps are those, in order. */
function renderAttempt(a, runSteps) {
  const steps = a.steps.map((st, i) =>
    h(
      "li",
      { dataset: { ok: String(st.ok), tool: st.tool, kind: runSteps ? "run" : "tool" } },
      h("strong", {}, runSteps ? `run step ${i + 1}` : `tool call ${st.tool}`),
      ` · ${st.ok ? "ok" : "failed"}`,
      st.exit_code !== undefined && st.exit_code !== null ? ` · exit ${st.exit_code}` : "",
      ` · ${st.duration_ms} ms`,
      h("div", { className: "muted" }, "arguments"),
      h("pre", { className: "args" }, JSON.stringify(st.args, null, 2)),
      h("div", { className: "muted" }, "output"),
      h("pre", { className: "output" }, st.output || "(no output)"),
    ),
  );
  const calls = (a.model_calls || []).map(renderModelCall);
  // Model calls between the steps they led to (the view model's order); an attempt whose
  // worker reported no single call (before task_model_called) shows its steps alone.
  const entries = a.timeline
    ? a.timeline.map((e) => (e.kind === "model" ? calls[e.index] : steps[e.index]))
    : steps;
  const usage =
    a.usage && a.usage.model
      ? h(
          "p",
          { "data-testid": "usage" },
          h("strong", {}, `model ${a.usage.model}`),
          ` · ${a.usage.input_tokens} input / ${a.usage.output_tokens} output tokens`,
          calls.length ? ` in ${calls.length} call${calls.length === 1 ? "" : "s"}` : "",
        )
      : null;
  return h(
    "section",
    { className: "attempt", dataset: { attempt: String(a.attempt), status: a.status } },
    h("h2", {}, `Attempt ${a.attempt} `, stateBadge(a.status)),
    h(
      "p",
      {},
      `replica ${a.worker || "–"} · started ${fmtTime(a.started_at)} · ended ${fmtTime(a.ended_at)} · ${fmtDuration(a.duration_ms)}`,
      a.delivery ? ` · delivery ${a.delivery}` : "",
    ),
    a.summary ? h("p", { className: "summary" }, a.summary) : null,
    a.error ? h("div", {}, h("h2", {}, "error"), h("pre", { className: "error" }, a.error)) : null,
    h("h2", {}, "Timeline"),
    usage,
    entries.length
      ? h("ol", { className: "timeline" }, entries)
      : h("p", { className: "muted" }, "No steps yet."),
    a.verification.length
      ? h(
          "div",
          {},
          h("h2", {}, "Verification"),
          h(
            "table",
            {},
            h(
              "tbody",
              {},
              a.verification.map((v) =>
                h(
                  "tr",
                  { dataset: { ok: String(v.ok) } },
                  h("td", {}, v.command),
                  h("td", {}, v.ok ? "ok" : "failed"),
                  h("td", {}, `exit ${v.exit_code}`),
                  h("td", {}, h("pre", {}, v.output || "")),
                ),
              ),
            ),
          ),
        )
      : null,
    a.changes
      ? h(
          "div",
          { "data-testid": "changes" },
          h(
            "h2",
            {},
            `Changes: +${a.changes.additions} −${a.changes.deletions} in ${a.changes.files.length} files`,
          ),
          h(
            "p",
            { className: "muted" },
            `commit ${a.changes.commit.slice(0, 12)} on ${a.changes.base.slice(0, 12)}`,
          ),
          h(
            "table",
            {},
            h(
              "tbody",
              {},
              a.changes.files.map((f) =>
                h(
                  "tr",
                  {},
                  h("td", {}, f.path),
                  h("td", {}, f.status),
                  h("td", {}, `+${f.additions}`),
                  h("td", {}, `−${f.deletions}`),
                ),
              ),
            ),
          ),
        )
      : null,
    a.merged
      ? h(
          "p",
          { "data-testid": "merged" },
          `merged as ${a.merged.merged.slice(0, 12)} onto ${a.merged.onto.slice(0, 12)}${a.merged.fast_forward ? " (fast-forward)" : ""}`,
        )
      : null,
    a.conflicted
      ? h(
          "p",
          { "data-testid": "conflicted" },
          `conflicted (${a.conflicted.reason}) on ${a.conflicted.files.join(", ") || "–"}: `,
          a.conflicted.error,
        )
      : null,
  );
}

async function renderAgents() {
  const { body } = await getJson("/api/agents");
  show(
    h("h1", {}, "Agents"),
    h("h2", {}, "Replicas"),
    h(
      "table",
      { "data-testid": "replicas" },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          [
            "agent",
            "instance",
            "state",
            "host",
            "model",
            "in flight",
            "completed",
            "failed",
            "last heartbeat",
          ].map((t) => h("th", {}, t)),
        ),
      ),
      h(
        "tbody",
        {},
        body.replicas.map((r) =>
          h(
            "tr",
            { dataset: { instance: r.instance } },
            h("td", {}, r.agent),
            h("td", {}, r.instance),
            h("td", {}, stateBadge(r.online ? "online" : "offline")),
            h("td", {}, r.host || "–"),
            h("td", {}, r.model || "run-only"),
            h("td", {}, String(r.in_flight)),
            h("td", {}, String(r.completed)),
            h("td", {}, String(r.failed)),
            h("td", {}, fmtTime(r.last_seen)),
          ),
        ),
      ),
    ),
    h("h2", {}, "Consumers"),
    h(
      "table",
      { "data-testid": "consumers" },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          [
            "consumer",
            "pending",
            "in flight (ack pending)",
            "idle slots",
            "redelivered",
            "dead letters",
          ].map((t) => h("th", {}, t)),
        ),
      ),
      h(
        "tbody",
        {},
        body.consumers.map((c) =>
          h(
            "tr",
            {},
            h("td", {}, c.name),
            h("td", {}, String(c.pending)),
            h("td", {}, String(c.ackPending)),
            h("td", {}, String(c.waiting)),
            h("td", {}, String(c.redelivered)),
            h("td", {}, String(body.dead_letter_counts[c.agent] || 0)),
          ),
        ),
      ),
    ),
    h("h2", {}, "Dead-letter queue"),
    body.dead_letters.length
      ? h(
          "table",
          { "data-testid": "dead-letters" },
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              ["received", "agent", "subject", "deliveries", "reason"].map((t) => h("th", {}, t)),
            ),
          ),
          h(
            "tbody",
            {},
            body.dead_letters.map((d) =>
              h(
                "tr",
                {},
                h("td", {}, fmtTime(d.received_at)),
                h("td", {}, d.agent),
                h("td", {}, d.subject),
                h("td", {}, String(d.delivery_count)),
                h("td", {}, d.reason),
              ),
            ),
          ),
        )
      : h("p", { className: "muted" }, "No dead letters."),
  );
}

async function renderApprovals() {
  const { body } = await getJson("/api/approvals");
  const items = body.approvals.map((a) => {
    const reason = draftInput(`approval:${a.approval_id}`, {
      type: "text",
      placeholder: "reason (optional)",
      className: "reason",
    });
    const decide = (decision) => async () => {
      const out = await act(
        `/api/approvals/${encodeURIComponent(a.approval_id)}`,
        reason.value.trim() ? { decision, reason: reason.value.trim() } : { decision },
      );
      if (out) showFlash(`${decision} ${out.approval_id} (${out.worker}): ${out.command}`, "ok");
    };
    return h(
      "tr",
      { dataset: { approvalId: a.approval_id } },
      h("td", {}, a.approval_id),
      h(
        "td",
        {},
        a.mission_id ? link(`/missions/${encodeURIComponent(a.mission_id)}`, a.mission_id) : "–",
        " / ",
        a.task_id || "–",
      ),
      h("td", {}, a.worker),
      h("td", {}, h("pre", { className: "command" }, a.command)),
      h("td", {}, a.reason),
      h(
        "td",
        {},
        h(
          "div",
          { className: "actions" },
          reason,
          h("button", { onclick: decide("approved"), "data-testid": "approve" }, "Approve"),
          h("button", { onclick: decide("denied"), "data-testid": "deny" }, "Deny"),
        ),
      ),
    );
  });
  show(
    h("h1", {}, "Approvals"),
    items.length
      ? h(
          "table",
          { "data-testid": "approvals" },
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              ["approval", "mission / task", "replica", "command", "why", "decision"].map((t) =>
                h("th", {}, t),
              ),
            ),
          ),
          h("tbody", {}, items),
        )
      : h(
          "p",
          { className: "muted", "data-testid": "no-approvals" },
          "Nothing waits for approval.",
        ),
  );
}

// ---- the event log -----------------------------------------------------

let logFilter = { mission: "", agent: "", type: "" };
let logBody = null;

function logQuery() {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(logFilter)) if (v) q.set(k, v);
  return q.toString();
}

function logRow(item) {
  if (item.kind === "dead_letter") {
    const r = item.record;
    return h(
      "tr",
      { dataset: { type: "dead_letter" } },
      h("td", {}, fmtTime(r.received_at)),
      h("td", {}, "dead_letter"),
      h("td", {}, "–"),
      h("td", {}, "–"),
      h("td", {}, r.agent),
      h("td", {}, r.reason),
    );
  }
  const e = item.event;
  return h(
    "tr",
    { dataset: { type: e.type, eventId: e.id } },
    h("td", {}, fmtTime(e.timestamp)),
    h("td", {}, e.type),
    h("td", {}, e.mission_id || "–"),
    h("td", {}, e.task_id || "–"),
    h("td", {}, e.source),
    h("td", { className: "what" }, describe(e)),
  );
}

function describe(e) {
  const p = e.payload;
  switch (e.type) {
    case "mission_planned":
      return `${p.title} (${p.plan.waves.length} waves)`;
    case "task_assigned":
      return `${p.task.title} → ${p.task.agent} (attempt ${p.task.attempt})`;
    case "task_started":
      return `attempt ${p.attempt} on ${p.worker}`;
    case "task_model_called":
      return `model call ${p.call}: ${p.input_tokens}/${p.output_tokens} tokens, ${p.duration_ms} ms → ${p.tool_calls.join(", ") || "text"}`;
    case "task_progress":
      return `${p.step.tool} ${p.step.ok ? "ok" : "failed"}${p.step.exit_code !== undefined && p.step.exit_code !== null ? ` exit ${p.step.exit_code}` : ""}`;
    case "task_completed":
    case "task_failed":
      return `${p.result.status}: ${p.result.error || p.result.summary}`;
    case "mission_completed":
      return p.summary;
    case "mission_failed":
    case "mission_cancelled":
      return p.reason;
    case "approval_requested":
      return `${p.command} (${p.reason})`;
    case "approval_resolved":
      return `${p.decision} by ${p.by}`;
    case "agent_heartbeat":
      return `${p.agent}/${p.instance} in flight ${p.in_flight}`;
    case "agent_online":
    case "agent_offline":
      return `${p.agent}/${p.instance}`;
    default:
      return "";
  }
}

async function renderEvents() {
  const q = logQuery();
  const { status, body } = await getJson(`/api/events?${q}`);
  // Drafts: a live re-render (NATS back up, a refetch) keeps what a person typed but did not apply.
  const input = (name, placeholder) => {
    const key = `filter:${name}`;
    if (!drafts.has(key)) drafts.set(key, logFilter[name] || "");
    return draftInput(key, { type: "text", name, placeholder });
  };
  const inputs = [
    input("mission", "mission id"),
    input("agent", "agent"),
    input("type", "types, comma-separated"),
  ];
  const apply = h(
    "button",
    {
      "data-testid": "apply-filter",
      onclick: () => {
        for (const i of inputs) logFilter[i.name] = i.value.trim();
        connectStream();
        render();
      },
    },
    "Filter",
  );
  logBody = h("tbody", {}, status === 200 ? body.items.map(logRow) : []);
  show(
    h("h1", {}, "Events"),
    h("div", { className: "filters" }, inputs, apply),
    status === 200
      ? null
      : h(
          "p",
          { className: "not-found", "data-testid": "filter-error" },
          body.error || "bad filter",
        ),
    h(
      "table",
      { "data-testid": "event-log" },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ["time", "type", "mission", "task", "source", "what"].map((t) => h("th", {}, t)),
        ),
      ),
      logBody,
    ),
  );
}

// ---- live --------------------------------------------------------------

let source = null;
let refreshTimer = null;

function scheduleRender() {
  if (refreshTimer) return;
  // Changes come in bursts (a wave starting): one refetch for the burst, well within a second.
  refreshTimer = setTimeout(() => {
    refreshTimer = null;
    render();
  }, 100);
}

// A task's change on a mission's page: its node and row are patched from the
// task alone (a plan of 1,000 tasks is not redrawn per event); the rest of the
// page (progress, gauges, critical path) catches up with a full render soon after.
const dirtyTasks = new Set();
let patchTimer = null;
let catchUpTimer = null;

function schedulePatch(taskId) {
  dirtyTasks.add(taskId);
  if (!patchTimer) patchTimer = setTimeout(patchTasks, 20);
  if (!catchUpTimer)
    catchUpTimer = setTimeout(() => {
      catchUpTimer = null;
      render();
    }, 1500);
}

async function patchTasks() {
  patchTimer = null;
  const r = route();
  const ids = [...dirtyTasks];
  dirtyTasks.clear();
  if (r.name !== "mission") return;
  await Promise.all(
    ids.map(async (id) => {
      const { status, body } = await getJson(
        `/api/missions/${encodeURIComponent(r.mission)}/tasks/${encodeURIComponent(id)}`,
      );
      const node = document.querySelector(`svg .node[data-task-id="${CSS.escape(id)}"]`);
      // A task the page does not draw yet (a replan): the plan changed, draw it again.
      if (status !== 200 || !node) return scheduleRender();
      const t = body.task;
      node.dataset.state = t.state;
      const title = node.querySelector("title");
      if (title) title.textContent = `${t.id}: ${t.title} (${t.state})`;
      const row = document.querySelector(`tr[data-task-id="${CSS.escape(id)}"]`);
      if (row) {
        row.dataset.state = t.state;
        row.querySelector(".task-state").replaceChildren(stateBadge(t.state));
      }
    }),
  );
}

function relevant(change) {
  const r = route();
  switch (r.name) {
    case "missions":
      return change.kind === "mission";
    case "mission":
      return change.kind === "mission" && change.mission_id === r.mission;
    case "task":
      return (
        change.kind === "mission" &&
        change.mission_id === r.mission &&
        (change.task_id === r.task || change.task_id === null)
      );
    case "agents":
      return change.kind === "agents";
    case "approvals":
      return change.kind === "approvals";
    default:
      return false;
  }
}

async function refreshApprovalCount() {
  const { body } = await getJson("/api/approvals").catch(() => ({ body: {} }));
  const n = (body.approvals || []).length;
  approvalCount.textContent = n ? `(${n})` : "";
}

function setNats(state) {
  natsBadge.dataset.state = state.state;
  natsBadge.textContent = `NATS: ${state.state === "up" ? "connected" : state.state}`;
  natsBadge.title = state.detail;
  document.body.dataset.nats = state.state;
}

function connectStream() {
  if (source) source.close();
  const q = route().name === "events" ? logQuery() : "";
  source = new EventSource(`/api/stream${q ? `?${q}` : ""}`);
  source.addEventListener("open", () => {
    liveBadge.dataset.state = "live";
    liveBadge.textContent = "page: live";
    // After a reconnect, what happened meanwhile: render from the server's state.
    render();
    refreshApprovalCount();
  });
  source.addEventListener("error", () => {
    liveBadge.dataset.state = "down";
    liveBadge.textContent = "page: dashboard unreachable, reconnecting";
    natsBadge.dataset.state = "unknown";
    natsBadge.textContent = "NATS: unknown";
    // The browser retries by itself unless it gave up (a response that was not a stream).
    if (source.readyState === EventSource.CLOSED) setTimeout(connectStream, 1000);
  });
  source.addEventListener("nats", (ev) => {
    const state = JSON.parse(ev.data);
    const was = document.body.dataset.nats;
    setNats(state);
    if (state.state === "up" && was !== "up") render();
  });
  source.addEventListener("change", (ev) => {
    const change = JSON.parse(ev.data);
    if (change.kind === "approvals") refreshApprovalCount();
    if (!relevant(change)) return;
    if (route().name === "mission" && change.task_id) schedulePatch(change.task_id);
    else scheduleRender();
  });
  source.addEventListener("log", (ev) => {
    if (route().name !== "events" || !logBody) return;
    logBody.append(logRow(JSON.parse(ev.data)));
    while (logBody.children.length > 2000) logBody.firstChild.remove();
  });
}

let lastRoute = route().name;
window.addEventListener("popstate", () => {
  if ((route().name === "events") !== (lastRoute === "events")) connectStream();
  lastRoute = route().name;
});
const pushState = history.pushState.bind(history);
history.pushState = (...args) => {
  pushState(...args);
  if ((route().name === "events") !== (lastRoute === "events")) connectStream();
  lastRoute = route().name;
};

connectStream();
render();
