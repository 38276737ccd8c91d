//! The hosted pages Stripe serves and the stand-in plays locally, at the URLs its API answers
//! ([`super::StandIn::set_public_base`]): Checkout (`/checkout/{session}`), the customer portal
//! (`/billing_portal/{session}`) and an invoice with its PDF (`/invoices/{invoice}`,
//! `.../pdf`). Checkout takes Stripe's test cards: `4242 4242 4242 4242` pays,
//! `4000 0000 0000 0002` is declined, `4000 0027 6000 3184` asks for authentication. What a
//! page does records the events Stripe would send, which the stand-in's delivery (the local
//! stack's intake) receives before the page moves on.

use crate::StandIn;
use crate::params::Params;
use axum::body::Bytes;
use axum::extract::{Path, State as AxumState};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::Value;

/// Stripe's own messages for the test cards' outcomes.
const DECLINED: &str = "Your card was declined.";
const AUTHENTICATION_FAILED: &str =
    "We are unable to authenticate your payment method. Please choose a different payment method and try again.";
const INCORRECT_NUMBER: &str = "Your card number is incorrect.";
const INCOMPLETE_EXPIRY: &str = "Your card's expiration date is incomplete.";
const INCOMPLETE_CVC: &str = "Your card's security code is incomplete.";

const DECLINE_CARD: &str = "4000000000000002";
const AUTHENTICATE_CARD: &str = "4000002760003184";

/// What a card entered on the Checkout page does.
#[derive(Debug, PartialEq, Eq)]
enum Card {
    Pays,
    Declined,
    Authenticates,
    Invalid(&'static str),
}

impl Card {
    fn read(number: &str, expiry: &str, cvc: &str) -> Self {
        let digits: String = number.chars().filter(|c| !c.is_whitespace()).collect();
        if !(12..=19).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) || !luhn(&digits) {
            return Self::Invalid(INCORRECT_NUMBER);
        }
        let expiry: String = expiry.chars().filter(|c| c.is_ascii_digit()).collect();
        let month = expiry.get(..2).and_then(|m| m.parse::<u8>().ok());
        if expiry.len() != 4 || !month.is_some_and(|m| (1..=12).contains(&m)) {
            return Self::Invalid(INCOMPLETE_EXPIRY);
        }
        if !(3..=4).contains(&cvc.trim().len()) || !cvc.trim().bytes().all(|b| b.is_ascii_digit()) {
            return Self::Invalid(INCOMPLETE_CVC);
        }
        match digits.as_str() {
            DECLINE_CARD => Self::Declined,
            AUTHENTICATE_CARD => Self::Authenticates,
            _ => Self::Pays,
        }
    }
}

/// The Luhn check every card number passes.
fn luhn(digits: &str) -> bool {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if !i.is_multiple_of(2) {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// `text` safe inside HTML text and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <style>body{{font-family:system-ui,sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem}}\
         label{{display:block;margin-top:.75rem}}input,select{{display:block;font-size:1rem;padding:.4rem;width:100%}}\
         button{{margin-top:1rem;font-size:1rem;padding:.5rem 1rem}}[role=alert]{{color:#b00020}}\
         table{{border-collapse:collapse;width:100%}}td,th{{text-align:left;padding:.3rem;border-bottom:1px solid #ddd}}\
         .test{{background:#fff3cd;padding:.4rem;font-size:.85rem}}</style></head>\
         <body><p class=\"test\">Test mode: the local Stripe stand-in</p><main><h1>{title}</h1>{body}</main></body></html>",
        title = escape(title),
    );
    (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
}

fn not_found(what: &str) -> Response {
    page(StatusCode::NOT_FOUND, "Not found", &format!("<p>No such {}.</p>", escape(what)))
}

/// An amount in the currency's minor unit, as Stripe's pages show it (`$29.00`).
fn money(amount: i64, currency: &str) -> String {
    let symbol = match currency {
        "usd" => "$",
        "eur" => "€",
        "gbp" => "£",
        _ => "",
    };
    let sign = if amount < 0 { "-" } else { "" };
    let amount = amount.unsigned_abs();
    let code = if symbol.is_empty() { format!(" {}", currency.to_uppercase()) } else { String::new() };
    format!("{sign}{symbol}{}.{:02}{code}", amount / 100, amount % 100)
}

/// A Unix time as a UTC date (`2026-12-06`).
fn date(unix: i64) -> String {
    let (year, month, day) = crate::calendar::civil_from_days(unix.div_euclid(86_400));
    format!("{year:04}-{month:02}-{day:02}")
}

/// Where the hosted page `path` (e.g. `checkout/cs_...`) is: forms post there, whatever page
/// (an authentication, a refusal) is showing.
fn at(standin: &StandIn, path: &str) -> String {
    format!("{}/{path}", standin.lock().public_base)
}

fn form_fields(body: &Bytes) -> Vec<(String, String)> {
    serde_urlencoded::from_bytes(body).unwrap_or_default()
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> &'a str {
    fields.iter().find(|(key, _)| key == name).map_or("", |(_, value)| value.as_str())
}

// ---- Checkout ----------------------------------------------------------------------------

/// What the Checkout page shows of a session: its items, trial and total.
fn summary(standin: &StandIn, session: &Value) -> String {
    let state = standin.lock();
    let Some(stored) = state.session(session["id"].as_str().unwrap_or_default()) else { return String::new() };
    let currency = session["currency"].as_str().unwrap_or("usd");
    let mut rows = String::new();
    for (price_id, quantity) in &stored.plan.items {
        let Some(price) = state.price(price_id) else { continue };
        let product = state.products.iter().find(|p| p["id"] == price["product"]);
        let name = product.and_then(|p| p["name"].as_str()).unwrap_or("Item");
        let amount = money(price["unit_amount"].as_i64().unwrap_or(0) * quantity, currency);
        let per = price["recurring"]["interval"].as_str().map(|i| format!(" per {i}")).unwrap_or_default();
        rows.push_str(&format!(
            "<tr><td data-testid=\"item\">{}</td><td>{}{}</td></tr>",
            escape(name),
            escape(&amount),
            escape(&per)
        ));
    }
    let trial = stored
        .plan
        .trial_days
        .map(|days| format!("<p data-testid=\"trial\">{days}-day free trial</p>"))
        .unwrap_or_default();
    let total = money(session["amount_total"].as_i64().unwrap_or(0), currency);
    format!(
        "<table aria-label=\"Order\">{rows}</table>{trial}<p>Total due today: <strong data-testid=\"total\">{}</strong></p>",
        escape(&total)
    )
}

fn checkout_page(standin: &StandIn, session: &Value, error: Option<&str>) -> Response {
    let action = escape(&at(standin, &format!("checkout/{}", session["id"].as_str().unwrap_or_default())));
    if session["status"] != "open" {
        return page(
            StatusCode::OK,
            "Checkout",
            "<p role=\"status\">This Checkout Session is no longer available.</p>",
        );
    }
    let cancel = session["cancel_url"].as_str().map(escape).unwrap_or_default();
    let alert = error.map(|e| format!("<p role=\"alert\">{}</p>", escape(e))).unwrap_or_default();
    let status = if error.is_some() { StatusCode::PAYMENT_REQUIRED } else { StatusCode::OK };
    let body = format!(
        "{summary}{alert}<form method=\"post\" action=\"{action}\">\
         <label for=\"card\">Card number</label><input id=\"card\" name=\"card\" inputmode=\"numeric\" autocomplete=\"cc-number\" placeholder=\"4242 4242 4242 4242\">\
         <label for=\"expiry\">Expiry</label><input id=\"expiry\" name=\"expiry\" autocomplete=\"cc-exp\" placeholder=\"MM / YY\">\
         <label for=\"cvc\">CVC</label><input id=\"cvc\" name=\"cvc\" inputmode=\"numeric\" autocomplete=\"cc-csc\" placeholder=\"123\">\
         <button type=\"submit\">Pay</button></form><p><a href=\"{cancel}\">Cancel</a></p>",
        summary = summary(standin, session),
    );
    page(status, "Checkout", &body)
}

fn session_of(standin: &StandIn, id: &str) -> Option<Value> {
    standin.lock().session(id).map(|s| s.stored.value.clone())
}

pub(crate) async fn show_checkout(AxumState(standin): AxumState<StandIn>, Path(id): Path<String>) -> Response {
    let Some(session) = session_of(&standin, &id) else { return not_found("Checkout Session") };
    checkout_page(&standin, &session, None)
}

pub(crate) async fn submit_checkout(
    AxumState(standin): AxumState<StandIn>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let Some(session) = session_of(&standin, &id) else { return not_found("Checkout Session") };
    let fields = form_fields(&body);
    match Card::read(field(&fields, "card"), field(&fields, "expiry"), field(&fields, "cvc")) {
        Card::Invalid(message) => checkout_page(&standin, &session, Some(message)),
        Card::Declined => checkout_page(&standin, &session, Some(DECLINED)),
        Card::Pays => pay(&standin, &id).await,
        Card::Authenticates => {
            let body = format!(
                "<p>Your bank asks you to authenticate this payment (test mode: choose the outcome).</p>\
                 <form method=\"post\" action=\"{action}\">\
                 <button type=\"submit\" name=\"outcome\" value=\"complete\">Complete</button>\
                 <button type=\"submit\" name=\"outcome\" value=\"fail\">Fail</button></form>",
                action = escape(&at(&standin, &format!("checkout/{id}/authenticate")))
            );
            page(StatusCode::OK, "Authenticate payment", &body)
        }
    }
}

pub(crate) async fn authenticate(
    AxumState(standin): AxumState<StandIn>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let Some(session) = session_of(&standin, &id) else { return not_found("Checkout Session") };
    match field(&form_fields(&body), "outcome") {
        "complete" => pay(&standin, &id).await,
        _ => checkout_page(&standin, &session, Some(AUTHENTICATION_FAILED)),
    }
}

/// Runs `action` on the stand-in's state; answers its outcome and the events it recorded.
fn recording<T>(standin: &StandIn, action: impl FnOnce(&mut crate::state::State) -> T) -> (T, Vec<Value>) {
    let mut state = standin.lock();
    let mark = state.events.len();
    let outcome = action(&mut state);
    let events = state.events[mark..].iter().map(|e| e.value.clone()).collect();
    (outcome, events)
}

/// Completes the session, delivers its events, and follows `success_url`.
async fn pay(standin: &StandIn, id: &str) -> Response {
    let (outcome, events) = recording(standin, |state| state.complete_checkout_session(id));
    match outcome {
        Ok(session) => {
            standin.deliver(events).await;
            match session["success_url"].as_str() {
                Some(url) => Redirect::to(&url.replace("{CHECKOUT_SESSION_ID}", id)).into_response(),
                None => page(StatusCode::OK, "Checkout", "<p role=\"status\">Payment received.</p>"),
            }
        }
        Err(error) => {
            let message = error.body()["error"]["message"].as_str().unwrap_or("The payment failed.").to_owned();
            page(
                StatusCode::from_u16(error.status).unwrap_or(StatusCode::BAD_REQUEST),
                "Checkout",
                &format!("<p role=\"alert\">{}</p>", escape(&message)),
            )
        }
    }
}

// ---- Customer portal ---------------------------------------------------------------------

fn portal_of(standin: &StandIn, id: &str) -> Option<Value> {
    standin.lock().portal_sessions.iter().find(|s| s["id"].as_str() == Some(id)).cloned()
}

/// The customer's subscription the portal manages: the newest that is not canceled.
fn live_subscription(standin: &StandIn, customer: &str) -> Option<Value> {
    let state = standin.lock();
    state
        .subscriptions
        .iter()
        .rev()
        .map(|s| &s.value)
        .find(|s| s["customer"].as_str() == Some(customer) && s["status"] != "canceled")
        .cloned()
}

pub(crate) async fn show_portal(AxumState(standin): AxumState<StandIn>, Path(id): Path<String>) -> Response {
    let Some(portal) = portal_of(&standin, &id) else { return not_found("portal session") };
    let return_url = portal["return_url"].as_str().map(escape).unwrap_or_default();
    let back = format!("<p><a href=\"{return_url}\">Return</a></p>");
    let Some(subscription) = live_subscription(&standin, portal["customer"].as_str().unwrap_or_default()) else {
        return page(StatusCode::OK, "Billing", &format!("<p>No current subscription.</p>{back}"));
    };
    let state = standin.lock();
    let price = &subscription["items"]["data"][0]["price"];
    let product = state.products.iter().find(|p| p["id"] == price["product"]);
    let plan = product.and_then(|p| p["name"].as_str()).unwrap_or("Plan").to_owned();
    let period_end = subscription["items"]["data"][0]["current_period_end"]
        .as_i64()
        .or_else(|| subscription["current_period_end"].as_i64())
        .map(date)
        .unwrap_or_default();
    let ending = if subscription["cancel_at_period_end"] == true {
        format!("<p data-testid=\"cancels\">Cancels on {period_end}</p>")
    } else {
        format!("<p>Renews on {period_end}</p>")
    };
    let options: String = state
        .prices
        .iter()
        .filter(|p| p["recurring"].is_object() && p["id"] != price["id"])
        .map(|p| {
            let name = state.products.iter().find(|q| q["id"] == p["product"]).and_then(|q| q["name"].as_str());
            let label = format!(
                "{} ({} per {})",
                name.unwrap_or("Plan"),
                money(p["unit_amount"].as_i64().unwrap_or(0), p["currency"].as_str().unwrap_or("usd")),
                p["recurring"]["interval"].as_str().unwrap_or("month")
            );
            format!("<option value=\"{}\">{}</option>", escape(p["id"].as_str().unwrap_or_default()), escape(&label))
        })
        .collect();
    drop(state);
    let id = escape(&at(&standin, &format!("billing_portal/{id}")));
    let body = format!(
        "<section aria-label=\"Current plan\"><h2 data-testid=\"plan\">{plan}</h2>\
         <p data-testid=\"status\">{status}</p>{ending}</section>\
         <form method=\"post\" action=\"{id}\"><input type=\"hidden\" name=\"action\" value=\"change\">\
         <label for=\"price\">New plan</label><select id=\"price\" name=\"price\">{options}</select>\
         <button type=\"submit\">Change plan</button></form>\
         <form method=\"post\" action=\"{id}\"><input type=\"hidden\" name=\"action\" value=\"cancel_at_period_end\">\
         <button type=\"submit\">Cancel at period end</button></form>\
         <form method=\"post\" action=\"{id}\"><input type=\"hidden\" name=\"action\" value=\"cancel_now\">\
         <button type=\"submit\">Cancel now</button></form>{back}",
        plan = escape(&plan),
        status = escape(subscription["status"].as_str().unwrap_or_default()),
    );
    page(StatusCode::OK, "Billing", &body)
}

pub(crate) async fn act_in_portal(
    AxumState(standin): AxumState<StandIn>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let Some(portal) = portal_of(&standin, &id) else { return not_found("portal session") };
    let Some(subscription) = live_subscription(&standin, portal["customer"].as_str().unwrap_or_default()) else {
        return Redirect::to(&at(&standin, &format!("billing_portal/{id}"))).into_response();
    };
    let subscription_id = subscription["id"].as_str().unwrap_or_default();
    let fields = form_fields(&body);
    let (outcome, events) = recording(&standin, |state| match field(&fields, "action") {
        "change" => {
            let item = subscription["items"]["data"][0]["id"].as_str().unwrap_or_default().to_owned();
            let params = Params::from_pairs(&[
                ("items[0][id]".to_owned(), item),
                ("items[0][price]".to_owned(), field(&fields, "price").to_owned()),
                ("proration_behavior".to_owned(), "create_prorations".to_owned()),
            ]);
            crate::routes::update_subscription(state, subscription_id, &params).map(drop)
        }
        "cancel_at_period_end" => {
            let params = Params::from_pairs(&[("cancel_at_period_end".to_owned(), "true".to_owned())]);
            crate::routes::update_subscription(state, subscription_id, &params).map(drop)
        }
        "cancel_now" => state.cancel_subscription(subscription_id).map(drop),
        _ => Ok(()),
    });
    standin.deliver(events).await;
    match outcome {
        Ok(()) => Redirect::to(&at(&standin, &format!("billing_portal/{id}"))).into_response(),
        Err(error) => {
            let message = error.body()["error"]["message"].as_str().unwrap_or("The change failed.").to_owned();
            page(StatusCode::BAD_REQUEST, "Billing", &format!("<p role=\"alert\">{}</p>", escape(&message)))
        }
    }
}

// ---- Invoices ----------------------------------------------------------------------------

fn invoice_of(standin: &StandIn, id: &str) -> Option<Value> {
    standin.lock().invoice(id).cloned()
}

/// An invoice's lines: description and amount.
fn lines(invoice: &Value) -> Vec<(String, i64)> {
    invoice["lines"]["data"]
        .as_array()
        .map(|lines| {
            lines
                .iter()
                .map(|l| (l["description"].as_str().unwrap_or("Item").to_owned(), l["amount"].as_i64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default()
}

pub(crate) async fn show_invoice(AxumState(standin): AxumState<StandIn>, Path(id): Path<String>) -> Response {
    let Some(invoice) = invoice_of(&standin, &id) else { return not_found("invoice") };
    let currency = invoice["currency"].as_str().unwrap_or("usd");
    let rows: String = lines(&invoice)
        .iter()
        .map(|(description, amount)| {
            format!("<tr><td>{}</td><td>{}</td></tr>", escape(description), escape(&money(*amount, currency)))
        })
        .collect();
    let number = invoice["number"].as_str().unwrap_or(id.as_str()).to_owned();
    let body = format!(
        "<p>Status: <strong data-testid=\"invoice-status\">{status}</strong></p>\
         <table aria-label=\"Lines\"><tr><th>Description</th><th>Amount</th></tr>{rows}</table>\
         <p>Amount due: <strong data-testid=\"amount-due\">{due}</strong>; paid: {paid}</p>\
         <p><a href=\"{pdf}\">Download PDF</a></p>",
        status = escape(invoice["status"].as_str().unwrap_or_default()),
        due = escape(&money(invoice["amount_due"].as_i64().unwrap_or(0), currency)),
        paid = escape(&money(invoice["amount_paid"].as_i64().unwrap_or(0), currency)),
        pdf = escape(&at(&standin, &format!("invoices/{id}/pdf"))),
    );
    page(StatusCode::OK, &format!("Invoice {number}"), &body)
}

pub(crate) async fn invoice_pdf(AxumState(standin): AxumState<StandIn>, Path(id): Path<String>) -> Response {
    let Some(invoice) = invoice_of(&standin, &id) else { return not_found("invoice") };
    let currency = invoice["currency"].as_str().unwrap_or("usd");
    let mut text = vec![
        format!("Invoice {}", invoice["number"].as_str().unwrap_or(&id)),
        format!("Status: {}", invoice["status"].as_str().unwrap_or_default()),
    ];
    text.extend(lines(&invoice).iter().map(|(d, a)| format!("{d}: {}", money(*a, currency))));
    text.push(format!("Amount due: {}", money(invoice["amount_due"].as_i64().unwrap_or(0), currency)));
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/pdf")], pdf(&text)).into_response()
}

/// A one-page PDF with `lines` of text (Helvetica), as small as a valid PDF 1.4 file is.
fn pdf(lines: &[String]) -> Vec<u8> {
    let ascii = |s: &str| -> String {
        s.chars()
            .map(|c| if c.is_ascii() && !c.is_ascii_control() { c } else { '?' })
            .collect::<String>()
            .replace('\\', "\\\\")
            .replace('(', "\\(")
            .replace(')', "\\)")
    };
    let mut content = String::from("BT /F1 12 Tf 72 760 Td 16 TL\n");
    for line in lines {
        content.push_str(&format!("({}) Tj T*\n", ascii(line)));
    }
    content.push_str("ET\n");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>"
            .to_owned(),
        format!("<< /Length {} >>\nstream\n{content}endstream", content.len()),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_owned(),
    ];
    let mut out = String::from("%PDF-1.4\n");
    let mut offsets = Vec::with_capacity(objects.len());
    for (i, object) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.push_str(&format!("{} 0 obj\n{object}\nendobj\n", i + 1));
    }
    let xref = out.len();
    out.push_str(&format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1));
    for offset in offsets {
        out.push_str(&format!("{offset:010} 00000 n \n"));
    }
    out.push_str(&format!("trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n", objects.len() + 1));
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stripe_test_cards_pay_decline_or_authenticate_and_a_wrong_number_is_refused() {
        let read = |number: &str| Card::read(number, "12/34", "123");

        assert_eq!(read("4242 4242 4242 4242"), Card::Pays);
        assert_eq!(read("4000 0000 0000 0002"), Card::Declined);
        assert_eq!(read("4000 0027 6000 3184"), Card::Authenticates);
        assert_eq!(read("5555 5555 5555 4444"), Card::Pays);
        assert_eq!(read("4242 4242 4242 4241"), Card::Invalid(INCORRECT_NUMBER));
        assert_eq!(read(""), Card::Invalid(INCORRECT_NUMBER));
        assert_eq!(Card::read("4242424242424242", "13/30", "123"), Card::Invalid(INCOMPLETE_EXPIRY));
        assert_eq!(Card::read("4242424242424242", "12/30", "1"), Card::Invalid(INCOMPLETE_CVC));
    }

    #[test]
    fn amounts_dates_and_markup_are_shown_as_stripe_shows_them() {
        assert_eq!(money(2900, "usd"), "$29.00");
        assert_eq!(money(-505, "eur"), "-€5.05");
        assert_eq!(money(100, "jpy"), "1.00 JPY");
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(1_796_520_839), "2026-12-06");
        assert_eq!(escape("<a href=\"x\">'&'</a>"), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
    }

    #[test]
    fn the_pdf_is_one_page_with_its_text_and_a_cross_reference_at_the_offsets_it_states() {
        let bytes = pdf(&["Invoice TG-0001 (paid)".to_owned(), "Amount due: $29.00".to_owned()]);
        let text = String::from_utf8(bytes).unwrap();

        assert!(text.starts_with("%PDF-1.4\n") && text.ends_with("%%EOF\n"));
        assert!(text.contains("(Invoice TG-0001 \\(paid\\)) Tj"));
        let startxref: usize = text.rsplit("startxref\n").next().unwrap().lines().next().unwrap().parse().unwrap();
        assert!(text[startxref..].starts_with("xref\n0 6\n"));
        for (n, line) in text[startxref..].lines().skip(3).take(5).enumerate() {
            let offset: usize = line[..10].parse().unwrap();
            assert!(text[offset..].starts_with(&format!("{} 0 obj", n + 1)), "object {}", n + 1);
        }
    }
}
