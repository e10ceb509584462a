//! SOURCES stage of memglass: typed readers of the kernel's memory interfaces.
//!
//! Readers only read the kernel and return typed samples, with no Kubernetes knowledge
//! and no derived figures (those belong to `memglass-analyse`). Every file is opened under
//! injected [`Roots`], so a recorded tree reads exactly like the live one.
//!
//! - [`cgroup`]: finds the memory hierarchy (v1, v2 or hybrid) from mountinfo, walks it,
//!   and normalises each cgroup's v1 or v2 files into one [`cgroup::CgroupMemory`].
//! - [`proc`]: /proc/meminfo and /proc/vmstat.
//! - [`collect()`]: one pass over both, returning a [`HostSample`] whose [`Gap`]s say what
//!   could not be read. A cgroup vanishing mid-read is counted, not an error.
//!
//! ```no_run
//! let sample = memglass_kernel::collect(&memglass_kernel::Roots::host())?;
//! for cgroup in &sample.cgroups {
//!     println!("{} {:?}", cgroup.path, cgroup.memory.usage);
//! }
//! # Ok::<(), memglass_kernel::Error>(())
//! ```
#![deny(missing_docs)]

pub mod capture;
pub mod cgroup;
pub mod collect;
pub mod dir;
pub mod error;
pub mod filecache;
pub mod gap;
pub mod kmsg;
pub mod kpage;
pub mod mounts;
pub mod pagecache;
pub mod parse;
pub mod proc;

pub use collect::{collect, HostSample, Roots};
pub use error::{Error, Result};
pub use gap::{Gap, GapKind};
