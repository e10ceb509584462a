//! Node-wide files under /proc.

pub mod meminfo;
pub mod vmstat;

pub use meminfo::MemInfo;
pub use vmstat::VmStat;
