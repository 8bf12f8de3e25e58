//! Long-running tasks that must not die silently: a panic is logged as an error, reported to
//! the owner (a bridge shows it as its peer's `last_error`), and the task is started again
//! after a back-off, until its cancellation token fires.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// First wait before a panicked task is started again; it doubles up to [`MAX_RESTART_DELAY`].
pub const FIRST_RESTART_DELAY: Duration = Duration::from_millis(100);
/// Longest wait between restarts of a task that keeps panicking.
pub const MAX_RESTART_DELAY: Duration = Duration::from_secs(30);

/// Runs `make()` as its own task, again after each panic, until it returns or `cancel` fires.
/// `on_panic` gets the panic's message each time.
pub async fn supervise<F, Fut>(
    what: String,
    cancel: CancellationToken,
    on_panic: impl Fn(&str),
    make: F,
) where
    F: Fn() -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut delay = FIRST_RESTART_DELAY;
    loop {
        let message = match tokio::spawn(make()).await {
            Ok(()) => return,
            Err(e) if e.is_panic() => panic_message(e.into_panic()),
            // Cancelled: the runtime is going away.
            Err(_) => return,
        };
        tracing::error!(task = %what, panic = %message, restart_in_ms = delay.as_millis() as u64, "task panicked; restarting it");
        on_panic(&message);
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(MAX_RESTART_DELAY);
    }
}

/// The text a panic carried (`panic!("...")` or a formatted message).
pub fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(s) => *s,
        Err(payload) => match payload.downcast::<&'static str>() {
            Ok(s) => (*s).to_string(),
            Err(_) => "a panic without a message".to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(start_paused = true)]
    async fn a_panicking_task_is_reported_and_started_again() {
        let runs = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let r = runs.clone();
        let s = seen.clone();
        supervise(
            "test".into(),
            CancellationToken::new(),
            move |m| {
                s.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(m.to_string())
            },
            move || {
                let r = r.clone();
                async move {
                    if r.fetch_add(1, Ordering::SeqCst) < 2 {
                        panic!("boom {}", 7);
                    }
                }
            },
        )
        .await;
        assert_eq!(runs.load(Ordering::SeqCst), 3, "ran until it returned");
        let seen = seen.lock().unwrap_or_else(|e| e.into_inner()).clone();
        assert_eq!(seen, vec!["boom 7".to_string(), "boom 7".to_string()]);
    }
}
