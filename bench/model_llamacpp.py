"""llama.cpp side of bench/model.sh (run inside the llama-cpp-python venv).

Same measurements as crates/rigor-model/examples/model_bench.rs, same GGUF, prompt, threads,
greedy decoding; prints one JSON object.
Usage: model_llamacpp.py MODEL THREADS PROMPT_FILE[,PROMPT_FILE...] GEN_TOKENS TURN_FILE...
"""
import json
import resource
import sys
import time

from llama_cpp import Llama

model, threads, prompt_file, gen_tokens = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
turns = [open(f).read() for f in sys.argv[5:]]

t = time.perf_counter()
llm = Llama(model_path=model, n_threads=threads, n_threads_batch=threads, n_ctx=10240, n_batch=512, verbose=False)
load_s = time.perf_counter() - t


def chat_tokens(messages):
    """The prompt tokens of a conversation, rendered with the GGUF's own template (ChatML)."""
    text = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
    return llm.tokenize((text + "<|im_start|>assistant\n").encode(), add_bos=False, special=True)


# Warm-up.
llm.reset()
llm.eval(chat_tokens([{"role": "user", "content": "Hi"}]))
llm.reset()

prefill = []
for file in prompt_file.split(","):
    tokens = chat_tokens([{"role": "user", "content": open(file).read()}])
    llm.reset()
    t = time.perf_counter()
    llm.eval(tokens)
    pp_s = time.perf_counter() - t
    llm.sample(temp=0.0)
    prefill.append({"prompt_tokens": len(tokens), "pp_tps": len(tokens) / pp_s, "ttft_s": time.perf_counter() - t})

llm.reset()
gen_prompt = chat_tokens([{"role": "user", "content": "Write a long story about a dragon who learns to program."}])
count, first_at = 0, None
t = time.perf_counter()
for token in llm.generate(gen_prompt, temp=0.0, top_k=1, repeat_penalty=1.0, reset=True):
    count += 1
    if first_at is None:
        first_at = time.perf_counter()
    if token == llm.token_eos() or count >= gen_tokens:
        break
tg_tps = (count - 1) / (time.perf_counter() - first_at)

loop = {}
for reuse in (True, False):
    llm.reset()
    conversation = [{"role": "system", "content": turns[0]}]
    times, prompt_tokens = [], []
    for observation in turns[1:]:
        conversation.append({"role": "user", "content": observation})
        if not reuse:
            llm.reset()
        toks = chat_tokens(conversation)
        t = time.perf_counter()
        out = []
        for token in llm.generate(toks, temp=0.0, top_k=1, repeat_penalty=1.0, reset=not reuse):
            if token == llm.token_eos() or len(out) >= 32:
                break
            out.append(token)
        times.append(time.perf_counter() - t)
        prompt_tokens.append(len(toks))
        conversation.append({"role": "assistant", "content": llm.detokenize(out).decode(errors="replace")})
    loop["with_reuse" if reuse else "without_reuse"] = {"turn_s": times, "prompt_tokens": prompt_tokens}

print(json.dumps({
    "engine": "llama.cpp (llama-cpp-python)",
    "threads": threads,
    "load_s": load_s,
    "prompt_tokens": prefill[0]["prompt_tokens"],
    "pp_tps": prefill[0]["pp_tps"],
    "ttft_s": prefill[0]["ttft_s"],
    "prefill": prefill,
    "gen_tokens": count,
    "tg_tps": tg_tps,
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "agent_loop": loop,
}))
