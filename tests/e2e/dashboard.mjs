// The dashboard in headless Chromium, driven the way a leader uses it: sign in, pick a township
// and a quarter, read the comparison table, download it as .xlsx and CSV, and try an area outside
// the jurisdiction. Prints what it saw as one JSON object on stdout; the Rust test
// (tests/tests/dashboard.rs) starts the hub, runs this, and checks every number it printed.
//
// Environment: PINGAN_WEB_URL, PINGAN_USER, PINGAN_PASSWORD, PINGAN_TOWNSHIP, PINGAN_QUARTER
// (2026-Q3), PINGAN_METRIC, PINGAN_OUTSIDE (an area code outside the user's jurisdiction),
// PINGAN_ARTIFACTS (directory for screenshots and downloads), CHROMIUM (default /usr/bin/chromium).
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const url = env("PINGAN_WEB_URL");
const township = env("PINGAN_TOWNSHIP");
const quarter = env("PINGAN_QUARTER");
const metric = env("PINGAN_METRIC");
const outside = env("PINGAN_OUTSIDE");
const artifacts = env("PINGAN_ARTIFACTS");
mkdirSync(artifacts, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});
const result = {};
try {
  // the hub's certificate is signed by the deployment's own CA, which this browser does not know
  const context = await browser.newContext({
    ignoreHTTPSErrors: true,
    acceptDownloads: true,
    viewport: { width: 1400, height: 1000 },
    locale: "zh-CN",
  });
  const page = await context.newPage();
  const offsite = [];
  page.on("request", (r) => { if (!r.url().startsWith(url)) offsite.push(r.url()); });
  // waits until the page has drawn exactly this view; a view whose tables failed is an error
  const ready = async (value) => {
    await page.waitForFunction(
      (v) => [v, `failed:${v}`].includes(document.body.dataset.ready), value, { timeout: 30000 });
    if ((await page.evaluate(() => document.body.dataset.ready)) !== value) {
      throw new Error(`the page could not draw ${value}: ${await page.textContent("#error")}`);
    }
  };

  // sign in: a wrong password first, then the right one
  await page.goto(url);
  await page.waitForSelector("#signin-form", { state: "visible" });
  await page.fill("#signin-name", env("PINGAN_USER"));
  await page.fill("#signin-password", "not-the-password");
  await page.click("#signin-submit");
  await page.waitForFunction(() => document.getElementById("signin-error").textContent !== "");
  result.wrongPassword = await page.textContent("#signin-error");
  await page.fill("#signin-password", env("PINGAN_PASSWORD"));
  await page.click("#signin-submit");
  await page.waitForSelector("#app", { state: "visible" });
  await page.waitForFunction(() => document.body.dataset.ready);
  result.who = await page.textContent("#who");
  result.departmentsRows = await page.$$eval("#departments-table tbody tr", (rows) =>
    rows.map((tr) => [...tr.cells].map((td) => td.textContent)));
  result.departmentsTitle = await page.textContent("#departments-title");
  result.assessRows = await page.$$eval("#assess-table tbody tr", (rows) =>
    rows.map((tr) => [...tr.cells].map((td) => td.textContent)));
  // 通报打印版: the print view of the bulletin, opened from its link, as it prints
  const printView = await page.context().newPage();
  await printView.goto(await page.$eval("#bulletin-html", (a) => a.href));
  await printView.waitForSelector("#bulletin-title");
  result.bulletinTitle = await printView.textContent("#bulletin-title");
  await printView.emulateMedia({ media: "print" });
  await printView.screenshot({ path: join(artifacts, "01d-bulletin-print.png"), fullPage: true });
  await printView.close();
  await page.screenshot({ path: join(artifacts, "01-signed-in.png"), fullPage: true });
  await page.screenshot({ path: join(artifacts, "first-screen.png") });
  // 审核 in the page: the county's leader approves two of the month's reports, returns a third
  await page.waitForFunction(() => (document.body.dataset.review || "").includes("|"));
  result.reviewPending = Number((await page.evaluate(() => document.body.dataset.review)).split("|")[2]);
  const boxes = await page.$$("#review-table input[type=checkbox]:not([disabled])");
  result.reviewAreas = [];
  for (const b of boxes.slice(0, 3)) result.reviewAreas.push(JSON.parse(await b.getAttribute("data-target")).area);
  await boxes[0].check();
  await boxes[1].check();
  let before = await page.evaluate(() => document.body.dataset.decided || "");
  await page.click("#review-approve");
  await page.waitForFunction((b) => (document.body.dataset.decided || "") !== b, before);
  result.approvedNotes = await page.$$eval("#review-notes li", (li) => li.map((x) => x.textContent));
  await page.check(`#review-table tr[data-area="${result.reviewAreas[2]}"] input`);
  await page.fill("#review-reason", "数字与台账不符");
  before = await page.evaluate(() => document.body.dataset.decided || "");
  await page.click("#review-return");
  await page.waitForFunction((b) => (document.body.dataset.decided || "") !== b, before);
  result.reviewStates = await page.$$eval("#review-table tbody tr", (rows) =>
    Object.fromEntries(rows.map((r) => [r.dataset.area, [...r.cells].slice(4).map((c) => c.textContent)])));
  result.reviewTitle = await page.textContent("#review-title");
  // 审核记录 of the returned report: its submission, then the return with the reason
  await page.click(`#review-table tr[data-area="${result.reviewAreas[2]}"] td.history`);
  await page.waitForFunction((a) => (document.body.dataset.history || "").startsWith(a + "|"), result.reviewAreas[2]);
  result.history = await page.$$eval("#review-history li", (li) => li.map((x) => x.textContent));
  // 锁定 the month: refused while villages are missing, forced with the override recorded,
  // then opened again; every step listed
  await page.fill("#lock-reason", "月度考核");
  const locked = async (button) => {
    const mark = await page.evaluate(() => document.body.dataset.locked || "");
    await page.click(button);
    await page.waitForFunction((b) => (document.body.dataset.locked || "") !== b, mark);
    return page.evaluate(() => document.body.dataset.locked.split("|")[1]);
  };
  result.lockClose = await locked("#lock-close");
  result.lockRefusal = await page.$eval("#locks-state li", (li) => li.textContent);
  result.lockForce = await locked("#lock-force");
  result.lockState = await page.evaluate(() => document.body.dataset.locks);
  result.lockTitle = await page.textContent("#locks-title");
  await page.screenshot({ path: join(artifacts, "01c-locked.png"), fullPage: true });
  result.lockOpen = await locked("#lock-open");
  result.lockEvents = await page.$$eval("#locks-events li", (li) => li.map((x) => x.textContent));
  // 仅已审核: the same ranking of approved figures only, then back to every current figure
  // (on 调处矛盾纠纷, which every village reported for September)
  const firstMetric = await page.$eval("#metric", (e) => e.value);
  result.firstReady = await page.evaluate(() => document.body.dataset.ready);
  result.firstScreen = await page.evaluate(() => document.body.dataset.first);
  await page.selectOption("#metric", "disputes.mediated");
  await page.waitForFunction(() => (document.body.dataset.ready || "").endsWith("|disputes.mediated"));
  // the map of the county's townships (the test's boundaries), coloured by the ranking's figure
  await page.waitForFunction(() => document.getElementById("map").dataset.regions);
  result.map = await page.evaluate(() => {
    const o = echarts.getInstanceByDom(document.getElementById("map")).getOption();
    return { regions: Number(document.getElementById("map").dataset.regions),
      data: o.series[0].data.map((d) => [d.name, d.value]), hidden: document.getElementById("map-panel").hidden };
  });
  result.compareFirst = await page.$$eval("#compare-table tbody tr", (rows) =>
    rows.map((tr) => [tr.cells[1].textContent, JSON.parse(tr.cells[3].dataset.v)]));

  await page.check("#approved-only");
  await page.waitForFunction(() => (document.body.dataset.ready || "").endsWith("|disputes.mediated|approved"));
  result.approvedCompare = await page.$$eval("#compare-table tbody tr", (rows) =>
    rows.map((tr) => [...tr.cells].map((td) => td.textContent)));
  result.approvedCompareNotes = await page.$$eval("#compare-notes li", (li) => li.map((x) => x.textContent));
  await page.screenshot({ path: join(artifacts, "01b-approved-only.png"), fullPage: true });
  await page.uncheck("#approved-only");
  await page.waitForFunction(() => (document.body.dataset.ready || "").endsWith("|disputes.mediated"));
  result.currentCompareNotes = await page.$$eval("#compare-notes li", (li) => li.map((x) => x.textContent));
  await page.selectOption("#metric", firstMetric);
  await page.waitForFunction((m) => (document.body.dataset.ready || "").endsWith(`|${m}`), firstMetric);
  // 催报 now, for the county's latest month
  await page.click("#remind");
  await page.waitForFunction(() => document.body.dataset.remind, null, { timeout: 60000 });
  result.remind = await page.evaluate(() => document.body.dataset.remind);
  result.completenessHeader = await page.$$eval("#completeness-table thead th", (th) => th.map((x) => x.textContent));

  // pick the township, the quarter and the metric with the page's own controls
  await page.selectOption("#child", township);
  await page.waitForFunction((t) => (document.body.dataset.ready || "").startsWith(t + "|"), township);
  const [year, q] = quarter.split("-Q");
  await page.selectOption("#period-kind", "quarter");
  await page.selectOption("#year", year);
  await page.selectOption("#quarter", q);
  await page.selectOption("#metric", metric);
  await ready(`${township}|${quarter}|${metric}`);
  result.trail = await page.textContent("#trail");

  // the comparison table: every cell's raw value, keyed by column
  result.compare = await page.$eval("#compare-table", (table) => {
    const keys = [...table.tHead.rows[0].cells].map((th) => th.dataset.key);
    const titles = [...table.tHead.rows[0].cells].map((th) => th.textContent);
    const rows = [...table.tBodies[0].rows].map((tr) =>
      Object.fromEntries([...tr.cells].map((td, i) => [keys[i], JSON.parse(td.dataset.v)])));
    const shown = [...table.tBodies[0].rows].map((tr) => [...tr.cells].map((td) => td.textContent));
    return { keys, titles, rows, shown };
  });
  result.compareTitle = await page.textContent("#compare-title");
  result.trendPoints = await page.$$eval("#trend-table tbody tr", (rows) => rows.length);
  // the first screen's cards: value, 同比 and its colour
  result.cards = await page.$$eval("#cards .card", (cards) => cards.map((c) => ({
    id: c.dataset.id,
    value: c.querySelector(".value").firstChild.textContent,
    yoy: (c.querySelector(".yoy") || {}).className || "",
    yoyText: (c.querySelector(".yoy") || {}).textContent || "",
  })));
  // the charts' own numbers (ECharts' options), to be the tables'
  result.rankChart = await page.evaluate(() => {
    const o = echarts.getInstanceByDom(document.getElementById("compare-chart")).getOption();
    const s = o.series[0];
    return { names: o.yAxis[0].data, codes: s.data.map((d) => d.code), values: s.data.map((d) => d.value),
      reference: s.markLine && s.markLine.data.length ? s.markLine.data[0].xAxis : null };
  });
  result.trendChart = await page.evaluate(() => {
    const o = echarts.getInstanceByDom(document.getElementById("trend-chart")).getOption();
    return { periods: o.xAxis[0].data, now: o.series[0].data, before: o.series[1].data };
  });
  result.trendTable = await page.$$eval("#trend-table tbody tr", (rows) =>
    rows.map((tr) => [...tr.cells].map((td) => JSON.parse(td.dataset.v))));
  result.completenessRows = await page.$$eval("#completeness-table tbody tr", (rows) =>
    rows.map((tr) => [...tr.cells].map((td) => td.textContent)));
  result.breakdownGroups = await page.$$eval(
    "#breakdown-table tbody td[data-key=group]", (cells) => [...new Set(cells.map((c) => c.textContent))]);
  await page.screenshot({ path: join(artifacts, "02-township-quarter.png"), fullPage: true });

  // 网格员 by 专职/兼职: the breakdown's pie
  await page.selectOption("#metric", "grid.workers");
  await ready(`${township}|${quarter}|grid.workers`);
  result.parts = await page.evaluate(() => {
    const el = document.getElementById("parts-chart");
    const c = echarts.getInstanceByDom(el);
    return c ? c.getOption().series[0].data.map((d) => [d.name, d.value]) : [];
  });
  await page.selectOption("#metric", metric);
  await ready(`${township}|${quarter}|${metric}`);

  // completeness of one form: the half-monthly form names the township's half-months only
  await page.selectOption("#form", "disputes_half_monthly");
  await ready(`${township}|${quarter}|${metric}|disputes_half_monthly`);
  result.halfMonthRows = await page.$$eval("#completeness-table tbody tr", (rows) =>
    rows.map((tr) => [...tr.cells].map((td) => td.textContent)));
  result.formOptions = await page.$$eval("#form option", (o) => o.map((x) => x.textContent));
  await page.selectOption("#form", "");
  await ready(`${township}|${quarter}|${metric}`);

  // downloads, through the page's own links: the comparison as .xlsx and CSV, and every other
  // table as .xlsx, with the headers and row count the page shows for it
  for (const format of ["xlsx", "csv"]) {
    const [download] = await Promise.all([
      page.waitForEvent("download"),
      page.click(`#compare-${format}`),
    ]);
    const path = join(artifacts, `compare.${format}`);
    await download.saveAs(path);
    result[format] = { path, suggested: download.suggestedFilename() };
  }
  result.otherDownloads = [];
  for (const view of ["trend", "completeness", "breakdown"]) {
    const [download] = await Promise.all([
      page.waitForEvent("download"),
      page.click(`#${view}-xlsx`),
    ]);
    const path = join(artifacts, `${view}.xlsx`);
    await download.saveAs(path);
    const shown = await page.$eval(`#${view}-table`, (table) => ({
      titles: [...table.tHead.rows[0].cells].map((th) => th.textContent),
      rows: table.tBodies[0].rows.length,
    }));
    result.otherDownloads.push({ view, path, titles: shown.titles, rows: shown.rows });
  }

  // the other period kinds: a year, and a cumulative range of months
  await page.selectOption("#period-kind", "year");
  await ready(`${township}|${year}|${metric}`);
  result.yearRows = await page.$$eval("#compare-table tbody tr", (rows) => rows.length);
  await page.selectOption("#period-kind", "range");
  await page.selectOption("#range-from", "1");
  await page.selectOption("#range-to", "9");
  await ready(`${township}|${year}-01..${year}-09|${metric}`);
  result.rangeRows = await page.$$eval("#compare-table tbody tr", (rows) => rows.length);
  result.rangeTitle = await page.textContent("#compare-title");

  // a bar of the ranking's chart, clicked: the page goes down to that area
  await page.$eval("#compare-chart", (el) => el.scrollIntoView({ block: "center" }));
  await page.screenshot({ path: join(artifacts, "ranking-chart.png") });
  const bar = await page.evaluate(() => {
    const el = document.getElementById("compare-chart");
    const chart = echarts.getInstanceByDom(el);
    const data = chart.getOption().series[0].data;
    const [x0] = chart.convertToPixel({ seriesIndex: 0 }, [0, 0]);
    const [x, y] = chart.convertToPixel({ seriesIndex: 0 }, [data[0].value, 0]);
    const box = el.getBoundingClientRect();
    return { code: data[0].code, x: box.left + (x0 + x) / 2, y: box.top + y };
  });
  await page.mouse.click(bar.x, bar.y);
  // a village: no areas below it to rank or map, its other panels drawn, no error shown
  await page.waitForFunction((c) => (document.body.dataset.ready || "").replace(/^failed:/, "").startsWith(c + "|"), bar.code);
  result.chartDrill = await page.evaluate((code) => ({
    code,
    ready: document.body.dataset.ready,
    error: document.getElementById("error").textContent,
    rankingHidden: document.getElementById("compare").hidden,
    mapHidden: document.getElementById("map-panel").hidden,
    trendHidden: document.getElementById("trend").hidden,
  }), bar.code);
  await page.screenshot({ path: join(artifacts, "02b-chart-drill.png"), fullPage: true });

  // on a projector (1920×1080): the first screen, larger
  const wide = await browser.newContext({ ignoreHTTPSErrors: true, locale: "zh-CN", viewport: { width: 1920, height: 1080 } });
  await wide.addCookies(await context.cookies());
  const wall = await wide.newPage();
  await wall.goto(`${url}/#area=${township}&period=${quarter}&metric=${metric}`);
  await wall.waitForFunction((v) => document.body.dataset.ready === v, `${township}|${quarter}|${metric}`, { timeout: 30000 });
  result.projectorFont = await wall.evaluate(() => getComputedStyle(document.documentElement).fontSize);
  await wall.screenshot({ path: join(artifacts, "projector.png") });
  await wide.close();

  // on a phone: the first screen fits the width (wide tables scroll inside their panels)
  const phoneContext = await browser.newContext({ ignoreHTTPSErrors: true, locale: "zh-CN",
    viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
  await phoneContext.addCookies(await context.cookies());
  const phone = await phoneContext.newPage();
  await phone.goto(`${url}/#area=${township}&period=${quarter}&metric=${metric}`);
  await phone.waitForFunction((v) => document.body.dataset.ready === v, `${township}|${quarter}|${metric}`, { timeout: 30000 });
  result.phone = await phone.evaluate(() => ({ scroll: document.documentElement.scrollWidth, width: window.innerWidth, cards: document.querySelectorAll("#cards .card").length }));
  await phone.screenshot({ path: join(artifacts, "04-phone.png") });
  await phoneContext.close();

  // an area outside the jurisdiction: the page says so and shows no figures
  await page.goto(`${url}/#area=${outside}&period=${quarter}&metric=${metric}`);
  await page.waitForSelector("#error", { state: "visible" });
  result.outside = {
    message: await page.textContent("#error"),
    compareHidden: await page.isHidden("#compare"),
    status: await page.evaluate(async ([area, period]) => {
      const r = await fetch(`/api/table?view=compare&area=${area}&period=${period}`);
      return r.status;
    }, [outside, quarter]),
  };
  await page.screenshot({ path: join(artifacts, "03-outside-jurisdiction.png"), fullPage: true });

  // signing out ends the session: the API refuses the old cookie's requests
  await page.goto(url);
  await page.waitForSelector("#app", { state: "visible" });
  await page.click("#signout");
  await page.waitForSelector("#signin-form", { state: "visible" });
  result.afterSignOut = await page.evaluate(async () => (await fetch("/api/me")).status);
  result.offsiteRequests = offsite;
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(result) + "\n");
