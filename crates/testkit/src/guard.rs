//! What a test starts is stopped when its handle drops: a child process killed and reaped, a
//! spawned task aborted. The structs of the kit and of the tests hold these instead of each
//! writing its own `Drop`.

use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

/// A child process, killed and reaped when dropped.
pub struct ChildGuard(pub Child);

impl From<Child> for ChildGuard {
    fn from(child: Child) -> Self {
        Self(child)
    }
}

impl std::ops::Deref for ChildGuard {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for ChildGuard {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl ChildGuard {
    /// Sends `sig` (as `kill` spells it: `-TERM`, `-HUP`, `-INT`) to the process; panics when
    /// `kill` fails.
    pub fn signal(&self, sig: &str) {
        let ok = std::process::Command::new("kill")
            .args([sig, &self.0.id().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill {sig} failed");
    }

    /// Waits up to `limit` for the process to exit, looking every `poll`; its status, or `None`
    /// if it still runs.
    pub fn wait_exit(&mut self, limit: Duration, poll: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.0.try_wait().ok().flatten() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(poll);
        }
    }
}

/// A spawned task, aborted when dropped.
pub struct TaskGuard(pub tokio::task::JoinHandle<()>);

impl From<tokio::task::JoinHandle<()>> for TaskGuard {
    fn from(task: tokio::task::JoinHandle<()>) -> Self {
        Self(task)
    }
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}
