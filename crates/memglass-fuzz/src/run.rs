//! Running one target: inputs on a worker thread, panics caught, hangs watched for.
//!
//! The worker makes each input, notes when it started, and calls the parser under
//! `catch_unwind`. A panic saves the input to `<out>/<target>-panic-<n>.bin` and the run
//! goes on (so the count is the number of panicking inputs).
//!
//! Time per input is the worker thread's CPU time, so a busy shared machine does not
//! inflate it. An input that used more CPU than the hang budget is a hang, saved as
//! `<target>-slow-<n>.bin`. The calling thread also watches the wall clock: an input still
//! running after ten budgets (at least 10 s) never ends, is saved as `<target>-hang.bin`,
//! and the target is abandoned (its thread cannot be stopped; the process exit ends it).

use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use crate::mutate::{Mutator, Rng};
use crate::Target;

/// How to run a target.
#[derive(Debug, Clone)]
pub struct Options {
    /// Inputs to try.
    pub inputs: u64,
    /// Seed of the generator (mixed with the target's name).
    pub seed: u64,
    /// An input using more CPU time than this is a hang.
    pub hang_after: Duration,
    /// Where failing inputs are saved.
    pub out: PathBuf,
}

/// What a run found.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Inputs run to the end (or to a panic).
    pub inputs: u64,
    /// Inputs that panicked.
    pub panics: u64,
    /// Inputs that ran past the hang budget.
    pub hangs: u64,
    /// The most CPU time any input took.
    pub max_time: Duration,
    /// The size of that input.
    pub max_time_len: usize,
    /// The largest input tried.
    pub max_len: usize,
    /// Wall time of the whole run.
    pub elapsed: Duration,
    /// Saved failing inputs, with what went wrong.
    pub failures: Vec<(PathBuf, String)>,
}

impl Outcome {
    /// Inputs per second.
    pub fn rate(&self) -> f64 {
        self.inputs as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// At most this many panicking inputs of one target are saved.
const SAVED_PANICS: u64 = 5;

struct Shared {
    /// Nanoseconds since `base` when the current input started; 0 when idle.
    started: AtomicU64,
    /// The current input (copied before each call, read only on a hang).
    current: Mutex<Vec<u8>>,
    /// Inputs finished so far.
    count: AtomicU64,
    done: AtomicBool,
    base: Instant,
}

/// Run `target` on `opts.inputs` inputs made from `seeds`.
pub fn run(target: &'static Target, seeds: Arc<Vec<Vec<u8>>>, opts: &Options) -> Outcome {
    quiet_panics();
    let shared = Arc::new(Shared {
        started: AtomicU64::new(0),
        current: Mutex::new(Vec::new()),
        count: AtomicU64::new(0),
        done: AtomicBool::new(false),
        base: Instant::now(),
    });
    let worker = {
        let shared = Arc::clone(&shared);
        let opts = opts.clone();
        std::thread::Builder::new()
            .name(format!("fuzz-{}", target.name))
            .stack_size(64 << 20)
            .spawn(move || work(target, &seeds, &opts, &shared))
    };
    let worker = match worker {
        Ok(handle) => handle,
        Err(error) => {
            let mut outcome = Outcome::default();
            outcome
                .failures
                .push((PathBuf::new(), format!("cannot start a thread: {error}")));
            return outcome;
        }
    };
    let start = Instant::now();
    loop {
        if shared.done.load(Ordering::Acquire) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
        let started = shared.started.load(Ordering::Acquire);
        if started == 0 {
            continue;
        }
        let running = shared
            .base
            .elapsed()
            .saturating_sub(Duration::from_nanos(started));
        if running > (opts.hang_after * 10).max(Duration::from_secs(10)) {
            let input = shared.current.lock().map(|i| i.clone()).unwrap_or_default();
            let path = save(&opts.out, &format!("{}-hang.bin", target.name), &input);
            return Outcome {
                inputs: shared.count.load(Ordering::Acquire),
                hangs: 1,
                max_time: running,
                max_time_len: input.len(),
                elapsed: start.elapsed(),
                failures: vec![(path, format!("still running after {running:?}"))],
                ..Outcome::default()
            };
        }
    }
    match worker.join() {
        Ok(mut outcome) => {
            outcome.elapsed = start.elapsed();
            outcome
        }
        Err(_) => Outcome {
            failures: vec![(PathBuf::new(), "the fuzz worker itself panicked".into())],
            ..Outcome::default()
        },
    }
}

/// Run one saved input (a regression check, or to debug a saved failure).
pub fn replay(target: &Target, input: &[u8]) -> Result<Duration, String> {
    quiet_panics();
    let start = Instant::now();
    panic::catch_unwind(AssertUnwindSafe(|| (target.run)(input)))
        .map(|()| start.elapsed())
        .map_err(|_| last_panic())
}

fn work(target: &Target, seeds: &[Vec<u8>], opts: &Options, shared: &Shared) -> Outcome {
    let mutator = Mutator {
        seeds,
        tokens: target.tokens,
    };
    let mut rng = Rng::new(opts.seed ^ name_hash(target.name));
    let mut outcome = Outcome::default();
    for _ in 0..opts.inputs {
        let input = match target.mutate {
            Some(custom) if rng.one_in(2) => {
                let seed = rng.pick(seeds).cloned().unwrap_or_default();
                custom(&mut rng, &seed)
            }
            _ => mutator.generate(&mut rng),
        };
        if let Ok(mut current) = shared.current.lock() {
            current.clear();
            current.extend_from_slice(&input);
        }
        let began = shared.base.elapsed();
        shared.started.store(
            u64::try_from(began.as_nanos()).unwrap_or(u64::MAX).max(1),
            Ordering::Release,
        );
        let cpu = thread_cpu_time();
        let result = panic::catch_unwind(AssertUnwindSafe(|| (target.run)(&input)));
        let took = thread_cpu_time().saturating_sub(cpu);
        shared.started.store(0, Ordering::Release);
        outcome.inputs += 1;
        shared.count.store(outcome.inputs, Ordering::Release);
        outcome.max_len = outcome.max_len.max(input.len());
        if took > outcome.max_time {
            outcome.max_time = took;
            outcome.max_time_len = input.len();
        }
        if took > opts.hang_after {
            outcome.hangs += 1;
            if outcome.hangs <= SAVED_PANICS {
                let name = format!("{}-slow-{}.bin", target.name, outcome.hangs);
                let path = save(&opts.out, &name, &input);
                outcome
                    .failures
                    .push((path, format!("used {took:?} of CPU")));
            }
        }
        if result.is_err() {
            outcome.panics += 1;
            if outcome.panics <= SAVED_PANICS {
                let name = format!("{}-panic-{}.bin", target.name, outcome.panics);
                let path = save(&opts.out, &name, &input);
                outcome.failures.push((path, last_panic()));
            }
        }
    }
    shared.done.store(true, Ordering::Release);
    outcome
}

/// CPU time this thread has used.
fn thread_cpu_time() -> Duration {
    let time = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(
        u64::try_from(time.tv_sec).unwrap_or(0),
        u32::try_from(time.tv_nsec).unwrap_or(0),
    )
}

fn save(dir: &Path, name: &str, input: &[u8]) -> PathBuf {
    let path = dir.join(name);
    let saved = std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&path, input));
    match saved {
        Ok(()) => path,
        Err(error) => PathBuf::from(format!("(not saved: {error})")),
    }
}

fn name_hash(name: &str) -> u64 {
    // FNV-1a: stable across builds, unlike std's hasher.
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

std::thread_local! {
    static LAST_PANIC: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// Panics are counted and saved, not printed a million times: the hook keeps the message
/// (with its location) for the thread that panicked.
fn quiet_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        panic::set_hook(Box::new(|info| {
            let message = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_default();
            let at = info
                .location()
                .map(|l| format!("{}:{}", l.file(), l.line()))
                .unwrap_or_default();
            LAST_PANIC.with(|last| *last.borrow_mut() = format!("panic at {at}: {message}"));
        }));
    });
}

fn last_panic() -> String {
    LAST_PANIC.with(|last| last.borrow().clone())
}
