//! Which files fill a cgroup's cache (`memglass cache`), which cgroup each cached page
//! is charged to (`--exact`), and the node-wide page census (`memglass pages`), against
//! real workloads. On kernels without cachestat(2) (the v2 tier's 6.1) the mincore path
//! runs; on the host both run.

use super::*;

fn run_json(args: &[&str]) -> Value {
    let output = Command::new(memglass_bin()).args(args).output().unwrap();
    assert!(
        output.status.success(),
        "memglass {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn file<'a>(doc: &'a Value, path: &str) -> &'a Value {
    doc["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == path)
        .unwrap_or_else(|| panic!("{path} not listed: {doc}"))
}

fn bytes(value: &Value, key: &str) -> u64 {
    value[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} is {} in {value}", value[key]))
}

/// Does this kernel have cachestat(2) (6.5+)? Asked of memglass itself.
fn method_of(doc: &Value) -> &str {
    doc["method"].as_str().unwrap()
}

#[test]
fn cache_lists_the_files_of_a_cgroup() {
    let cg = TestCgroup::new();
    let scratch = Scratch::new();
    let shm = format!("/dev/shm/{}-e", cg.path.trim_start_matches('/'));
    let _remove = RemoveOnDrop(shm.clone().into());
    let (a, b, c, d) = (
        scratch.file("a"),
        scratch.file("b"),
        scratch.file("c"),
        scratch.file("d"),
    );
    let _workload = Workload::start(
        &cg.dir,
        &args(&[
            ("--read-file", format!("{a}:24M")),
            ("--dirty", format!("{b}:12M")),
            ("--delete-open", format!("{c}:8M")),
            ("--map-file", format!("{d}:10M")),
            ("--tmpfs", format!("{shm}:6M")),
        ]),
    );
    let mut methods = vec![Vec::<&str>::new(), vec!["--mincore"]];
    let native = run_json(&["cache", "--cgroup", &cg.path, "--json"]);
    if method_of(&native) == "mincore" {
        methods.pop(); // the kernel lacks cachestat: the default already is the fallback
    }
    for extra in methods {
        let mut command = vec!["cache", "--cgroup", &cg.path, "--json"];
        command.extend(extra.iter());
        let doc = run_json(&command);
        assert_eq!(doc["cgroup"], cg.path.as_str());
        let with_cachestat = method_of(&doc) == "cachestat";
        for (path, size) in [(&a, 24), (&b, 12), (&c, 8), (&d, 10), (&shm, 6)] {
            let f = file(&doc, path);
            assert_close(
                bytes(f, "cached"),
                size * MIB,
                &format!("{path} cached ({})", method_of(&doc)),
            );
            assert_eq!(bytes(f, "size"), size * MIB);
            assert!(
                f["charged"].is_null(),
                "charged is only measured with --exact"
            );
            assert_eq!(f["deleted"], *path == c, "{path} deleted flag");
        }
        assert_eq!(file(&doc, &a)["found_by"], "open_fd");
        assert_eq!(
            file(&doc, &d)["found_by"],
            "open_fd",
            "d is open and mapped; either finds it once"
        );
        if with_cachestat {
            let dirty = bytes(file(&doc, &b), "dirty") + bytes(file(&doc, &b), "writeback");
            assert_close(dirty, 12 * MIB, "b is unsynced");
            assert_eq!(
                bytes(file(&doc, &a), "dirty"),
                0,
                "a was synced before it was read"
            );
        } else {
            assert!(
                file(&doc, &b)["dirty"].is_null(),
                "mincore cannot tell dirty pages"
            );
        }
        // The workload's files account for the cgroup's whole page cache (memory.stat);
        // the list also has files cached by others (the helper's binary, libc).
        let ours: u64 = [&a, &b, &c, &d, &shm]
            .iter()
            .map(|p| bytes(file(&doc, p), "cached"))
            .sum();
        assert_close(
            ours,
            bytes(&doc, "cgroup_file"),
            "Σ the workload's files vs memory.stat file",
        );
    }
}

#[test]
fn exact_charges_pages_to_the_cgroup_that_read_them() {
    let reader = TestCgroup::new();
    let other = TestCgroup::new();
    let scratch = Scratch::new();
    let (a, f) = (scratch.file("a"), scratch.file("f"));
    let _first = Workload::start(&reader.dir, &args(&[("--read-file", format!("{a}:24M"))]));
    // The other cgroup reads its own file and merely holds the first one open.
    let _second = Workload::start(
        &other.dir,
        &args(&[("--read-file", format!("{f}:16M")), ("--open", a.clone())]),
    );
    let mine = run_json(&["cache", "--cgroup", &reader.path, "--exact", "--json"]);
    assert_close(
        bytes(file(&mine, &a), "charged"),
        24 * MIB,
        "a is charged to the reader",
    );
    let theirs = run_json(&["cache", "--cgroup", &other.path, "--exact", "--json"]);
    assert_close(
        bytes(file(&theirs, &f), "charged"),
        16 * MIB,
        "f is charged to its reader",
    );
    let shared = file(&theirs, &a);
    assert_close(bytes(shared, "cached"), 24 * MIB, "a is cached");
    assert!(
        bytes(shared, "charged") < MIB,
        "but not charged to the cgroup that only opened it: {shared}"
    );
}

#[test]
fn page_census_agrees_with_memory_stat() {
    let cg = TestCgroup::new();
    let scratch = Scratch::new();
    let _workload = Workload::start(
        &cg.dir,
        &args(&[
            ("--anon", "32M".into()),
            ("--read-file", format!("{}:16M", scratch.file("h"))),
        ]),
    );
    let doc = run_json(&["pages", "--json"]);
    let row = doc["cgroups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["path"] == cg.path.as_str())
        .unwrap();
    let stat = cgroup(&snapshot(), &cg.path).clone();
    let counted = bytes(&row["subtree"], "anon")
        + bytes(&row["subtree"], "file")
        + bytes(&row["subtree"], "shmem");
    assert_close(
        counted,
        figure(&stat, "anon") + figure(&stat, "file"),
        "page census vs memory.stat",
    );
    assert_close(
        bytes(&row["subtree"], "anon"),
        figure(&stat, "anon"),
        "anon pages",
    );
}

#[test]
fn memory_of_a_removed_cgroup_is_reported_as_dying() {
    let cg = TestCgroup::new();
    let scratch = Scratch::new();
    let (dir, _) = cg.child("gone");
    let g = scratch.file("g");
    // Read 100 MiB into the cache from inside the cgroup, exit, remove the cgroup.
    let status = Command::new(memglass_testkit::workload_bin())
        .arg("--cgroup")
        .arg(&dir)
        .args(["--read-file", &format!("{g}:100M")])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::remove_dir(&dir).unwrap();
    let doc = run_json(&["pages", "--json"]);
    // Current kernels report a dying cgroup's pages as its nearest live ancestor's;
    // older ones under the dying cgroup's own inode. Either way memglass says so.
    let parent = doc["cgroups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["path"] == cg.path.as_str())
        .unwrap();
    let by_ancestor = bytes(parent, "dying_descendants");
    let by_inode: u64 = doc["dying"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| bytes(&d["pages"], "file"))
        .sum();
    assert!(
        by_ancestor.abs_diff(100 * MIB) <= 10 * MIB || by_inode.abs_diff(100 * MIB) <= 10 * MIB,
        "no dying cgroup holding about 100 MiB of cache: below {} {by_ancestor}, by inode {by_inode}",
        cg.path
    );
    // Deleting the file frees the cache (and with it the dying cgroup).
    drop(scratch);
}

#[test]
fn snapshot_names_the_files_of_the_largest_cache_holders() {
    let cg = TestCgroup::new();
    let scratch = Scratch::new();
    let (a, b, c) = (scratch.file("a"), scratch.file("b"), scratch.file("c"));
    let _workload = Workload::start(
        &cg.dir,
        &args(&[
            ("--read-file", format!("{a}:24M")),
            ("--dirty", format!("{b}:12M")),
            ("--delete-open", format!("{c}:8M")),
        ]),
    );
    // Enough holders to reach ours on a busy machine (each is ranked by its cache).
    let doc = run_json(&["snapshot", "--json", "--cache-holders", "50"]);
    let cgroup = doc["cgroups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["path"] == cg.path.as_str())
        .unwrap();
    let holder = doc["cache_holders"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["cgroup"] == cg.path.as_str())
        .unwrap_or_else(|| panic!("{} is not a holder: {}", cg.path, doc["cache_holders"]));
    assert_eq!(holder["file"], cgroup["memory"]["file"]);
    let source = match cgroup["cgroup_version"].as_u64() {
        Some(1) => "memory.stat total_cache",
        _ => "memory.stat file",
    };
    assert_eq!(holder["file_source"], source);
    let files = holder["files"].as_array().unwrap();
    assert!(files.len() <= 5, "five files per holder: {holder}");
    let cached: Vec<u64> = files.iter().map(|f| bytes(f, "cached")).collect();
    assert!(
        cached.windows(2).all(|w| w[0] >= w[1]),
        "largest first: {cached:?}"
    );
    assert_eq!(bytes(holder, "files_cached"), cached.iter().sum::<u64>());
    for (path, size) in [(&a, 24), (&b, 12), (&c, 8)] {
        let f = file(holder, path);
        assert_close(bytes(f, "cached"), size * MIB, &format!("{path} cached"));
        assert_eq!(f["deleted"], *path == c, "{path} deleted flag");
        assert!(matches!(
            f["method"].as_str(),
            Some("cachestat" | "mincore")
        ));
    }

    // Off by default for scripts (null: not looked at); the person's view names them.
    assert!(run_json(&["snapshot", "--json"])["cache_holders"].is_null());
    let output = Command::new(memglass_bin())
        .args(["snapshot", "--cache-holders", "50"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    let section = text
        .split("PAGE CACHE OF THE LARGEST HOLDERS")
        .nth(1)
        .unwrap_or_else(|| panic!("no cache holders section:\n{text}"));
    let ours = section
        .split(&format!("\n{}", cg.path))
        .nth(1)
        .unwrap_or_else(|| panic!("{} not in the section:\n{section}", cg.path));
    assert!(
        ours.contains(&a) && ours.contains(&format!("{c}  (deleted)")),
        "{ours}"
    );
}
