//! The intake's hot path per delivery: `webhook::verify` (size, header, UTF-8, timestamp,
//! HMAC-SHA256 per secret with a constant-time compare, the one borrowed parse of the
//! envelope and its message group), on the signed payloads of `bench/payloads/manifest.json`
//! (1 KB to 16 KB; the same bytes and headers the peer scripts in `bench/peers/` time with
//! stripe-node and stripe-python).
//!
//! For comparison on the same bytes: `hmac_sha256` (the signature alone: what no parse can
//! save), `async_stripe_construct_event` (the check the intake
//! used before: async-stripe types the whole event) and `worker_parse` (`Incoming::parse`,
//! the worker's reading, which builds the JSON tree; the old intake ran it after
//! async-stripe's).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::hint::black_box;
use std::path::Path;
use std::time::Duration;
use tollgate::domain::events::Incoming;
use tollgate::edge::webhook::{WebhookSecrets, verify};

struct Payload {
    name: String,
    body: Vec<u8>,
    header: String,
}

fn payloads() -> (String, i64, Vec<Payload>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("bench/payloads/manifest.json")).unwrap()).unwrap();
    let payloads = manifest["payloads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| Payload {
            name: format!("{} {}B", p["name"].as_str().unwrap(), p["bytes"]),
            body: std::fs::read(root.join(p["file"].as_str().unwrap())).unwrap(),
            header: p["header"].as_str().unwrap().to_owned(),
        })
        .collect();
    (manifest["secret"].as_str().unwrap().to_owned(), manifest["timestamp"].as_i64().unwrap(), payloads)
}

fn bench(c: &mut Criterion) {
    let (secret, now, payloads) = payloads();
    let secrets = WebhookSecrets::parse(&secret).unwrap();

    let mut group = c.benchmark_group("intake_verify");
    for p in &payloads {
        assert!(verify(&p.body, Some(&p.header), &secrets, false, now).is_ok(), "{} does not verify", p.name);
        group.throughput(Throughput::Bytes(p.body.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(&p.name), p, |b, p| {
            b.iter(|| verify(black_box(&p.body), Some(black_box(&p.header)), &secrets, false, now).unwrap())
        });
    }
    group.finish();

    let mut group = c.benchmark_group("hmac_sha256");
    for p in &payloads {
        group.throughput(Throughput::Bytes(p.body.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(&p.name), p, |b, p| {
            b.iter(|| {
                let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap();
                mac.update(now.to_string().as_bytes());
                mac.update(b".");
                mac.update(black_box(&p.body));
                mac.finalize().into_bytes()
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("async_stripe_construct_event");
    for p in &payloads {
        let text = std::str::from_utf8(&p.body).unwrap();
        group.throughput(Throughput::Bytes(p.body.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(&p.name), text, |b, text| {
            b.iter(|| {
                // An event async-stripe cannot type is an Err after the signature matched: the
                // cost is the same work, so the result is only kept from being optimised out.
                black_box(stripe_webhook::Webhook::construct_event_with_timestamp(
                    black_box(text),
                    &p.header,
                    &secret,
                    now,
                ))
                .is_ok()
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("worker_parse");
    for p in &payloads {
        let text = std::str::from_utf8(&p.body).unwrap();
        group.throughput(Throughput::Bytes(p.body.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(&p.name), text, |b, text| {
            b.iter(|| Incoming::parse(black_box(text)).unwrap())
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
