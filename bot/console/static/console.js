// The larkops console: each page reads the REST API with the session cookie; every change
// sends the CSRF token. Words come from the server (the text catalogue, zh or en).
"use strict";
const C = JSON.parse(document.body.dataset.config);
const W = C.words || {};
const t = (key, values) => {
  let text = W[key] || key;
  for (const [name, value] of Object.entries(values || {})) text = text.replace(`{${name}}`, value);
  return text;
};
const main = document.getElementById("main");
const esc = (value) => String(value ?? "").replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
const when = (iso) => (iso ? new Date(iso).toLocaleString(C.lang === "zh" ? "zh-CN" : "en-GB") : "");
const status = (s) => `<span class="status ${esc(s)}">${esc(W["card.status." + s] || s)}</span>`;

async function api(path, options = {}) {
  const headers = {"Accept": "application/json", ...(options.headers || {})};
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  if (options.method && options.method !== "GET") headers["X-CSRF-Token"] = C.csrf;
  const answer = await fetch("/api/v1" + path, {...options, headers, credentials: "same-origin",
    body: options.body === undefined ? undefined : JSON.stringify(options.body)});
  const data = answer.headers.get("content-type")?.includes("json") ? await answer.json() : null;
  if (!answer.ok) throw new Error((data && data.message) || answer.status);
  return data;
}

function fail(where, error) { where.insertAdjacentHTML("afterbegin", `<p class="error">${esc(t("console.error", {message: error.message}))}</p>`); }

// one EventSource per page: incident, gate and job changes from every replica; a page redraws
// when the stream opens, as a change made between its first draw and the stream's start was lost
function live(onChange) {
  const badge = document.getElementById("live");
  const source = new EventSource("/api/v1/stream");
  // (re)opened: draw again, for what changed between the first draw and now or while offline
  source.onopen = () => { badge.textContent = "● " + t("console.live"); badge.className = "live"; onChange("reset", {}); };
  source.onerror = () => { badge.textContent = t("console.offline"); badge.className = "live off"; };
  for (const kind of ["incident", "gate", "job", "reset"]) source.addEventListener(kind, (e) => onChange(kind, JSON.parse(e.data)));
}

async function board() {
  async function draw() {
    // escalated ones first, and all of them: a storm of newer incidents cannot push one off
    const [escalated, active] = await Promise.all([api("/incidents?status=escalated&limit=500"), api("/incidents?status=active&limit=100")]);
    const seen = new Set();
    const listed = [...escalated.incidents, ...active.incidents].filter((i) => !seen.has(i.id) && seen.add(i.id));
    const rows = listed.map((i) => `<tr data-id="${i.id}"><td>#${i.id}</td><td><a href="/console/incidents/${i.id}">${esc(i.title)}</a></td>
      <td>${status(i.status)}</td><td class="sev-${esc(i.severity)}">${esc(W["card.severity." + i.severity] || i.severity)}</td><td>${i.alert_count}</td><td>${when(i.last_seen_at)}</td></tr>`).join("");
    main.innerHTML = `<section><h2>${esc(t("console.nav.board"))}</h2><table id="board"><thead><tr><th>${t("console.col.id")}</th><th>${t("console.col.title")}</th>
      <th>${t("console.col.status")}</th><th>${t("console.col.severity")}</th><th>${t("console.col.alerts")}</th><th>${t("console.col.last_seen")}</th></tr></thead>
      <tbody>${rows || `<tr><td colspan="6">${esc(t("console.empty"))}</td></tr>`}</tbody></table></section>`;
  }
  await draw();
  live((kind) => { if (kind === "incident" || kind === "reset") draw().catch((e) => fail(main, e)); });
}

async function incident() {
  async function draw() {
    const d = await api(`/incidents/${C.id}`);
    const pending = d.gates.filter((g) => g.status === "pending");
    const gates = pending.map((g) => `<div class="gate" data-gate="${g.id}"><b>${esc(W["card.gate.name." + g.gate] || g.gate)}</b>
      <span>${esc(t("console.gate.progress", {have: g.approved_by.length, need: g.required_approvals}))}</span>
      <button class="approve" data-decision="approve">${esc(t("console.gate.approve"))}</button>
      <button class="reject" data-decision="reject">${esc(t("console.gate.reject"))}</button></div>`).join("");
    const diagnosis = d.diagnosis ? `<p>${esc(d.diagnosis.summary)}</p><pre>${esc(JSON.stringify(d.diagnosis.evidence, null, 2))}</pre>` : esc(t("console.empty"));
    const timeline = d.timeline.map((e) => `<tr><td>${when(e.at)}</td><td>${esc(e.label || e.kind)}</td><td>${esc(e.actor)}${e.data.via ? " · " + esc(e.data.via) : ""}</td><td>${esc(e.words || e.message)}</td></tr>`).join("");
    main.innerHTML = `<section><h2>#${d.incident.id} ${esc(d.incident.title)} ${status(d.incident.status)}</h2></section>
      <section id="gates"><h2>${esc(t("console.incident.gates"))}</h2>${gates || esc(t("console.empty"))}</section>
      <section><h2>${esc(t("console.incident.diagnosis"))}</h2>${diagnosis}</section>
      <section><h2>${esc(t("console.incident.timeline"))}</h2><table><tbody>${timeline}</tbody></table></section>`;
    for (const button of main.querySelectorAll(".gate button")) {
      button.onclick = async () => {
        const gate = button.closest(".gate").dataset.gate;
        try { await api(`/gates/${gate}/decision`, {method: "POST", body: {decision: button.dataset.decision}}); await draw(); }
        catch (e) { fail(button.closest(".gate"), e); }
      };
    }
  }
  await draw();
  live((kind, change) => { if (kind !== "job") draw().catch((e) => fail(main, e)); });
}

async function jobs() {
  main.innerHTML = `<section><h2>${esc(t("console.jobs.new"))}</h2><form id="newjob"><input type="text" name="text" placeholder="${esc(t("console.jobs.sentence"))}">
    <input name="chat" placeholder="${esc(t("console.jobs.chat"))}" value="oc_ops"><button>${esc(t("console.jobs.preview"))}</button></form><div id="preview"></div></section>
    <section><h2>${esc(t("console.jobs.calendar"))}</h2><div class="calendar" id="calendar"></div></section><section><table id="jobs"></table></section>`;
  const form = document.getElementById("newjob"), preview = document.getElementById("preview");
  form.onsubmit = async (event) => {
    event.preventDefault();
    const text = form.text.value.trim();
    if (!text) return;
    try {
      const reading = await api("/schedules/parse", {method: "POST", body: {text}});
      const runs = reading.next_runs.map((r) => `<li>${when(r)}</li>`).join("");
      preview.innerHTML = `<p>${status(reading.status)} ${esc(reading.task || "")} ${esc(reading.question || "")}</p><ul>${runs}</ul>` +
        (reading.status === "scheduled" ? `<button id="confirm">${esc(t("console.jobs.confirm"))}</button>` : "");
      const confirm = document.getElementById("confirm");
      if (confirm) confirm.onclick = async () => {
        try { await api("/jobs", {method: "POST", body: {text, chat_id: form.chat.value.trim()}}); preview.innerHTML = ""; form.text.value = ""; await draw(); }
        catch (e) { fail(preview, e); }
      };
    } catch (e) { fail(preview, e); }
  };
  async function draw() {
    const list = await api("/jobs");
    document.getElementById("jobs").innerHTML = list.map((j) => `<tr data-job="${j.id}"><td>#${j.id}</td><td>${esc(j.task)}<br><small>${esc(j.rule)}</small></td>
      <td>${status(j.status)}</td><td>${j.next_runs.slice(0, 3).map(when).join("<br>")}</td><td>
      ${["pause", "resume", "run"].map((c) => `<button class="plain" data-change="${c}">${esc(t("console.jobs." + c))}</button>`).join(" ")}
      <button class="danger" data-change="delete">${esc(t("console.jobs.delete"))}</button></td></tr>`).join("") || `<tr><td>${esc(t("console.empty"))}</td></tr>`;
    for (const button of document.querySelectorAll("#jobs button")) button.onclick = async () => {
      const id = button.closest("tr").dataset.job, change = button.dataset.change;
      try { await api(change === "delete" ? `/jobs/${id}` : `/jobs/${id}/${change}`, {method: change === "delete" ? "DELETE" : "POST"}); await draw(); }
      catch (e) { fail(main, e); }
    };
    const days = [...Array(14).keys()].map((n) => { const d = new Date(); d.setHours(0, 0, 0, 0); d.setDate(d.getDate() + n); return d; });
    document.getElementById("calendar").innerHTML = days.map((d) => {
      const fires = list.flatMap((j) => j.next_runs.filter((r) => new Date(r).toDateString() === d.toDateString()).map((r) => `${new Date(r).toTimeString().slice(0, 5)} #${j.id}`));
      return `<div><b>${d.toLocaleDateString(C.lang === "zh" ? "zh-CN" : "en-GB", {month: "numeric", day: "numeric", weekday: "short"})}</b>${fires.map(esc).join("<br>")}</div>`;
    }).join("");
  }
  await draw();
  live((kind) => { if (kind === "job" || kind === "reset") draw().catch((e) => fail(main, e)); });
}

async function silences() {
  main.innerHTML = `<section><h2>${esc(t("console.silences.new"))}</h2><form id="silence"><input name="chat" value="oc_ops"><input type="text" name="matcher" placeholder="${esc(t("console.silences.matcher"))}">
    <input name="duration" placeholder="${esc(t("console.silences.duration"))}"><input name="reason" placeholder="${esc(t("console.silences.reason"))}"><button>${esc(t("console.silences.create"))}</button></form></section>
    <section><table id="silences"></table></section>`;
  const form = document.getElementById("silence");
  async function draw() {
    const rows = await api("/silences");
    document.getElementById("silences").innerHTML = rows.map((s) => `<tr data-silence="${s.id}"><td>#${s.id}</td><td>${esc(s.matcher)}</td><td>${esc(s.chat_id || "")}</td>
      <td>${esc(t("console.silences.until"))} ${when(s.ends_at)}</td><td>${esc(s.reason)}</td><td><button class="danger">${esc(t("console.silences.end"))}</button></td></tr>`).join("") || `<tr><td>${esc(t("console.empty"))}</td></tr>`;
    for (const button of document.querySelectorAll("#silences button")) button.onclick = async () => {
      try { await api(`/silences/${button.closest("tr").dataset.silence}`, {method: "DELETE"}); await draw(); } catch (e) { fail(main, e); }
    };
  }
  form.onsubmit = async (event) => {
    event.preventDefault();
    try { await api("/silences", {method: "POST", body: {chat_id: form.chat.value, matcher: form.matcher.value, duration: form.duration.value, reason: form.reason.value}}); form.matcher.value = ""; await draw(); }
    catch (e) { fail(form.parentElement, e); }
  };
  await draw();
}

async function audit() {
  main.innerHTML = `<section><form id="filter"><input type="text" name="kind" placeholder="${esc(t("console.audit.kind"))}"><input type="text" name="actor" placeholder="${esc(t("console.audit.actor"))}">
    <button>${esc(t("console.audit.filter"))}</button></form><table id="audit"></table></section>`;
  const form = document.getElementById("filter");
  async function draw() {
    const query = new URLSearchParams({limit: "200"});
    if (form.kind.value.trim()) query.set("kind", form.kind.value.trim());
    if (form.actor.value.trim()) query.set("actor", form.actor.value.trim());
    const rows = await api("/audit?" + query);
    document.getElementById("audit").innerHTML = `<thead><tr><th>${t("console.col.when")}</th><th>${t("console.col.kind")}</th><th>${t("console.col.actor")}</th><th>#</th><th>${t("console.col.message")}</th></tr></thead>` +
      rows.map((e) => `<tr><td>${when(e.at)}</td><td>${esc(e.kind)}</td><td>${esc(e.actor)}${e.data.via ? " · " + esc(e.data.via) : ""}</td><td>${e.incident_id ? `<a href="/console/incidents/${e.incident_id}">#${e.incident_id}</a>` : ""}</td><td>${esc(e.message)}</td></tr>`).join("");
  }
  form.onsubmit = (event) => { event.preventDefault(); draw().catch((e) => fail(main, e)); };
  await draw();
}

async function report() {
  const r = await api("/reports?period=7d");
  const f = r.facts, noisy = (f.fingerprints || []).slice(0, 10);
  const top = Math.max(1, ...noisy.map((n) => n.alerts || 0));
  const minutes = (p) => (p && p.p50 != null ? (p.p50 / 60).toFixed(1) : "–");
  main.innerHTML = `<section><h2>${esc(t("console.report.title"))}</h2><p>${esc(t("console.report.alerts"))}: <b>${f.alerts}</b> · ${esc(t("console.report.incidents"))}: <b>${f.incidents}</b>
    · ${esc(t("console.report.mtta"))}: <b>${minutes(f.mtta)}</b> · ${esc(t("console.report.mttr"))}: <b>${minutes(f.mttr)}</b></p></section>
    <section><h2>${esc(t("console.report.noisy"))}</h2><table>${noisy.map((n) => `<tr><td>${esc(n.title || n.fingerprint)}</td><td style="width:50%"><div class="bar" style="width:${(100 * (n.alerts || 0)) / top}%"></div></td><td>${n.alerts}</td></tr>`).join("") || `<tr><td>${esc(t("console.empty"))}</td></tr>`}</table></section>`;
}

async function chat() {
  main.innerHTML = `<section><form id="ask"><input type="text" name="question" placeholder="${esc(t("console.chat.placeholder"))}"><input name="chat" placeholder="${esc(t("console.chat.chat"))}">
    <button>${esc(t("console.chat.ask"))}</button></form><div class="answer" id="answer"></div><ul id="tools"></ul></section>`;
  const form = document.getElementById("ask"), out = document.getElementById("answer"), tools = document.getElementById("tools");
  form.onsubmit = async (event) => {
    event.preventDefault();
    out.textContent = ""; tools.innerHTML = "";
    const body = {question: form.question.value};
    if (form.chat.value.trim()) body.chat_id = form.chat.value.trim();
    const answer = await fetch("/api/v1/chat", {method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": C.csrf}, body: JSON.stringify(body)});
    if (!answer.ok) { fail(out, new Error((await answer.json()).message)); return; }
    const reader = answer.body.getReader(), decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const {value, done} = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, {stream: true});
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut); buffer = buffer.slice(cut + 2);
        const name = (block.match(/^event: (.*)$/m) || [])[1], data = JSON.parse((block.match(/^data: (.*)$/m) || [])[1] || "null");
        if (name === "delta") out.textContent += data.text;
        if (name === "tool") tools.insertAdjacentHTML("beforeend", `<li>${esc(data.name)}</li>`);
        if (name === "done" && !out.textContent) out.textContent = data.answer;
      }
    }
  };
}

const signout = document.getElementById("signout");
if (signout) signout.onclick = async () => { await fetch("/console/signout", {method: "POST", headers: {"X-CSRF-Token": C.csrf}, credentials: "same-origin"}); location.href = "/console"; };
const pages = {board, incident, jobs, silences, audit, report, chat};
if (pages[C.page]) pages[C.page]().catch((e) => fail(main, e));
