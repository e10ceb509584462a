//! The runtime's answer, kept between snapshots and refreshed on churn.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use memglass_identify::Directory;

/// The last directory the runtime gave, asked again only when needed.
#[derive(Debug)]
pub struct Cache {
    socket: PathBuf,
    timeout: Duration,
    /// Do not ask more often than this, however much churn there is.
    min_interval: Duration,
    directory: Directory,
    asked_at: Option<Instant>,
    last_error: Option<String>,
}

impl Cache {
    /// A cache for the runtime at `socket`; nothing is asked until [`Cache::refresh_for`].
    pub fn new(socket: PathBuf, timeout: Duration, min_interval: Duration) -> Cache {
        Cache {
            socket,
            timeout,
            min_interval,
            directory: Directory::new(),
            asked_at: None,
            last_error: None,
        }
    }

    /// Ask the runtime again if a container id in `ids` is unknown (a container started
    /// since the last answer) and the last question is older than the minimum interval.
    /// When the runtime does not answer, the previous directory stays (names of running
    /// containers do not change) and the error is kept for [`Cache::last_error`].
    pub fn refresh_for<'a>(&mut self, ids: impl IntoIterator<Item = &'a str>) -> &Directory {
        let unknown = ids
            .into_iter()
            .any(|id| self.directory.container(id).is_none());
        let due = self
            .asked_at
            .is_none_or(|at| at.elapsed() >= self.min_interval);
        if (unknown || self.asked_at.is_none()) && due {
            self.asked_at = Some(Instant::now());
            match crate::fetch(&self.socket, self.timeout) {
                Ok(directory) => {
                    self.directory = directory;
                    self.last_error = None;
                }
                Err(error) => self.last_error = Some(error.to_string()),
            }
        }
        &self.directory
    }

    /// Why the last question failed, if it did.
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    /// The directory as last answered.
    pub fn directory(&self) -> &Directory {
        &self.directory
    }
}
