"""Prints the Markdown table of bench/model.sh from the two JSON results."""
import json
import sys

rigor, peer = (json.load(open(p)) for p in sys.argv[1:3])


def mean(xs):
    return sum(xs) / len(xs) if xs else 0.0


rows = [
    ("load time (s)", "load_s", "{:.2f}"),
    ("prompt tokens", "prompt_tokens", "{}"),
    ("prompt processing (tok/s)", "pp_tps", "{:.1f}"),
    ("time to first token (s)", "ttft_s", "{:.2f}"),
    ("generation (tok/s)", "tg_tps", "{:.1f}"),
    ("tokens generated", "gen_tokens", "{}"),
    ("peak RSS (MB)", "peak_rss_mb", "{:.0f}"),
]
print(f"SmolLM2-135M-Instruct Q4_1, {rigor['threads']} threads, greedy\n")
print(f"| metric | {rigor['engine']} | {peer['engine']} |")
print("| --- | ---: | ---: |")
for label, key, fmt in rows:
    print(f"| {label} | {fmt.format(rigor[key])} | {fmt.format(peer[key])} |")
for mode in ("with_reuse", "without_reuse"):
    r, p = rigor["agent_loop"][mode], peer["agent_loop"][mode]
    label = "agent turn, KV-prefix reuse (s, mean)" if mode == "with_reuse" else "agent turn, no reuse (s, mean)"
    print(f"| {label} | {mean(r['turn_s']):.2f} | {mean(p['turn_s']):.2f} |")
r = rigor["agent_loop"]["with_reuse"]
print(f"\nagent loop: {len(r['turn_s'])} turns, prompt {r['prompt_tokens'][0]} → {r['prompt_tokens'][-1]} tokens, "
      "32 tokens generated per turn")
for name, res in (("rigor", rigor), ("llama.cpp", peer)):
    w, wo = res["agent_loop"]["with_reuse"]["turn_s"], res["agent_loop"]["without_reuse"]["turn_s"]
    print(f"- {name} per turn with reuse: {', '.join(f'{t:.2f}' for t in w)} s; without: "
          f"{', '.join(f'{t:.2f}' for t in wo)} s")
