//! The alerting and recording rules (deploy/prometheus/rules.yaml): Prometheus' own
//! `promtool` checks them and runs their unit tests (rules.test.yaml), and the Prometheus
//! Operator's copy (deploy/kubernetes/prometheusrule.yaml) holds exactly the same groups.
#![allow(clippy::unwrap_used)] // tests: fail loudly

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn promtool(args: &[&str]) {
    let promtool = Path::new("/usr/bin/promtool");
    assert!(
        promtool.exists(),
        "{} is not installed: ci/test installs Debian's prometheus",
        promtool.display()
    );
    let out = Command::new(promtool)
        .args(args)
        .current_dir(repo().join("deploy/prometheus"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool {}:\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn rules_pass_promtool_check() {
    promtool(&["check", "rules", "rules.yaml"]);
}

#[test]
fn rules_pass_their_unit_tests() {
    promtool(&["test", "rules", "rules.test.yaml"]);
}

/// The PrometheusRule's `spec` is rules.yaml's `groups:` onwards, indented by two spaces,
/// under a fixed header. Text, not parsed YAML: the copy must be the same rules, comments
/// included, so a reader of either file sees the same thing.
#[test]
fn prometheusrule_holds_the_same_groups() {
    let rules = std::fs::read_to_string(repo().join("deploy/prometheus/rules.yaml")).unwrap();
    let crd_path = repo().join("deploy/kubernetes/prometheusrule.yaml");
    let crd = std::fs::read_to_string(&crd_path).unwrap();
    let groups = &rules[rules.find("\ngroups:\n").unwrap() + 1..];
    let indented: String = groups
        .lines()
        .map(|l| {
            if l.is_empty() {
                "\n".to_owned()
            } else {
                format!("  {l}\n")
            }
        })
        .collect();
    let header_end = crd.find("\nspec:\n").unwrap() + "\nspec:\n".len();
    let expected = format!("{}{indented}", &crd[..header_end]);
    if crd != expected && std::env::var_os("MEMGLASS_BLESS").is_some() {
        std::fs::write(&crd_path, &expected).unwrap();
        return;
    }
    assert!(
        crd == expected,
        "{} differs from deploy/prometheus/rules.yaml's groups; \
         rewrite it with MEMGLASS_BLESS=1 cargo test -p memglass --test rules",
        crd_path.display()
    );
}
