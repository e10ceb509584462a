//! `memglass-fuzz`: run the parser fuzz targets and print what they found.
//!
//! ```text
//! memglass-fuzz [--inputs N] [--target NAME]... [--seed S] [--hang-ms MS] [--out DIR]
//!               [--jobs N] [--fixtures DIR] [--list] [--replay FILE --target NAME]
//! ```
//!
//! Targets run `--jobs` at a time (default: one per CPU), each on its own thread.
//! `--hang-ms` is the CPU time one input may use (default 1,000 ms).
//!
//! Exit status 1 when any input panicked or hung (the inputs are saved under `--out`),
//! 2 on a usage error.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use memglass_fuzz::run::{self, Options};
use memglass_fuzz::seeds::Fixtures;
use memglass_fuzz::{table, targets, Target};

struct Args {
    inputs: u64,
    targets: Vec<&'static Target>,
    seed: u64,
    hang: Duration,
    out: PathBuf,
    fixtures: Fixtures,
    list: bool,
    replay: Option<PathBuf>,
    jobs: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        inputs: 1_000_000,
        targets: Vec::new(),
        seed: 0x6d65_6d67_6c61_7373,
        hang: Duration::from_secs(1),
        out: PathBuf::from("target/fuzz-failures"),
        fixtures: Fixtures::of_repository(),
        list: false,
        replay: None,
        jobs: std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let mut given = std::env::args().skip(1);
    while let Some(flag) = given.next() {
        let mut value = || given.next().ok_or_else(|| format!("{flag} needs a value"));
        let number = |text: String| {
            text.replace('_', "")
                .parse::<u64>()
                .map_err(|_| format!("{flag}: {text:?} is not a number"))
        };
        match flag.as_str() {
            "--inputs" => args.inputs = number(value()?)?,
            "--seed" => args.seed = number(value()?)?,
            "--hang-ms" => args.hang = Duration::from_millis(number(value()?)?),
            "--jobs" => args.jobs = number(value()?)?.max(1) as usize,
            "--out" => args.out = PathBuf::from(value()?),
            "--fixtures" => args.fixtures = Fixtures::new(value()?),
            "--replay" => args.replay = Some(PathBuf::from(value()?)),
            "--list" => args.list = true,
            "--target" => {
                let name = value()?;
                let target = targets::by_name(&name)
                    .ok_or_else(|| format!("no target {name:?} (see --list)"))?;
                args.targets.push(target);
            }
            "-h" | "--help" => {
                return Err(
                    "usage: memglass-fuzz [--inputs N] [--target NAME]... [--seed S] \
                            [--hang-ms MS] [--out DIR] [--jobs N] [--fixtures DIR] [--list] \
                            [--replay FILE --target NAME]"
                        .into(),
                )
            }
            other => return Err(format!("unknown argument {other:?} (see --help)")),
        }
    }
    if args.targets.is_empty() {
        args.targets = targets::ALL.to_vec();
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("memglass-fuzz: {message}");
            return ExitCode::from(2);
        }
    };
    if args.list {
        for target in &args.targets {
            let seeds = (target.seeds)(&args.fixtures);
            println!(
                "{:<16} {:>4} seeds  {}",
                target.name,
                seeds.len(),
                target.about
            );
        }
        return ExitCode::SUCCESS;
    }
    if let Some(file) = &args.replay {
        return replay(&args, file);
    }
    let options = Options {
        inputs: args.inputs,
        seed: args.seed,
        hang_after: args.hang,
        out: args.out.clone(),
    };
    let mut seeded = Vec::new();
    for &target in &args.targets {
        let seeds = (target.seeds)(&args.fixtures);
        if seeds.is_empty() {
            eprintln!(
                "memglass-fuzz: {}: no seeds under {} (give --fixtures DIR)",
                target.name,
                args.fixtures.root().display()
            );
            return ExitCode::from(2);
        }
        seeded.push((target, Arc::new(seeds)));
    }
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<run::Outcome>>> = Mutex::new(vec![None; seeded.len()]);
    std::thread::scope(|scope| {
        for _ in 0..args.jobs.min(seeded.len()) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((target, seeds)) = seeded.get(i) else {
                    break;
                };
                let outcome = run::run(target, Arc::clone(seeds), &options);
                report(target, &outcome);
                if let Ok(mut results) = results.lock() {
                    results[i] = Some(outcome);
                }
            });
        }
    });
    let results = results.into_inner().unwrap_or_default();
    let mut rows = Vec::new();
    let mut failed = false;
    for ((target, _), outcome) in seeded.iter().zip(results) {
        let outcome = outcome.unwrap_or_default();
        failed |= outcome.panics > 0 || outcome.hangs > 0 || outcome.inputs < args.inputs;
        rows.push((*target, outcome));
    }
    print!("{}", table(&rows));
    if failed {
        eprintln!(
            "memglass-fuzz: FAILED; inputs saved under {} (rerun one with --replay FILE --target NAME)",
            args.out.display()
        );
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn report(target: &Target, outcome: &run::Outcome) {
    let mut text = format!(
        "memglass-fuzz: {:<16} {} inputs, {} panics, {} hangs, max {:.3} ms/input ({} bytes), {:.0} inputs/s\n",
        target.name,
        outcome.inputs,
        outcome.panics,
        outcome.hangs,
        outcome.max_time.as_secs_f64() * 1000.0,
        outcome.max_time_len,
        outcome.rate(),
    );
    for (path, what) in &outcome.failures {
        text.push_str(&format!("  {}: {what}\n", path.display()));
    }
    eprint!("{text}");
}

fn replay(args: &Args, file: &PathBuf) -> ExitCode {
    let [target] = args.targets.as_slice() else {
        eprintln!("memglass-fuzz: --replay needs exactly one --target");
        return ExitCode::from(2);
    };
    let input = match std::fs::read(file) {
        Ok(input) => input,
        Err(error) => {
            eprintln!("memglass-fuzz: {}: {error}", file.display());
            return ExitCode::from(2);
        }
    };
    match run::replay(target, &input) {
        Ok(took) => {
            println!(
                "{}: {} bytes, no panic, {:.3} ms",
                target.name,
                input.len(),
                took.as_secs_f64() * 1000.0
            );
            ExitCode::SUCCESS
        }
        Err(panic) => {
            println!("{}: {} bytes: {panic}", target.name, input.len());
            ExitCode::from(1)
        }
    }
}
