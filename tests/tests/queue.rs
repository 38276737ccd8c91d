//! The SQS FIFO adapter against a real SQS API (moto's server on loopback).

mod common;

use tollgate::adapters::sqs::SqsEventQueue;
use tollgate::ports::queue::{EventQueue, QueuedMessage};

#[tokio::test]
async fn redelivered_event_is_queued_once_in_its_group() {
    let (aws, resources) = common::local("fifo").await;
    let url = resources.queue("EventsQueue").unwrap().url.clone();
    let queue = SqsEventQueue::new(tollgate::adapters::aws::sqs(&aws), url.clone());
    let message = QueuedMessage { dedup_id: "evt_1".into(), group: "cus_1".into(), body: "{\"id\":\"evt_1\"}".into() };

    queue.enqueue(&message).await.unwrap();
    queue.enqueue(&message).await.unwrap();
    queue
        .enqueue(&QueuedMessage { dedup_id: "evt_2".into(), group: "cus_1".into(), body: "{\"id\":\"evt_2\"}".into() })
        .await
        .unwrap();

    let received = tollgate::adapters::aws::sqs(&aws)
        .receive_message()
        .queue_url(&url)
        .max_number_of_messages(10)
        .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::MessageGroupId)
        .send()
        .await
        .unwrap();
    let messages = received.messages();
    let bodies: Vec<_> = messages.iter().filter_map(|m| m.body()).collect();
    assert_eq!(bodies, ["{\"id\":\"evt_1\"}", "{\"id\":\"evt_2\"}"]);
    let group =
        messages[0].attributes().unwrap()[&aws_sdk_sqs::types::MessageSystemAttributeName::MessageGroupId].as_str();
    assert_eq!(group, "cus_1");
}

#[tokio::test]
async fn unreachable_queue_is_an_error_not_a_success() {
    let aws = tollgate_dev::local::sdk_config("http://127.0.0.1:9").await;
    let queue = SqsEventQueue::new(tollgate::adapters::aws::sqs(&aws), "http://127.0.0.1:9/000000000000/nowhere.fifo");

    let result = queue.enqueue(&QueuedMessage { dedup_id: "e".into(), group: "g".into(), body: "{}".into() }).await;

    assert!(matches!(result, Err(tollgate::ports::queue::QueueError::Unavailable(_))), "{result:?}");
}
