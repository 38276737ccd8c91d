//! The stand-in's hosted pages over the local stack, as a browser posts their forms: Checkout
//! with Stripe's test cards, the customer portal and an invoice with its PDF, each at a URL
//! with the stack's host and port, each action's events delivered before the page moves on.
//! (The browser tests in `tests/browser/` click the same pages through the billing page.)

mod common;

use reqwest::redirect::Policy;
use serde_json::{Value, json};

const ACCOUNT: &str = "acct_pages";

struct Pages {
    stack: common::LocalStack,
    http: reqwest::Client,
}

impl Pages {
    async fn new(test: &str) -> Self {
        let stack = common::serve_clocked_stack(test).await;
        let http = reqwest::Client::builder().redirect(Policy::none()).build().unwrap();
        Self { stack, http }
    }

    async fn api(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request =
            self.http.request(method, format!("{}{path}", self.stack.base)).header("x-tollgate-account", ACCOUNT);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn subscription(&self) -> Value {
        self.api(reqwest::Method::GET, "/subscription", None).await.1
    }

    async fn page(&self, url: &str) -> (u16, String) {
        let response = self.http.get(url).send().await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    /// Posts a page's form; answers the status, the `Location` and the page.
    async fn post(&self, url: &str, form: &[(&str, &str)]) -> (u16, Option<String>, String) {
        let response = self.http.post(url).form(form).send().await.unwrap();
        let status = response.status().as_u16();
        let location = response.headers().get("location").map(|l| l.to_str().unwrap().to_owned());
        (status, location, response.text().await.unwrap())
    }

    /// A stack whose account bought Pro on the Checkout page (trialing).
    async fn subscribed(test: &str) -> Self {
        let pages = Self::new(test).await;
        let url = pages.checkout().await;
        pages.post(&url, &card("4242424242424242")).await;
        pages.stack.drain().await;
        pages
    }

    async fn checkout(&self) -> String {
        let (status, session) =
            self.api(reqwest::Method::POST, "/checkout", Some(json!({"plan": "pro", "interval": "month"}))).await;
        assert_eq!(status, 200, "{session}");
        session["url"].as_str().unwrap().to_owned()
    }
}

fn card(number: &str) -> [(&'static str, &str); 3] {
    [("card", number), ("expiry", "12 / 34"), ("cvc", "123")]
}

#[tokio::test]
async fn checkout_takes_stripes_test_cards_declines_and_authentication_included() {
    let pages = Pages::new("pages-checkout").await;
    let url = pages.checkout().await;
    assert!(url.starts_with(&format!("{}/stripe/checkout/cs_test_", pages.stack.base)), "{url}");

    let (status, page) = pages.page(&url).await;
    assert_eq!(status, 200);
    for shown in ["Pro", "$", "per month", "14-day free trial", "Card number", "Expiry", "CVC", ">Pay<", ">Cancel<"] {
        assert!(page.contains(shown), "{shown} in {page}");
    }
    assert!(
        page.contains(&format!("href=\"{}/?checkout=cancel\"", pages.stack.base)),
        "Cancel leads to the billing page"
    );

    let (status, _, declined) = pages.post(&url, &card("4000 0000 0000 0002")).await;
    assert_eq!(status, 402);
    assert!(declined.contains("Your card was declined."), "{declined}");
    let (status, _, wrong) = pages.post(&url, &card("4242 4242 4242 4241")).await;
    assert_eq!((status, wrong.contains("Your card number is incorrect.")), (402, true));

    let (status, _, challenge) = pages.post(&url, &card("4000 0027 6000 3184")).await;
    assert_eq!(status, 200);
    assert!(challenge.contains(">Complete<") && challenge.contains(">Fail<"), "{challenge}");
    let (status, _, failed) = pages.post(&format!("{url}/authenticate"), &[("outcome", "fail")]).await;
    assert_eq!(status, 402);
    assert!(failed.contains("unable to authenticate your payment method"), "{failed}");
    assert!(failed.contains(&format!("action=\"{url}\"")), "the card form posts to the session's page: {failed}");
    pages.stack.drain().await;
    assert_eq!(pages.subscription().await["plan"], "free", "nothing was bought yet");

    let (status, location, _) = pages.post(&format!("{url}/authenticate"), &[("outcome", "complete")]).await;
    assert_eq!((status, location.as_deref()), (303, Some(format!("{}/?checkout=success", pages.stack.base).as_str())));
    pages.stack.drain().await;
    let subscription = pages.subscription().await;
    assert_eq!((&subscription["plan"], &subscription["status"]), (&json!("pro"), &json!("trialing")), "{subscription}");
    let (_, done) = pages.page(&url).await;
    assert!(done.contains("no longer available"), "a paid session cannot be paid twice: {done}");
}

#[tokio::test]
async fn a_card_that_pays_completes_the_session_and_follows_success_url() {
    let pages = Pages::new("pages-pay").await;
    let url = pages.checkout().await;

    let (status, location, _) = pages.post(&url, &card("4242 4242 4242 4242")).await;

    assert_eq!((status, location.as_deref()), (303, Some(format!("{}/?checkout=success", pages.stack.base).as_str())));
    pages.stack.drain().await;
    assert_eq!(pages.subscription().await["plan"], "pro");
}

#[tokio::test]
async fn a_credit_pack_is_bought_on_the_same_checkout_page() {
    let pages = Pages::new("pages-pack").await;
    let (status, session) =
        pages.api(reqwest::Method::POST, "/credits/checkout", Some(json!({"pack": "credits_1000"}))).await;
    assert_eq!(status, 200, "{session}");
    let url = session["url"].as_str().unwrap();
    let (_, page) = pages.page(url).await;
    assert!(page.contains("1000 credits") && page.contains("$10.00"), "{page}");

    let (status, location, _) = pages.post(url, &card("4242 4242 4242 4242")).await;

    assert_eq!((status, location.as_deref()), (303, Some(format!("{}/?checkout=success", pages.stack.base).as_str())));
    pages.stack.drain().await;
    let (_, credits) = pages.api(reqwest::Method::GET, "/credits", None).await;
    assert_eq!(credits["purchased"], 1000, "{credits}");
}

#[tokio::test]
async fn the_invoice_page_shows_its_lines_and_pdf_and_the_portal_cancels_at_period_end() {
    let pages = Pages::subscribed("pages-portal").await;

    // Past the trial: the first invoice is paid, and its pages are the stack's.
    let now = pages.api(reqwest::Method::GET, "/_dev/clock", None).await.1["now"].as_i64().unwrap();
    pages.stack.move_clock(now + 15 * 86_400).await;
    let (_, invoices) = pages.api(reqwest::Method::GET, "/invoices", None).await;
    let invoice = &invoices["data"][0];
    let hosted = invoice["hosted_invoice_url"].as_str().unwrap_or_else(|| panic!("an invoice: {invoices}"));
    assert!(hosted.starts_with(&format!("{}/stripe/invoices/in_", pages.stack.base)), "{hosted}");
    let (status, page) = pages.page(hosted).await;
    assert_eq!(status, 200);
    for shown in [invoice["number"].as_str().unwrap(), "Amount due", "paid", "Download PDF"] {
        assert!(page.contains(shown), "{shown} in {page}");
    }
    let pdf = pages.http.get(invoice["invoice_pdf"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(pdf.headers()["content-type"], "application/pdf");
    assert!(pdf.bytes().await.unwrap().starts_with(b"%PDF-1.4"));

    let (status, portal) = pages.api(reqwest::Method::POST, "/portal", Some(json!({}))).await;
    assert_eq!(status, 200, "{portal}");
    let portal = portal["url"].as_str().unwrap().to_owned();
    assert!(portal.starts_with(&format!("{}/stripe/billing_portal/bps_", pages.stack.base)), "{portal}");
    let (status, page) = pages.page(&portal).await;
    assert_eq!(status, 200);
    for shown in ["Pro", "active", ">Change plan<", ">Cancel at period end<", ">Cancel now<", ">Return<"] {
        assert!(page.contains(shown), "{shown} in {page}");
    }
    assert!(
        page.contains(&format!("href=\"{}/?portal=return\"", pages.stack.base)),
        "Return leads to the billing page"
    );

    let (status, _, _) = pages.post(&portal, &[("action", "cancel_at_period_end")]).await;
    assert_eq!(status, 303);
    pages.stack.drain().await;
    assert_eq!(pages.subscription().await["cancel_at_period_end"], true);
    let (_, page) = pages.page(&portal).await;
    assert!(page.contains("Cancels on"), "{page}");
}

#[tokio::test]
async fn the_portal_changes_the_plan_with_the_events_stripe_sends() {
    let pages = Pages::subscribed("pages-change").await;
    let (_, portal) = pages.api(reqwest::Method::POST, "/portal", Some(json!({}))).await;

    let (status, _, _) =
        pages.post(portal["url"].as_str().unwrap(), &[("action", "change"), ("price", "price_team_monthly")]).await;

    assert_eq!(status, 303);
    pages.stack.drain().await;
    assert_eq!(pages.subscription().await["plan"], "team");
}

#[tokio::test]
async fn the_portal_cancels_now_and_the_account_falls_to_free() {
    let pages = Pages::subscribed("pages-cancel-now").await;
    let (_, portal) = pages.api(reqwest::Method::POST, "/portal", Some(json!({}))).await;

    let (status, _, _) = pages.post(portal["url"].as_str().unwrap(), &[("action", "cancel_now")]).await;

    assert_eq!(status, 303);
    pages.stack.drain().await;
    assert_eq!(pages.subscription().await["plan"], "free");
}

#[tokio::test]
async fn unknown_sessions_and_invoices_are_404_pages() {
    let pages = Pages::new("pages-unknown").await;

    for path in ["checkout/cs_test_nope", "billing_portal/bps_nope", "invoices/in_nope", "invoices/in_nope/pdf"] {
        let (status, page) = pages.page(&format!("{}/stripe/{path}", pages.stack.base)).await;
        assert_eq!(status, 404, "{path}");
        assert!(page.contains("No such"), "{page}");
    }
    let (status, _, _) =
        pages.post(&format!("{}/stripe/checkout/cs_test_nope", pages.stack.base), &card("4242424242424242")).await;
    assert_eq!(status, 404);
}
