"""Shared by the Python sides of the side-by-side benchmarks (scripts/bench_unet_torch.py,
scripts/bench_vae_torch.py, scripts/bench_isnet_ort.py; scripts/bench-cpu.sh runs them next to
ours): timing and the one JSON line, with the keys our benches print (engine/benches/common/
report.rs): impl, what, size, seconds (median of the timed runs), it_per_s, warmup, all (every
timed run), peak_mib (this process' peak resident memory).
"""
import json
import resource
import statistics
import time


def time_runs(runs, step, sync=lambda: None):
    """Runs `step` once to warm up, then `runs` timed times: (warm-up seconds, [timed seconds])."""
    times = []
    for _ in range(runs + 1):
        sync()
        t0 = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t0)
    return times[0], times[1:]


def peak_mib():
    """Peak resident memory of this process in MiB (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def print_line(impl, what, size, warmup, times, **extra):
    med = statistics.median_high(times) if times else float("nan")
    line = {"impl": impl, "what": what, "size": size, "seconds": med, "it_per_s": 1 / med,
            "warmup": warmup, "all": times, "peak_mib": round(peak_mib())}
    line.update(extra)
    print(json.dumps(line), flush=True)
