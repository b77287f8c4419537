// The node's entry page (填报) in headless Chromium, driven the way a village clerk uses it.
// One phase per run (PINGAN_PHASE); the Rust test (tests/tests/node_page.rs) restarts the node
// and stops or starts the hub between phases, and checks what each phase printed (one JSON
// object on stdout).
//
// Environment: PINGAN_NODE_URL, PINGAN_PHASE (fill | draft | delivered | upload | phone),
// PINGAN_KEY (the village), PINGAN_PERIOD (2026-11), PINGAN_UPLOAD_PERIOD, PINGAN_BAD_XLSX,
// PINGAN_GOOD_XLSX, PINGAN_ARTIFACTS, CHROMIUM.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const url = env("PINGAN_NODE_URL");
const phase = env("PINGAN_PHASE");
const key = env("PINGAN_KEY");
const period = env("PINGAN_PERIOD");
const artifacts = env("PINGAN_ARTIFACTS");
mkdirSync(artifacts, { recursive: true });
const form = "zongzhi_monthly";

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});
const result = { phase };
try {
  const phone = phase === "phone";
  const context = await browser.newContext({
    ignoreHTTPSErrors: true,
    viewport: phone ? { width: 390, height: 844 } : { width: 1280, height: 900 },
    deviceScaleFactor: phone ? 2 : 1,
    isMobile: phone,
    hasTouch: phone,
    locale: "zh-CN",
    acceptDownloads: true,
  });
  const page = await context.newPage();
  const offsite = [];
  page.on("request", (r) => { if (!r.url().startsWith(url)) offsite.push(r.url()); });
  page.on("dialog", (d) => d.accept());
  await page.goto(url);
  if (phase === "signin") {
    // beyond loopback: HTTPS, and nothing without signing in
    await page.waitForFunction(() => document.body.dataset.ready === "signin");
    const anonymous = await browser.newContext({ ignoreHTTPSErrors: true });
    result.anonymousApi = (await anonymous.request.get(`${url}/api/office`)).status();
    await anonymous.close();
    await page.fill("#signin-name", env("PINGAN_USER"));
    await page.fill("#signin-password", "not-the-password");
    await page.click("#signin-submit");
    await page.waitForFunction(() => document.getElementById("signin-error").textContent !== "");
    result.wrongPassword = await page.textContent("#signin-error");
    await page.fill("#signin-password", env("PINGAN_PASSWORD"));
    await page.click("#signin-submit");
  }
  await page.waitForFunction(() => document.body.dataset.ready === "1");
  result.protocol = await page.evaluate(() => location.protocol);

  const open = async (p) => {
    await page.click(`[data-open="${key}|${p}|${form}"]`);
    await page.waitForFunction((w) => document.body.dataset.form === w, `${key}|${p}|${form}`);
    await page.waitForFunction(() => document.body.dataset.checked);
  };
  const field = (metric) => `input.value[data-metric="${metric}"]:not([data-part])`;
  // types a value and waits for the check of exactly what is typed now
  const type = async (metric, value) => {
    const before = await page.evaluate(() => document.body.dataset.checked);
    await page.fill(field(metric), value);
    await page.waitForFunction((b) => document.body.dataset.checked !== b, before);
    await page.waitForTimeout(400);
  };
  const problems = () => page.$$eval("#problems li", (li) => li.map((x) => x.textContent));

  if (phase === "fill") {
    result.listStatus = await page.textContent(`[data-status="${key}|${period}|${form}"]`);
    await open(period);
    result.title = await page.textContent("#entry-title");
    await type("disputes.mediated", "3");
    await type("disputes.resolved", "9");
    result.ruleProblems = await problems();
    result.fieldProblem = await page.textContent('[data-problem="disputes.resolved"]');
    await type("disputes.resolved", "2");
    result.afterFix = await problems();
    await type("patrol.sessions", "十二");
    result.notANumber = await problems();
    await type("patrol.sessions", "12");
    await type("patrol.person_times", "30");
    result.clean = await problems();
    await page.click("#save");
    await page.waitForFunction(() => document.getElementById("message").textContent.includes("草稿"));
    result.saved = await page.textContent("#message");
    await page.screenshot({ path: join(artifacts, "node-01-fill.png"), fullPage: true });

    // the page's API as a tired clerk's browser (or anyone on the machine) may call it
    const old = env("PINGAN_OLD_PERIOD");
    const body = (fields, extra) => ({ data: { key, period: old, form, fields, ...extra } });
    const negative = await page.request.post(`${url}/api/check`, body({ "patrol.sessions": { total: "-3" } }));
    result.negative = (await negative.json()).problems.map((p) => p.reason);
    const soft = { "petitions.letters": { total: "2" }, "petitions.letters_concluded": { total: "5" } };
    const unconfirmed = await page.request.post(`${url}/api/submit`, body(soft));
    result.softStatus = unconfirmed.status();
    result.softWarnings = (await unconfirmed.json()).warnings;
    const confirmed = await page.request.post(`${url}/api/submit`,
      body(soft, { accept_warnings: true, notes: "含上月转来的 3 件，已核实" }));
    result.confirmedStatus = confirmed.status();
    const huge = await page.request.post(`${url}/api/upload?key=${key}&period=${old}&form=${form}`,
      { data: Buffer.alloc(2 * 1024 * 1024, 65), headers: { "Content-Type": "application/octet-stream" } });
    result.hugeUpload = huge.status();
    const stranger = await page.request.get(`${url}/api/form?key=510722101003&period=${old}&form=${form}`);
    result.stranger = [stranger.status(), (await stranger.json()).error];
  } else if (phase === "draft") {
    result.listStatus = await page.textContent(`[data-status="${key}|${period}|${form}"]`);
    await open(period);
    result.message = await page.textContent("#message");
    result.values = {};
    for (const m of ["disputes.mediated", "disputes.resolved", "patrol.sessions", "patrol.person_times"]) {
      result.values[m] = await page.inputValue(field(m));
    }
    await page.click("#submit");
    await page.waitForFunction(() => document.body.dataset.status === "pending");
    result.status = await page.textContent("#status");
    await page.screenshot({ path: join(artifacts, "node-02-pending.png"), fullPage: true });
  } else if (phase === "delivered") {
    result.listStatus = await page.textContent(`[data-status="${key}|${period}|${form}"]`);
    const [receipt] = await Promise.all([context.waitForEvent("page"), page.click(`[data-open="${key}|${period}|${form}"] ~ a`)]);
    await receipt.waitForLoadState();
    result.receipt = await receipt.textContent("body");
    await receipt.screenshot({ path: join(artifacts, "node-03-receipt.png"), fullPage: true });
    // a correction asks for its reason
    await open(period);
    await type("patrol.sessions", "13");
    await page.click("#submit");
    await page.waitForFunction(() => document.getElementById("problems").textContent.includes("原因"));
    result.correctionNeedsReason = await problems();
    await page.fill("#reason", "漏报一次巡逻");
    await page.click("#submit");
    await page.waitForFunction(() => document.getElementById("status").textContent.includes("第 2 版"), null, { timeout: 30000 });
    result.corrected = await page.textContent("#status");
  } else if (phase === "upload") {
    // the township returned the corrected month: the list says so, with the reason
    result.returned = await page.$eval(`[data-status="${key}|${period}|${form}"]`, (s) => s.parentElement.textContent);
    const up = env("PINGAN_UPLOAD_PERIOD");
    await open(up);
    const [download] = await Promise.all([page.waitForEvent("download"), page.click("#template-xlsx")]);
    await download.saveAs(join(artifacts, "node-template.xlsx"));
    result.templateName = download.suggestedFilename();
    // not a form at all, then another period's template: refused, nothing filled in
    await page.setInputFiles("#upload", { name: "notes.txt", mimeType: "text/plain", buffer: Buffer.from("hello\nworld\n") });
    await page.waitForFunction(() => document.body.dataset.upload === "failed");
    result.notAForm = await problems();
    await page.evaluate(() => { delete document.body.dataset.upload; });
    await page.setInputFiles("#upload", env("PINGAN_OTHER_XLSX"));
    await page.waitForFunction(() => document.body.dataset.upload === "failed");
    result.otherTemplate = await problems();
    await page.evaluate(() => { delete document.body.dataset.upload; });
    await page.setInputFiles("#upload", env("PINGAN_BAD_XLSX"));
    await page.waitForFunction(() => document.body.dataset.upload === "failed");
    result.bad = await problems();
    await page.evaluate(() => { delete document.body.dataset.upload; });
    await page.setInputFiles("#upload", env("PINGAN_GOOD_XLSX"));
    await page.waitForFunction(() => document.body.dataset.upload === "ok");
    await page.waitForTimeout(600);
    result.uploaded = {
      sessions: await page.inputValue(field("patrol.sessions")),
      persons: await page.inputValue(field("patrol.person_times")),
    };
    result.afterUpload = await problems();
    await page.click("#submit");
    await page.waitForFunction(() => document.body.dataset.status === "delivered", null, { timeout: 30000 });
    result.status = await page.textContent("#status");
  } else if (phase === "signin") {
    result.listStatus = await page.textContent(`[data-status="${key}|${period}|${form}"]`);
    result.cookie = (await context.cookies()).map((c) => ({ name: c.name, httpOnly: c.httpOnly, secure: c.secure, sameSite: c.sameSite }));
    result.reporters = await page.$$eval("#reporter option", (o) => o.map((x) => x.textContent));
    await page.selectOption("#reporter", "510722101");
    await page.waitForFunction(() => document.querySelector("#forms h3").textContent.includes("510722101）"));
    result.picked = await page.textContent("#forms h3");
    result.pickedForms = await page.$$eval("#forms thead th:first-child", (th) => th.map((x) => x.textContent));
    await page.screenshot({ path: join(artifacts, "node-06-signed-in.png"), fullPage: false });
  } else if (phase === "phone") {
    await page.screenshot({ path: join(artifacts, "node-04-phone-list.png"), fullPage: false });
    await open(period);
    result.width = await page.evaluate(() => document.documentElement.scrollWidth);
    await page.screenshot({ path: join(artifacts, "node-05-phone-form.png"), fullPage: false });
    // a zero report for an older month: one deliberate action, confirmed (the dialog is accepted)
    await page.click("#back");
    await page.waitForFunction(() => !document.body.dataset.form);
    await open(env("PINGAN_ZERO_PERIOD"));
    await page.click("#zero");
    await page.waitForFunction(() => document.getElementById("status").textContent.includes("已上报"), null, { timeout: 30000 });
    result.zero = await page.textContent("#status");
  }
  result.offsite = offsite;
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
