//! memglass: the binary. Wires sources → identify → analyse → sinks; owns no kernel
//! parsing, analysis maths or number formatting of its own.

mod cli;
mod cmd;
mod identity;
mod live;
mod render;
mod tui;

use std::io::{self, Write};
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse(); // usage errors exit with 2, as clap does
    let mut stdout = io::stdout().lock();
    let result = match cli.command {
        None => cmd::snapshot::run(
            &cli.sources,
            &cli.identity,
            &cli::SnapshotArgs::default(),
            &mut stdout,
        ),
        Some(cli::Command::Snapshot(args)) => {
            cmd::snapshot::run(&cli.sources, &cli.identity, &args, &mut stdout)
        }
        Some(cli::Command::Capture(args)) => cmd::capture::run(&cli.sources, &args, &mut stdout),
        Some(cli::Command::Agent(args)) => cmd::agent::run(&cli.sources, &cli.identity, &args),
        Some(cli::Command::Cache(args)) => {
            cmd::cache::run(&cli.sources, &cli.identity, &args, &mut stdout)
        }
        Some(cli::Command::Pages(args)) => {
            cmd::pages::run(&cli.sources, &cli.identity, &args, &mut stdout)
        }
        Some(cli::Command::Oom(args)) => {
            cmd::oom::run(&cli.sources, &cli.identity, &args, &mut stdout)
        }
        Some(cli::Command::Eviction(args)) => {
            cmd::eviction::run(&cli.sources, &cli.identity, &args, &mut stdout)
        }
        Some(cli::Command::Requests(args)) => {
            cmd::requests::run(&cli.sources, &cli.identity, &args, &mut stdout)
        }
        Some(cli::Command::Diagnose(args)) => {
            cmd::diagnose::run(&cli.sources, &cli.identity, &args, &mut stdout)
        }
        Some(cli::Command::Top(args)) => cmd::top::run(&cli.sources, &cli.identity, &args),
        Some(cli::Command::Cluster(args)) => cmd::cluster::run(&cli.identity, &args, &mut stdout),
        Some(cli::Command::Reclaim(args)) => {
            cmd::reclaim::run(&cli.sources, &cli.identity, &args, &mut stdout)
        }
    }
    .and_then(|()| stdout.flush().map_err(anyhow::Error::from));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            let _ = writeln!(io::stderr(), "memglass: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// `memglass | head` closing the pipe early is not a failure.
fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error
        .chain()
        .filter_map(|cause| cause.downcast_ref::<io::Error>())
        .any(|e| e.kind() == io::ErrorKind::BrokenPipe)
}
