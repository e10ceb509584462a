//! The agent's `POST /api/v1/reclaim` (`--allow-reclaim`): never without a token, never
//! without the flag, and the same refusals and document as `memglass reclaim`. On this
//! host (cgroup v1) a real container cgroup is refused with a 422; on cgroup v2 (the
//! guests of ci/v2/run, when this target runs there) it is reclaimed.
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

use memglass_testkit::{memglass_bin, Scratch, TestCgroup};
use serde_json::{json, Value};

use crate::agent_support::Agent;

const TOKEN: &str = "rec1aim-token";

/// POST a JSON body; (status, parsed body).
fn post(addr: SocketAddr, path: &str, token: Option<&str>, body: &str) -> (u16, Value) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let auth = token.map_or_else(String::new, |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{auth}\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let body = serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"));
    (status, body)
}

#[test]
fn reclaim_endpoint_needs_the_flag_and_a_token_and_refuses_like_the_cli() {
    let db = Scratch::new();
    // --allow-reclaim without a token: refused before binding, one line, usage (2).
    let out = Command::new(memglass_bin())
        .args([
            "--no-cri",
            "agent",
            "--listen",
            "127.0.0.1:0",
            "--allow-reclaim",
            "--db",
        ])
        .arg(db.dir.join("x.db"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("--allow-reclaim") && stderr.contains("--token-file"));

    // A real container cgroup, there before the agent's first collection.
    let cg = TestCgroup::new();
    let uid = format!("{:08x}-7ec1-4a10-8000-00000000a9e7", std::process::id());
    let (_, path) = cg.child(&format!("kubepods/burstable/pod{uid}/{:064x}", 0xa9e7_u64));
    let token_file = db.dir.join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let token_file = token_file.display().to_string();
    let body = json!({"cgroup": path, "bytes": "1Mi"}).to_string();

    // Without the flag (a token given): the endpoint is not there.
    let plain = Agent::start_in(
        &[],
        "127.0.0.1:0",
        Some((&token_file, TOKEN)),
        &db.dir.join("plain.db"),
        &[],
    );
    let (status, answer) = post(plain.addr, "/api/v1/reclaim", Some(TOKEN), &body);
    assert_eq!(status, 404, "{answer}");
    assert!(answer["error"]["message"]
        .as_str()
        .unwrap()
        .contains("--allow-reclaim"));
    drop(plain);

    let agent = Agent::start_in(
        &[],
        "127.0.0.1:0",
        Some((&token_file, TOKEN)),
        &db.dir.join("h.db"),
        &["--allow-reclaim"],
    );
    let (status, answer) = post(agent.addr, "/api/v1/reclaim", None, &body);
    assert_eq!(status, 401, "{answer}");
    let (status, _) = post(agent.addr, "/api/v1/reclaim", Some("rec1aim-tokeN"), &body);
    assert_eq!(status, 401);
    let (status, answer) = post(agent.addr, "/api/v1/reclaim", Some(TOKEN), "{\"cgroup\":");
    assert_eq!(status, 400, "{answer}");
    let auth = format!("Bearer {TOKEN}");
    let get = agent.get_with("/api/v1/reclaim", &[("Authorization", &auth)]);
    assert_eq!(get.status, 405, "{}", get.body);

    let (status, answer) = post(agent.addr, "/api/v1/reclaim", Some(TOKEN), &body);
    if cg.is_v2() {
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["schema"], "memglass.reclaim/v1");
        assert_eq!(answer["cgroup"], path.as_str());
        assert_eq!(answer["kind"], "container");
        assert_eq!(answer["requested"], 1 << 20);
        let (status, answer) = post(
            agent.addr,
            "/api/v1/reclaim",
            Some(TOKEN),
            &json!({"cgroup": cg.path, "bytes": 4096}).to_string(),
        );
        assert_eq!(status, 422, "{answer}");
        assert!(answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not a pod's or a container's"));
    } else {
        // The CLI's refusal, as a 4xx JSON error.
        assert_eq!(status, 422, "{answer}");
        assert_eq!(answer["error"]["status"], 422);
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains("cgroup v1"), "{message}");
        assert_eq!(message.lines().count(), 1);
    }
}
