//! Child processes owned by a test: every process a test starts is held by a [`Proc`], which
//! kills (SIGKILL) and reaps it when dropped, so a failed assertion or a panic never leaves a
//! daemon behind (re-parented to init, holding the test runner's output pipe open).
//!
//! `Command::output()` needs no guard: it returns only once the child has exited.

use std::{
    process::{Child, ChildStdout, Command, ExitStatus},
    time::{Duration, Instant},
};

/// A running child process, killed and reaped on drop.
#[derive(Debug)]
pub struct Proc {
    child: Option<Child>,
    what: String,
}

impl Proc {
    /// Starts `cmd`; panics (naming the program) if it cannot be started.
    pub fn spawn(cmd: &mut Command) -> Proc {
        let what = format!(
            "{} {}",
            cmd.get_program().to_string_lossy(),
            cmd.get_args()
                .next()
                .map(|a| a.to_string_lossy().into_owned())
                .unwrap_or_default()
        );
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("starting {what}: {e}"));
        Proc {
            child: Some(child),
            what,
        }
    }

    fn child(&mut self) -> &mut Child {
        self.child.as_mut().expect("the process was already reaped")
    }

    /// The process id (while it has not been reaped).
    pub fn id(&self) -> u32 {
        self.child.as_ref().expect("the process was reaped").id()
    }

    /// Its standard output, when it was piped.
    pub fn take_stdout(&mut self) -> Option<ChildStdout> {
        self.child().stdout.take()
    }

    /// SIGKILL and reap: no shutdown code runs. Does nothing once reaped.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then waits up to `limit` for the process to exit; a process that does not is
    /// killed and the test fails. The exit status.
    pub fn terminate(&mut self, limit: Duration) -> ExitStatus {
        let pid = self.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM {pid} failed");
        self.wait_for(limit)
    }

    /// Waits up to `limit` for the process to exit by itself; kills it and fails the test if it
    /// does not.
    pub fn wait_for(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child().try_wait().expect("try_wait") {
                self.child = None;
                return status;
            }
            if Instant::now() >= deadline {
                self.kill();
                panic!("{} did not exit within {limit:?}", self.what);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether it is still running (reaps it when it has exited).
    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            None => false,
            Some(c) => match c.try_wait().expect("try_wait") {
                Some(_) => {
                    self.child = None;
                    false
                }
                None => true,
            },
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}
