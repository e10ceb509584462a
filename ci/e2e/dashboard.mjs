// The dashboard in a real browser: Debian's chromium driven by playwright-core.
// Run by crates/memglass/tests/agent_dashboard.rs against a real agent and real workloads:
//   node dashboard.mjs   with MEMGLASS_URL, MEMGLASS_POD (a pod cgroup path),
//   MEMGLASS_POD_ANON (bytes its containers hold), MEMGLASS_FILE (a file it maps),
//   MEMGLASS_OOM_CGROUP (a cgroup that was OOM-killed), MEMGLASS_ARTIFACTS (screenshots), and
//   optionally MEMGLASS_TOKEN_URL + MEMGLASS_TOKEN (an agent that needs a bearer token), and
//   MEMGLASS_EVICTION_URL (an agent on a kubepods tree described by --pods/--node) with
//   MEMGLASS_EVICTION_ORDER (pod UIDs in kubelet's order) and MEMGLASS_EVICTION_CRITICAL
//   (the UID of a pod kubelet never evicts).
// Prints one JSON line of findings; exits 1 with the reason when a check fails.
import { chromium } from "playwright-core";
import { mkdtempSync, rmSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const url = env("MEMGLASS_URL"), pod = env("MEMGLASS_POD"), artifacts = env("MEMGLASS_ARTIFACTS");
const podAnon = Number(env("MEMGLASS_POD_ANON")), mappedFile = env("MEMGLASS_FILE");
const oomCgroup = env("MEMGLASS_OOM_CGROUP");
const MIB = 1 << 20;
mkdirSync(artifacts, { recursive: true });

function check(ok, message) { if (!ok) throw new Error(message); }
const close = (actual, expected) => Math.abs(actual - expected) <= Math.max(expected / 50, 2 * MIB);

const profile = mkdtempSync(join(tmpdir(), "memglass-chromium-"));
// A fresh profile directory (playwright passes it as --user-data-dir).
const browser = await chromium.launchPersistentContext(profile, {
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  viewport: { width: 1400, height: 1000 },
  timeout: 60_000,
});
const found = {};
try {
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("requestfailed", (r) => errors.push(`request failed: ${r.url()}`));
  page.on("request", (r) => { if (!r.url().startsWith(url)) errors.push(`request outside the agent: ${r.url()}`); });
  const ready = (hash) => page.waitForFunction((h) => document.body.dataset.ready === h, hash, { timeout: 20_000 });

  // Overview: the node pie and the pods table.
  await page.goto(url + "/#/");
  await ready("#/");
  found.pie_segments = await page.locator("#node-pie svg path").count();
  check(found.pie_segments >= 4, `node pie has ${found.pie_segments} segments`);
  const legend = await page.locator(".legend").first().innerText();
  for (const part of ["application", "kernel", "free", "alloc_page"]) check(legend.includes(part), `pie legend lacks ${part}`);
  found.rows = await page.locator("#pods tbody tr").count();
  check(found.rows >= 2, `pods table has ${found.rows} rows`);
  await page.waitForSelector("#node-chart svg");
  await page.screenshot({ path: join(artifacts, "overview.png"), fullPage: true });

  // Sorting: a click on a header orders that column, a second click reverses it.
  const column = async (key) => page.locator(`#pods tbody td[data-key="${key}"]`).evaluateAll(
    (cells) => cells.map((c) => c.dataset.value === "" ? -1 : Number(c.dataset.value)));
  await page.click('#pods th[data-key="anon"]');
  const desc = await column("anon");
  check(desc.every((v, i) => i === 0 || desc[i - 1] >= v), `anon not descending: ${desc}`);
  check(await page.getAttribute('#pods th[data-key="anon"]', "aria-sort") === "descending", "no aria-sort");
  await page.click('#pods th[data-key="anon"]');
  const asc = await column("anon");
  check(asc.every((v, i) => i === 0 || asc[i - 1] <= v), `anon not ascending: ${asc}`);
  await page.click('#pods th[data-key="active_file"]');
  const files = await column("active_file");
  check(files.every((v, i) => i === 0 || files[i - 1] >= v), `active_file not descending: ${files}`);
  found.sorted = { anon_desc: desc.length, anon_asc: asc.length, active_file: files.length };
  await page.screenshot({ path: join(artifacts, "pods-sorted.png"), fullPage: true });

  // The filter narrows the table to our pod.
  const uid = pod.split("/pod").pop();
  await page.fill("#filter", uid);
  found.filtered = await page.locator("#pods tbody tr").count();
  check(found.filtered === 1, `filter by ${uid} left ${found.filtered} rows`);
  const rowAnon = Number(await page.locator('#pods tbody td[data-key="anon"]').first().getAttribute("data-value"));
  check(close(rowAnon, podAnon), `pod row anon ${rowAnon}, workload made ${podAnon}`);

  // The pod page: pie with real values, history, its containers and cached files.
  await page.locator("#pods tbody tr").first().click();
  await ready("#/cgroup" + encodeURI(pod));
  const anon = Number(await page.getAttribute('#pie svg path[data-label="anon"]', "data-value"));
  check(close(anon, podAnon), `pod pie anon ${anon}, workload made ${podAnon}`);
  found.pod_anon = anon;
  found.history_series = await page.locator("#history svg path[data-series]").count();
  check(found.history_series >= 5, `history has ${found.history_series} series`);
  found.containers = await page.locator("#containers tbody tr").count();
  check(found.containers === 2, `pod page lists ${found.containers} containers`);
  await page.waitForSelector("#cached-files", { timeout: 20_000 });
  const cached = await page.locator("#cached-files").innerText();
  check(cached.includes(mappedFile.split("/").pop()), `cached files lack ${mappedFile}`);
  await page.hover("#history svg rect");
  await page.screenshot({ path: join(artifacts, "pod.png"), fullPage: true });

  // OOM events: the kill the test caused, with scope and cause; its flight recorder.
  await page.goto(url + "/#/oom");
  await ready("#/oom");
  const ours = page.locator("#oom tbody tr", { hasText: oomCgroup.split("/").pop() }).first();
  await ours.waitFor({ timeout: 10_000 });
  const text = await ours.innerText();
  check(/container/.test(text) && /anon/.test(text), `OOM row lacks scope/cause: ${text}`);
  await page.screenshot({ path: join(artifacts, "oom.png"), fullPage: true });
  await ours.click();
  await page.waitForSelector("#flight svg");
  found.flight_series = await page.locator("#flight svg path[data-series]").count();
  await page.screenshot({ path: join(artifacts, "oom-event.png"), fullPage: true });

  // Findings: the kill is a critical finding with its figures and the limit to set, on the
  // Findings page (reached from the navigation) and on the victim's own page.
  await page.goto(url + "/#/");
  await ready("#/");
  await page.click('nav a[data-nav="findings"]');
  await ready("#/findings");
  const killed = page.locator(`#findings .finding[data-kind="oom_killed"][data-cgroup="${oomCgroup}"]`);
  check(await killed.count() === 1, `no oom_killed finding for ${oomCgroup}`);
  check(await killed.evaluate((e) => e.classList.contains("critical")), "the kill is not critical");
  const card = await killed.innerText();
  check(card.includes("resources.limits.memory") && /OOM-killed/.test(card), `finding card: ${card}`);
  await killed.locator("summary").click();
  found.kill_evidence = await killed.locator("table.evidence tr").count();
  check(found.kill_evidence >= 4, `${found.kill_evidence} evidence rows`);
  const navCount = await page.locator("#findings-count").innerText();
  check(Number(navCount) >= 1, `findings count in the navigation: ${navCount}`);
  await page.screenshot({ path: join(artifacts, "findings.png"), fullPage: true });
  await page.goto(url + "/#/cgroup" + encodeURI(oomCgroup));
  await ready("#/cgroup" + encodeURI(oomCgroup));
  check(await page.locator('#cgroup-findings .finding[data-kind="oom_killed"]').count() === 1, "the victim's page lacks its finding");

  // The Eviction page, reached from the navigation.
  await page.goto(url + "/#/");
  await ready("#/");
  await page.click('nav a[data-nav="eviction"]');
  await ready("#/eviction");
  check(await page.getAttribute('nav a[data-nav="eviction"]', "class") === "active", "Eviction not marked in the navigation");
  check(await page.locator("#eviction-pods, .empty").count() >= 1, "eviction page without a pods table");

  // On the kubepods tree: kubelet's order with reasons, the signals as bars, the verdicts.
  const evictionUrl = process.env.MEMGLASS_EVICTION_URL;
  if (evictionUrl) {
    const order = env("MEMGLASS_EVICTION_ORDER").split(","), critical = env("MEMGLASS_EVICTION_CRITICAL");
    const ev = await browser.newPage();
    ev.on("pageerror", (e) => errors.push(String(e)));
    await ev.goto(evictionUrl + "/#/eviction");
    await ev.waitForFunction(() => document.body.dataset.ready === "#/eviction", null, { timeout: 20_000 });
    const uids = await ev.locator("#eviction-pods tbody tr").evaluateAll((rows) => rows.map((r) => r.dataset.uid));
    found.eviction_rows = uids.length;
    check(JSON.stringify(uids) === JSON.stringify(order), `eviction order ${uids}, expected ${order}`);
    const ranks = await ev.locator("#eviction-pods tbody tr").evaluateAll((rows) => rows.map((r) => Number(r.dataset.rank)));
    check(ranks.every((r, i) => r === i + 1), `ranks ${ranks}`);
    const reasons = await ev.locator("#eviction-pods td.reason").allInnerTexts();
    check(reasons[0].includes("no memory stats"), `first reason: ${reasons[0]}`);
    check(reasons.some((r) => r.startsWith("exceeds its request by")), `no "exceeds its request" reason: ${reasons}`);
    const criticalRow = ev.locator(`#eviction-pods tr[data-uid="${critical}"]`);
    check((await criticalRow.innerText()).includes("never evicted"), "the critical pod is not marked never evicted");
    check(await criticalRow.evaluate((r) => r.classList.contains("protected")), "the critical row is not shown as protected");
    check((await ev.locator("#eviction-pods tr .badge.next").count()) === 1, "no single 'next' badge");
    found.eviction_signals = await ev.locator("svg.signal").count();
    const met = await ev.locator("svg.signal").evaluateAll((svgs) => svgs.map((s) => s.dataset.met));
    check(met.includes("true") && met.includes("false"), `signals met: ${met}`);
    const margins = await ev.locator('svg.signal rect[data-part="margin"]').count();
    check(margins === 1, `${margins} margin bars (one signal has room left)`);
    const verdicts = await ev.locator("#sizing .badge.verdict").allInnerTexts();
    for (const v of ["under-requested", "over-requested", "near its limit", "no request"]) check(verdicts.includes(v), `verdicts lack ${v}: ${verdicts}`);
    const suggested = await ev.locator('#sizing td[data-key="suggested_request"]').evaluateAll((cells) => cells.filter((c) => c.dataset.value !== "").length);
    check(suggested >= 6, `${suggested} suggested requests`);
    await ev.screenshot({ path: join(artifacts, "eviction.png"), fullPage: true });
  }

  // An agent with a token: the page asks for it once, then shows the data.
  const tokenUrl = process.env.MEMGLASS_TOKEN_URL;
  if (tokenUrl) {
    const guarded = await browser.newPage();
    guarded.on("pageerror", (e) => errors.push(String(e)));
    await guarded.goto(tokenUrl + "/#/");
    await guarded.waitForSelector("#token", { timeout: 10_000 });
    await guarded.screenshot({ path: join(artifacts, "token.png") });
    await guarded.fill("#token", env("MEMGLASS_TOKEN"));
    await guarded.click("#save");
    await guarded.waitForFunction(() => document.body.dataset.ready === "#/", null, { timeout: 20_000 });
    found.token_pie_segments = await guarded.locator("#node-pie svg path").count();
    check(found.token_pie_segments >= 4, "no data after giving the token");
  }

  check(errors.length === 0, `browser errors: ${errors.join("; ")}`);
  console.log(JSON.stringify({ ok: true, ...found }));
} catch (error) {
  console.log(JSON.stringify({ ok: false, error: String(error.message || error), ...found }));
  process.exitCode = 1;
} finally {
  await browser.close();
  rmSync(profile, { recursive: true, force: true });
}
