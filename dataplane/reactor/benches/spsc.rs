//! The control ↔ reactor mailbox ring: a bounded crossbeam `ArrayQueue` used by exactly one
//! producer and one consumer, with a full ring handing the message back, as the reactor's
//! private `mailbox` module uses it. Measures one message through the ring on one thread
//! (the cost a reactor pays per mailbox check) and messages streamed between two threads.

use std::hint::black_box;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use crossbeam_queue::ArrayQueue;

/// The capacities of the two directions of the reactor's mailbox.
const TO_REACTOR_RING_CAPACITY: usize = 64;
const FROM_REACTOR_RING_CAPACITY: usize = 256;

/// A message the size and shape of the mailbox's: a small enum, one variant holding an `Arc`.
#[derive(Debug)]
#[allow(dead_code)]
enum Message {
    Install(Arc<u64>),
    Drained(u64),
    Stop,
}

fn same_thread(c: &mut Criterion) {
    let mut group = c.benchmark_group("spsc");
    group.throughput(Throughput::Elements(1));
    let ring: ArrayQueue<Message> = ArrayQueue::new(TO_REACTOR_RING_CAPACITY);
    group.bench_function("send_recv_same_thread", |b| {
        b.iter(|| {
            // A full ring hands the message back; here it is never full.
            let _ = ring.push(Message::Drained(black_box(7)));
            black_box(ring.pop())
        })
    });
    group.bench_function("recv_empty", |b| b.iter(|| black_box(ring.pop()).is_none()));
    group.finish();
}

/// Streams `count` messages from a producer thread to this thread, retrying on a full ring
/// as the data path does, and returns the time from the first send to the last receive.
fn stream(count: u64) -> Duration {
    let ring = Arc::new(ArrayQueue::<Message>::new(FROM_REACTOR_RING_CAPACITY));
    let producer_ring = Arc::clone(&ring);
    let start = Instant::now();
    let producer = thread::spawn(move || {
        for n in 0..count {
            let mut message = Message::Drained(n);
            while let Err(back) = producer_ring.push(message) {
                message = back;
                std::hint::spin_loop();
            }
        }
        let mut stop = Message::Stop;
        while let Err(back) = producer_ring.push(stop) {
            stop = back;
            std::hint::spin_loop();
        }
    });
    let mut received = 0u64;
    loop {
        match ring.pop() {
            Some(Message::Stop) => break,
            Some(_) => received += 1,
            None => std::hint::spin_loop(),
        }
    }
    let elapsed = start.elapsed();
    let _ = producer.join();
    assert_eq!(received, count);
    elapsed
}

fn cross_thread(c: &mut Criterion) {
    let mut group = c.benchmark_group("spsc");
    const BATCH: u64 = 10_000;
    group.throughput(Throughput::Elements(BATCH));
    group.sample_size(20);
    group.bench_function("stream_between_threads_10k", |b| {
        b.iter_custom(|iterations| (0..iterations).map(|_| stream(BATCH)).sum())
    });
    group.finish();
}

criterion_group!(benches, same_thread, cross_thread);
criterion_main!(benches);
