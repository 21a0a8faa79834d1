//! The viewer over real HTTP on loopback: escaping, headers, the Host check, path confinement,
//! sorting, paging and live updates.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;

use super::*;

/// A viewer serving `path` on a free loopback port, on its own runtime thread.
fn start(path: &Path) -> SocketAddr {
    let served = Served::open(path).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        runtime.block_on(async move {
            let listener = bind(0).await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            serve(listener, served).await.unwrap();
        });
    });
    rx.recv().unwrap()
}

struct Reply {
    status: u16,
    headers: String,
    body: String,
}

fn get_with_host(addr: SocketAddr, path: &str, host: &str) -> Reply {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(std::time::Duration::from_secs(60))).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    Reply { status, headers: head.to_ascii_lowercase(), body: body.to_string() }
}

fn get(addr: SocketAddr, path: &str) -> Reply {
    get_with_host(addr, path, &format!("127.0.0.1:{}", addr.port()))
}

fn repo_with_runs() -> tempfile::TempDir {
    let repo = tempfile::tempdir().unwrap();
    let runs = repo.path().join(".rigor").join("runs");
    fixtures::write_run(&runs, "20261202-120000-aaaa", 3, true).unwrap();
    fixtures::write_run(&runs, "20261202-130000-bbbb", 12, true).unwrap();
    repo
}

#[test]
fn model_and_file_content_renders_inert() {
    let repo = repo_with_runs();
    let addr = start(repo.path());
    let page = get(addr, "/run/20261202-120000-aaaa");
    assert_eq!(page.status, 200, "{}", page.body);
    // The observation and the diff both carry markup; it arrives escaped, never as a tag.
    assert!(page.body.contains("&lt;script&gt;alert(&#x27;observation&#x27;)&lt;&#x2f;script&gt;"), "{}", page.body);
    assert!(page.body.contains("&lt;script&gt;alert(&#x27;diff&#x27;)&lt;&#x2f;script&gt;"));
    assert!(!page.body.contains("<script>alert") && !page.body.contains("<img src=x"));
    assert!(!page.body.contains("<script") || page.body.contains("<script src=\"/assets/live.js\">"));
    assert!(
        page.headers.contains("content-security-policy: default-src 'none'; script-src 'self'"),
        "{}",
        page.headers
    );
    assert!(page.headers.contains("x-content-type-options: nosniff"));
    // The diff is coloured line by line, the timeline drawn, the steps listed.
    assert!(page.body.contains("<div class=\"add\">+        total += int(number) * UNITS[ch]</div>"));
    assert!(page.body.contains("<svg class=\"timeline\""));
    assert!(page.body.contains("id=\"turn-3\"") && !page.body.contains("data-live"), "a finished run is not live");
}

#[test]
fn only_loopback_host_names_are_served() {
    let repo = repo_with_runs();
    let addr = start(repo.path());
    let rebound = get_with_host(addr, "/runs", "attacker.example:80");
    assert_eq!(rebound.status, 421);
    assert!(!rebound.body.contains("20261202"), "{}", rebound.body);
    assert_eq!(get_with_host(addr, "/runs", "localhost").status, 200);
}

#[test]
fn files_from_urls_stay_in_the_served_directory() {
    let repo = repo_with_runs();
    std::fs::write(repo.path().join("secret.txt"), "SECRET").unwrap();
    std::os::unix::fs::symlink(
        repo.path().join("secret.txt"),
        repo.path().join(".rigor/runs/20261202-120000-aaaa/link"),
    )
    .unwrap();
    let addr = start(repo.path());
    let patch = get(addr, "/raw/runs/20261202-120000-aaaa/patch.diff");
    assert_eq!(patch.status, 200);
    assert!(
        patch.headers.contains("content-type: text/plain") && patch.headers.contains("sandbox"),
        "{}",
        patch.headers
    );
    for path in [
        "/raw/runs/../../secret.txt",
        "/raw/runs/..%2f..%2fsecret.txt",
        "/raw/runs/20261202-120000-aaaa/..%2f..%2f..%2fsecret.txt",
        "/raw/runs/20261202-120000-aaaa/link",
        "/raw/runs/%2fetc%2fpasswd",
        "/run/..",
        "/run/..%2f..",
    ] {
        let reply = get(addr, path);
        assert!(reply.status == 404 || reply.status == 400, "{path}: {}", reply.status);
        assert!(!reply.body.contains("SECRET") && !reply.body.contains("root:"), "{path}");
    }
}

#[test]
fn the_runs_table_sorts_and_filters_on_the_server() {
    let repo = repo_with_runs();
    let addr = start(repo.path());
    let newest_first = get(addr, "/runs").body;
    let (a, b) =
        (newest_first.find("20261202-120000-aaaa").unwrap(), newest_first.find("20261202-130000-bbbb").unwrap());
    assert!(b < a, "newest first by default");
    let by_steps = get(addr, "/runs?sort=steps&order=asc").body;
    assert!(by_steps.find(">20261202-120000-aaaa<").unwrap() < by_steps.find(">20261202-130000-bbbb<").unwrap());
    let filtered = get(addr, "/runs?q=bbbb").body;
    assert!(filtered.contains("20261202-130000-bbbb") && !filtered.contains(">20261202-120000-aaaa<"));
    assert!(get(addr, "/runs?status=error").body.contains("No runs recorded"));
}

#[test]
fn long_trajectories_are_paged_by_turns() {
    let repo = tempfile::tempdir().unwrap();
    fixtures::write_run(&repo.path().join(".rigor/runs"), "long", 250, true).unwrap();
    let addr = start(repo.path());
    let first = get(addr, "/run/long").body;
    assert!(first.contains("id=\"turn-100\"") && !first.contains("id=\"turn-101\""));
    assert!(first.contains("<details><summary>0: total"), "long observations are collapsed");
    let third = get(addr, "/run/long?page=3").body;
    assert!(third.contains("id=\"turn-250\"") && !third.contains("id=\"turn-200\""));
}

#[test]
fn an_evaluation_shows_its_counts_pages_and_comparisons() {
    let output = tempfile::tempdir().unwrap();
    assert_eq!(fixtures::write_eval(output.path(), "base", "m", 250, |i| i % 2 == 0).unwrap(), 125);
    assert_eq!(fixtures::write_eval(output.path(), "next", "m", 250, |i| i % 5 == 0).unwrap(), 50);
    let addr = start(output.path());
    let page = get(addr, "/eval/base");
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Resolved <span id=\"resolved\">125</span> / <span id=\"total\">250</span>"));
    assert!(page.body.contains("page 1 of 3") && page.body.matches("<tr><td><a href=\"/eval/base/m/").count() == 100);
    let unresolved = get(addr, "/eval/base?status=unresolved&page=2").body;
    assert!(unresolved.contains("125 instance(s) · page 2 of 2"), "{unresolved}");
    let instance = get(addr, "/eval/base/m/org0__repo0-00000");
    assert!(instance.body.contains("test_compound ... ok") && instance.body.contains("class=\"add\""));
    let compare = get(addr, "/compare?a=base&b=next").body;
    // Even ids resolved by base; multiples of 5 by next: 25 both (multiples of 10), 25 only next.
    assert!(compare.contains("resolved only by A: 100") && compare.contains("resolved only by B: 25"), "{compare}");
    assert!(compare.contains("both: 25") && compare.contains("neither: 100"));
}

#[test]
fn a_run_in_progress_streams_new_events() {
    let repo = tempfile::tempdir().unwrap();
    let dir = fixtures::write_run(&repo.path().join(".rigor/runs"), "live", 2, false).unwrap();
    let addr = start(repo.path());
    let page = get(addr, "/run/live").body;
    let live = page
        .split("data-live=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a live page")
        .replace("&amp;", "&")
        .replace("&#x2f;", "/");
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(stream, "GET {live} HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n").unwrap();
    // A hang guard only: the event is expected long before.
    stream.set_read_timeout(Some(std::time::Duration::from_secs(60))).unwrap();
    let mut reader = BufReader::new(stream);
    // The response head arrives once the stream is open; only then is the line appended.
    let mut line = String::new();
    let mut head = String::new();
    while line != "\r\n" {
        line.clear();
        reader.read_line(&mut line).unwrap();
        head.push_str(&line);
    }
    assert!(head.starts_with("HTTP/1.1 200") && head.contains("text/event-stream"), "{live}: {head}");
    let record = rigor_core::trajectory::TrajectoryRecord {
        elapsed_ms: 9,
        event: rigor_protocol::Event::Notice { message: "appended <b>later</b>".into() },
    };
    let mut file = std::fs::OpenOptions::new().append(true).open(dir.join("trajectory.jsonl")).unwrap();
    writeln!(file, "{}", serde_json::to_string(&record).unwrap()).unwrap();
    let mut seen = String::new();
    let guard = std::time::Instant::now(); // a hang guard: keep-alive comments reset the read timeout
    while !seen.contains("appended &lt;b&gt;later&lt;&#x2f;b&gt;") {
        assert!(guard.elapsed() < std::time::Duration::from_secs(120), "no escaped event: {seen}");
        line.clear();
        assert!(reader.read_line(&mut line).unwrap() > 0, "the stream ended: {seen}");
        seen.push_str(&line);
    }
    assert!(seen.contains("event: append"), "{seen}");
}
