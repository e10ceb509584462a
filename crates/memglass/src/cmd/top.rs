//! `memglass top`: the terminal UI. A sampler thread takes a snapshot every `--interval`
//! (the same sources → identify → analyse path as `memglass snapshot`), a files thread
//! measures a cgroup's page cache on demand, and this thread only reads keys and draws,
//! so the keyboard never waits for the kernel.

use std::io::IsTerminal;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use memglass_analyse::filecache::rank_files;
use memglass_kernel::filecache::{self, Budget};
use memglass_kernel::pagecache::Prober;
use memglass_kernel::Roots;
use ratatui::crossterm::event::{self, Event};
use ratatui::DefaultTerminal;
use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::fs::{Mode, OFlags};

use crate::cli::{IdentityArgs, SourceArgs, TopArgs};
use crate::live::LiveSource;
use crate::tui::app::{Action, App, Files, Sample};

/// The files the detail view lists.
const TOP_FILES: usize = 20;
const MIN_CACHED: u64 = 64 << 10;
/// How often the loop looks at the sampler and signals while no key arrives.
const TICK: Duration = Duration::from_millis(100);

pub fn run(sources: &SourceArgs, identity: &IdentityArgs, args: &TopArgs) -> anyhow::Result<()> {
    if !std::io::stdout().is_terminal() {
        // The contract's one line, exactly; nothing of the screen was touched yet.
        eprintln!("memglass top needs a terminal; use memglass snapshot --json for scripts");
        std::process::exit(1);
    }
    // Bad --pods/--node files fail here, before the screen is taken over (and before
    // SIGINT is caught: Ctrl-C still ends a slow API question at once).
    let source = LiveSource::new(sources, identity, false)?;
    // Signals end the loop like `q`, so the terminal is restored on the way out.
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
        signal_hook::consts::SIGINT,
    ] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .context("cannot install signal handlers")?;
    }
    let (samples_tx, samples) = mpsc::channel();
    let (refresh, refresh_rx) = mpsc::channel();
    let interval = args.interval.max(Duration::from_millis(100));
    std::thread::Builder::new()
        .name("sampler".into())
        .spawn(move || sample_forever(source, interval, &samples_tx, &refresh_rx))
        .context("cannot start the sampler")?;
    let roots = Roots {
        proc: sources.proc_root.clone(),
        cgroup: sources.cgroup_root.clone(),
    };
    let mut screen = Screen::enter()?;
    let mut app = App::new(interval);
    let channels = Channels {
        samples,
        refresh,
        files: mpsc::channel(),
    };
    let input = TerminalInput::open().context("cannot read the terminal")?;
    let result = event_loop(&mut screen.0, &input, &mut app, &channels, &roots, &stop);
    drop(screen); // restore the terminal before main prints any error
    result
}

/// The terminal in raw mode on the alternate screen; restored when dropped, and by
/// ratatui's panic hook (installed by `try_init`) when anything panics.
struct Screen(DefaultTerminal);

impl Screen {
    fn enter() -> anyhow::Result<Screen> {
        let terminal = ratatui::try_init().context("cannot set up the terminal")?;
        Ok(Screen(terminal))
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        ratatui::restore();
    }
}

/// The terminal's input, watched with poll(2) for keys and for a hang-up. crossterm 0.28
/// reads a hung-up terminal (every read returns end-of-file) in an endless loop, so it is
/// asked for events only when there is input and the terminal is still there.
struct TerminalInput(OwnedFd);

/// What the terminal's input has.
enum Input {
    Ready,
    Idle,
    HungUp,
}

impl TerminalInput {
    /// The descriptor crossterm reads: standard input when it is the terminal, else
    /// /dev/tty.
    fn open() -> std::io::Result<TerminalInput> {
        let fd = if std::io::stdin().is_terminal() {
            std::io::stdin().as_fd().try_clone_to_owned()?
        } else {
            let flags = OFlags::RDONLY | OFlags::NOCTTY | OFlags::CLOEXEC;
            rustix::fs::open("/dev/tty", flags, Mode::empty())?
        };
        Ok(TerminalInput(fd))
    }

    /// Wait up to `timeout` for input.
    fn wait(&self, timeout: Duration) -> std::io::Result<Input> {
        let mut fds = [PollFd::new(&self.0, PollFlags::IN)];
        let timeout = Timespec {
            tv_sec: timeout.as_secs() as _,
            tv_nsec: timeout.subsec_nanos() as _,
        };
        match rustix::event::poll(&mut fds, Some(&timeout)) {
            Ok(0) | Err(rustix::io::Errno::INTR) => Ok(Input::Idle),
            Ok(_) => {
                let events = fds[0].revents();
                if events.intersects(PollFlags::HUP | PollFlags::ERR | PollFlags::NVAL) {
                    Ok(Input::HungUp)
                } else {
                    Ok(Input::Ready)
                }
            }
            Err(error) => Err(error.into()),
        }
    }
}

struct Channels {
    samples: Receiver<Result<Sample, String>>,
    refresh: Sender<()>,
    files: (Sender<Files>, Receiver<Files>),
}

fn event_loop(
    terminal: &mut DefaultTerminal,
    input: &TerminalInput,
    app: &mut App,
    channels: &Channels,
    roots: &Roots,
    stop: &AtomicBool,
) -> anyhow::Result<()> {
    let mut dirty = true;
    let mut size = terminal.size()?;
    while !stop.load(Ordering::Relaxed) {
        if dirty {
            terminal.draw(|frame| crate::tui::draw::draw(frame, app))?;
            dirty = false;
        }
        let ready = match input.wait(TICK)? {
            Input::HungUp => return Ok(()), // nobody is left to look at the screen
            Input::Ready => true,
            Input::Idle => false,
        };
        // Only now ask crossterm (see TerminalInput); it drains what it read at once.
        while ready && event::poll(Duration::ZERO)? {
            match event::read()? {
                Event::Key(key) => {
                    match app.on_key(key) {
                        Action::Quit => return Ok(()),
                        Action::Refresh => {
                            let _ = channels.refresh.send(());
                        }
                        Action::MeasureFiles { path } => {
                            spawn_files(roots.clone(), path, channels.files.0.clone());
                        }
                        Action::None => {}
                    }
                    dirty = true;
                }
                Event::Resize(..) => dirty = true,
                _ => {}
            }
        }
        // A resize is a signal, not input: look at the size on every tick instead
        // (after the input, which tells a hung-up terminal first).
        let now = terminal.size()?;
        if now != size {
            size = now;
            dirty = true;
        }
        loop {
            match channels.samples.try_recv() {
                Ok(Ok(sample)) => app.on_sample(sample),
                Ok(Err(error)) => app.error = Some(error),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => anyhow::bail!("the sampler stopped"),
            }
            dirty = true;
        }
        while let Ok(files) = channels.files.1.try_recv() {
            app.on_files(files);
            dirty = true;
        }
    }
    Ok(())
}

/// Sample, hand over, wait for the interval or a refresh request; stop when the screen
/// is gone (its receivers dropped).
fn sample_forever(
    mut source: LiveSource,
    interval: Duration,
    samples: &Sender<Result<Sample, String>>,
    refresh: &Receiver<()>,
) {
    loop {
        let taken_at = Instant::now();
        let sample = source.collect().map(|(snapshot, directory)| {
            let took = taken_at.elapsed();
            Sample {
                findings: findings(&source, &snapshot, &directory),
                snapshot,
                taken_at,
                took,
                warnings: source.warnings(),
            }
        });
        if samples.send(sample).is_err() {
            return;
        }
        let wait = interval.saturating_sub(taken_at.elapsed());
        match refresh.recv_timeout(wait) {
            Ok(()) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// `memglass diagnose`'s findings with its defaults, from the kernel log's kills of the
/// last hour (no file scan, no history: a refresh must stay cheap).
fn findings(
    source: &LiveSource,
    snapshot: &memglass_analyse::Snapshot,
    directory: &memglass_identify::Directory,
) -> Vec<memglass_analyse::diagnose::Finding> {
    use crate::cmd::diagnose;
    let now = std::time::SystemTime::now();
    let since = now - Duration::from_secs(3600);
    let kills =
        diagnose::recent_kills(&source.roots.proc, directory, since, source.subtree(), true);
    let settings = memglass_analyse::diagnose::Settings {
        page_size: rustix::param::page_size() as u64,
        now: memglass_agent::shared::unix_seconds(now),
        ..Default::default()
    };
    diagnose::find(
        snapshot,
        directory,
        memglass_analyse::eviction::DEFAULT_THRESHOLD,
        &kills,
        &[],
        &[],
        settings,
    )
}

/// List the cgroup's largest cached files in a thread of its own (a big cgroup takes
/// seconds), as `memglass cache --cgroup` does.
fn spawn_files(roots: Roots, path: String, done: Sender<Files>) {
    std::thread::spawn(move || {
        let result = measure_files(&roots, &path);
        let _ = done.send(match result {
            Ok((files, method)) => Files::Ready {
                path,
                files,
                method,
            },
            Err(error) => Files::Failed {
                path,
                message: format!("{error:#}"),
            },
        });
    });
}

fn measure_files(
    roots: &Roots,
    path: &str,
) -> anyhow::Result<(
    Vec<memglass_kernel::filecache::CachedFile>,
    memglass_kernel::pagecache::Method,
)> {
    let hierarchy = roots
        .memory_hierarchy()
        .context("cannot find the memory cgroup hierarchy")?;
    let dir = hierarchy.mount_point.join(path.trim_start_matches('/'));
    let prober = Prober::new(rustix::param::page_size() as u64);
    let (files, _gaps) = filecache::scan_cgroup(&roots.proc, &dir, Budget::default(), &prober);
    Ok((
        rank_files(files, Some(TOP_FILES), MIN_CACHED),
        prober.method(),
    ))
}
