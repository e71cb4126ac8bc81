//! One shared watch tick for all calls in flight.
//!
//! Runs in: the extension's service worker (wasm). Every running call has a watcher that
//! looks, every [`POLL_MS`], for a reason to stop (cancel, deadline, tab closed or gone
//! elsewhere). A timer per call meant a `setTimeout`, a closure and a `clearTimeout` for
//! every call — under the 8-page load ~35 µs of the worker's thread per call, most of it
//! on the call's own path (the cancel runs before the answer is sent). Instead, one
//! `setInterval` runs while anything waits for it, and each [`tick`] resolves at its next
//! beat: a watcher's first look therefore comes 0–[`POLL_MS`] after it starts, not exactly
//! [`POLL_MS`] after (callers that care measure the time themselves). When a beat finds
//! nothing waiting, the interval stops, so an idle worker runs no timer.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use gloo_timers::callback::Interval;

use crate::wait::POLL_MS;

#[derive(Default)]
struct Beat {
    /// How many beats have passed.
    count: u64,
    /// Whoever waits for the next beat.
    waiting: Vec<Waker>,
    /// Running while someone waits.
    interval: Option<Interval>,
}

thread_local! {
    static BEAT: RefCell<Beat> = RefCell::new(Beat::default());
}

/// Resolves at the next beat of the shared watch interval (within [`POLL_MS`]).
pub fn tick() -> Tick {
    Tick { after: None }
}

pub struct Tick {
    /// The beat count when first polled: ready once it has grown. Its waker is in the
    /// waiting list from then until that beat (a select polls it again whenever the
    /// work beside it wakes; it is not added twice).
    after: Option<u64>,
}

impl Future for Tick {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        BEAT.with(|b| {
            let mut b = b.borrow_mut();
            match self.after {
                Some(count) if b.count > count => return Poll::Ready(()),
                Some(_) => return Poll::Pending,
                None => self.after = Some(b.count),
            }
            b.waiting.push(cx.waker().clone());
            if b.interval.is_none() {
                b.interval = Some(Interval::new(POLL_MS, beat));
            }
            Poll::Pending
        })
    }
}

fn beat() {
    let waiting = BEAT.with(|b| {
        let mut b = b.borrow_mut();
        b.count += 1;
        if b.waiting.is_empty() {
            // Nothing waited since the last beat. wasm-bindgen frees the running
            // callback once it returns.
            b.interval = None;
        }
        std::mem::take(&mut b.waiting)
    });
    // A waker of a call that finished meanwhile wakes nothing that runs.
    for waker in waiting {
        waker.wake();
    }
}
