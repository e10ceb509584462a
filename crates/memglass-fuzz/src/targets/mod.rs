//! One target per parser of outside input. Each feeds an input to the parser and to what
//! consumes its result directly (normalisation, OOM assembly, identity resolution), so an
//! odd value that parses is followed one step further.

mod api;
mod cri;
mod identify;
mod kernel;
mod kmsg;
mod kube;
mod store;

use crate::Target;

/// Every target, in the order the report lists them.
pub static ALL: [&Target; 17] = [
    &kernel::MEMORY_STAT,
    &kernel::MEMORY_EVENTS,
    &kernel::MEMORY_PRESSURE,
    &kernel::CGROUP_VALUE,
    &kernel::MEMINFO,
    &kernel::VMSTAT,
    &kernel::MOUNTINFO,
    &kmsg::KMSG_RECORD,
    &kmsg::SAVED_LOG,
    &kmsg::OOM_REPORT,
    &identify::CGROUP_PATH,
    &kube::QUANTITY,
    &kube::POD_JSON,
    &kube::NODE_JSON,
    &cri::CRI_REPLY,
    &api::API_QUERY,
    &store::HISTORY_BLOCK,
];

/// The target called `name`.
pub fn by_name(name: &str) -> Option<&'static Target> {
    ALL.iter().copied().find(|t| t.name == name)
}

/// Input bytes as the text a reader would hand the parser. Readers refuse invalid UTF-8
/// before parsing; the lossy form still reaches the parser with U+FFFD (three bytes) where
/// the odd bytes were, which is what breaks code that slices text by byte counts.
fn text(input: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(input)
}
