//! `tollgate-dev sync`, `tollgate-dev status` and `tollgate-dev clock`: ask the running local
//! stack.

use anyhow::{Context, Result, bail};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};

fn base(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

fn not_running(base: &str) -> String {
    format!("the local stack is not running at {base}: start it with `make dev`")
}

/// Runs one sync in the running stack and prints its outcome; fails when the run failed.
pub async fn sync(port: u16, full: bool) -> Result<()> {
    let base = base(port);
    let mode = if full { "full" } else { "replay" };
    let response = reqwest::Client::new()
        .post(format!("{base}/_dev/sync?mode={mode}"))
        .send()
        .await
        .with_context(|| not_running(&base))?;
    let ok = response.status().is_success();
    let body: serde_json::Value = response.json().await.context("reading the sync's answer")?;
    println!("{}", serde_json::to_string_pretty(&body)?);
    if !ok {
        bail!("the sync failed: {}", body["error"].as_str().unwrap_or("see above"));
    }
    Ok(())
}

/// Prints the running stack's health, with the last sync's outcome.
pub async fn status(port: u16) -> Result<()> {
    let base = base(port);
    let response = reqwest::get(format!("{base}/health")).await.with_context(|| not_running(&base))?;
    let status = response.status();
    let body: serde_json::Value = response.json().await.context("reading /health")?;
    println!("{}", serde_json::to_string_pretty(&body)?);
    if !status.is_success() {
        bail!("the local stack is unhealthy ({status})");
    }
    Ok(())
}

/// What `tollgate-dev clock` does: show the stack's time, set it, or move it forward.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClockMove {
    Show,
    /// RFC 3339 or Unix seconds.
    Set(String),
    /// `30d`, `12h`, `90m`, `45s` or seconds.
    Advance(String),
}

/// Shows or moves the running stack's clock (`/_dev/clock`) and prints its time; a move
/// answers once the events it played were applied.
pub async fn clock(port: u16, action: ClockMove) -> Result<()> {
    let base = base(port);
    let url = format!("{base}/_dev/clock");
    let http = reqwest::Client::new();
    let request = match &action {
        ClockMove::Show => http.get(&url),
        ClockMove::Set(at) => {
            let at = crate::clock::parse_time(at)
                .with_context(|| format!("`{at}` is no time: give RFC 3339 (2027-01-31T12:00:00Z) or Unix seconds"))?;
            http.post(&url).json(&serde_json::json!({ "set": at, "wait": "applied" }))
        }
        ClockMove::Advance(by) => {
            let by = crate::clock::parse_duration(by)
                .with_context(|| format!("`{by}` is no duration: give 30d, 12h, 90m, 45s or seconds"))?;
            http.post(&url).json(&serde_json::json!({ "advance": by, "wait": "applied" }))
        }
    };
    let response = request.send().await.with_context(|| not_running(&base))?;
    let ok = response.status().is_success();
    let body: serde_json::Value = response.json().await.context("reading the clock's answer")?;
    println!("{}", serde_json::to_string_pretty(&body)?);
    if !ok {
        bail!("the clock did not move: {}", body["error"]["message"].as_str().unwrap_or("see above"));
    }
    Ok(())
}

/// `tollgate-dev card <account> decline|pay`: sets the account's card in the running stack's
/// Stripe stand-in (`POST /stripe/_tollgate/customers/{account}/card`) and prints the answer.
pub async fn card(port: u16, account: &str, behaviour: tollgate_standin::CardBehaviour) -> Result<()> {
    let base = base(port);
    let path = tollgate_standin::CARD_PATH.replace("{account}", &encode_segment(account));
    let response = reqwest::Client::new()
        .post(format!("{base}{}{path}", crate::trigger::STANDIN_PREFIX))
        .json(&serde_json::json!({ "behaviour": behaviour }))
        .send()
        .await
        .with_context(|| not_running(&base))?;
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    println!("{}", serde_json::to_string_pretty(&body)?);
    if !status.is_success() {
        bail!(
            "the Stripe stand-in refused (HTTP {}): {}",
            status.as_u16(),
            body["error"]["message"].as_str().unwrap_or("is the stack on the stand-in? (STRIPE_SECRET_KEY unset)")
        );
    }
    Ok(())
}

/// `value` percent-encoded as one path segment.
fn encode_segment(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => char::from(b).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// What `tollgate-dev events` and `tollgate-dev queues` ask the running stack's `ops` function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpsCall {
    /// `GET /operator/events/failed`, one page.
    Failed { limit: Option<u32>, cursor: Option<String> },
    /// `POST /operator/events/{event_id}/replay`.
    Replay { event_id: String },
    /// `POST /operator/queues/{queue}/redrive`, asked again while it answers `more`.
    Redrive { queue: String },
    /// `POST /operator/adoption` with this body, then a sync run (`POST /_dev/sync`) at a time
    /// until `GET /operator/adoption` says it ended; prints its report.
    Adopt { request: serde_json::Value },
}

/// Most sync runs `tollgate-dev adopt` asks for before it gives up waiting.
const ADOPT_RUNS: usize = 1000;

/// The `customer_id,account_id` lines of a map file (no header; blank lines skipped) as the
/// request's `map`.
pub fn read_map(text: &str) -> Result<Vec<(String, String)>> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(n, line)| match line.split(',').map(str::trim).collect::<Vec<_>>().as_slice() {
            [customer, account] if !customer.is_empty() && !account.is_empty() => {
                Ok(((*customer).to_owned(), (*account).to_owned()))
            }
            _ => bail!("line {}: expected `customer_id,account_id`, got {line:?}", n + 1),
        })
        .collect()
}

/// `tollgate-dev adopt`: starts an adoption with `request` (`POST /operator/adoption`), then
/// runs the sync (`POST /_dev/sync`) until the adoption ends; answers `GET /operator/adoption`'s
/// last answer (`state` `done` or `failed`, the `report`).
pub async fn adopt(port: u16, request: &serde_json::Value) -> Result<serde_json::Value> {
    let base = base(port);
    let http = reqwest::Client::new();
    let call = |request| as_operator(request, &base, false);
    call(http.post(format!("{base}/operator/adoption")).json(request)).await?;
    for _ in 0..ADOPT_RUNS {
        // A run works on the adoption whatever else it finds; its own outcome is not ours.
        http.post(format!("{base}/_dev/sync")).send().await.with_context(|| not_running(&base))?;
        let adoption = call(http.get(format!("{base}/operator/adoption"))).await?;
        if adoption["state"] != "running" {
            return Ok(adoption);
        }
    }
    bail!("the adoption was still running after {ADOPT_RUNS} sync runs");
}

/// The development operator's identity (`x-tollgate-operator`).
const DEV_OPERATOR: &str = "arn:aws:iam::000000000000:user/tollgate-dev";

/// Sends `request` to the stack at `base` as the development operator; answers the JSON body,
/// or fails with the status and Tollgate's message (printing the whole body first when
/// `print_refusal`).
async fn as_operator(request: reqwest::RequestBuilder, base: &str, print_refusal: bool) -> Result<serde_json::Value> {
    let response = request
        .header(crate::gateway::OPERATOR_HEADER, DEV_OPERATOR)
        .send()
        .await
        .with_context(|| not_running(base))?;
    let status = response.status();
    let body: serde_json::Value = response.json().await.context("reading the answer")?;
    if !status.is_success() {
        if print_refusal {
            println!("{}", serde_json::to_string_pretty(&body)?);
        }
        bail!("{status}: {}", body["error"]["message"].as_str().unwrap_or("see above"));
    }
    Ok(body)
}

/// Calls the `ops` function of the running stack on its operator route as the development
/// operator, prints the answer; fails on an error status, a replay that failed again, or (for
/// a redrive) when a request fails partway (what moved before is printed).
pub async fn ops(port: u16, call: OpsCall) -> Result<()> {
    let base = base(port);
    let http = reqwest::Client::new();
    let send = |request| as_operator(request, &base, true);
    match call {
        OpsCall::Failed { limit, cursor } => {
            let mut query = Vec::new();
            query.extend(limit.map(|l| format!("limit={l}")));
            query.extend(cursor.map(|c| format!("cursor={}", utf8_percent_encode(&c, NON_ALPHANUMERIC))));
            let body = send(http.get(format!("{base}/operator/events/failed?{}", query.join("&")))).await?;
            println!("{}", serde_json::to_string_pretty(&body)?);
        }
        OpsCall::Replay { event_id } => {
            let segment = utf8_percent_encode(&event_id, NON_ALPHANUMERIC);
            let body = send(http.post(format!("{base}/operator/events/{segment}/replay"))).await?;
            println!("{}", serde_json::to_string_pretty(&body)?);
            if body["outcome"] == "failed" {
                bail!("the event failed again: {}", body["error"].as_str().unwrap_or("see above"));
            }
        }
        OpsCall::Redrive { queue } => {
            let segment = utf8_percent_encode(&queue, NON_ALPHANUMERIC);
            let mut moved = 0_u64;
            loop {
                let body = match send(http.post(format!("{base}/operator/queues/{segment}/redrive"))).await {
                    Ok(body) => body,
                    Err(err) => {
                        println!("{}", serde_json::json!({ "moved": moved, "more": true }));
                        return Err(err);
                    }
                };
                moved = moved.saturating_add(body["moved"].as_u64().unwrap_or(0));
                if body["more"] != true {
                    break;
                }
            }
            println!("{}", serde_json::json!({ "moved": moved, "more": false }));
        }
        OpsCall::Adopt { request } => {
            let adoption = adopt(port, &request).await?;
            println!("{}", serde_json::to_string_pretty(&adoption["report"])?);
            if adoption["state"] != "done" {
                bail!("the adoption failed: {}", adoption["error"].as_str().unwrap_or("see the stack's log"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::read_map;

    #[test]
    fn a_map_file_is_customer_and_account_lines_and_anything_else_is_refused_by_line() {
        let map = read_map("cus_1,acct_1\n\n cus_2 , acct_2 \n").unwrap();
        assert_eq!(map, [("cus_1".to_owned(), "acct_1".to_owned()), ("cus_2".to_owned(), "acct_2".to_owned())]);

        for bad in ["cus_1", "cus_1,acct_1,extra", ",acct_1", "cus_1,"] {
            let err = read_map(&format!("cus_0,acct_0\n{bad}\n")).unwrap_err().to_string();
            assert!(err.starts_with("line 2:"), "{bad}: {err}");
        }
    }
}
