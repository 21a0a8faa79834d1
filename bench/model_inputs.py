"""Writes the inputs of bench/model.sh into DIR: prompt1k.txt, prompt3k.txt and prompt8k.txt
(about 1,000, 3,000 and 8,000 tokens: a Python module repeated, then a question), and turn0.txt
(an agent's system prompt with tool descriptions) .. turnN.txt (observations, one per turn)."""
import pathlib
import sys

out = pathlib.Path(sys.argv[1])
source = (pathlib.Path(__file__).resolve().parent.parent / "examples/durations/durations.py").read_text()
for name, copies in (("prompt1k", 3), ("prompt3k", 9), ("prompt8k", 23)):
    out.joinpath(f"{name}.txt").write_text(
        "Here is a Python module.\n\n" + (source + "\n") * copies + "\nExplain what parse_duration does, step by step."
    )
system = ["You are rigor, a careful software engineer. Fix the issue in the repository, prove the fix, then finish."]
for name, desc in [
    ("bash", "Run a shell command in a persistent session in the workspace. Arguments: command (string, required)."),
    ("view", "Show a file with line numbers, or a directory listing. Arguments: path (string, required), "
             "start_line (integer), end_line (integer)."),
    ("edit", "Edit a file: str_replace with a unique match, insert after a line, create, or undo. Arguments: "
             "command (one of str_replace|insert|create|undo, required), path (string, required), old_str, new_str."),
    ("search", "Search the repository with a regular expression, gitignore-aware. Arguments: pattern (string, "
               "required), path (string), glob (string)."),
    ("finish", "End the run with a summary of the change and how it was verified. Arguments: summary (string)."),
    ("abstain", "End the run without a patch, with the reason. Arguments: reason (string, required)."),
]:
    system.append(f"## {name}\n{desc}\n")
system.append("To use a tool, reply with exactly one fenced code block whose info string is the tool's name and "
              "whose body is the JSON arguments, then stop and wait for the observation.\n" * 4)
system.append("Issue: parse_duration('1h30m') returns 1800 instead of 5400: only the last part of a compound "
              "duration is kept. Fix it and add a test.")
out.joinpath("turn0.txt").write_text("\n".join(system))
lines = source.splitlines()
for i in range(1, 6):
    chunk = "\n".join(f"{n:>4}  {l}" for n, l in enumerate(lines[(i - 1) * 12:(i - 1) * 12 + 12], (i - 1) * 12 + 1))
    out.joinpath(f"turn{i}.txt").write_text(f"Observation from view:\n{chunk}\n")
