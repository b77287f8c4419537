// How long the dashboard's first screen takes in Chromium, signed in: from navigation until the
// page says it has drawn the first screen (document.body.dataset.first: the cards, the ranking
// with its chart and map, the trend), and until it has drawn every panel (dataset.ready), the
// first time and then warm.
// Usage: node tests/e2e/first-screen.mjs URL USER PASSWORD [RUNS]
import { chromium } from "playwright-core";

const [url, user, password, runs = "5"] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"],
});
try {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1400, height: 1000 }, locale: "zh-CN" });
  const page = await context.newPage();
  await page.goto(url);
  await page.waitForSelector("#signin-form", { state: "visible" });
  await page.fill("#signin-name", user);
  await page.fill("#signin-password", password);
  await page.click("#signin-submit");
  await page.waitForFunction(() => document.body.dataset.ready, null, { timeout: 120000 });
  const firsts = [];
  const alls = [];
  for (let i = 0; i < Number(runs); i++) {
    const started = Date.now();
    await page.goto(`${url}/?run=${i}`);
    await page.waitForFunction(() => (document.body.dataset.first || "") !== "", null, { polling: 10, timeout: 120000 });
    firsts.push(Date.now() - started);
    await page.waitForFunction(() => (document.body.dataset.ready || "") !== "", null, { polling: 10, timeout: 120000 });
    alls.push(Date.now() - started);
  }
  const ready = await page.evaluate(() => document.body.dataset.ready);
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  console.log(`first screen (${ready}): first ${firsts[0]} ms, median ${median(firsts)} ms over ${firsts.length} loads`);
  console.log(`every panel drawn: first ${alls[0]} ms, median ${median(alls)} ms`);
} finally {
  await browser.close();
}
