// pingan dashboard: plain JavaScript, no framework, nothing loaded from elsewhere.
// The view (area, period, metric) lives in the address's hash, so a view can be bookmarked,
// shared, and reloaded; every number comes from the hub's /api/table answers.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { me: null, catalogue: null, area: null, period: null, metric: null, approved: false };

async function api(path, options) {
  const response = await fetch(path, Object.assign({ credentials: "same-origin" }, options));
  if (response.status === 401 && path !== "/api/sign-in") {
    showSignIn();
    throw new Error("请先登录");
  }
  const body = response.status === 204 ? null : await response.json();
  if (!response.ok) {
    const error = new Error((body && body.error) || response.statusText);
    error.status = response.status;
    throw error;
  }
  return body;
}

function showSignIn() {
  $("app").hidden = true;
  $("signin").hidden = false;
  $("signin-name").focus();
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

// ---- periods ----

function pad2(n) { return String(n).padStart(2, "0"); }

function periodFromControls() {
  const y = $("year").value;
  switch ($("period-kind").value) {
    case "quarter": return `${y}-Q${$("quarter").value}`;
    case "year": return y;
    case "range": {
      let from = Number($("range-from").value), to = Number($("range-to").value);
      if (from > to) [from, to] = [to, from];
      // always written as a range, even of one month, so the picker stays on 累计
      return `${y}-${pad2(from)}..${y}-${pad2(to)}`;
    }
    default: return `${y}-${$("month").value}`;
  }
}

function controlsFromPeriod(period) {
  let m;
  if ((m = /^(\d{4})-(\d{2})\.\.(\d{4})-(\d{2})$/.exec(period))) {
    $("period-kind").value = "range";
    $("year").value = m[1];
    $("range-from").value = String(Number(m[2]));
    $("range-to").value = String(Number(m[4]));
  } else if ((m = /^(\d{4})-Q([1-4])$/.exec(period))) {
    $("period-kind").value = "quarter";
    $("year").value = m[1];
    $("quarter").value = m[2];
  } else if ((m = /^(\d{4})-(\d{2})$/.exec(period))) {
    $("period-kind").value = "month";
    $("year").value = m[1];
    $("month").value = m[2];
  } else if ((m = /^(\d{4})$/.exec(period))) {
    $("period-kind").value = "year";
    $("year").value = m[1];
  }
  showPeriodControls();
}

function showPeriodControls() {
  const kind = $("period-kind").value;
  $("month").hidden = kind !== "month";
  $("quarter").hidden = kind !== "quarter";
  $("range").hidden = kind !== "range";
}

function fillPeriodControls(today) {
  const thisYear = Number(today.slice(0, 4));
  for (let y = thisYear; y >= thisYear - 6; y--) $("year").add(new Option(`${y}年`, String(y)));
  for (let m = 1; m <= 12; m++) {
    $("month").add(new Option(`${m}月`, pad2(m)));
    $("range-from").add(new Option(`${m}月`, String(m)));
    $("range-to").add(new Option(`${m}月`, String(m)));
  }
}

// ---- the view in the hash ----

function readHash() {
  const p = new URLSearchParams(location.hash.slice(1));
  return { area: p.get("area"), period: p.get("period"), metric: p.get("metric"), approved: p.get("approved") === "1" };
}

function writeHash() {
  const p = new URLSearchParams({ area: state.area, period: state.period, metric: state.metric });
  if (state.approved) p.set("approved", "1");
  const hash = "#" + p.toString();
  if (location.hash !== hash) location.hash = hash; // triggers render via hashchange
  else render();
}

// ---- tables ----

// `shown`: the area, period and metric a render asked for (the controls may have moved on
// since; their own render follows)
function tableUrl(view, format, extra, shown) {
  const p = new URLSearchParams({ view, area: shown.area, period: shown.period, metric: shown.metric });
  if (format) p.set("format", format);
  for (const [k, v] of Object.entries(extra || {})) p.set(k, v);
  return "/api/table?" + p.toString();
}

function downloads(view, extra, shown) {
  const box = $(`${view}-downloads`);
  box.replaceChildren();
  for (const [format, label] of [["xlsx", "下载 Excel"], ["csv", "下载 CSV"]]) {
    const a = document.createElement("a");
    a.href = tableUrl(view, format, extra, shown);
    a.id = `${view}-${format}`;
    a.textContent = label;
    a.setAttribute("download", "");
    box.append(a);
  }
}

const CHANGE_KEYS = new Set(["yoy_change", "yoy_pct", "mom_change", "mom_pct"]);

function renderTable(el, table, options) {
  const opts = options || {};
  el.replaceChildren();
  const head = el.createTHead().insertRow();
  table.columns.forEach((c) => {
    const th = document.createElement("th");
    th.textContent = c.title;
    th.dataset.key = c.key;
    if (c.numeric) th.className = "num";
    head.append(th);
  });
  const body = el.createTBody();
  const codeAt = table.columns.findIndex((c) => c.key === "code");
  const outlierAt = table.columns.findIndex((c) => c.key === "outlier");
  for (const row of table.rows) {
    const tr = body.insertRow();
    if (outlierAt >= 0 && row[outlierAt].v === true) tr.classList.add("outlier");
    row.forEach((cell, i) => {
      const col = table.columns[i];
      const td = tr.insertCell();
      td.dataset.key = col.key;
      td.dataset.v = JSON.stringify(cell.v);
      td.textContent = col.key === "outlier" ? (cell.v ? "⚠ 异常" : "") : cell.s;
      if (col.numeric) td.classList.add("num");
      if (col.key === "outlier") td.classList.add("mark");
      if (CHANGE_KEYS.has(col.key) && typeof cell.v === "number" && cell.v !== 0) {
        td.classList.add(cell.v > 0 ? "up" : "down");
        if (cell.v > 0) td.textContent = "+" + cell.s;
      }
    });
    if (opts.drill && codeAt >= 0) {
      const code = row[codeAt].v;
      tr.classList.add("link");
      tr.title = "查看下级";
      tr.addEventListener("click", () => { state.area = code; writeHash(); });
    }
  }
}

function renderNotes(el, notes) {
  el.replaceChildren(...notes.map((n) => {
    const li = document.createElement("li");
    li.textContent = n;
    return li;
  }));
}

// ---- trend chart (SVG, drawn here) ----

// Charts are Apache ECharts (vendored, /vendor/): each draws the numbers of the table beside it.
const COLORS = { now: "#1f5fa8", before: "#9aa3ad", incomplete: "#c5ccd6", reference: "#b00020" };

function chartOf(el) {
  return echarts.getInstanceByDom(el) || echarts.init(el, null, { renderer: "canvas" });
}

// the trend: this period's line and last year's, dashed; hovering shows both numbers
function renderChart(el, table) {
  const at = (key) => table.columns.findIndex((c) => c.key === key);
  const [pi, vi, bi] = [at("period"), at("value"), at("yoy_base")];
  const chart = chartOf(el);
  chart.setOption({
    animation: false,
    grid: { left: 56, right: 16, top: 36, bottom: 28 },
    legend: { top: 0, data: ["本期", "去年同期"] },
    tooltip: { trigger: "axis" },
    xAxis: { type: "category", data: table.rows.map((r) => r[pi].v) },
    yAxis: { type: "value", scale: false },
    series: [
      { name: "本期", type: "line", data: table.rows.map((r) => r[vi].v), connectNulls: false, symbolSize: 6, lineStyle: { width: 2.5, color: COLORS.now }, itemStyle: { color: COLORS.now } },
      { name: "去年同期", type: "line", data: table.rows.map((r) => r[bi].v), connectNulls: false, symbol: "none", lineStyle: { width: 1.5, type: "dashed", color: COLORS.before }, itemStyle: { color: COLORS.before } },
    ],
  }, true);
}

// the map: the children with boundaries (serve --boundaries) coloured by the ranking's figure,
// with a legend; no boundaries, no map. Clicking an area goes down to it.
const boundaries = new Map();
async function renderMap(shown, table) {
  const panel = $("map-panel");
  let geo = boundaries.get(shown.area);
  if (!geo) {
    try {
      geo = await api(`/api/boundaries?${new URLSearchParams({ area: shown.area })}`);
    } catch (e) {
      geo = { features: [] };
    }
    boundaries.set(shown.area, geo);
  }
  if (!geo.features.length) { panel.hidden = true; return; }
  panel.hidden = false;
  const at = (key) => table.columns.findIndex((c) => c.key === key);
  const [ci, ni, ri, vi] = [at("code"), at("name"), at("rate"), at("value")];
  const valueAt = ri >= 0 ? ri : vi;
  const names = Object.fromEntries(geo.features.map((f) => [f.properties.code, f.properties.name]));
  const data = table.rows
    .filter((r) => names[r[ci].v] !== undefined)
    .map((r) => ({ name: r[ci].v, value: typeof r[valueAt].v === "number" ? r[valueAt].v : null }));
  const values = data.map((d) => d.value).filter((v) => typeof v === "number");
  echarts.registerMap(`area-${shown.area}`, geo);
  $("map-title").textContent = `${table.title.replace(/ 排名$/, "")}（地图）`;
  const chart = chartOf($("map"));
  chart.resize();
  chart.setOption({
    animation: false,
    tooltip: { trigger: "item", formatter: (p) => `${names[p.name] || p.name}：${typeof p.value === "number" && !Number.isNaN(p.value) ? Number(p.value.toFixed(2)) : "—"}` },
    visualMap: {
      min: values.length ? Math.min(...values) : 0,
      max: values.length ? Math.max(...values) : 1,
      calculable: true, left: 8, bottom: 8, text: ["高", "低"],
      inRange: { color: ["#e3eef9", "#1f5fa8"] },
    },
    series: [{
      type: "map", map: `area-${shown.area}`, nameProperty: "code", roam: false,
      label: { show: true, fontSize: 10, formatter: (p) => names[p.name] || p.name },
      emphasis: { label: { show: true } },
      data,
    }],
  }, true);
  chart.off("click");
  chart.on("click", (p) => { if (p.name) { state.area = p.name; writeHash(); } });
  $("map").dataset.regions = String(geo.features.length);
}

// the metric picked broken down by its category (纠纷类型, 专职/兼职, 星级) as a pie; a metric
// without a category (or an indicator) has none
async function renderParts(shown) {
  const box = $("parts-box");
  let r;
  try {
    r = await api(`/api/parts?${new URLSearchParams({ area: shown.area, period: shown.period, metric: shown.metric, ...(state.approved ? { approved: "1" } : {}) })}`);
  } catch (e) {
    box.hidden = true;
    return;
  }
  const parts = r.parts.filter((p) => typeof p.value === "number");
  if (!parts.length) { box.hidden = true; $("parts-chart").dataset.parts = "0"; return; }
  box.hidden = false;
  $("parts-title").textContent = `${r.name}（${r.unit}）分类构成`;
  const chart = chartOf($("parts-chart"));
  chart.resize();
  chart.setOption({
    animation: false,
    tooltip: { trigger: "item", formatter: "{b}：{c}（{d}%）" },
    legend: { bottom: 0 },
    series: [{ type: "pie", radius: ["35%", "65%"], data: parts.map((p) => ({ name: p.part, value: p.value })),
      label: { formatter: "{b} {c}" } }],
  }, true);
  $("parts-chart").dataset.parts = String(parts.length);
}

// the ranking as horizontal bars in the table's order (first on top), the parent's figure as a
// line, areas whose reports are not all in greyed; clicking a bar goes down to that area
const CHART_ROWS = 60;
function renderRankChart(el, table) {
  const at = (key) => table.columns.findIndex((c) => c.key === key);
  const [ci, ni, ri, vi, ki] = [at("code"), at("name"), at("rate"), at("value"), at("complete")];
  const valueAt = ri >= 0 ? ri : vi;
  const rows = table.rows.filter((r) => typeof r[valueAt].v === "number").slice(0, CHART_ROWS);
  el.style.height = `${Math.max(160, 40 + rows.length * 18)}px`;
  const chart = chartOf(el);
  chart.resize();
  const ref = table.reference;
  chart.setOption({
    animation: false,
    grid: { left: 96, right: 48, top: 12, bottom: 24 },
    tooltip: { trigger: "item", valueFormatter: (v) => String(Number(Number(v).toFixed(2))) },
    xAxis: { type: "value" },
    yAxis: { type: "category", inverse: true, data: rows.map((r) => r[ni].v), axisLabel: { interval: 0, fontSize: 11 } },
    series: [{
      type: "bar",
      name: table.columns[valueAt].title,
      data: rows.map((r) => ({
        value: r[valueAt].v,
        code: r[ci].v,
        itemStyle: { color: ki >= 0 && r[ki].v !== "已完成" && r[ki].v !== "" ? COLORS.incomplete : COLORS.now },
      })),
      barMaxWidth: 14,
      label: { show: rows.length <= 40, position: "right", fontSize: 10, formatter: (p) => String(Number(p.value.toFixed(2))) },
      markLine: ref ? {
        symbol: "none",
        lineStyle: { color: COLORS.reference, type: "dashed" },
        label: { formatter: `${ref.label} ${Number(ref.value.toFixed(2))}`, position: "insideEndTop", color: COLORS.reference },
        data: [{ xAxis: ref.value }],
      } : undefined,
    }],
  }, true);
  chart.off("click");
  chart.on("click", (p) => { if (p.data && p.data.code) { state.area = p.data.code; writeHash(); } });
  el.dataset.rows = String(rows.length);
}

// ---- area picker ----

function renderArea(area) {
  const trail = $("trail");
  trail.replaceChildren();
  area.trail.forEach((a, i) => {
    if (i) trail.append(Object.assign(document.createElement("span"), { className: "sep", textContent: "›" }));
    const link = document.createElement("a");
    link.href = "#";
    link.textContent = a.name;
    link.title = `${a.level_zh} ${a.code}`;
    link.addEventListener("click", (e) => { e.preventDefault(); state.area = a.code; writeHash(); });
    trail.append(link);
  });
  const child = $("child");
  child.replaceChildren(new Option(area.children.length ? `— 选择下级 (${area.children.length}) —` : "— 无下级 —", ""));
  for (const c of area.children) child.add(new Option(`${c.name} (${c.code})`, c.code));
  child.disabled = !area.children.length;
}

// ---- rendering a view ----

let renderSeq = 0;

async function render() {
  const seq = ++renderSeq;
  const view = readHash();
  state.area = view.area || state.me.area.code;
  state.period = view.period || state.me.latest_month;
  state.metric = view.metric || state.catalogue.metrics[0].id;
  state.approved = view.approved;
  controlsFromPeriod(state.period);
  $("metric").value = state.metric;
  $("approved-only").checked = state.approved;
  // what this render shows, whatever the controls say by the time its answers arrive
  const shown = { area: state.area, period: state.period, metric: state.metric };
  showError("");
  let area;
  try {
    area = await api(`/api/area?code=${encodeURIComponent(shown.area)}`);
  } catch (e) {
    if (seq !== renderSeq) return;
    showError(e.message);
    // back to the user's own area is always possible
    renderArea({ trail: [state.me.area], children: [] });
    for (const id of ["headline", "map-panel", "compare", "trend", "completeness", "breakdown", "departments", "assess", "review", "locks"]) $(id).hidden = true;
    return;
  }
  if (seq !== renderSeq) return;
  for (const id of ["headline", "compare", "trend", "completeness", "breakdown", "departments", "assess"]) $(id).hidden = false;
  // a village (村、社区) has no areas below it: nothing to rank or to map, and nothing wrong
  const leaf = shown.area.length === 12;
  if (leaf) for (const id of ["compare", "map-panel"]) $(id).hidden = true;
  renderArea(area);
  const trendPeriods = { month: 12, quarter: 8, year: 5, range: 12 }[$("period-kind").value];
  // a cumulative range trends by month, ending at its last month
  const trendPeriod = shown.period.includes("..") ? shown.period.split("..")[1] : shown.period;
  let mapDrawn = null;
  // 审核: approved figures only, when ticked (the tables say which figures they hold)
  const figures = state.approved ? { approved: "1" } : {};
  const trendExtra = { periods: trendPeriods, period: trendPeriod, ...figures };
  const jobs = [
    ...(leaf ? [] : [["compare", figures, (t) => {
      $("compare-title").textContent = t.title;
      renderRankChart($("compare-chart"), t);
      mapDrawn = renderMap(shown, t);
      renderTable($("compare-table"), t, { drill: true });
      renderNotes($("compare-notes"), t.notes);
    }]]),
    ["trend", trendExtra, (t) => {
      $("trend-title").textContent = t.title;
      renderChart($("trend-chart"), t);
      renderTable($("trend-table"), t);
      renderNotes($("trend-notes"), t.notes);
    }],
    ["completeness", $("form").value ? { form: $("form").value } : {}, (t) => {
      $("completeness-title").textContent = t.title;
      renderNotes($("completeness-notes"), t.notes.concat(t.rows.length ? [] : ["全部按时上报"]));
      renderTable($("completeness-table"), t);
    }],
    ["breakdown", figures, (t) => {
      $("breakdown-title").textContent = t.title;
      renderTable($("breakdown-table"), t);
      renderNotes($("breakdown-notes"), t.notes);
    }],
    ...(assessHere(shown.area) ? [["assess", figures, drawAssess]] : []),
    ["departments", {}, (t) => {
      $("departments-title").textContent = t.title;
      renderNotes($("departments-notes"), t.notes);
      renderTable($("departments-table"), t);
    }],
  ];
  // says what is drawn: a test (or a user) waiting for one view never reads another's tables,
  // nor a view whose tables did not all arrive
  const form = $("form").value;
  const drawn = `${shown.area}|${shown.period}|${shown.metric}` + (form ? `|${form}` : "") + (state.approved ? "|approved" : "");
  const errors = [];
  const ask = (list) => Promise.allSettled(list.map(([v, extra]) => api(tableUrl(v, "", extra, shown))));
  const draw = (list, results) => results.forEach((r, i) => {
    const [v, extra, paint] = list[i];
    if (r.status === "fulfilled") {
      paint(r.value);
      downloads(v, extra, shown);
    } else if (v === "assess") {
      // 考核 is of the areas the scheme assesses: elsewhere (a village, a township under a
      // township scheme) the panel says so, and nothing else is wrong
      $("assess-title").textContent = "考核";
      $("assess-table").replaceChildren();
      $("assess-downloads").replaceChildren();
      renderNotes($("assess-notes"), [r.reason.message]);
    } else errors.push(r.reason.message);
  });
  // the first screen (cards, ranking with its map, trend) is asked and drawn before the panels
  // below it are asked at all: on a province the hub answers those while the leader reads
  const firstScreen = jobs.filter(([v]) => v === "compare" || v === "trend");
  const below = jobs.filter(([v]) => v !== "compare" && v !== "trend");
  const [firstResults] = await Promise.all([ask(firstScreen), loadHeadline(shown)]);
  if (seq !== renderSeq) return;
  draw(firstScreen, firstResults);
  await mapDrawn;
  if (seq !== renderSeq) return;
  document.body.dataset.first = errors.length ? `failed:${drawn}` : drawn;
  const belowResults = await ask(below);
  if (seq !== renderSeq) return;
  draw(below, belowResults);
  showError(errors.join("；"));
  bulletinLinks(shown);
  offerAssess(shown, figures);
  await renderParts(shown);
  await loadReview(shown);
  await loadLocks(shown);
  document.body.dataset.ready = errors.length ? `failed:${drawn}` : drawn;
}

// ---- the first screen: headline cards (value, 同比 and 环比 coloured by which way is better) ----

function fmtNumber(v) {
  if (typeof v !== "number") return "—";
  return Number.isInteger(v) ? v.toLocaleString("zh-CN") : Number(v.toFixed(2)).toLocaleString("zh-CN");
}

function changeText(label, c, unit) {
  if (!c || typeof c.change !== "number") return { text: `${label} —`, cls: "flat" };
  const arrow = c.change > 0 ? "▲" : c.change < 0 ? "▼" : "＝";
  const size = typeof c.points === "number" ? `${Math.abs(c.points).toFixed(2)} 个百分点`
    : typeof c.pct === "number" ? `${Math.abs(c.pct).toFixed(1)}%` : `${fmtNumber(Math.abs(c.change))}${unit}`;
  return { text: `${label} ${arrow} ${c.change === 0 ? "持平" : size}`, cls: c.judgement || "flat" };
}

async function loadHeadline(shown) {
  let r;
  try {
    r = await api(`/api/headline?${new URLSearchParams({ area: shown.area, period: shown.period, ...(state.approved ? { approved: "1" } : {}) })}`);
  } catch (e) {
    $("cards").replaceChildren(Object.assign(document.createElement("p"), { className: "notes", textContent: e.message }));
    return;
  }
  $("headline-title").textContent = `${r.name} ${r.period} 主要指标${state.approved ? "（仅已审核）" : ""}`;
  const el = (tag, cls, text) => Object.assign(document.createElement(tag), { className: cls, textContent: text });
  const cards = r.cards.map((c) => {
    const card = el("div", "card", "");
    card.dataset.id = c.id;
    const value = el("div", "value", fmtNumber(c.value));
    value.append(el("small", "", c.unit));
    const yoy = changeText("同比", c.yoy, c.unit);
    const mom = changeText("环比", c.mom, c.unit);
    card.append(el("div", "group", c.group), el("div", "name", c.name), value,
      el("div", `change yoy ${yoy.cls}`, yoy.text), el("div", `change mom ${mom.cls}`, mom.text));
    return card;
  });
  const k = r.completeness;
  const summary = el("div", "card summary", "");
  summary.dataset.id = "completeness";
  const rate = k.expected ? `${(k.received / k.expected * 100).toFixed(1)}%` : "—";
  const value = el("div", "value", rate);
  summary.append(el("div", "group", "上报"), el("div", "name", "上报率"), value,
    el("div", "change", `应报 ${k.expected}，已报 ${k.received}，未报 ${k.missing}`),
    el("div", "change", `最近上报 ${r.latest || "—"}`));
  $("cards").replaceChildren(summary, ...cards);
}

// ---- 考核: computed with the page where the areas below are the scheme's; elsewhere on asking ----

const LEVEL_OF_LENGTH = { 2: "province", 4: "prefecture", 6: "county", 9: "township", 12: "village" };
const LEVEL_ORDER = ["province", "prefecture", "county", "township", "village"];

// the areas the scheme assesses are the children of `area` (or the scheme names no level)
function assessHere(area) {
  const level = state.catalogue.scheme && state.catalogue.scheme.level;
  if (!level) return true;
  const own = LEVEL_ORDER.indexOf(LEVEL_OF_LENGTH[area.length]);
  return LEVEL_ORDER.indexOf(level) === own + 1;
}

function drawAssess(t) {
  $("assess-title").textContent = t.title;
  renderTable($("assess-table"), t, { drill: true });
  renderNotes($("assess-notes"), t.notes);
}

// elsewhere: a button computes it for this area (a province's townships are thousands)
function offerAssess(shown, figures) {
  if (assessHere(shown.area)) return;
  const level = state.catalogue.scheme.level;
  const own = LEVEL_ORDER.indexOf(LEVEL_OF_LENGTH[shown.area.length]);
  $("assess-title").textContent = `考核：${state.catalogue.scheme.title}`;
  $("assess-table").replaceChildren();
  $("assess-downloads").replaceChildren();
  if (LEVEL_ORDER.indexOf(level) <= own) {
    renderNotes($("assess-notes"), [`考核方案考核的是${{ province: "省", prefecture: "市", county: "县", township: "乡镇", village: "村社区" }[level]}，不在本区域之下：请到上级区域查看`]);
    return;
  }
  const button = Object.assign(document.createElement("button"), { id: "assess-run", type: "button", textContent: "计算本区域所有考核对象的得分" });
  button.addEventListener("click", async () => {
    button.disabled = true;
    button.textContent = "正在计算……";
    try {
      const t = await api(tableUrl("assess", "", figures, shown));
      drawAssess(t);
      downloads("assess", figures, shown);
    } catch (e) {
      renderNotes($("assess-notes"), [e.message]);
    }
  });
  $("assess-notes").replaceChildren(button);
}

// ---- 通报: the bulletin of the area and period, as Word or a print view ----

function bulletinLinks(shown) {
  const q = new URLSearchParams({ area: shown.area, period: shown.period });
  const word = Object.assign(document.createElement("a"), { id: "bulletin-docx", href: `/api/bulletin?${q}&format=docx`, textContent: "通报（Word）" });
  word.setAttribute("download", "");
  const view = Object.assign(document.createElement("a"), { id: "bulletin-html", href: `/api/bulletin?${q}&format=html`, textContent: "通报打印版", target: "_blank", rel: "noopener" });
  $("bulletin-links").replaceChildren(word, view);
}

// ---- 审核: the reports of the month below the area, approved or returned here ----

const REVIEW_STATES = { pending: "待审核", approved: "已审核", returned: "退回", none: "不审核", submitted: "上报" };

async function loadReview(shown) {
  const panel = $("review");
  if (!/^\d{4}-\d{2}$/.test(shown.period)) { panel.hidden = true; return; }
  let r;
  try {
    r = await api(`/api/review?${new URLSearchParams({ area: shown.area, period: shown.period })}`);
  } catch (e) {
    panel.hidden = true;
    return;
  }
  panel.hidden = false;
  const pending = r.pending;
  $("review-title").textContent = `审核 ${shown.period}：待审核 ${pending} 份，共 ${r.total} 份` +
    (r.items.length < r.total ? `（列出前 ${r.items.length} 份，待审核的在前）` : "");
  const table = $("review-table");
  table.replaceChildren();
  const head = table.createTHead().insertRow();
  for (const h of ["", "代码", "名称", "版本", "状态", "审核人", "时间", "原因", ""]) head.append(Object.assign(document.createElement("th"), { textContent: h }));
  const body = table.createTBody();
  for (const i of r.items) {
    const row = body.insertRow();
    row.dataset.area = i.area;
    const box = Object.assign(document.createElement("input"), { type: "checkbox", disabled: i.state !== "pending" });
    box.dataset.target = JSON.stringify({ area: i.area, period: i.period, revision: i.revision });
    row.insertCell().append(box);
    for (const v of [i.area, i.name, `第 ${i.revision} 版`, REVIEW_STATES[i.state] || i.state, i.by, i.by ? i.at : "", i.reason]) {
      row.insertCell().textContent = v;
    }
    const history = row.insertCell();
    history.textContent = "记录";
    history.className = "history";
    history.title = "每一版的上报、审核和退回";
    history.addEventListener("click", () => showHistory(i));
  }
  document.body.dataset.review = `${shown.area}|${shown.period}|${pending}`;
}

// every step of one report: each revision as submitted, each decision on it
async function showHistory(item) {
  const box = $("review-history-box");
  const list = $("review-history");
  let r;
  try {
    r = await api(`/api/review/history?${new URLSearchParams({ area: item.area, period: item.period })}`);
  } catch (e) {
    list.replaceChildren(Object.assign(document.createElement("li"), { textContent: e.message }));
    box.hidden = false;
    return;
  }
  $("review-history-title").textContent = `审核记录：${item.area} ${item.name} ${item.period}`;
  list.replaceChildren(...r.steps.map((s) => Object.assign(document.createElement("li"), {
    textContent: `第 ${s.revision} 版 ${REVIEW_STATES[s.state] || s.state}：${s.by} ${s.at}${s.reason ? `（${s.reason}）` : ""}`,
  })));
  box.hidden = false;
  document.body.dataset.history = `${item.area}|${r.steps.length}`;
}

// ---- 锁定: the area's month closed (关账) or opened here, and every lock and unlock ----

async function loadLocks(shown) {
  const panel = $("locks");
  if (!/^\d{4}-\d{2}$/.test(shown.period)) { panel.hidden = true; return; }
  let r;
  try {
    r = await api(`/api/locks?${new URLSearchParams({ area: shown.area, period: shown.period })}`);
  } catch (e) {
    panel.hidden = true;
    return;
  }
  panel.hidden = false;
  const line = (l) => `${l.area} ${l.form} ${l.locked ? "已锁定" : "已解锁"}：${l.by}，${l.at}（${l.reason}）` + (l.via ? ` [下级平台 ${l.via} 锁定]` : "");
  const over = r.locks.filter((l) => l.locked && shown.area.startsWith(l.area));
  $("locks-title").textContent = `锁定 ${shown.period}：${over.length ? "本区域已锁定" : "本区域未锁定"}`;
  const states = r.locks.map(line);
  if (r.lock_after_days) states.push(`各报表截止后 ${r.lock_after_days} 天自动锁定`);
  $("locks-state").replaceChildren(...(states.length ? states : ["没有锁定"]).map((t) => Object.assign(document.createElement("li"), { textContent: t })));
  $("locks-events").replaceChildren(...r.events.map((l) => Object.assign(document.createElement("li"), { textContent: line(l) })));
  document.body.dataset.locks = `${shown.area}|${shown.period}|${over.length ? "locked" : "open"}|${r.events.length}`;
}

async function setLock(lock, force) {
  const notes = $("locks-state");
  const shown = { area: state.area, period: state.period };
  let said = null;
  try {
    await api("/api/locks", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ area: shown.area, period: shown.period, reason: $("lock-reason").value.trim(), force, lock }),
    });
  } catch (e) {
    said = e.message;
  }
  await loadLocks(shown);
  if (said) notes.prepend(Object.assign(document.createElement("li"), { textContent: said, className: "refused" }));
  document.body.dataset.locked = `${Date.now()}|${said ? "refused" : "done"}`;
}

async function decideReview(approve) {
  const targets = [...document.querySelectorAll("#review-table input:checked")].map((b) => JSON.parse(b.dataset.target));
  const notes = $("review-notes");
  if (!targets.length) { notes.replaceChildren(Object.assign(document.createElement("li"), { textContent: "请先勾选要审核的报表" })); return; }
  const reason = $("review-reason").value.trim();
  try {
    const r = await api("/api/review", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ targets, approve, reason }),
    });
    const said = [`已${approve ? "审核通过" : "退回"} ${r.items.length} 份`].concat(r.refused.map((x) => `未办理：${x}`));
    notes.replaceChildren(...said.map((t) => Object.assign(document.createElement("li"), { textContent: t })));
  } catch (e) {
    notes.replaceChildren(Object.assign(document.createElement("li"), { textContent: e.message }));
  }
  await loadReview({ area: state.area, period: state.period });
  document.body.dataset.decided = String(Date.now());
}

// ---- start ----

async function start(me) {
  state.me = me;
  $("who").textContent = `${me.name} · ${me.area.name}`;
  if (!state.catalogue) {
    state.catalogue = await api("/api/catalogue");
    fillPeriodControls(me.today);
    const metric = $("metric");
    const groups = new Map();
    for (const m of state.catalogue.metrics.concat(state.catalogue.indicators)) {
      if (!groups.has(m.group)) {
        const g = document.createElement("optgroup");
        g.label = m.group;
        groups.set(m.group, g);
        metric.append(g);
      }
      groups.get(m.group).append(new Option(`${m.zh}（${m.unit}）`, m.id));
    }
    // completeness per form: the forms read by months (monthly and half-monthly)
    const form = $("form");
    form.add(new Option("全部报表", ""));
    const kinds = { month: "月报", half_month: "半月报" };
    // departments' forms are not the divisions': their reporting is in the departments panel
    for (const f of state.catalogue.forms.filter((f) => kinds[f.period] && f.levels > 0)) {
      form.add(new Option(`${f.zh}（${kinds[f.period]}）`, f.id));
    }
    form.addEventListener("change", () => render());
    $("review-approve").addEventListener("click", () => decideReview(true));
    $("review-return").addEventListener("click", () => decideReview(false));
    $("lock-close").addEventListener("click", () => setLock(true, false));
    $("lock-force").addEventListener("click", () => setLock(true, true));
    $("lock-open").addEventListener("click", () => setLock(false, false));
    // 催报 now: to every township of the area shown that owes the form's period
    $("remind").addEventListener("click", async () => {
      const q = new URLSearchParams({ area: state.area, period: state.period, form: $("form").value });
      let text;
      try {
        const r = await api(`/api/remind?${q}`, { method: "POST" });
        text = r.message;
      } catch (e) {
        text = `催报未发送：${e.message}`;
      }
      const notes = $("completeness-notes");
      notes.prepend(Object.assign(document.createElement("li"), { textContent: text }));
      document.body.dataset.remind = text;
    });
  }
  $("signin").hidden = true;
  $("app").hidden = false;
  await render();
}

document.addEventListener("DOMContentLoaded", () => {
  $("signin-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    $("signin-error").textContent = "";
    try {
      const me = await api("/api/sign-in", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ name: $("signin-name").value, password: $("signin-password").value }),
      });
      $("signin-password").value = "";
      await start(me);
    } catch (err) {
      $("signin-error").textContent = err.message;
    }
  });
  $("signout").addEventListener("click", async () => {
    await api("/api/sign-out", { method: "POST" }).catch(() => {});
    state.me = null;
    showSignIn();
  });
  $("child").addEventListener("change", () => {
    if ($("child").value) { state.area = $("child").value; writeHash(); }
  });
  for (const id of ["period-kind", "year", "month", "quarter", "range-from", "range-to"]) {
    $(id).addEventListener("change", () => {
      if (id === "period-kind" && $("period-kind").value === "range") {
        // 累计 starts as January up to the month last picked
        $("range-from").value = "1";
        $("range-to").value = String(Number($("month").value) || 12);
      }
      showPeriodControls();
      state.period = periodFromControls();
      writeHash();
    });
  }
  $("metric").addEventListener("change", () => { state.metric = $("metric").value; writeHash(); });
  $("approved-only").addEventListener("change", () => { state.approved = $("approved-only").checked; writeHash(); });
  window.addEventListener("hashchange", () => { if (state.me) render(); });
  window.addEventListener("resize", () => {
    for (const id of ["compare-chart", "trend-chart", "map", "parts-chart"]) { const c = echarts.getInstanceByDom($(id)); if (c) c.resize(); }
  });
  api("/api/me").then(start, () => showSignIn());
});
