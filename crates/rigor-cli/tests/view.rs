//! `rigor view` in a real browser: Debian's `chromium` driven over WebDriver (`chromedriver`),
//! against a run recorded by `rigor run` with a scripted model, a `rigor eval`-shaped output and a
//! run in progress. Skips with a message when chromium or chromedriver is not installed (`.ci/run`
//! installs them).
//!
//! Every wait is a WebDriver implicit wait on the DOM (bounded by the session's timeouts), the
//! whole test has a generous hang guard, and the browser, its driver and the viewer are killed
//! when the test ends, however it ends. Screenshots go to the target directory's `tmp/view/`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of a test binary

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rigor_test_support::repo::{example, fixture_repo};
use rigor_test_support::server::{Flavor, Reply, ScriptedServer, Step};
use serde_json::{Value, json};

const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,1000",
];

/// A child process in its own process group, killed with the group when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        // SAFETY: signalling the process group this test created.
        unsafe { libc::kill(-(self.0.id() as i32), libc::SIGKILL) };
        let _ = self.0.wait();
    }
}

fn spawn_group(mut command: Command) -> Killed {
    use std::os::unix::process::CommandExt;
    command.process_group(0).stdout(Stdio::piped()).stderr(Stdio::null());
    Killed(command.spawn().unwrap_or_else(|e| panic!("cannot start {command:?}: {e}")))
}

/// Reads the child's stdout until a line contains `needle`; returns that line.
fn wait_for_line(child: &mut Killed, needle: &str) -> String {
    let stdout = child.0.stdout.take().expect("piped stdout");
    let mut reader = BufReader::new(stdout);
    let mut line = String::new();
    loop {
        line.clear();
        assert!(reader.read_line(&mut line).unwrap() > 0, "the process ended before printing {needle:?}");
        if line.contains(needle) {
            // Keep draining so that the child never blocks on a full pipe.
            std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
            return line;
        }
    }
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| Path::new(d).join(name)).find(|p| p.is_file())
}

/// The smallest WebDriver client this test needs.
struct Browser {
    http: reqwest::Client,
    session: String,
    _driver: Killed,
}

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

impl Browser {
    async fn start(chromium: &Path, chromedriver: &Path, profile: &Path) -> Browser {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut command = Command::new(chromedriver);
        command.arg(format!("--port={port}"));
        let mut driver = spawn_group(command);
        wait_for_line(&mut driver, "started successfully");
        let http = reqwest::Client::builder().timeout(Duration::from_secs(90)).build().unwrap();
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|s| s.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium, "args": args},
        }}});
        let base = format!("http://127.0.0.1:{port}");
        let reply: Value =
            http.post(format!("{base}/session")).json(&capabilities).send().await.unwrap().json().await.unwrap();
        let session = reply["value"]["sessionId"].as_str().unwrap_or_else(|| panic!("no session: {reply}")).to_string();
        let browser = Browser { http, session: format!("{base}/session/{session}"), _driver: driver };
        // Every element lookup waits for the DOM up to 15 s: the synchronisation, with a bound.
        browser.post("/timeouts", json!({"implicit": 15_000, "pageLoad": 30_000, "script": 10_000})).await;
        browser
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let reply: Value =
            self.http.post(format!("{}{path}", self.session)).json(&body).send().await.unwrap().json().await.unwrap();
        assert!(reply["value"].get("error").is_none(), "WebDriver {path}: {reply}");
        reply["value"].clone()
    }

    async fn get(&self, path: &str) -> Value {
        let reply: Value = self.http.get(format!("{}{path}", self.session)).send().await.unwrap().json().await.unwrap();
        assert!(reply["value"].get("error").is_none(), "WebDriver {path}: {reply}");
        reply["value"].clone()
    }

    async fn goto(&self, url: &str) {
        self.post("/url", json!({ "url": url })).await;
    }

    /// The element matching the XPath `xpath`, waiting for it to appear.
    async fn find(&self, xpath: &str) -> String {
        let value = self.post("/element", json!({"using": "xpath", "value": xpath})).await;
        value[ELEMENT].as_str().unwrap().to_string()
    }

    async fn count(&self, css: &str) -> usize {
        self.post("/elements", json!({"using": "css selector", "value": css})).await.as_array().unwrap().len()
    }

    async fn text(&self, element: &str) -> String {
        self.get(&format!("/element/{element}/text")).await.as_str().unwrap().to_string()
    }

    async fn click(&self, element: &str) {
        self.post(&format!("/element/{element}/click"), json!({})).await;
    }

    async fn screenshot(&self, name: &str) {
        let png = decode_base64(self.get("/screenshot").await.as_str().unwrap());
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("view");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The driver (and the browser it started) are killed with their process group anyway.
        let url = self.session.clone();
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            runtime.block_on(async {
                reqwest::Client::new().delete(url).timeout(Duration::from_secs(5)).send().await.ok()
            })
        })
        .join();
    }
}

fn decode_base64(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        _ => 63,
    };
    let digits: Vec<u8> = text.bytes().filter(|c| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/').collect();
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, &c)| n | (value(c) as u32) << (18 - 6 * i));
        out.extend_from_slice(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}

/// A competent agent fixing the bundled example (as in `tests/run.rs`): localize, reproduce,
/// patch, verify, finish.
fn fixing_script() -> Vec<Step> {
    let call = |name: &str, args: Value| Step::Reply(Reply::call(name, &args.to_string()));
    let verify = "python3 -c 'from durations import parse_duration as p; assert p(\"1h30m\") == 5400, p(\"1h30m\")' && python3 -m unittest 2>&1 | tail -1";
    let reproduction = "import unittest\n\nfrom durations import parse_duration\n\n\nclass CompoundDurationTest(unittest.TestCase):\n    def test_compound(self):\n        self.assertEqual(parse_duration(\"1h30m\"), 5400)\n";
    vec![
        call("search", json!({"pattern": "def parse_duration"})),
        Step::Reply(Reply::call("view", &json!({"path": "durations.py"}).to_string()).with_text("Let me read it.")),
        call("edit", json!({"command": "create", "path": "test_compound.py", "file_text": reproduction})),
        call(
            "edit",
            json!({"command": "str_replace", "path": "durations.py",
                   "old_str": "total = int(number) * UNITS[ch]", "new_str": "total += int(number) * UNITS[ch]"}),
        ),
        call("bash", json!({"command": verify})),
        call("finish", json!({"summary": "Accumulate every part of a compound duration."})),
    ]
}

/// Records a real run with `rigor run` against the scripted model; returns its id.
fn record_run(repo: &Path, config_home: &Path) -> String {
    let server = ScriptedServer::start_blocking(Flavor::OpenAi, fixing_script());
    let dir = config_home.join("rigor");
    std::fs::create_dir_all(&dir).unwrap();
    let config =
        format!("[providers.scripted]\nkind = \"openai\"\nbase_url = \"{}\"\nmax_attempts = 2\n", server.base_url());
    std::fs::write(dir.join("config.toml"), config).unwrap();
    let output = rigor(config_home)
        .args(["run", "--repo", ".", "--issue-file", "ISSUE.md", "--model", "scripted:test-model", "--json"])
        .current_dir(repo)
        .output()
        .unwrap();
    let runs: Vec<_> = std::fs::read_dir(repo.join(".rigor/runs")).unwrap().flatten().collect();
    assert_eq!(runs.len(), 1, "rigor run: {}", String::from_utf8_lossy(&output.stderr));
    runs[0].file_name().to_string_lossy().into_owned()
}

fn rigor(config_home: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rigor"));
    cmd.env("XDG_CONFIG_HOME", config_home)
        .env("NO_COLOR", "1")
        .env_remove("OPENAI_API_KEY")
        .env_remove("OPENAI_BASE_URL")
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("RIGOR_MODEL");
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_viewer_works_in_a_real_browser() {
    let (Some(chromium), Some(chromedriver)) = (on_path("chromium"), on_path("chromedriver")) else {
        eprintln!(
            "SKIPPED: the browser test needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)"
        );
        return;
    };
    // A generous hang guard: every wait inside is bounded already.
    tokio::time::timeout(Duration::from_secs(300), browse(&chromium, &chromedriver))
        .await
        .expect("the browser test hung");
}

async fn browse(chromium: &Path, chromedriver: &Path) {
    let repo = fixture_repo(&example("durations"));
    let config_home = tempfile::tempdir().unwrap();
    let run_id = tokio::task::block_in_place(|| record_run(repo.path(), config_home.path()));
    let resolved = rigor_view::fixtures::write_eval(repo.path(), "eval-1", "m", 30, |i| i % 5 < 2).unwrap();
    assert_eq!(resolved, 12);
    let live_dir = rigor_view::fixtures::write_run(&repo.path().join(".rigor/runs"), "live-run", 2, false).unwrap();

    let mut view = rigor(config_home.path());
    view.args(["view", "."]).current_dir(repo.path());
    let mut viewer = spawn_group(view);
    let line = wait_for_line(&mut viewer, "http://127.0.0.1:");
    let url = line.split_whitespace().find(|w| w.starts_with("http://")).unwrap().to_string();

    let profile = tempfile::tempdir().unwrap();
    let browser = Browser::start(chromium, chromedriver, profile.path()).await;

    // The runs table lists the recorded run; clicking it shows the diff and the steps.
    browser.goto(&format!("{url}runs")).await;
    let link = browser.find(&format!("//table[@id='runs']//a[text()='{run_id}']")).await;
    let status = browser.find(&format!("//tr[td/a[text()='{run_id}']]/td[2]")).await;
    assert_eq!(browser.text(&status).await, "submitted");
    browser.screenshot("runs.png").await;
    browser.click(&link).await;
    let added = browser.find("//div[@class='diff']/div[@class='add' and contains(., 'total += int(number)')]").await;
    assert_eq!(
        browser.text(&added).await.split_whitespace().collect::<Vec<_>>(),
        ["+", "total", "+=", "int(number)", "*", "UNITS[ch]"]
    );
    browser.find("//div[@id='events']//*[@id='turn-6']").await;
    assert_eq!(browser.count("#events .item.model").await, 6, "one model response per step");
    assert!(browser.count("#events .item.observation").await >= 5);
    browser.find("//h2[@id='proof']").await;
    browser.screenshot("run.png").await;

    // The evaluation page shows the right counts.
    browser.goto(&format!("{url}eval/eval-1")).await;
    assert_eq!(browser.text(&browser.find("//span[@id='resolved']").await).await, "12");
    assert_eq!(browser.text(&browser.find("//span[@id='total']").await).await, "30");
    assert_eq!(browser.count("#instances-table tbody tr").await, 30);
    let unresolved = browser.find("//p[@class='filters']/a[@class='unresolved']").await;
    browser.click(&unresolved).await;
    browser.find("//p[@id='shown' and starts-with(., '18 instance(s)')]").await;
    browser.screenshot("eval.png").await;

    // A run in progress: an event appended to its trajectory appears on the open page.
    browser.goto(&format!("{url}run/live-run")).await;
    browser.find("//*[@id='live' and text()='live']").await; // the event stream is open
    let record = json!({"elapsed_ms": 5000, "type": "notice", "message": "live marker 42"});
    let appended = Instant::now();
    let mut file = std::fs::OpenOptions::new().append(true).open(live_dir.join("trajectory.jsonl")).unwrap();
    writeln!(file, "{record}").unwrap();
    drop(file);
    browser.find("//div[@id='events']//pre[text()='live marker 42']").await;
    eprintln!("live update appeared {} ms after the append", appended.elapsed().as_millis());
    browser.screenshot("live.png").await;
}
