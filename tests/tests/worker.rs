//! The webhook worker on the real SQS and DynamoDB APIs (moto): notifications land on the
//! outbound queue in the documented schema; a message that can never be processed is recorded
//! as failed and removed at once; one that keeps failing for a transient cause reaches the
//! dead-letter queue through the queue's own redrive, never by the worker writing there.

mod common;

use aws_sdk_sqs::types::QueueAttributeName;
use std::time::Duration;
use tollgate::domain::notifications::Notification;
use tollgate::edge::webhook::DEV_WEBHOOK_SECRET;
use tollgate::ports::events::EventLog;
use tollgate_dev::trigger::trigger;
use tollgate_standin::TriggerSpec;

use common::receive_all;

#[tokio::test]
async fn notifications_reach_the_outbound_queue_in_the_documented_schema() {
    let stack = common::serve_stack("notify").await;
    for event in ["checkout.session.completed", "invoice.payment_failed", "charge.dispute.created"] {
        let spec = TriggerSpec::new(event, "acct_n");
        trigger(&stack.base, DEV_WEBHOOK_SECRET, &spec, false).await.unwrap();
    }

    stack.drain().await;
    let bodies = receive_all(&stack.sqs, &stack.resources.queue("NotificationsQueue").unwrap().url).await;

    let kinds: Vec<String> = bodies
        .iter()
        .map(|body| {
            let json: serde_json::Value = serde_json::from_str(body).unwrap();
            let mut keys: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
            keys.sort_unstable();
            assert_eq!(
                keys,
                [
                    "account_id",
                    "customer_id",
                    "details",
                    "event_id",
                    "event_type",
                    "id",
                    "kind",
                    "object_id",
                    "occurred_at"
                ],
                "{body}"
            );
            let notification: Notification = serde_json::from_value(json).unwrap();
            assert_eq!(notification.account_id, "acct_n");
            assert!(notification.customer_id.starts_with("cus_"));
            assert!(notification.event_id.starts_with("evt_"));
            let occurrence = format!("{}:{}", notification.kind.as_str(), notification.object_id);
            match notification.kind {
                // One id per payment attempt, so a second failed attempt is a second notice.
                tollgate::domain::notifications::Kind::PaymentFailed => {
                    assert!(notification.id.starts_with(&format!("{occurrence}:attempt-")), "{body}")
                }
                _ => assert_eq!(notification.id, occurrence),
            }
            notification.kind.as_str().to_owned()
        })
        .collect();
    assert!(kinds.contains(&"payment_failed".to_owned()), "{kinds:?}");
    assert!(kinds.contains(&"dispute_opened".to_owned()), "{kinds:?}");
}

/// Sends `body` to the events queue as the intake would, and polls the worker until the
/// events queue is empty (or `polls` runs out), answering what reached the dead-letter queue.
async fn deliver_and_poll(stack: &common::LocalStack, id: &str, body: &str, polls: usize) -> Vec<String> {
    let events_url = stack.resources.queue("EventsQueue").unwrap().url.clone();
    let dlq_url = stack.resources.queue("EventsDeadLetterQueue").unwrap().url.clone();
    // A short visibility timeout, so the retries happen within the test.
    stack
        .sqs
        .set_queue_attributes()
        .queue_url(&events_url)
        .attributes(QueueAttributeName::VisibilityTimeout, "1")
        .send()
        .await
        .unwrap();
    stack
        .sqs
        .send_message()
        .queue_url(&events_url)
        .message_group_id("cus_poison")
        .message_deduplication_id(id)
        .message_body(body)
        .send()
        .await
        .unwrap();
    let mut in_dlq = Vec::new();
    for _ in 0..polls {
        tollgate_dev::worker::poll_once(&stack.app, &stack.sqs, &events_url).await.unwrap();
        in_dlq = receive_all(&stack.sqs, &dlq_url).await;
        if !in_dlq.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    in_dlq
}

#[tokio::test]
async fn a_message_that_can_never_be_processed_is_recorded_and_removed_at_once() {
    let stack = common::serve_stack("poison").await;
    let events_url = stack.resources.queue("EventsQueue").unwrap().url.clone();

    let in_dlq = deliver_and_poll(&stack, "evt_poison", "{\"id\": \"evt_poison\", \"not\": \"an event\"}", 2).await;

    assert!(in_dlq.is_empty(), "never retried into the DLQ: {in_dlq:?}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(receive_all(&stack.sqs, &events_url).await.is_empty(), "the poison left the events queue");
    let failure = stack.app.store.failure("evt_poison").await.unwrap().expect("recorded with its error");
    assert!(failure.error.contains("malformed event"), "{failure:?}");
    assert!(stack.app.store.processed("evt_poison").await.unwrap().is_none(), "not counted as processed");
}

#[tokio::test]
async fn a_transient_failure_reaches_the_dead_letter_queue_through_redrive() {
    let stack = common::serve_stack("transient").await;
    // A dispute about a charge Stripe does not know: the charge lookup fails on every try.
    let body = serde_json::json!({
        "id": "evt_stuck", "object": "event", "type": "charge.dispute.created", "created": 1, "livemode": false,
        "data": {"object": {"id": "dp_stuck", "object": "dispute", "charge": "ch_nowhere"}}
    })
    .to_string();

    let in_dlq = deliver_and_poll(&stack, "evt_stuck", &body, 20).await;

    assert_eq!(in_dlq, [body]);
    assert!(stack.app.store.processed("evt_stuck").await.unwrap().is_none(), "nothing was recorded for it");
}
