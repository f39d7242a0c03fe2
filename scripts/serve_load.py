#!/usr/bin/env python3
"""Load test of a running `oko serve`: N concurrent streaming completions, each of
exactly --tokens tokens (ignore_eos is not in the API, so use a model that rarely stops
early, e.g. `oko make-model`'s random weights, and check the printed counts).

Prints, per run, the mean decode rate of the streams (tokens after the first, over the
time from its first to its last token) and the aggregate (all tokens after each stream's first,
over the wall time from the first first-token to the last token).

  build/oko serve -m /tmp/q06 -t 2 --parallel 4 -c 1024 --port 8090 &
  scripts/serve_load.py --url http://127.0.0.1:8090 --streams 1 4 --tokens 128

With --pid (the server's) it also prints the server's resident memory after each run:
repeated runs (--rounds) should leave it flat.
"""
import argparse
import json
import threading
import time
import urllib.request


def stream(url, prompt, tokens, seed, out):
    body = json.dumps({"prompt": prompt, "max_tokens": tokens, "seed": seed, "temperature": 0,
                       "stream": True, "stream_options": {"include_usage": True}}).encode()
    req = urllib.request.Request(url + "/v1/completions", data=body, headers={"Content-Type": "application/json"})
    # A token that does not complete a character sends no chunk: the count comes from
    # usage, the times from the first and the last text chunk.
    first = last = None
    generated = 0
    with urllib.request.urlopen(req) as r:
        for line in r:
            line = line.decode().strip()
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if chunk.get("usage"):
                generated = chunk["usage"]["completion_tokens"]
            elif chunk["choices"] and chunk["choices"][0]["text"]:
                last = time.perf_counter()
                first = first or last
    out.append((first, last, generated))


def resident_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def run(url, streams, tokens):
    results = []
    threads = [threading.Thread(target=stream, args=(url, f"Story number {i}:", tokens, i, results))
               for i in range(streams)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    per_stream = [(n - 1) / (last - first) for first, last, n in results]
    start = min(first for first, _, _ in results)
    end = max(last for _, last, _ in results)
    total = sum(n - 1 for _, _, n in results)
    counts = [n for _, _, n in results]
    print(f"{streams} stream(s): tokens per stream {counts}; per-stream decode "
          f"{sum(per_stream) / len(per_stream):.1f} tok/s; aggregate {total / (end - start):.1f} tok/s")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default="http://127.0.0.1:8080")
    p.add_argument("--streams", type=int, nargs="+", default=[1, 4])
    p.add_argument("--tokens", type=int, default=128)
    p.add_argument("--rounds", type=int, default=1, help="repeat the runs (default: 1)")
    p.add_argument("--pid", type=int, help="the server's pid: print its resident memory after each run")
    a = p.parse_args()
    run(a.url, 1, 8)  # warm-up: pages the weights in
    if a.pid:
        print(f"server resident after warm-up: {resident_mib(a.pid):.1f} MiB")
    for _ in range(a.rounds):
        for n in a.streams:
            run(a.url, n, a.tokens)
            if a.pid:
                print(f"server resident: {resident_mib(a.pid):.1f} MiB")


if __name__ == "__main__":
    main()
