"""Measures rigor view (called by bench/view.sh): server timings with plain HTTP, first paint in
headless chromium over WebDriver (standard library only), the viewer's RSS. Prints a table."""
import json, os, shutil, socket, subprocess, sys, tempfile, time, urllib.request

url, pid, steps, instances, trajectory_bytes = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
rows = []


def fetch(path, runs=5, cold=False):
    """Median time to first byte, total time and size of GET path (after one warm-up unless cold)."""
    firsts, totals, size = [], [], 0
    for i in range(runs + (0 if cold else 1)):
        start = time.perf_counter()
        with urllib.request.urlopen(url + path, timeout=120) as reply:
            reply.read(1)
            first = time.perf_counter() - start
            size = 1 + len(reply.read())
        if i or cold:
            firsts.append(first)
            totals.append(time.perf_counter() - start)
    med = lambda xs: sorted(xs)[len(xs) // 2] * 1000
    return med(firsts), med(totals), size


def rss_kib():
    fields = dict(line.split(":", 1) for line in open(f"/proc/{pid}/status"))
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


rss_idle = rss_kib()[0]
first, total, size = fetch("run/long-run")
rows.append((f"run page, {steps} steps (page 1 of turns), server", f"{first:.0f} ms to first byte, {total:.0f} ms whole", f"{size / 1024:.0f} KiB (trajectory {trajectory_bytes / 1048576:.1f} MiB)"))
first, total, size = fetch("run/long-run?page=20")
rows.append((f"run page, {steps} steps, last page, server", f"{first:.0f} ms / {total:.0f} ms", f"{size / 1024:.0f} KiB"))
for label, path in [("eval page (first load, cold)", "eval/big-eval"), ("eval page, sorted by cost", "eval/big-eval?sort=cost&order=desc"), ("eval page, unresolved, page 5", "eval/big-eval?status=unresolved&page=5")]:
    first, total, size = fetch(path, runs=1, cold=True) if "cold" in label else fetch(path)
    rows.append((f"{label}, {instances} instances, server", f"{first:.0f} ms / {total:.0f} ms", f"{size / 1024:.0f} KiB"))
rss, hwm = rss_kib()
rows.append((f"rigor view RSS serving {instances} instances", f"{rss / 1024:.1f} MiB (peak {hwm / 1024:.1f} MiB)", f"idle before: {rss_idle / 1024:.1f} MiB"))

chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
if chromium and driver:
    sock = socket.socket(); sock.bind(("127.0.0.1", 0)); port = sock.getsockname()[1]; sock.close()
    proc = subprocess.Popen([driver, f"--port={port}"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True)
    profile = tempfile.mkdtemp()
    try:
        while b"started successfully" not in proc.stdout.readline():
            pass
        base = f"http://127.0.0.1:{port}"

        def call(method, path, body=None):
            req = urllib.request.Request(base + path, method=method, data=json.dumps(body).encode() if body is not None else None, headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=120) as reply:
                return json.load(reply)["value"]

        args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", f"--user-data-dir={profile}"]
        session = call("POST", "/session", {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {"binary": chromium, "args": args}}}})["sessionId"]
        call("POST", f"/session/{session}/timeouts", {"script": 15000, "pageLoad": 60000})
        paints = []
        for i in range(6):
            call("POST", f"/session/{session}/url", {"url": "about:blank"})
            call("POST", f"/session/{session}/url", {"url": url + "run/long-run"})
            # Waits for the paint entry (buffered: it may be recorded already); a 10 s bound.
            paint = call("POST", f"/session/{session}/execute/async", {"script": """
const done = arguments[arguments.length - 1];
const nav = performance.getEntriesByType('navigation')[0];
new PerformanceObserver((list) => {
  const p = list.getEntries().find((e) => e.name === 'first-contentful-paint');
  if (p) done([p.startTime, nav.responseStart, nav.domContentLoadedEventEnd]);
}).observe({type: 'paint', buffered: true});
setTimeout(() => done([-1, nav.responseStart, nav.domContentLoadedEventEnd]), 10000);""", "args": []})
            if i and paint[0] >= 0:
                paints.append(paint)
        if not paints:
            raise SystemExit("chromium reported no first-contentful-paint")
        fcp = sorted(p[0] for p in paints)[len(paints) // 2]
        ttfb = sorted(p[1] for p in paints)[len(paints) // 2]
        dcl = sorted(p[2] for p in paints)[len(paints) // 2]
        rows.insert(0, (f"run page, {steps} steps, first contentful paint in chromium (target < 300 ms)", f"{fcp:.0f} ms", f"first byte {ttfb:.0f} ms, DOM ready {dcl:.0f} ms (median of {len(paints)})"))
        call("DELETE", f"/session/{session}")
    finally:
        os.killpg(proc.pid, 9)
        shutil.rmtree(profile, ignore_errors=True)
else:
    rows.insert(0, ("first paint in chromium", "not measured", "install chromium and chromium-driver"))

print("| measurement | value | detail |\n|---|---|---|")
for row in rows:
    print("| " + " | ".join(row) + " |")
