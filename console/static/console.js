// The console's one script: the theme switch, and following what changes (the runs list, a run's steps and a
// step's log) by asking the console's JSON every second or two. Text from the project goes in as text, never HTML;
// the only markup taken from the server is the timeline's SVG, which the server escapes.
"use strict";
const $ = (selector, root = document) => root.querySelector(selector);
const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];

const savedTheme = localStorage.getItem("pravah-theme");
if (savedTheme) document.documentElement.dataset.theme = savedTheme;

document.addEventListener("DOMContentLoaded", () => {
  $("#theme")?.addEventListener("click", switchTheme);
  const page = document.body.dataset.page;
  if (page === "runs") followRuns();
  if (page === "run") followRun();
  if (page === "endpoints") followEndpoints();
});

function switchTheme() {
  const dark = matchMedia("(prefers-color-scheme: dark)").matches;
  const now = document.documentElement.dataset.theme || (dark ? "dark" : "light");
  const next = now === "dark" ? "light" : "dark";
  document.documentElement.dataset.theme = next;
  localStorage.setItem("pravah-theme", next);
}

async function getJson(url) {
  const answer = await fetch(url, { headers: { Accept: "application/json" } });
  if (!answer.ok) throw new Error(`${url}: ${answer.status}`);
  return answer.json();
}

function element(tag, attributes = {}, ...children) {
  const made = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) made.setAttribute(key, value);
  for (const child of children) made.append(child);
  return made;
}

const seconds = (value) => (value == null ? "-" : `${value.toLocaleString(undefined, { maximumFractionDigits: 1 })} s`);
const number = (value) => (typeof value === "number" ? Number(value.toPrecision(4)).toString() : String(value));

// -- the runs list: new runs and changed states appear without a reload ------------------------------------
function followRuns() {
  const table = $("#runs-table");
  let last = "";
  const refresh = async () => {
    try {
      const found = await getJson(table.dataset.live);
      const shown = JSON.stringify(found.runs);
      if (shown !== last) {
        last = shown;
        $("tbody", table).replaceChildren(...found.runs.map(runRow));
        $("#runs-count").textContent = `${found.total} run${found.total === 1 ? "" : "s"}`;
      }
    } catch (problem) {
      console.warn(problem);
    }
  };
  setInterval(refresh, 2000);
}

function runRow(run) {
  const dots = element("td", { class: "dots" });
  for (const [name, state] of Object.entries(run.steps)) {
    dots.append(element("span", { class: `dot state-${state}`, title: `${name}: ${state}` }));
  }
  const metrics = element("td");
  for (const [name, value] of Object.entries(run.headline)) {
    metrics.append(element("span", { class: "metric" }, `${name} ${number(value)}`), " ");
  }
  return element(
    "tr",
    { "data-run": run.id },
    element("td", {}, element("a", { href: `/runs/${run.id}` }, run.id)),
    element("td", {}, run.pipeline),
    element("td", {}, element("span", { class: `badge state-${run.status}` }, run.status)),
    element("td", {}, run.started_at.slice(0, 19).replace("T", " ")),
    element("td", {}, seconds(run.duration_s)),
    dots,
    metrics,
  );
}

// -- a run: its steps recoloured, its timeline redrawn and a step's log tailed while it goes ---------------
function followRun() {
  const section = $("#run");
  const runId = section.dataset.run;
  let running = section.dataset.status === "running";
  let selected = null;
  let logOffset = 0;

  const refresh = async () => {
    const found = await getJson(`/api/runs/${runId}`);
    for (const [name, step] of Object.entries(found.steps)) {
      const node = $(`g.step[data-step="${CSS.escape(name)}"]`);
      if (node) {
        node.setAttribute("class", `step state-${step.status}`);
        $(".status", node).textContent = step.status;
        node.setAttribute("aria-label", `step ${name}, ${step.kind}, ${step.status}`);
      }
      const row = $(`#steps-table tr[data-step="${CSS.escape(name)}"]`);
      if (row) {
        const cells = row.children;
        cells[2].replaceChildren(element("span", { class: `badge state-${step.status}` }, step.status));
        cells[3].textContent = seconds(step.duration_s);
        cells[4].textContent = step.error || step.reason || "";
      }
    }
    $("#run-status").textContent = found.status;
    $("#run-status").className = `badge state-${found.status}`;
    $("#run-duration").textContent = seconds(found.duration_s);
    $("#timeline").innerHTML = found.timeline;
    section.dataset.status = found.status;
    running = found.status === "running";
    if (selected) await tail(found.steps[selected]?.status === "running");
    if (found.reports.length) {
      $("#reports").replaceChildren(
        ...found.reports.map((report) =>
          element("li", {}, element("strong", {}, report.output), ": ",
            element("a", { href: report.url, class: "report" }, report.file)),
        ),
      );
    }
    $("#run-problem").textContent = found.error || "";
    $("#run-problem").hidden = !found.error;
  };

  const tail = async (more) => {
    const found = await getJson(`/api/runs/${runId}/log/${encodeURIComponent(selected)}?offset=${logOffset}`);
    const log = $("#step-log");
    const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
    log.append(found.text);
    logOffset = found.offset;
    if (atBottom) log.scrollTop = log.scrollHeight;
    return more;
  };

  const select = async (name) => {
    selected = name;
    logOffset = 0;
    $("#step-panel").hidden = false;
    $("#step-title").textContent = `Step ${name}`;
    $("#step-log").textContent = "";
    for (const node of $$("g.step")) node.classList.toggle("selected", node.dataset.step === name);
    await tail(false);
  };

  for (const node of $$("g.step")) {
    node.addEventListener("click", () => select(node.dataset.step));
    node.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        select(node.dataset.step);
      }
    });
  }
  for (const button of $$("button[data-select]")) button.addEventListener("click", () => select(button.dataset.select));

  setInterval(() => {
    if (running) refresh().catch((problem) => console.warn(problem));
  }, 1000);
}

// -- endpoints: a deployment's steps as its server takes them (the page's live parts, every two seconds) ------
function followEndpoints() {
  setInterval(async () => {
    const answer = await fetch(location.pathname, { headers: { Accept: "text/html" } });
    if (!answer.ok) return;
    const fresh = new DOMParser().parseFromString(await answer.text(), "text/html");
    for (const part of $$(".live[id]")) {
      const found = fresh.getElementById(part.id);
      if (found && found.innerHTML !== part.innerHTML) part.replaceChildren(...found.childNodes);
    }
  }, 2000);
}
