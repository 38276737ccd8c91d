// Tollgate's example billing page: plain DOM over @tollgate/client's `userClient`, typed with the
// client's generated `components`. Copy it and adapt the sign-in (see README.md).
import { userClient, type TollgateClient } from "@tollgate/client";
import type { components } from "@tollgate/client";

type Schemas = components["schemas"];
type Summary = Schemas["BillingSummary"];
type Credits = Schemas["CreditsAnswer"];
type Invoice = Schemas["InvoiceView"];
type Key = Schemas["KeyView"];
type NewKey = Schemas["NewKey"];
type Tier = Schemas["TierView"];
type Reason = Schemas["Reason"];
type Scope = Schemas["CreateRequest"]["scopes"][number];
type PaidPlan = Schemas["PlanRequest"]["plan"];
type Interval = Schemas["PlanRequest"]["interval"];

const ACCOUNT_STORAGE = "tollgate.account";
const SCOPES: readonly Scope[] = ["usage:read", "subscription:read"];
const INTERVAL_NAMES: Record<Interval, string> = { month: "Monthly", year: "Yearly" };
// `Record<Reason, ...>`: a reason added to openapi.json fails the typecheck until it is described.
const REASONS: Record<Reason, string> = {
  active: "The subscription is paid up.",
  trialing: "In the free trial.",
  grace_period: "A payment failed: access continues while it is retried.",
  past_due_expired: "A payment failed and the grace period is over.",
  unpaid: "The subscription is unpaid.",
  disputed: "A payment is disputed.",
  refunded: "The payment was refunded.",
  canceled: "The subscription is canceled.",
  incomplete: "The first payment is not complete.",
  incomplete_expired: "The first payment was never completed.",
  paused: "The subscription is paused.",
  no_subscription: "No paid plan: the free tier's limits apply.",
};

/** The signed-in account's client, or null when signed out. */
let client: TollgateClient | null = null;
/** The catalogue from `GET /plans`, for plan names and the upgrade form. */
let tiers: Tier[] = [];
let pollTimer: ReturnType<typeof setInterval> | undefined;

// ---------------------------------------------------------------------------------------------
// DOM helpers

function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const element = document.getElementById(id);
  if (!element) throw new Error(`#${id} is missing from index.html`);
  return element as T;
}

/** A new element with attributes (set with setAttribute) and children (text or nodes). */
function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attributes: Record<string, string> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, value);
  element.append(...children);
  return element;
}

/** A link, only for http(s) URLs (never a `javascript:` one from a tampered answer). */
function link(url: string | null | undefined, text: string): Node {
  if (!url || !/^https?:\/\//i.test(url)) return document.createTextNode("");
  return el("a", { href: url, target: "_blank", rel: "noopener noreferrer" }, text);
}

/** Unix seconds as a UTC date, `2025-01-31`. */
function date(seconds: number): string {
  return new Date(seconds * 1000).toISOString().slice(0, 10);
}

/** Unix seconds as a UTC date and time, `2025-01-31 14:05 UTC`. */
function dateTime(seconds: number): string {
  return `${new Date(seconds * 1000).toISOString().slice(0, 16).replace("T", " ")} UTC`;
}

/** An amount in the currency's smallest unit (cents), formatted for the reader's locale. */
function money(amount: number, currency: string): string {
  const format = new Intl.NumberFormat(undefined, { style: "currency", currency: currency.toUpperCase() });
  const digits = format.resolvedOptions().maximumFractionDigits ?? 2;
  return format.format(amount / 10 ** digits);
}

// ---------------------------------------------------------------------------------------------
// Calls and errors

/**
 * The answer's body, or an Error with the API's message: Tollgate's `{error: {code, message}}`,
 * API Gateway's own `{message}` (`Unauthorized`, `Forbidden`) or, failing both, the status.
 */
async function call<T>(request: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  const { data, error, response } = await request;
  if (response.ok && data !== undefined) return data;
  throw new Error(errorMessage(error) ?? `${response.status} ${response.statusText}`.trim());
}

function errorMessage(body: unknown): string | undefined {
  if (typeof body === "string") return body || undefined;
  if (typeof body !== "object" || body === null) return undefined;
  if ("error" in body && typeof body.error === "object" && body.error !== null && "message" in body.error) {
    return String(body.error.message);
  }
  if ("message" in body) return String(body.message);
  return undefined;
}

function showError(error: unknown): void {
  byId("error").textContent = error instanceof Error ? error.message : String(error);
}

function clearError(): void {
  byId("error").textContent = "";
}

/** Runs a user's action: clears the previous error and shows this one's, if any. */
async function act(action: () => Promise<void>): Promise<void> {
  clearError();
  try {
    await action();
  } catch (error) {
    showError(error);
  }
}

/** Runs a load, showing its error without stopping the others. */
async function load(task: (api: TollgateClient) => Promise<void>): Promise<void> {
  const api = client;
  if (!api) return;
  try {
    await task(api);
  } catch (error) {
    if (api === client) showError(error);
  }
}

// ---------------------------------------------------------------------------------------------
// Sign in and out

function signIn(account: string): void {
  localStorage.setItem(ACCOUNT_STORAGE, account);
  // LOCAL STACK ONLY: `make dev` reads the development header `x-tollgate-account` as the
  // verified identity and ignores the token. A deployed Tollgate ignores the header: in
  // production pass the signed-in user's JWT as `token` and drop `headers`.
  client = userClient({
    baseUrl: window.location.origin,
    token: "local",
    headers: { "x-tollgate-account": account },
  });
  byId("account-name").textContent = account;
  byId("sign-in-form").hidden = true;
  byId("signed-in").hidden = false;
  byId("billing").hidden = false;
  void loadEverything();
}

function signOut(): void {
  localStorage.removeItem(ACCOUNT_STORAGE);
  client = null;
  stopPolling();
  clearError();
  byId("checkout-status").textContent = "";
  byId("billing").hidden = true;
  byId("signed-in").hidden = true;
  byId("sign-in-form").hidden = false;
  hideNewKey();
}

async function loadEverything(): Promise<void> {
  await load(loadPlans); // first: the summary shows the plan's name from the catalogue
  await Promise.all([refreshBilling(), load(loadKeys)]);
}

/** The billing data (not the key list, so that a new key's secret stays on screen). */
async function refreshBilling(): Promise<void> {
  await Promise.all([load(loadSummary), load(loadCredits), load(loadInvoices)]);
}

// ---------------------------------------------------------------------------------------------
// Plan and access, usage: GET /billing/summary

async function loadSummary(api: TollgateClient): Promise<void> {
  const summary = await call(api.GET("/billing/summary"));
  if (api !== client) return;
  renderPlan(summary);
  renderUsage(summary.usage);
}

function renderPlan(summary: Summary): void {
  const name = byId("plan-name");
  name.textContent = tiers.find((tier) => tier.id === summary.plan)?.name ?? summary.plan;
  name.dataset.plan = summary.plan;
  byId("plan-status").textContent = summary.status ?? "none";

  const access = byId("access");
  const { allowed, reason } = summary.access;
  access.textContent = `${allowed ? "allowed" : "denied"}: ${reason}`;
  access.dataset.allowed = String(allowed);
  byId("access-hint").textContent = REASONS[reason];

  const notes: Node[] = [];
  if (summary.trial_end != null) notes.push(el("li", { "data-testid": "trial-end" }, `Trial ends ${date(summary.trial_end)}`));
  if (summary.grace_until != null) {
    notes.push(el("li", { "data-testid": "grace-until" }, `Grace until ${dateTime(summary.grace_until)}`));
  }
  if (summary.cancel_at_period_end) {
    const end = summary.current_period_end != null ? ` (${date(summary.current_period_end)})` : "";
    notes.push(el("li", { "data-testid": "cancel-at-period-end" }, `Cancels at period end${end}`));
  }
  if (summary.renewal) {
    const { at, plan, interval, amount, currency } = summary.renewal;
    const price = amount != null && currency ? `, ${money(amount, currency)}` : "";
    notes.push(el("li", {}, `Renews ${date(at)}: ${plan}${interval ? ` (${interval})` : ""}${price}`));
  }
  if (summary.payment_action_required && summary.payment_action) {
    const { amount_due, currency, hosted_invoice_url } = summary.payment_action;
    notes.push(
      el(
        "li",
        { "data-testid": "payment-action" },
        `Payment required: ${money(amount_due, currency)} `,
        link(hosted_invoice_url, "Pay invoice"),
      ),
    );
  }
  byId("plan-notes").replaceChildren(...notes);
}

function renderUsage(usage: Summary["usage"]): void {
  byId("usage-window").textContent = `${date(usage.period_start)} – ${date(usage.period_end)}`;
  const rows = Object.entries(usage.metrics).map(([metric, { used, limit }]) => {
    const id = `usage-${metric}`;
    // An unlimited metric (`limit: null`) has an empty bar.
    const bar = el("progress", {
      id,
      max: String(limit ?? 1),
      value: String(limit == null ? 0 : Math.min(used, limit)),
      "aria-describedby": `${id}-count usage-window`,
    });
    const count = el("span", { id: `${id}-count`, "data-testid": id }, `${used} / ${limit ?? "unlimited"}`);
    return el("div", { class: "metric" }, el("label", { for: id }, metric), bar, count);
  });
  byId("usage-metrics").replaceChildren(...rows);
}

// ---------------------------------------------------------------------------------------------
// Credits: GET /credits

async function loadCredits(api: TollgateClient): Promise<void> {
  const credits = await call(api.GET("/credits", { params: { query: { limit: 20 } } }));
  if (api === client) renderCredits(credits);
}

function renderCredits(credits: Credits): void {
  byId("credits-balance").textContent = String(credits.balance);
  byId("credits-split").textContent = `(${credits.purchased} purchased, ${credits.subscription} from the plan)`;
  const rows = credits.entries.map((entry) =>
    el(
      "tr",
      {},
      el("td", {}, dateTime(Math.floor(entry.at_ms / 1000))),
      el("td", {}, entry.kind),
      el("td", {}, entry.credits > 0 ? `+${entry.credits}` : String(entry.credits)),
    ),
  );
  if (rows.length === 0) rows.push(el("tr", {}, el("td", { colspan: "3" }, "No credit activity yet.")));
  byId("ledger").replaceChildren(...rows);
}

// ---------------------------------------------------------------------------------------------
// Invoices: GET /invoices

async function loadInvoices(api: TollgateClient): Promise<void> {
  const invoices = await call(api.GET("/invoices", { params: { query: { limit: 20 } } }));
  if (api === client) renderInvoices(invoices.data);
}

function renderInvoices(invoices: Invoice[]): void {
  const rows = invoices.map((invoice) =>
    el(
      "tr",
      {},
      el("td", {}, invoice.number ?? invoice.id),
      el("td", {}, money(invoice.amount_due, invoice.currency)),
      el("td", {}, invoice.status),
      el("td", {}, date(invoice.created)),
      el("td", {}, link(invoice.hosted_invoice_url, "View invoice"), " ", link(invoice.invoice_pdf, "PDF")),
    ),
  );
  if (rows.length === 0) rows.push(el("tr", {}, el("td", { colspan: "5" }, "No invoices yet.")));
  byId("invoices").replaceChildren(...rows);
}

// ---------------------------------------------------------------------------------------------
// API keys: GET, POST /api-keys; DELETE /api-keys/{id}; POST /api-keys/{id}/rotate

async function loadKeys(api: TollgateClient): Promise<void> {
  const { keys } = await call(api.GET("/api-keys"));
  if (api === client) renderKeys(keys);
}

/** The list shows prefixes only: rendering it hides any secret shown before. */
function renderKeys(keys: Key[]): void {
  hideNewKey();
  const rows = keys.map((key) => {
    const actions: (Node | string)[] = [];
    if (key.status !== "revoked") {
      actions.push(button("Revoke", `Revoke ${key.prefix}`, () => revokeKey(key.id)));
    }
    if (key.status === "active") {
      actions.push(" ", button("Rotate", `Rotate ${key.prefix}`, () => rotateKey(key.id)));
    }
    return el(
      "tr",
      {},
      el("td", {}, el("code", {}, key.prefix)),
      el("td", {}, key.name),
      el("td", {}, key.scopes.join(", ")),
      el("td", {}, key.status),
      el("td", {}, ...actions),
    );
  });
  if (rows.length === 0) rows.push(el("tr", {}, el("td", { colspan: "5" }, "No API keys yet.")));
  byId("keys").replaceChildren(...rows);
}

function button(text: string, label: string, onClick: () => Promise<void>): HTMLButtonElement {
  const element = el("button", { type: "button", "aria-label": label }, text);
  element.addEventListener("click", () => void act(onClick));
  return element;
}

async function createKey(name: string, scopes: Scope[]): Promise<void> {
  const api = client;
  if (!api) return;
  const created = await call(api.POST("/api-keys", { body: { name, scopes } }));
  try {
    await loadKeys(api);
  } finally {
    showNewKey(created, "New key"); // after the list: rendering it hides secrets
  }
}

async function revokeKey(id: string): Promise<void> {
  const api = client;
  if (!api) return;
  await call(api.DELETE("/api-keys/{id}", { params: { path: { id } } }));
  await loadKeys(api);
}

async function rotateKey(id: string): Promise<void> {
  const api = client;
  if (!api) return;
  const created = await call(api.POST("/api-keys/{id}/rotate", { params: { path: { id } }, body: {} }));
  try {
    await loadKeys(api);
  } finally {
    showNewKey(created, "Rotated key");
  }
}

/** The only time the full key is on screen: the answer to its creation or rotation. */
function showNewKey(key: NewKey, what: string): void {
  const copy = el("button", { type: "button" }, "Copy");
  copy.addEventListener("click", () => void act(() => navigator.clipboard.writeText(key.key)));
  const box = byId("new-key");
  box.replaceChildren(
    el("p", {}, `${what} "${key.name}" (${key.prefix}). `, el("strong", {}, "Copy it now: it is not shown again")),
    el("p", {}, el("code", {}, key.key), " ", copy),
  );
  box.hidden = false;
}

function hideNewKey(): void {
  const box = byId("new-key");
  box.replaceChildren();
  box.hidden = true;
}

function renderScopeCheckboxes(): void {
  const boxes = SCOPES.flatMap((scope) => {
    const id = `scope-${scope.replace(":", "-")}`;
    return [el("input", { type: "checkbox", id, name: "scopes", value: scope }), el("label", { for: id }, scope)];
  });
  byId("key-scopes").replaceChildren(...boxes);
}

// ---------------------------------------------------------------------------------------------
// Upgrade and manage: GET /plans, POST /checkout, POST /portal

async function loadPlans(api: TollgateClient): Promise<void> {
  const pricing = await call(api.GET("/plans"));
  tiers = pricing.tiers;
  const select = byId<HTMLSelectElement>("upgrade-plan");
  const chosen = select.value;
  const paid = tiers.filter((tier) => tier.prices.length > 0);
  select.replaceChildren(...paid.map((tier) => el("option", { value: tier.id }, tier.name)));
  if (paid.some((tier) => tier.id === chosen)) select.value = chosen;
  renderIntervals();
}

/** The chosen plan's intervals, and its price. */
function renderIntervals(): void {
  const tier = tiers.find((t) => t.id === byId<HTMLSelectElement>("upgrade-plan").value);
  const select = byId<HTMLSelectElement>("upgrade-interval");
  const chosen = select.value;
  const prices = tier?.prices ?? [];
  select.replaceChildren(...prices.map((price) => el("option", { value: price.interval }, INTERVAL_NAMES[price.interval])));
  if (prices.some((price) => price.interval === chosen)) select.value = chosen;
  renderPrice();
}

function renderPrice(): void {
  const tier = tiers.find((t) => t.id === byId<HTMLSelectElement>("upgrade-plan").value);
  const price = tier?.prices.find((p) => p.interval === byId<HTMLSelectElement>("upgrade-interval").value);
  const trial = tier?.trial_days ? `, ${tier.trial_days}-day free trial` : "";
  byId("upgrade-price").textContent = tier && price ? `${tier.name}: ${money(price.amount, price.currency)} a ${price.interval}${trial}` : "";
}

async function upgrade(): Promise<void> {
  const api = client;
  if (!api) return;
  // The options come from GET /plans' paid tiers; the API validates the pair again (400).
  const plan = byId<HTMLSelectElement>("upgrade-plan").value as PaidPlan;
  const interval = byId<HTMLSelectElement>("upgrade-interval").value as Interval;
  // Where Checkout returns: the deployment's DEFAULT_SUCCESS_URL and DEFAULT_CANCEL_URL (on the
  // local stack, this page with ?checkout=success or ?checkout=cancel). A 409 says the account
  // already has a subscription: "Manage billing" changes it.
  const session = await call(api.POST("/checkout", { body: { plan, interval } }));
  window.location.assign(session.url);
}

async function manageBilling(): Promise<void> {
  const api = client;
  if (!api) return;
  // Returns to the deployment's DEFAULT_RETURN_URL (on the local stack, this page).
  const portal = await call(api.POST("/portal", { body: {} }));
  window.location.assign(portal.url);
}

// ---------------------------------------------------------------------------------------------
// Back from Checkout (?checkout=success or ?checkout=cancel) or the portal (?portal=return)

/** Webhooks apply a payment or a portal change asynchronously: refresh every second for ten seconds. */
function handleCheckoutReturn(): void {
  const url = new URL(window.location.href);
  const outcome = url.searchParams.get("checkout");
  const portal = url.searchParams.get("portal") === "return";
  if (outcome !== "success" && outcome !== "cancel" && !portal) return;
  url.searchParams.delete("checkout");
  url.searchParams.delete("portal");
  history.replaceState(null, "", url); // a reload does not show it again
  const status = byId("checkout-status");
  if (outcome === "cancel") {
    status.textContent = "Checkout canceled";
    return;
  }
  status.textContent = portal
    ? "Back from billing: changes show in a moment"
    : "Payment received: your plan updates in a moment";
  stopPolling();
  let left = 10;
  pollTimer = setInterval(() => {
    left -= 1;
    if (left <= 0) stopPolling();
    void refreshBilling();
  }, 1000);
}

function stopPolling(): void {
  if (pollTimer !== undefined) clearInterval(pollTimer);
  pollTimer = undefined;
}

// ---------------------------------------------------------------------------------------------
// Wiring

function start(): void {
  renderScopeCheckboxes();

  byId<HTMLFormElement>("sign-in-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const account = byId<HTMLInputElement>("account-id").value.trim();
    clearError();
    if (account) signIn(account);
  });
  byId("sign-out").addEventListener("click", signOut);
  byId("manage-billing").addEventListener("click", () => void act(manageBilling));

  const createForm = byId<HTMLFormElement>("create-key-form");
  createForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const name = byId<HTMLInputElement>("key-name").value;
    const checked = createForm.querySelectorAll<HTMLInputElement>('input[name="scopes"]:checked');
    const scopes = SCOPES.filter((scope) => [...checked].some((box) => box.value === scope));
    void act(async () => {
      await createKey(name, scopes);
      createForm.reset();
    });
  });

  byId("upgrade-plan").addEventListener("change", renderIntervals);
  byId("upgrade-interval").addEventListener("change", renderPrice);
  byId<HTMLFormElement>("upgrade-form").addEventListener("submit", (event) => {
    event.preventDefault();
    void act(upgrade);
  });

  handleCheckoutReturn();
  const stored = localStorage.getItem(ACCOUNT_STORAGE);
  if (stored) signIn(stored);
}

start();
