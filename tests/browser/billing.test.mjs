// A purchase clicked through in a real browser: the billing page at `/` of the local stack
// (examples/billing-page) and the Stripe stand-in's hosted Checkout, portal and invoice pages,
// in headless Chromium (Debian's, at CHROMIUM) driven by playwright-core. test.sh starts the
// stack; each test signs in as an account of its own. On a failure, a screenshot of the page
// goes to TOLLGATE_ARTIFACTS (target/browser-artifacts/).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { chromium } from "playwright-core";

const base = process.env.TOLLGATE_URL ?? "http://127.0.0.1:3330";
const artifacts = process.env.TOLLGATE_ARTIFACTS ?? "target/browser-artifacts";
const WAIT = 20_000; // events reach the worker asynchronously: the page polls

let browser;
before(async () => {
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium" });
});
after(async () => {
  await browser?.close();
});

/** Runs `body` with a fresh page; on failure keeps a screenshot named after the test. */
function inBrowser(name, body) {
  test(name, async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    try {
      await body(page, `acct_browser_${name.replace(/[^a-z0-9]+/gi, "_").slice(0, 40)}_${Date.now()}`);
    } catch (error) {
      mkdirSync(artifacts, { recursive: true });
      await page.screenshot({ path: `${artifacts}/${name.replace(/[^a-z0-9]+/gi, "-")}.png`, fullPage: true }).catch(() => {});
      throw error;
    } finally {
      await context.close();
    }
  });
}

async function signIn(page, account) {
  await page.goto(`${base}/`);
  await page.getByLabel("Account id").fill(account);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByTestId("plan-name").filter({ hasText: "Free" }).waitFor({ timeout: WAIT });
}

/** From the billing page to the hosted Checkout page of Pro, monthly. */
async function upgradeToPro(page) {
  await page.getByRole("combobox", { name: "Plan" }).selectOption("pro");
  await page.getByRole("combobox", { name: "Interval" }).selectOption("month");
  await page.getByRole("button", { name: "Upgrade" }).click();
  await page.waitForURL(/\/stripe\/checkout\/cs_test_/, { timeout: WAIT });
}

async function enterCard(page, number) {
  await page.getByLabel("Card number").fill(number);
  await page.getByLabel("Expiry").fill("12 / 34");
  await page.getByLabel("CVC").fill("123");
  await page.getByRole("button", { name: "Pay" }).click();
}

async function seesTrialingPro(page) {
  await page.waitForURL(`${base}/**`, { timeout: WAIT });
  await page.getByTestId("plan-status").filter({ hasText: "trialing" }).waitFor({ timeout: WAIT });
  assert.equal(await page.getByTestId("plan-name").textContent(), "Pro");
  // Pro's limits (plans.toml): 10,000 API calls a period.
  await page.getByTestId("usage-api_calls").filter({ hasText: "/ 10000" }).waitFor({ timeout: WAIT });
}

inBrowser("a free account upgrades to pro with 4242 and sees a trialing pro with pros limits", async (page, account) => {
  await signIn(page, account);
  await upgradeToPro(page);
  const checkout = page.getByRole("main");
  assert.match(await checkout.textContent(), /Pro/);
  assert.match(await checkout.textContent(), /14-day free trial/);

  await enterCard(page, "4242 4242 4242 4242");

  await seesTrialingPro(page);
  assert.equal(await page.getByTestId("access").getAttribute("data-allowed"), "true");
});

inBrowser("a declined card stays free and shows the decline", async (page, account) => {
  await signIn(page, account);
  await upgradeToPro(page);

  await enterCard(page, "4000 0000 0000 0002");

  await page.getByRole("alert").filter({ hasText: "Your card was declined." }).waitFor({ timeout: WAIT });
  assert.match(page.url(), /\/stripe\/checkout\//, "still on Checkout");
  await page.getByRole("link", { name: "Cancel" }).click();
  await page.getByRole("status").filter({ hasText: "Checkout canceled" }).waitFor({ timeout: WAIT });
  await page.getByTestId("plan-name").filter({ hasText: "Free" }).waitFor({ timeout: WAIT });
  assert.equal(await page.getByTestId("plan-status").textContent(), "none");
});

inBrowser("the authentication card fails then pays when completed", async (page, account) => {
  await signIn(page, account);
  await upgradeToPro(page);

  await enterCard(page, "4000 0027 6000 3184");
  await page.getByRole("button", { name: "Fail" }).click();
  await page.getByRole("alert").filter({ hasText: "unable to authenticate" }).waitFor({ timeout: WAIT });
  await enterCard(page, "4000 0027 6000 3184");
  await page.getByRole("button", { name: "Complete" }).click();

  await seesTrialingPro(page);
});

inBrowser("a new key is shown once then listed by its prefix and revoked", async (page, account) => {
  await signIn(page, account);
  await page.getByLabel("Name").fill("ci");
  await page.getByLabel("usage:read").check();
  await page.getByRole("button", { name: "Create key" }).click();

  const shown = page.getByTestId("new-key");
  await shown.filter({ hasText: "Copy it now: it is not shown again" }).waitFor({ timeout: WAIT });
  const secret = (await shown.locator("code").textContent()).trim();
  assert.match(secret, /^tg_test_/);
  const prefix = secret.slice(0, 12);
  await page.reload();
  await page.getByRole("cell", { name: prefix, exact: true }).waitFor({ timeout: WAIT });
  assert.equal(await page.getByText(secret).count(), 0, "the secret is never shown again");

  await page.getByRole("button", { name: `Revoke ${prefix}` }).click();
  await page.getByRole("row").filter({ hasText: prefix }).filter({ hasText: "revoked" }).waitFor({ timeout: WAIT });
});

inBrowser("cancel at period end in the portal shows on the billing page", async (page, account) => {
  await signIn(page, account);
  await upgradeToPro(page);
  await enterCard(page, "4242424242424242");
  await seesTrialingPro(page);

  await page.getByRole("button", { name: "Manage billing" }).click();
  await page.waitForURL(/\/stripe\/billing_portal\/bps_/, { timeout: WAIT });
  await page.getByRole("button", { name: "Cancel at period end" }).click();
  await page.getByText("Cancels on").waitFor({ timeout: WAIT });
  await page.getByRole("link", { name: "Return" }).click();

  await page.getByTestId("cancel-at-period-end").waitFor({ timeout: WAIT });
  assert.equal(await page.getByTestId("plan-status").textContent(), "trialing");
});

inBrowser("an invoice link opens its page", async (page, account) => {
  await signIn(page, account);
  await upgradeToPro(page);
  await enterCard(page, "4242424242424242");
  await seesTrialingPro(page);
  // Past the trial on the stack's clock: the first renewal is invoiced and paid.
  const moved = await fetch(`${base}/_dev/clock`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ advance: 15 * 86_400, wait: "applied" }),
  });
  assert.equal(moved.status, 200, await moved.text());
  await page.reload();
  const view = page.getByRole("link", { name: "View invoice" }).first();
  await view.waitFor({ timeout: WAIT });

  // The link opens in a new tab, as the billing page keeps its own.
  const [invoice] = await Promise.all([page.context().waitForEvent("page"), view.click()]);

  await invoice.waitForURL(/\/stripe\/invoices\/in_/, { timeout: WAIT });
  await invoice.getByRole("heading", { name: /^Invoice / }).waitFor({ timeout: WAIT });
  assert.equal(await invoice.getByTestId("invoice-status").textContent(), "paid");
  const pdf = await fetch(`${invoice.url()}/pdf`);
  assert.equal(pdf.headers.get("content-type"), "application/pdf");
});
