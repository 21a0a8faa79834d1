"""Prints the Markdown table of bench/model.sh from the JSON results of interleaved rounds
(rigor, llama.cpp, rigor, llama.cpp, ...). `--load FILE` adds the load average seen at the end of
that run to FILE."""
import json
import os
import sys

if sys.argv[1] == "--load":
    result = json.load(open(sys.argv[2]))
    result["load_after"] = " ".join(open("/proc/loadavg").read().split()[:3])
    json.dump(result, open(sys.argv[2], "w"))
    sys.exit(0)

runs = [json.load(open(p)) for p in sys.argv[1:]]


def mean(xs):
    return sum(xs) / len(xs) if xs else 0.0


rows = [
    ("load time (s)", lambda r: f"{r['load_s']:.2f}"),
    ("generation (tok/s)", lambda r: f"{r['tg_tps']:.1f}"),
    ("tokens generated", lambda r: f"{r['gen_tokens']}"),
    ("peak RSS (MB)", lambda r: f"{r['peak_rss_mb']:.0f}"),
]
for i, p in enumerate(runs[0].get("prefill", [])):
    rows.insert(1 + 3 * i, (f"prompt tokens ({i + 1})", lambda r, i=i: f"{r['prefill'][i]['prompt_tokens']}"))
    rows.insert(2 + 3 * i, (f"prompt processing {i + 1} (tok/s)", lambda r, i=i: f"{r['prefill'][i]['pp_tps']:.1f}"))
    rows.insert(3 + 3 * i, (f"time to first token {i + 1} (s)", lambda r, i=i: f"{r['prefill'][i]['ttft_s']:.2f}"))
for mode, label in (("with_reuse", "agent turn, KV-prefix reuse (s, mean)"), ("without_reuse", "agent turn, no reuse (s, mean)")):
    rows.append((label, lambda r, mode=mode: f"{mean(r['agent_loop'][mode]['turn_s']):.2f}"))
rows.append(("load average after the run", lambda r: r.get("load_after", "?")))

print(f"{os.path.basename(runs[0]['model'])}, {runs[0]['threads']} threads, greedy; runs in the order they ran\n")
names = [f"{r['engine']} #{i // 2 + 1}" for i, r in enumerate(runs)]
print("| metric | " + " | ".join(names) + " |")
print("| --- |" + " ---: |" * len(runs))
for label, cell in rows:
    print(f"| {label} | " + " | ".join(cell(r) for r in runs) + " |")
r = runs[0]["agent_loop"]["with_reuse"]
print(f"\nagent loop: {len(r['turn_s'])} turns, prompt {r['prompt_tokens'][0]} → {r['prompt_tokens'][-1]} tokens, "
      "32 tokens generated per turn")
for name, res in zip(names, runs):
    w, wo = res["agent_loop"]["with_reuse"]["turn_s"], res["agent_loop"]["without_reuse"]["turn_s"]
    print(f"- {name} per turn with reuse: {', '.join(f'{t:.2f}' for t in w)} s; without: "
          f"{', '.join(f'{t:.2f}' for t in wo)} s")
