//! Operations on a bad day, for the operator (the `ops` function): the events that failed,
//! listed newest first; one replayed from Stripe through the worker's own path; and the
//! dead-letter queues moved back to their queues a page at a time.

use crate::app::Deadline;
use crate::app::events::{EventDeps, EventError, Outcome, Snapshots, apply};
use crate::app::invoices::{PageQuery, ReadError, page_size};
use crate::ports::StoreError;
use crate::ports::accounts::AccountStore;
use crate::ports::billing::{Billing, BillingError};
use crate::ports::credits::CreditStore;
use crate::ports::events::{EventLog, FailedEvent};
use crate::ports::invoices::InvoiceStore;
use crate::ports::keys;
use crate::ports::notifier::Notifier;
use crate::ports::queue::{DeadLetters, QueueError};
use crate::ports::subscriptions::SubscriptionStore;
use serde::Serialize;

/// What the operator's tools need: the worker's event path (replays go through it) and each
/// queue's dead letters.
pub struct OpsDeps<S, B, N, D> {
    pub events: EventDeps<S, B, N>,
    pub events_dead_letters: D,
    pub notifications_dead_letters: D,
    /// An adoption's default customer metadata key (`ADOPT_METADATA_KEY`).
    pub adopt_metadata_key: Option<String>,
}

impl<S, B, N, D> OpsDeps<S, B, N, D> {
    /// The dead letters of `queue`.
    pub fn dead_letters(&self, queue: Queue) -> &D {
        match queue {
            Queue::Events => &self.events_dead_letters,
            Queue::Notifications => &self.notifications_dead_letters,
        }
    }
}

/// One failed event, as `GET /operator/events/failed` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FailedView {
    /// The Stripe event id, or `message:<SQS message id>` for a message that names none.
    pub id: String,
    /// The event's type, when the message said.
    #[serde(rename = "type")]
    pub event_type: Option<String>,
    /// Where it failed: `worker` or `sync`.
    pub source: String,
    /// Why (no payload, no secret).
    pub error: String,
    /// When it last failed, Unix seconds.
    pub at: i64,
}

impl From<FailedEvent> for FailedView {
    fn from(failure: FailedEvent) -> Self {
        Self {
            id: failure.id,
            event_type: failure.event_type,
            source: failure.source,
            error: failure.error,
            at: failure.failed_at,
        }
    }
}

/// A page of failed events, newest first, and the cursor of the next (`null` on the last).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FailedList {
    pub data: Vec<FailedView>,
    pub next_cursor: Option<String>,
}

/// `GET /operator/events/failed?limit=&cursor=`: one `Query` of the failure list.
pub async fn failed<S: EventLog>(store: &S, query: PageQuery) -> Result<FailedList, ReadError> {
    let limit = page_size(query.limit.as_deref())?;
    let after = match query.cursor.as_deref() {
        Some(raw) => Some(
            keys::cursor(raw, keys::is_failure_listing)
                .ok_or_else(|| ReadError::invalid("invalid_cursor", "`cursor` is not one this API gave"))?,
        ),
        None => None,
    };
    let page = store.failures(limit, after.as_deref()).await?;
    Ok(FailedList {
        data: page.failures.into_iter().map(FailedView::from).collect(),
        next_cursor: page.next.map(hex::encode),
    })
}

/// What a replay did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ReplayOutcome {
    /// The event was applied now (or recorded as having nothing to change).
    Applied,
    /// It had been applied before: nothing was done.
    AlreadyApplied,
    /// Applying it failed again (`error` says why); it stays listed.
    Failed,
}

/// `POST /operator/events/{event_id}/replay`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReplayAnswer {
    pub outcome: ReplayOutcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Why a replay could not start.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// Not a Stripe event id.
    #[error("`event_id` is not a Stripe event id (evt_...)")]
    InvalidEventId,
    /// Stripe does not list it (never, or past its 30 days).
    #[error("Stripe lists no such event (events are kept 30 days)")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Longest event id accepted.
const MAX_EVENT_ID_LEN: usize = 255;

/// What [`is_event_id`] accepts, as a regular expression (the API's contract).
pub const EVENT_ID_PATTERN: &str = "^evt_[A-Za-z0-9_]{1,251}$";

/// Whether `id` can be a Stripe event id.
fn is_event_id(id: &str) -> bool {
    id.len() <= MAX_EVENT_ID_LEN
        && id.strip_prefix("evt_").is_some_and(|rest| !rest.is_empty())
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Replays one event: read from Stripe and applied through the worker's own [`apply`], so
/// exactly once. Answers `already_applied` for an event applied before (without reading
/// Stripe), `applied` once it applies (its failure record is cleared), `failed` with the error
/// when applying fails again (recorded as failed, listed anew).
pub async fn replay<S, B, N>(deps: &EventDeps<S, B, N>, event_id: &str) -> Result<ReplayAnswer, ReplayError>
where
    S: AccountStore + SubscriptionStore + EventLog + CreditStore + InvoiceStore,
    B: Billing,
    N: Notifier,
{
    if !is_event_id(event_id) {
        return Err(ReplayError::InvalidEventId);
    }
    let answer = |outcome, error| Ok(ReplayAnswer { outcome, error });
    if deps.store.processed(event_id).await?.is_some() {
        deps.store.resolve_failure(event_id).await?;
        return answer(ReplayOutcome::AlreadyApplied, None);
    }
    let event = match deps.billing.event(event_id).await {
        Ok(event) => event,
        Err(BillingError::NotFound) => return Err(ReplayError::NotFound),
        Err(err) => return failed_again(deps, event_id, None, &EventError::from(err)).await,
    };
    match apply(deps, &event.payload, &mut Snapshots::new()).await {
        Ok(Outcome::Duplicate) => {
            deps.store.resolve_failure(event_id).await?;
            answer(ReplayOutcome::AlreadyApplied, None)
        }
        Ok(_) => {
            deps.store.resolve_failure(event_id).await?;
            answer(ReplayOutcome::Applied, None)
        }
        Err(err) => failed_again(deps, event_id, crate::app::events::event_type_in(&event.payload), &err).await,
    }
}

/// Records the replay's failure (the event is listed again, as the worker's) and says so.
async fn failed_again<S: EventLog, B, N>(
    deps: &EventDeps<S, B, N>,
    event_id: &str,
    event_type: Option<String>,
    err: &EventError,
) -> Result<ReplayAnswer, ReplayError> {
    let failure = crate::app::events::failure(deps, event_id, event_type, err, "worker");
    deps.store.record_failure(&failure).await?;
    Ok(ReplayAnswer { outcome: ReplayOutcome::Failed, error: Some(err.to_string()) })
}

/// The queues whose dead letters the operator can move back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queue {
    /// Stripe events for the worker (`EventsDeadLetterQueue` -> `EventsQueue`).
    Events,
    /// Notifications for the product's mailer (`NotificationsDeadLetterQueue` ->
    /// `NotificationsQueue`).
    Notifications,
}

impl Queue {
    /// Every queue's path segment.
    pub const NAMES: [&'static str; 2] = ["events", "notifications"];

    /// The queue a path segment names: `events` or `notifications`.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "events" => Some(Self::Events),
            "notifications" => Some(Self::Notifications),
            _ => None,
        }
    }
}

/// `POST /operator/queues/{queue}/redrive`'s answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Redriven {
    /// Messages moved back to their queue by this request.
    pub moved: u64,
    /// The request stopped at its time budget: more may wait; ask again.
    pub more: bool,
}

/// Messages taken from a dead-letter queue at once (SQS's most).
const REDRIVE_PAGE: usize = 10;

/// Moves the dead-letter queue's messages back to their queue, a page at a time (receive,
/// send, delete), until it is empty or `deadline` comes.
pub async fn redrive<D: DeadLetters>(letters: &D, deadline: &dyn Deadline) -> Result<Redriven, QueueError> {
    let mut moved: u64 = 0;
    loop {
        if deadline.expired() {
            return Ok(Redriven { moved, more: true });
        }
        let page = letters.take(REDRIVE_PAGE).await?;
        if page.is_empty() {
            return Ok(Redriven { moved, more: false });
        }
        for letter in &page {
            letters.send_back(letter).await?;
            moved = moved.saturating_add(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::Never;
    use crate::ports::billing::RemoteEvent;
    use crate::ports::queue::DeadLetter;
    use crate::testing::{FakeBilling, FixedClock, MemoryStore, Outbox, settings};
    use std::sync::Mutex;

    const NOW: i64 = 1_795_273_200;

    fn deps() -> EventDeps<MemoryStore, FakeBilling, Outbox> {
        let clock = FixedClock::at(NOW);
        EventDeps {
            store: MemoryStore::new(),
            billing: FakeBilling::new(),
            notifier: Outbox::default(),
            settings: settings(&clock),
        }
    }

    fn failure(id: &str, at: i64) -> FailedEvent {
        FailedEvent {
            id: id.into(),
            event_type: Some("invoice.paid".into()),
            error: "stripe: timeout".into(),
            failed_at: at,
            source: "worker".into(),
        }
    }

    /// An event Stripe lists that Tollgate records with nothing to change.
    fn listed(id: &str) -> RemoteEvent {
        let payload = serde_json::json!({"id": id, "object": "event", "type": "product.created", "created": NOW, "livemode": false, "data": {"object": {"id": "prod_1", "object": "product"}}});
        RemoteEvent { id: id.into(), created: NOW, payload: payload.to_string() }
    }

    #[tokio::test]
    async fn failures_are_listed_newest_first_in_pages_and_a_repeat_moves_one_up() {
        let d = deps();
        for (id, at) in [("evt_a", NOW), ("evt_b", NOW + 1), ("evt_c", NOW + 2)] {
            d.store.record_failure(&failure(id, at)).await.unwrap();
        }
        d.store.record_failure(&failure("evt_a", NOW + 3)).await.unwrap();

        let query = |limit: &str, cursor: Option<String>| PageQuery { limit: Some(limit.into()), cursor };
        let first = failed(&d.store, query("2", None)).await.unwrap();
        let second = failed(&d.store, query("2", first.next_cursor.clone())).await.unwrap();

        let ids = |list: &FailedList| list.data.iter().map(|f| f.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&first), ["evt_a", "evt_c"]);
        assert_eq!((ids(&second), second.next_cursor), (vec!["evt_b".to_owned()], None));
        assert!(matches!(
            failed(&d.store, query("2", Some("zz".into()))).await,
            Err(ReadError::Invalid { code: "invalid_cursor", .. })
        ));
        assert!(matches!(
            failed(&d.store, query("0", None)).await,
            Err(ReadError::Invalid { code: "invalid_limit", .. })
        ));
    }

    #[tokio::test]
    async fn a_replay_applies_once_clears_the_failure_and_a_second_is_already_applied() {
        let d = deps();
        d.store.record_failure(&failure("evt_1", NOW)).await.unwrap();
        d.billing.publish_event(listed("evt_1"));

        let first = replay(&d, "evt_1").await.unwrap();
        let second = replay(&d, "evt_1").await.unwrap();

        assert_eq!(first, ReplayAnswer { outcome: ReplayOutcome::Applied, error: None });
        assert_eq!(second.outcome, ReplayOutcome::AlreadyApplied);
        assert!(d.store.processed("evt_1").await.unwrap().is_some());
        assert!(d.store.failure("evt_1").await.unwrap().is_none());
        assert!(failed(&d.store, PageQuery::default()).await.unwrap().data.is_empty());
        let reads = d.billing.calls().into_iter().filter(|c| c.starts_with("event ")).count();
        assert_eq!(reads, 1, "an applied event is not read from Stripe again");
    }

    #[tokio::test]
    async fn a_replay_that_fails_again_says_why_and_stays_listed() {
        let d = deps();
        let mut broken = listed("evt_2");
        broken.payload = r#"{"id": "evt_2", "type": "invoice.paid"}"#.into();
        d.billing.publish_event(broken);

        let answer = replay(&d, "evt_2").await.unwrap();

        assert_eq!(answer.outcome, ReplayOutcome::Failed);
        assert!(answer.error.as_deref().is_some_and(|e| e.contains("malformed")), "{answer:?}");
        assert_eq!(failed(&d.store, PageQuery::default()).await.unwrap().data[0].id, "evt_2");
        assert!(d.store.processed("evt_2").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_replay_of_no_event_or_no_event_id_is_refused_and_changes_nothing() {
        let d = deps();
        assert!(matches!(replay(&d, "evt_missing").await, Err(ReplayError::NotFound)));
        for bad in ["", "evt_", "cus_1", "evt_1/../x", &format!("evt_{}", "a".repeat(300))] {
            assert!(matches!(replay(&d, bad).await, Err(ReplayError::InvalidEventId)), "{bad}");
        }
        assert!(failed(&d.store, PageQuery::default()).await.unwrap().data.is_empty());
    }

    /// A dead-letter queue in memory, and what was sent back.
    #[derive(Default)]
    struct Letters {
        dead: Mutex<Vec<DeadLetter>>,
        back: Mutex<Vec<DeadLetter>>,
    }

    #[async_trait::async_trait]
    impl DeadLetters for Letters {
        async fn take(&self, max: usize) -> Result<Vec<DeadLetter>, QueueError> {
            let dead = self.dead.lock().unwrap();
            Ok(dead.iter().take(max).cloned().collect())
        }

        async fn send_back(&self, letter: &DeadLetter) -> Result<(), QueueError> {
            self.back.lock().unwrap().push(letter.clone());
            self.dead.lock().unwrap().retain(|d| d.receipt != letter.receipt);
            Ok(())
        }
    }

    fn letters(n: usize) -> Letters {
        let dead = (0..n)
            .map(|i| DeadLetter {
                body: format!("{{\"id\": \"evt_{i}\"}}"),
                group: format!("cus_{}", i % 3),
                receipt: format!("r{i}"),
            })
            .collect();
        Letters { dead: Mutex::new(dead), ..Letters::default() }
    }

    #[tokio::test]
    async fn a_redrive_moves_every_dead_letter_back_in_pages_keeping_its_group() {
        let queue = letters(25);

        let answer = redrive(&queue, &Never).await.unwrap();

        assert_eq!(answer, Redriven { moved: 25, more: false });
        let back = queue.back.lock().unwrap();
        assert_eq!(back.len(), 25);
        assert!(back.iter().all(|l| l.group == format!("cus_{}", l.receipt[1..].parse::<usize>().unwrap() % 3)));
        assert!(queue.dead.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_redrive_at_its_deadline_says_more_and_the_next_goes_on() {
        let queue = letters(25);

        let first = redrive(&queue, &crate::testing::After::checks(1)).await.unwrap();
        let second = redrive(&queue, &Never).await.unwrap();

        assert_eq!(first, Redriven { moved: 10, more: true });
        assert_eq!(second, Redriven { moved: 15, more: false });
    }
}
