#!/usr/bin/env python3
"""Roofline plot of `oko profile --json` and `oko bench --json` output (gnuplot, PNG).

x: arithmetic intensity (FLOP per byte moved), y: achieved GFLOP/s. The roofs are the
measured read bandwidth (slope) and the bf16 dot-product peak (flat), with the f32 FMA
peak dashed (attention and the exact mode compute in f32). Each op of prefill and decode is
a point; pp and tg of the whole model are the large markers.
Usage: roofline.py PERF_DIR OUT.png
"""
import json
import subprocess
import sys
from pathlib import Path


def points(phase, label):
    rows = []
    for op in phase["ops"]:
        if op["ms"] <= 0 or op["gbs"] <= 0 or op["gflops"] <= 0:
            continue
        rows.append((op["gflops"] / op["gbs"], op["gflops"], f"{label}:{op['name']}"))
    return rows


def main():
    perf, out = Path(sys.argv[1]), sys.argv[2]
    profile = json.loads((perf / "profile_t2.json").read_text())
    bench = json.loads((perf / "bench_t2.json").read_text())
    bw = profile["machine"]["read_gbs"]
    peak32 = profile["machine"]["f32_gflops"]
    peak = max(profile["machine"]["bf16_gflops"], peak32)
    data = perf / "roofline.dat"
    with data.open("w") as f:
        for x, y, name in points(profile["prefill"], "pp") + points(profile["decode"], "tg"):
            f.write(f'{x:.6g} {y:.6g} "{name}"\n')
    # bf16 weights: 2 bytes and one multiply-add (2 FLOPs) per weight per token. Decode
    # reads every weight per token; prefill once per chunk of 256 tokens (EngineOptions).
    weight_bytes = bench["weight_bytes_per_token"]
    flops_per_token = 2 * weight_bytes / 2
    tg_ai = flops_per_token / weight_bytes
    tg_y = bench["tg"]["tok_s"] * flops_per_token / 1e9
    n = bench["pp"]["n"]
    pp_ai = flops_per_token * n / (weight_bytes * -(-n // 256))
    pp_y = bench["pp"]["gflops"]
    script = f"""
set terminal png size 1200,800 noenhanced
set output '{out}'
set title 'oko on this machine: achieved vs roofline (2 threads, Qwen3-0.6B shape, bf16)'
set logscale xy
set xlabel 'arithmetic intensity (FLOP/byte)'
set ylabel 'GFLOP/s'
set key left top
set xrange [0.05:2000]
set yrange [0.5:{peak * 2:.0f}]
roof(x) = (x * {bw:.3f} < {peak:.3f}) ? x * {bw:.3f} : {peak:.3f}
roof32(x) = (x * {bw:.3f} < {peak32:.3f}) ? x * {bw:.3f} : {peak32:.3f}
plot roof(x) title 'roof: {bw:.1f} GB/s, bf16 {peak:.0f} GFLOP/s' lw 2 lc rgb 'black', \\
     roof32(x) title 'f32 FMA {peak32:.0f} GFLOP/s' lw 1 dt 2 lc rgb 'gray40', \\
     '{data}' using 1:2 with points pt 7 ps 1.2 title 'ops (pp: prefill, tg: decode)', \\
     '{data}' using 1:2:3 with labels font ',8' offset 0.5,0.5 left notitle, \\
     '-' using 1:2 with points pt 5 ps 3 title 'tg{bench["tg"]["n"]} whole model', \\
     '-' using 1:2 with points pt 9 ps 3 title 'pp{bench["pp"]["n"]} whole model'
{tg_ai} {tg_y}
e
{pp_ai} {pp_y}
e
"""
    subprocess.run(["gnuplot"], input=script, text=True, check=True)


if __name__ == "__main__":
    main()
