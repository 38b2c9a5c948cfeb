//! Shutdown: one small type that every task and thread holds, so that none
//! invents its own way to stop (the model is mini-redis's `Shutdown`).
//!
//! Ingest threads block on a wake channel between reads; triggering the
//! shutdown sets the flag and wakes each of them, so they notice at once
//! instead of at their next poll tick.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex};

#[derive(Clone, Debug, Default)]
pub struct Shutdown {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    triggered: AtomicBool,
    wakers: Mutex<Vec<SyncSender<()>>>,
    notify: tokio::sync::Notify,
}

impl Shutdown {
    pub fn new() -> Self {
        Shutdown::default()
    }

    pub fn is_triggered(&self) -> bool {
        self.inner.triggered.load(Ordering::Acquire)
    }

    /// Registers a thread's wake channel so that [`Shutdown::trigger`] wakes it.
    pub fn register_waker(&self, waker: SyncSender<()>) {
        self.inner.wakers.lock().unwrap_or_else(|e| e.into_inner()).push(waker);
    }

    pub fn trigger(&self) {
        self.inner.triggered.store(true, Ordering::Release);
        for waker in self.inner.wakers.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            // A full channel already holds a wake-up; a closed one has no reader left.
            let _ = waker.try_send(());
        }
        self.inner.notify.notify_waiters();
    }

    /// Completes once the shutdown is triggered (for async tasks).
    pub async fn triggered(&self) {
        loop {
            let notified = self.inner.notify.notified();
            if self.is_triggered() {
                return;
            }
            notified.await;
        }
    }
}
