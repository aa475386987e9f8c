//! What an in-process authgate logs, captured as text: for tests on the current-thread runtime,
//! where the server's tasks run on the test's thread and see its default subscriber.

use std::io::Write;
use std::sync::{Arc, Mutex};

/// Everything logged while the guard of [`capture`] lives, as text.
#[derive(Clone, Default)]
pub struct Log(Arc<Mutex<Vec<u8>>>);

impl Log {
    /// The log so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for Log {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Captures every level on this thread until the guard drops.
pub fn capture() -> (Log, tracing::subscriber::DefaultGuard) {
    let log = Log::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let guard = tracing::subscriber::set_default(subscriber);
    // Callsites another test's thread met while no subscriber wanted them keep that verdict
    // until the cache is rebuilt: rebuild it with this one in place.
    tracing::callsite::rebuild_interest_cache();
    (log, guard)
}
