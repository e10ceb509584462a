//! Debian's Prometheus server on 127.0.0.1 scraping agents every second, killed by its PID
//! on drop (tier 5). ci/test installs the package; a missing one fails the test.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use memglass_testkit::Scratch;
use serde_json::Value;

use super::{free_port, http_get, try_get, urlencode, Started};

pub struct Prometheus {
    pub addr: SocketAddr,
    _server: Started,
    pub dir: Scratch,
}

impl Prometheus {
    /// Scrape `targets` (job `memglass`) every second, with a bearer token from
    /// `token_file` when given, and evaluate `rule_files`.
    pub fn start(
        targets: &[SocketAddr],
        token_file: Option<&str>,
        rule_files: &[&str],
    ) -> Prometheus {
        super::tool_present("/usr/bin/prometheus", "prometheus");
        let dir = Scratch::new();
        let auth = token_file
            .map(|f| format!("    authorization:\n      credentials_file: {f}\n"))
            .unwrap_or_default();
        let targets: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
        let rules: Vec<String> = rule_files.iter().map(|r| format!("'{r}'")).collect();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             rule_files: [{}]\n\
             scrape_configs:\n  - job_name: memglass\n    scrape_interval: 1s\n    scrape_timeout: 1s\n\
             {auth}    static_configs:\n      - targets: [{}]\n",
            rules.join(", "),
            targets.join(", ")
        );
        std::fs::write(dir.dir.join("prometheus.yml"), config).unwrap();
        let log = std::fs::File::create(dir.dir.join("prometheus.log")).unwrap();
        let port = free_port();
        let server = Started(
            Command::new("/usr/bin/prometheus")
                .arg(format!(
                    "--config.file={}",
                    dir.dir.join("prometheus.yml").display()
                ))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.dir.join("tsdb").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--log.level=warn")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap(),
        );
        Prometheus {
            addr: format!("127.0.0.1:{port}").parse().unwrap(),
            _server: server,
            dir,
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.dir.join("prometheus.log")).unwrap_or_default()
    }

    /// Wait until every target is up; returns the active targets.
    pub fn wait_up(&self, targets: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            assert!(
                Instant::now() < deadline,
                "targets never up; log:\n{}",
                self.log()
            );
            if let Some(body) = try_get(self.addr, "/api/v1/targets")
                .filter(|r| r.status == 200)
                .map(|r| r.json())
            {
                let active = body["data"]["activeTargets"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                if active.len() == targets && active.iter().all(|t| t["health"] == "up") {
                    return active;
                }
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// An instant query's `data.result` (the query must succeed).
    pub fn query(&self, query: &str) -> Vec<Value> {
        let path = format!("/api/v1/query?query={}", urlencode(query));
        let answer = http_get(self.addr, &path, &[]).json();
        assert_eq!(answer["status"], "success", "{query}: {answer}");
        answer["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// [`query`](Self::query) until it returns something (or 60 s pass).
    pub fn query_until_some(&self, query: &str) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let result = self.query(query);
            if !result.is_empty() {
                return result;
            }
            assert!(
                Instant::now() < deadline,
                "no answer to {query}; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}
