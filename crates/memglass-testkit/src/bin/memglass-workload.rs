//! memglass-workload: a workload whose memory is known exactly, for real-kernel tests.
//!
//! It moves itself into a cgroup *before* touching memory (pages are charged to the
//! cgroup of the task that first touches them), performs the requested actions in order,
//! prints `ready <pid>` and then holds everything until stdin closes or it is killed.
//! It works the same on cgroup v1 and v2: both accept a PID in `cgroup.procs`.
//!
//! ```text
//! memglass-workload [--cgroup DIR] ACTION...
//!   --anon SIZE          mmap anonymous memory and touch every page
//!   --read-file P:SIZE   create P, sync it, drop it from the cache, then read it (clean cache)
//!   --reread P:SIZE      the same, then read it twice more (active page cache)
//!   --dirty P:SIZE       write P without syncing (dirty cache)
//!   --tmpfs P:SIZE       write P, which must be on tmpfs (shmem)
//!   --map-file P:SIZE    create P, sync, drop, then mmap it shared and read every page
//!   --delete-open P:SIZE write and sync P, keep it open, unlink it
//!   --open P             open an existing file and hold it, reading nothing
//!   --grow RATE:MAX      after `ready`, touch RATE more anonymous memory per second (in
//!                        tenths of a second) until MAX in all: a steady leak
//! SIZE: bytes, or with a K/M/G suffix (binary units).
//! ```

use std::fs::{File, OpenOptions};
use std::io::{BufRead, Read, Write};
use std::os::fd::AsRawFd;
use std::process::ExitCode;

const PAGE: usize = 4096;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("memglass-workload: {message}");
            ExitCode::FAILURE
        }
    }
}

/// What the process keeps alive until it exits.
#[derive(Default)]
struct Held {
    maps: Vec<(*mut libc::c_void, usize)>,
    files: Vec<File>,
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut held = Held::default();
    let mut grow = None;
    let mut index = 0;
    while index < args.len() {
        let flag = args[index].as_str();
        let value = args
            .get(index + 1)
            .ok_or_else(|| format!("{flag} needs a value"))?
            .as_str();
        index += 2;
        match flag {
            "--cgroup" => join_cgroup(value)?,
            "--anon" => held.maps.push(anon(parse_size(value)?)?),
            "--read-file" => {
                let (path, size) = path_size(value)?;
                held.files.push(read_file(path, size)?);
            }
            "--reread" => {
                let (path, size) = path_size(value)?;
                let file = read_file(path, size)?;
                // A page read a second time moves to the active list.
                for _ in 0..2 {
                    read_all(path)?;
                }
                held.files.push(file);
            }
            "--grow" => {
                let (rate, max) = value
                    .split_once(':')
                    .ok_or_else(|| format!("expected RATE:MAX, got {value:?}"))?;
                grow = Some((parse_size(rate)?, parse_size(max)?));
            }
            "--dirty" => {
                let (path, size) = path_size(value)?;
                held.files.push(write_file(path, size, false)?);
            }
            "--tmpfs" => {
                let (path, size) = path_size(value)?;
                held.files.push(write_file(path, size, false)?);
            }
            "--map-file" => {
                let (path, size) = path_size(value)?;
                let (file, map) = map_file(path, size)?;
                held.files.push(file);
                held.maps.push(map);
            }
            "--open" => held
                .files
                .push(File::open(value).map_err(|e| format!("open {value}: {e}"))?),
            "--delete-open" => {
                let (path, size) = path_size(value)?;
                let file = write_file(path, size, true)?;
                std::fs::remove_file(path).map_err(|e| format!("unlink {path}: {e}"))?;
                held.files.push(file);
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "ready {}", std::process::id()).map_err(|e| e.to_string())?;
    stdout.flush().map_err(|e| e.to_string())?;
    drop(stdout);
    if let Some((rate, max)) = grow {
        std::thread::spawn(move || leak(rate, max));
    }
    // Hold until the test closes our stdin (or kills us).
    let mut sink = String::new();
    while std::io::stdin()
        .lock()
        .read_line(&mut sink)
        .map_err(|e| e.to_string())?
        > 0
    {
        sink.clear();
    }
    drop(held);
    Ok(())
}

fn join_cgroup(dir: &str) -> Result<(), String> {
    let procs = format!("{dir}/cgroup.procs");
    std::fs::write(&procs, std::process::id().to_string()).map_err(|e| format!("join {procs}: {e}"))
}

fn parse_size(text: &str) -> Result<usize, String> {
    let (digits, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((at, _)) => text.split_at(at),
        None => (text, ""),
    };
    let number: usize = digits.parse().map_err(|_| format!("bad size {text:?}"))?;
    let scale = match unit {
        "" => 1,
        "K" | "k" => 1 << 10,
        "M" | "m" => 1 << 20,
        "G" | "g" => 1 << 30,
        _ => return Err(format!("bad size unit in {text:?}")),
    };
    number
        .checked_mul(scale)
        .ok_or_else(|| format!("size {text:?} overflows"))
}

fn path_size(value: &str) -> Result<(&str, usize), String> {
    let (path, size) = value
        .rsplit_once(':')
        .ok_or_else(|| format!("expected PATH:SIZE, got {value:?}"))?;
    Ok((path, parse_size(size)?))
}

fn anon(size: usize) -> Result<(*mut libc::c_void, usize), String> {
    // SAFETY: a fresh private anonymous mapping; no existing memory is aliased.
    let addr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if addr == libc::MAP_FAILED {
        return Err(format!(
            "mmap {size} bytes: {}",
            std::io::Error::last_os_error()
        ));
    }
    let base = addr.cast::<u8>();
    for offset in (0..size).step_by(PAGE) {
        // SAFETY: offset < size, inside the mapping we own.
        unsafe { base.add(offset).write_volatile(1) };
    }
    Ok((addr, size))
}

/// Write `size` bytes of non-zero data; sync and keep the file open when asked.
fn write_file(path: &str, size: usize, sync: bool) -> Result<File, String> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(|e| format!("create {path}: {e}"))?;
    let chunk = vec![0x5a_u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        let now = left.min(chunk.len());
        file.write_all(&chunk[..now])
            .map_err(|e| format!("write {path}: {e}"))?;
        left -= now;
    }
    if sync {
        file.sync_all().map_err(|e| format!("fsync {path}: {e}"))?;
    }
    Ok(file)
}

/// Create `path` with clean, uncached data: written, synced, then dropped from the cache.
fn create_uncached(path: &str, size: usize) -> Result<File, String> {
    let file = write_file(path, size, true)?;
    // SAFETY: plain syscall on an fd we own.
    let rc = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    if rc != 0 {
        return Err(format!("fadvise {path}: error {rc}"));
    }
    Ok(file)
}

fn read_file(path: &str, size: usize) -> Result<File, String> {
    drop(create_uncached(path, size)?);
    read_all(path)
}

/// Read `path` to its end; the file, still open.
fn read_all(path: &str) -> Result<File, String> {
    let mut file = File::open(path).map_err(|e| format!("open {path}: {e}"))?;
    let mut buf = vec![0_u8; 1 << 20];
    while file
        .read(&mut buf)
        .map_err(|e| format!("read {path}: {e}"))?
        > 0
    {}
    Ok(file)
}

/// Touch `rate / 10` more anonymous memory every 100 ms until `max`; the mappings are
/// never freed (the process ends with them).
fn leak(rate: usize, max: usize) {
    let step = (rate / 10).max(PAGE);
    let mut total = 0;
    // Paced by the clock, not by sleeps after each step: touching pages takes time too (a
    // lot under qemu TCG), and the rate must be RATE wherever it runs.
    let tick = std::time::Duration::from_millis(100);
    let mut next = std::time::Instant::now();
    while total + step <= max {
        if anon(step).is_err() {
            return;
        }
        total += step;
        next += tick;
        std::thread::sleep(next.saturating_duration_since(std::time::Instant::now()));
    }
}

fn map_file(path: &str, size: usize) -> Result<(File, (*mut libc::c_void, usize)), String> {
    let file = create_uncached(path, size)?;
    // SAFETY: a shared read-only mapping of a file we own; only read through.
    let addr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            size,
            libc::PROT_READ,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            0,
        )
    };
    if addr == libc::MAP_FAILED {
        return Err(format!("mmap {path}: {}", std::io::Error::last_os_error()));
    }
    let base = addr.cast::<u8>();
    let mut sum = 0_u64;
    for offset in (0..size).step_by(PAGE) {
        // SAFETY: offset < size, inside the mapping.
        sum = sum.wrapping_add(u64::from(unsafe { base.add(offset).read_volatile() }));
    }
    std::hint::black_box(sum);
    Ok((file, (addr, size)))
}
