"use strict";
// The node's entry page (填报). Every check is the node's own validator, asked through
// /api/check: the page holds no copy of the rules.

const $ = (id) => document.getElementById(id);
const state = { office: null, form: null, which: null, checkTimer: null, seq: 0 };

async function api(path, options) {
  const r = await fetch(path, options);
  const body = await r.json().catch(() => ({}));
  // beyond this computer the page asks for a password first
  if (r.status === 401 && path !== "/api/sign-in") showSignIn();
  return { ok: r.ok, status: r.status, body };
}

function showSignIn() {
  $("signin").hidden = false;
  $("list").hidden = true;
  $("entry").hidden = true;
  document.body.dataset.ready = "signin";
}

async function signIn(e) {
  e.preventDefault();
  $("signin-error").textContent = "";
  const r = await post("/api/sign-in", { name: $("signin-name").value, password: $("signin-password").value });
  if (!r.ok) { $("signin-error").textContent = r.body.error || "登录失败"; return; }
  $("signin").hidden = true;
  $("list").hidden = false;
  await loadOffice();
  document.body.dataset.ready = "1";
}

function post(path, data) {
  return api(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(data) });
}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k.startsWith("data-")) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) e.append(c);
  return e;
}

// ---- the list of forms and periods ----

async function loadOffice() {
  const r = await api("/api/office");
  if (!r.ok) { $("forms").textContent = r.body.error || "读取失败"; return false; }
  state.office = r.body;
  $("where").textContent = `上级平台 ${r.body.hub} · 今天 ${r.body.today}`;
  $("outbox").textContent = r.body.pending ? `待发送 ${r.body.pending} 份` : "发件箱已清空";
  const box = $("forms");
  box.replaceChildren();
  // an office reporting for several areas (a township entering its villages' paper forms)
  // picks one: only the areas it reports for are offered
  const picker = $("reporter");
  if (r.body.reporters.length > 1 && picker.options.length === 0) {
    for (const rep of r.body.reporters) picker.add(new Option(`${rep.name}（${rep.key}）`, rep.key));
    picker.hidden = false;
    picker.addEventListener("change", loadOffice);
  }
  const shown = picker.value || (r.body.reporters[0] && r.body.reporters[0].key);
  for (const rep of r.body.reporters.filter((x) => x.key === shown)) {
    const div = el("div", { class: "reporter" }, el("h3", {}, `${rep.name}（${rep.key}）`));
    for (const f of rep.forms) {
      const table = el("table", {}, el("thead", {}, el("tr", {},
        el("th", {}, `${f.zh}（${f.period_zh}）`), el("th", {}, "截止（北京时间）"), el("th", {}, "状态"), el("th", {}, ""))));
      const tbody = el("tbody");
      for (const p of f.periods) {
        const which = `${rep.key}|${p.period}|${f.id}`;
        const open = el("button", { type: "button", "data-open": which },
          p.status === "delivered" ? "查看/更正" : (p.draft ? "继续填写" : "填报"));
        open.addEventListener("click", () => openForm(rep.key, p.period, f.id));
        const status = el("span", { class: `status ${p.status}`, "data-status": which }, p.status_zh);
        const cells = [el("td", {}, p.label), el("td", {}, p.due), el("td", {}, status)];
        if (p.at && p.status === "delivered") cells[2].append(el("div", { class: "when" }, `上报于 ${p.at}`));
        if (p.reason) cells[2].append(el("div", { class: "problem" }, p.reason));
        const act = el("td", {}, open);
        if (p.status === "delivered" && p.submission_id) {
          act.append(" ", el("a", { href: `/receipt/${encodeURIComponent(p.submission_id)}`, target: "_blank" }, "回执"));
        }
        cells.push(act);
        tbody.append(el("tr", {}, ...cells));
      }
      table.append(tbody);
      div.append(table);
    }
    box.append(div);
  }
  document.body.dataset.pending = String(r.body.pending);
}

// ---- one form ----

function fieldsNow() {
  const fields = {};
  for (const input of document.querySelectorAll("input.value")) {
    const m = input.dataset.metric;
    fields[m] = fields[m] || { total: "", parts: {} };
    if (input.dataset.part) fields[m].parts[input.dataset.part] = input.value;
    else fields[m].total = input.value;
  }
  const [key, period, form] = state.which;
  return {
    key, period, form, fields,
    zero: false,
    notes: $("notes").value,
    reason: $("reason").value,
    accept_warnings: $("accept").checked,
  };
}

function was(figures, metric, part) {
  if (!figures) return "—";
  const v = figures.values[metric];
  if (!v) return figures.zero ? "0" : "—";
  if (part) return v.parts[part] !== undefined ? String(v.parts[part]) : "—";
  return String(v.total);
}

function renderForm(f) {
  const box = $("sections");
  box.replaceChildren();
  for (const s of f.sections) {
    const table = el("table", {}, el("thead", {}, el("tr", {},
      el("th", {}, "指标"), el("th", {}, "单位"), el("th", { class: "num" }, "本期"),
      el("th", { class: "num was" }, `上期 ${f.previous_label}`), el("th", { class: "num was" }, `去年同期 ${f.last_year_label}`))));
    const tbody = el("tbody");
    for (const m of s.metrics) {
      const row = (label, part, input) => el("tr", { class: part ? "part" : "" },
        el("td", {}, label), el("td", {}, m.unit), el("td", { class: "num" }, input),
        el("td", { class: "num was" }, was(f.previous, m.id, part)), el("td", { class: "num was" }, was(f.last_year, m.id, part)));
      const input = (part) => {
        const i = el("input", { class: "value", inputMode: "numeric", autocomplete: "off", "data-metric": m.id });
        if (part) i.setAttribute("data-part", part);
        i.setAttribute("aria-label", part ? `${m.zh} ${part}` : m.zh);
        i.addEventListener("input", () => { if (m.parts) sumParts(m.id); scheduleCheck(); });
        return i;
      };
      if (m.parts) {
        // the total may be typed alone; parts, when given, must add up to it
        const total = el("span", {}, input(null), el("div", { class: "sum" }, "分类合计 ", el("span", { "data-sum": m.id }, "0")));
        tbody.append(row(`${m.zh}（合计）`, null, total));
        for (const p of m.parts.values) tbody.append(row(p, p, input(p)));
      } else {
        tbody.append(row(m.zh, null, input(null)));
      }
      tbody.append(el("tr", {}, el("td", { colSpan: 5, class: "problem", "data-problem": m.id })));
    }
    table.append(tbody);
    box.append(el("div", { class: "section" }, el("h3", {}, s.zh), table));
  }
}

function fill(fields) {
  for (const input of document.querySelectorAll("input.value")) {
    const v = fields[input.dataset.metric];
    if (!v) { input.value = ""; continue; }
    input.value = input.dataset.part ? (v.parts[input.dataset.part] ?? "") : (v.total ?? "");
  }
  for (const s of document.querySelectorAll("[data-sum]")) sumParts(s.dataset.sum);
}

function sumParts(metric) {
  let sum = 0;
  for (const i of document.querySelectorAll(`input.value[data-metric="${metric}"][data-part]`)) {
    const n = Number(i.value.trim().replace(/[,，]/g, ""));
    if (Number.isFinite(n)) sum += n;
  }
  const out = document.querySelector(`[data-sum="${metric}"]`);
  if (out) out.textContent = String(sum);
}

async function openForm(key, period, form) {
  const q = new URLSearchParams({ key, period, form });
  const r = await api(`/api/form?${q}`);
  if (!r.ok) { alert(r.body.error); return; }
  const f = r.body;
  state.form = f;
  state.which = [key, period, form];
  $("entry-title").textContent = `${f.reporter.name} ${f.form.zh} ${f.period_label}`;
  showStatus(f.status);
  renderForm(f);
  $("notes").value = "";
  $("reason").value = "";
  $("accept").checked = false;
  const delivered = f.status.status === "delivered" || (f.status.revision ?? null) !== null;
  $("reason-row").hidden = !delivered;
  if (f.draft) {
    fill(f.draft.fields || {});
    $("notes").value = f.draft.notes || "";
    $("reason").value = f.draft.reason || "";
    say("已读入本机保存的草稿");
  } else if (f.sent && !f.sent.zero) {
    fill(Object.fromEntries(Object.entries(f.sent.values).map(([m, v]) => [m,
      { total: Object.keys(v.parts).length ? "" : String(v.total), parts: Object.fromEntries(Object.entries(v.parts).map(([p, n]) => [p, String(n)])) }])));
    say("显示的是已上报的数字；修改后上报即为更正");
  } else say("");
  $("template-xlsx").href = `/api/template?${q}`;
  $("template-csv").href = `/api/template?${q}&format=csv`;
  $("list").hidden = true;
  $("entry").hidden = false;
  document.body.dataset.form = state.which.join("|");
  await check();
}

function showStatus(s) {
  $("status").className = `status ${s.status}`;
  $("status").textContent = s.status_zh + (s.reason ? `：${s.reason}` : "");
  const receipt = $("receipt");
  receipt.hidden = !(s.status === "delivered" && s.submission_id);
  if (!receipt.hidden) receipt.href = `/receipt/${encodeURIComponent(s.submission_id)}`;
  document.body.dataset.status = s.status;
}

function say(text) { $("message").textContent = text; }

function scheduleCheck() {
  clearTimeout(state.checkTimer);
  state.checkTimer = setTimeout(check, 250);
}

function showProblems(problems, warnings) {
  for (const p of document.querySelectorAll("[data-problem]")) p.textContent = "";
  for (const i of document.querySelectorAll("input.value")) i.classList.remove("bad");
  const list = $("problems");
  list.replaceChildren();
  for (const p of problems) {
    const m = /^values\[([^\]]+)\](?:\.parts\[([^\]]+)\])?/.exec(p.field);
    if (m) {
      const cell = document.querySelector(`[data-problem="${m[1]}"]`);
      if (cell) cell.textContent = (cell.textContent ? cell.textContent + "；" : "") + p.reason;
      const sel = m[2] ? `input.value[data-metric="${m[1]}"][data-part="${m[2]}"]` : `input.value[data-metric="${m[1]}"]`;
      for (const i of document.querySelectorAll(sel)) i.classList.add("bad");
    }
    list.append(el("li", {}, p.reason));
  }
  $("warnings").hidden = !warnings.length;
  $("warning-list").replaceChildren(...warnings.map((w) => el("li", {}, w)));
  document.body.dataset.problems = String(problems.length);
}

async function check() {
  const seq = ++state.seq;
  const r = await post("/api/check", fieldsNow());
  if (seq !== state.seq) return;
  if (!r.ok) { showProblems([{ field: "", reason: r.body.error }], []); return; }
  // an empty form is not an error yet: nothing typed, nothing to say
  const typed = [...document.querySelectorAll("input.value")].some((i) => i.value.trim());
  showProblems(typed ? r.body.problems : [], r.body.warnings);
  document.body.dataset.checked = String(seq);
}

async function saveDraft() {
  const r = await post("/api/draft", fieldsNow());
  say(r.ok ? `${r.body.message}（${r.body.saved_at}）` : r.body.error);
}

async function submit(zero) {
  const data = fieldsNow();
  if (zero) {
    if (!confirm(`确认报送零报告？表示 ${state.form.period_label} 没有发生任何需要上报的事项，所有计数为 0。`)) return;
    data.zero = true;
    data.fields = {};
  }
  const r = await post("/api/submit", data);
  if (r.status === 409) {
    showProblems([], r.body.warnings);
    say(r.body.message);
    return;
  }
  if (!r.ok) {
    showProblems(r.body.problems || [{ field: "", reason: r.body.error }], r.body.warnings || []);
    say("未上报：请按提示修改");
    return;
  }
  showProblems([], []);
  showStatus({ status: "pending", status_zh: r.body.status_zh });
  say(`已保存到本机发件箱（${r.body.submission_id}），正在发送……`);
  state.sent = r.body.submission_id;
  watch();
}

async function watch() {
  // until the hub's receipt arrives: the list's status of this form and period
  for (;;) {
    await new Promise((ok) => setTimeout(ok, 1000));
    await loadOffice();
    const [key, period, form] = state.which;
    const rep = state.office.reporters.find((x) => x.key === key);
    const f = rep && rep.forms.find((x) => x.id === form);
    const p = f && f.periods.find((x) => x.period === period);
    if (p && p.submission_id === state.sent) {
      showStatus(p);
      if (p.status === "delivered") { say(`已上报：第 ${p.revision} 版，${p.at}`); return; }
      if (p.status === "refused") { say(`被上级平台拒收：${p.reason}`); return; }
    }
  }
}

async function upload(file) {
  if (!file) return;
  const [key, period, form] = state.which;
  const q = new URLSearchParams({ key, period, form });
  const r = await api(`/api/upload?${q}`, { method: "POST", body: file });
  $("upload").value = "";
  if (!r.ok) {
    showProblems([{ field: "file", reason: `上传的表没有读入：${r.body.error || r.status}` }], []);
    say("");
    document.body.dataset.upload = "failed";
    return;
  }
  fill(r.body.fields);
  say(`已读入 ${file.name}：请核对后上报`);
  document.body.dataset.upload = "ok";
  await check();
}

document.addEventListener("DOMContentLoaded", () => {
  $("back").addEventListener("click", async () => {
    $("entry").hidden = true;
    $("list").hidden = false;
    delete document.body.dataset.form;
    await loadOffice();
  });
  $("save").addEventListener("click", saveDraft);
  $("submit").addEventListener("click", () => submit(false));
  $("zero").addEventListener("click", () => submit(true));
  $("notes").addEventListener("input", scheduleCheck);
  $("upload").addEventListener("change", (e) => upload(e.target.files[0]));
  $("signin-form").addEventListener("submit", signIn);
  loadOffice().then((shown) => { if (shown !== false) document.body.dataset.ready = "1"; });
});
