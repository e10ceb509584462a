//! The long-running source: this node's pods and its Node object, watched through the API
//! (kube-rs' `watcher` + `reflector`), published as the latest [`Directory`]; the same
//! thread posts memglass's Kubernetes Events (`events.rs`).
//!
//! # Shape
//!
//! [`NodeWatch::start`] spawns one thread running a small current-thread tokio runtime. On
//! it run: two watchers (pods with `fieldSelector=spec.nodeName=<node>`, the Node with
//! `fieldSelector=metadata.name=<node>`), each feeding a reflector store, with kube-rs'
//! default backoff (0.8 s doubling to 30 s, with jitter, reset after 2 min without errors);
//! a check that asks the API once every [`CHECK_EVERY`] while the watch is failing, so the
//! status says when the server answers again; and, when asked for, the event recorder.
//! Every change of either store rebuilds the [`Directory`] (the same mapping as [`fetch`],
//! plus each container's previous instance, so that an OOM kill read after the restart it
//! caused still names its container) and publishes it through `arc-swap`: readers
//! ([`NodeWatch::directory`]) never wait.
//!
//! When the API server goes away, the last directory stays published and
//! [`WatchStatus::connected`] turns false with the error; the watcher resumes from the last
//! resourceVersion it saw (or lists again when the server says 410 Gone), so pods created
//! meanwhile are named once it is back.
//!
//! [`fetch`]: crate::fetch

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use memglass_identify::{Directory, Origin};

use crate::error::{causes, Error, Result};
use crate::events::{post_events, PodEvent, REPORTING_CONTROLLER};
use crate::map::{earlier_instances, node_info, pod_info, pod_label};

/// While the watch fails, how often the API is asked whether it answers again.
pub const CHECK_EVERY: Duration = Duration::from_secs(2);
/// Events waiting to be posted beyond this many are dropped (and counted).
const EVENT_QUEUE: usize = 64;

/// How the API side is doing, for the agent's health document and `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WatchStatus {
    /// The node watched.
    pub node: String,
    /// The API server answered the last request (watch or check); false after an error
    /// until it answers again.
    pub connected: bool,
    /// Both the pods and the node have been listed at least once.
    pub synced: bool,
    /// When the API last delivered anything (an object, a list, or a check's answer).
    pub last_contact: Option<SystemTime>,
    /// When the published directory last changed.
    pub last_update: Option<SystemTime>,
    /// The last error of the watch, one line.
    pub last_error: Option<String>,
    /// Watch errors so far (each one followed by a retry after a backoff).
    pub errors: u64,
    /// Pods in the published directory.
    pub pods: usize,
    /// Pods left out of it because they could not be mapped (the last reason in
    /// `last_error`).
    pub skipped_pods: usize,
    /// Events created (POST) or added to a series (PATCH).
    pub events_posted: u64,
    /// Events the API refused or that timed out.
    pub events_failed: u64,
    /// Events dropped because the queue was full.
    pub events_dropped: u64,
    /// The last event error, one line.
    pub last_event_error: Option<String>,
}

/// What the watch thread and its handle share.
#[derive(Debug)]
pub(crate) struct Inner {
    directory: ArcSwap<Directory>,
    status: Mutex<WatchStatus>,
    /// The last watch error was the server's own answer (e.g. 403 Forbidden), not a lost
    /// connection: the check then cannot tell more than the watch (no flapping).
    refused: std::sync::atomic::AtomicBool,
}

impl Inner {
    pub(crate) fn update(&self, f: impl FnOnce(&mut WatchStatus)) {
        if let Ok(mut status) = self.status.lock() {
            f(&mut status);
        }
    }

    fn contact(&self) {
        self.refused
            .store(false, std::sync::atomic::Ordering::Relaxed);
        self.update(|s| {
            s.connected = true;
            s.last_contact = Some(SystemTime::now());
        });
    }

    fn failed(&self, error: String) {
        self.update(|s| {
            s.connected = false;
            s.errors += 1;
            s.last_error = Some(error);
        });
    }
}

/// This node's pods and Node, watched on a thread of their own; dropping it stops them.
#[derive(Debug)]
pub struct NodeWatch {
    inner: Arc<Inner>,
    events: Option<tokio::sync::mpsc::Sender<PodEvent>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl NodeWatch {
    /// Start watching. `node` is resolved by [`node_name`](crate::node_name); the client
    /// comes from `kube::Config::infer()` as for [`fetch`](crate::fetch). With `events`,
    /// [`NodeWatch::post`] publishes events (RBAC: `create` and `patch` on
    /// `events.k8s.io` events).
    ///
    /// Returns once the client is configured (no request is made before that): an
    /// unreachable server is not an error here but a status ([`NodeWatch::status`]).
    pub fn start(node: Option<&str>, timeout: Duration, events: bool) -> Result<NodeWatch> {
        let node = crate::node_name(node)?;
        let inner = Arc::new(Inner {
            directory: ArcSwap::from_pointee(Directory::new()),
            status: Mutex::new(WatchStatus {
                node: node.clone(),
                ..WatchStatus::default()
            }),
            refused: std::sync::atomic::AtomicBool::new(false),
        });
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let (event_tx, event_rx) = tokio::sync::mpsc::channel(EVENT_QUEUE);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread_inner = Arc::clone(&inner);
        let thread = std::thread::Builder::new()
            .name("memglass-kube".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(error) => {
                        let _ = ready_tx.send(Err(Error::Runtime(error)));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let client = match client(timeout).await {
                        Ok(client) => client,
                        Err(error) => {
                            let _ = ready_tx.send(Err(error));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok(()));
                    let recorder = events.then(|| {
                        Recorder::new(
                            client.clone(),
                            Reporter {
                                controller: REPORTING_CONTROLLER.into(),
                                instance: Some(format!("{REPORTING_CONTROLLER}-{node}")),
                            },
                        )
                    });
                    let work = async {
                        tokio::join!(
                            watch(client.clone(), &node, &thread_inner),
                            check(client, &node, &thread_inner),
                            post_events(recorder, event_rx, &thread_inner),
                        )
                    };
                    tokio::select! {
                        _ = work => {},
                        _ = stopped => {},
                    }
                });
            })
            .map_err(Error::Runtime)?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(NodeWatch {
                inner,
                events: events.then_some(event_tx),
                stop: Some(stop),
                thread: Some(thread),
            }),
            Ok(Err(error)) => {
                let _ = thread.join();
                Err(error)
            }
            Err(_) => {
                let _ = thread.join();
                Err(Error::Config(
                    "the watch thread ended before starting".into(),
                ))
            }
        }
    }

    /// The latest directory (empty until the first list arrives).
    pub fn directory(&self) -> Arc<Directory> {
        self.inner.directory.load_full()
    }

    /// How the watch is doing.
    pub fn status(&self) -> WatchStatus {
        self.inner
            .status
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default()
    }

    /// Wait up to `timeout` for the first complete lists of pods and node; true when
    /// they arrived, false at once when the API failed first (the watch goes on retrying).
    pub fn wait_synced(&self, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let status = self.status();
            if status.synced {
                return true;
            }
            if status.errors > 0 || std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Queue an event for posting; false when events are off or the queue is full (then
    /// counted in [`WatchStatus::events_dropped`]). Never blocks.
    pub fn post(&self, event: PodEvent) -> bool {
        let Some(events) = &self.events else {
            return false;
        };
        match events.try_send(event) {
            Ok(()) => true,
            Err(_) => {
                self.inner.update(|s| s.events_dropped += 1);
                false
            }
        }
    }
}

impl Drop for NodeWatch {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn client(timeout: Duration) -> Result<kube::Client> {
    let mut config = kube::Config::infer()
        .await
        .map_err(|e| Error::Config(causes(&e)))?;
    config.connect_timeout = Some(timeout);
    kube::Client::try_from(config).map_err(|e| Error::Config(causes(&e)))
}

/// Which of the two watches a change came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Watched {
    Pods,
    Node,
}

/// Watch pods and node until the end of the runtime, publishing each change.
async fn watch(client: kube::Client, node: &str, inner: &Inner) {
    let (pods, pod_writer) = reflector::store::<Pod>();
    let (nodes, node_writer) = reflector::store::<Node>();
    let pod_stream = watcher(
        Api::<Pod>::all(client.clone()),
        watcher::Config::default().fields(&format!("spec.nodeName={node}")),
    )
    .modify(|pod| {
        // Nothing memglass reads, and most of a pod object's size.
        pod.metadata.managed_fields = None;
        pod.metadata.annotations = None;
    })
    .default_backoff()
    .reflect(pod_writer)
    .map(|event| (Watched::Pods, event.map(kind_of)));
    let node_stream = watcher(
        Api::<Node>::all(client),
        watcher::Config::default().fields(&format!("metadata.name={node}")),
    )
    .modify(|node| {
        node.metadata.managed_fields = None;
        node.metadata.annotations = None;
        if let Some(status) = &mut node.status {
            status.images = None;
        }
    })
    .default_backoff()
    .reflect(node_writer)
    .map(|event| (Watched::Node, event.map(kind_of)));
    let mut changes = std::pin::pin!(futures::stream::select(pod_stream, node_stream));
    let (mut pods_listed, mut node_listed) = (false, false);
    while let Some((watched, event)) = changes.next().await {
        let listed = match watched {
            Watched::Pods => &mut pods_listed,
            Watched::Node => &mut node_listed,
        };
        match event {
            Err(error) => {
                inner
                    .refused
                    .store(refused(&error), std::sync::atomic::Ordering::Relaxed);
                inner.failed(format!("watch: {}", causes(&error)));
            }
            Ok(kind) => {
                inner.contact();
                if kind == Kind::InitDone {
                    *listed = true;
                }
                if kind != Kind::Partial && (pods_listed || node_listed) {
                    publish(&pods, &nodes, inner);
                }
                if pods_listed && node_listed {
                    inner.update(|s| s.synced = true);
                }
            }
        }
    }
}

/// The server answered the watch with an error status (as opposed to: no answer).
fn refused(error: &watcher::Error) -> bool {
    match error {
        watcher::Error::InitialListFailed(e)
        | watcher::Error::WatchStartFailed(e)
        | watcher::Error::WatchFailed(e) => matches!(e, kube::Error::Api(_)),
        watcher::Error::WatchError(_) | watcher::Error::NoResourceVersion => true,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Init or InitApply: part of a list that is not complete yet.
    Partial,
    /// The list is complete.
    InitDone,
    /// An object was added, changed or deleted.
    Change,
}

fn kind_of<K>(event: watcher::Event<K>) -> Kind {
    match event {
        watcher::Event::Init | watcher::Event::InitApply(_) => Kind::Partial,
        watcher::Event::InitDone => Kind::InitDone,
        watcher::Event::Apply(_) | watcher::Event::Delete(_) => Kind::Change,
    }
}

/// Rebuild the directory from both stores and publish it. A pod that cannot be mapped is
/// left out (and counted), not the whole directory.
fn publish(pods: &Store<Pod>, nodes: &Store<Node>, inner: &Inner) {
    let mut directory = Directory::new();
    let mut skipped = Vec::new();
    for pod in pods.state() {
        match pod_info(&pod, &format!("pod {}", pod_label(&pod))) {
            Ok((info, containers)) => {
                directory.add_pod(info);
                // After the current ones, so a current id always wins.
                let earlier = earlier_instances(&pod, &containers);
                for container in containers.into_iter().chain(earlier) {
                    directory.add_container(container);
                }
            }
            Err(error) => skipped.push(error.to_string()),
        }
    }
    directory.node = nodes.state().first().and_then(|n| node_info(n).ok());
    directory.origins.push(Origin::KubeApi);
    let count = directory.len().0;
    inner.directory.store(Arc::new(directory));
    inner.update(|s| {
        s.pods = count;
        s.skipped_pods = skipped.len();
        s.last_update = Some(SystemTime::now());
        if let Some(last) = skipped.pop() {
            s.last_error = Some(last);
        }
    });
}

/// While the watch fails for want of an answer, ask the API (one pod of this node) every
/// [`CHECK_EVERY`], so `connected` turns true when the server answers again even if
/// nothing on the node changed. Not after the server refused the watch (403, a bad
/// request…): only the watch itself can tell that it is allowed again.
async fn check(client: kube::Client, node: &str, inner: &Inner) {
    let pods: Api<Pod> = Api::all(client);
    let params = ListParams::default()
        .fields(&format!("spec.nodeName={node}"))
        .limit(1);
    loop {
        tokio::time::sleep(CHECK_EVERY).await;
        let connected = inner.status.lock().map(|s| s.connected).unwrap_or(true);
        if connected || inner.refused.load(std::sync::atomic::Ordering::Relaxed) {
            continue;
        }
        let answer = tokio::time::timeout(CHECK_EVERY * 5, pods.list(&params)).await;
        if let Ok(Ok(_)) = answer {
            inner.contact();
        }
    }
}
