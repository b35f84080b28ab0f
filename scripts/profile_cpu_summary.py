"""Per-operator summary of a CPU profile (scripts/profile-cpu.sh records it; this reads
`perf script -F comm,tid,period,ip,sym,dso` text on stdin) as Markdown tables.

Each sample's CPU time goes to one operator class: the class of its innermost frame when that
frame's symbol names one, else that of the nearest caller that does (the hot loops of rayon
closures and generic helpers are inlined into symbols that name no operator); samples where no
frame names a class count as "other". CLASSES is the one list of classes and their patterns.

    perf script -i perf.data -F comm,tid,period,ip,sym,dso | python3 profile_cpu_summary.py [TOP]
"""
import collections
import re
import sys

GENERIC = "generic"
# Innermost frames where a thread waits instead of working: spinning or parked workers of rayon
# and of candle's barrier pool (`candle-bp-N` threads, which run candle's parallel elementwise
# ops beside rayon), and the scheduler. Their time is its own class.
WAITING = "waiting (spinning / parked threads, barriers)"
WAIT_PAT = re.compile(r"BarrierGuard|spin_loop|sched_yield|futex|rayon_core::sleep|wait_until|"
                      r"__rust_begin_short_backtrace|finish_task_switch|\bschedule\b|__sched|"
                      r"\bpark\b|do_idle|cpuidle")
# Frames that name no operator whatever their type parameters: rayon's and the standard
# library's plumbing, and candle's generic op dispatch (`Map1::map` inlines the op; its caller,
# e.g. `CpuStorage::conv2d`, names it). Looked through.
GENERIC_PAT = re.compile(r"^<?(rayon|rayon_core|crossbeam\w*|std::thread|std::sys|"
                         r"core::ops::function)::|candle_core::cpu_backend::utils::Map\w*::map")
# A sample whose frames are all plumbing: a closure a rayon worker stole, whose origin is not on
# the worker's stack.
STOLEN = "other: rayon jobs (origin not on the stack)"
# (class, pattern over a demangled symbol), first match wins; the order matters where names
# overlap (a fused GroupNorm+SiLU is GroupNorm, gemm's packing is gemm).
CLASSES = [
    ("gemm (matrix products)",
     r"gemm|matrixmultiply|sgemm|microkernel|pack_lhs|pack_rhs|MatMul|matmul"),
    ("im2col / convolution",
     r"im2col|col2im|Im2Col|Col2Im|[cC]onv[12][dD]|conv_transpose|ConvTranspose|kernels::conv|"
     r"conv_forward"),
    ("attention / softmax / exp",
     r"attention|[sS]oftmax|flash|exp_in_place|\bexpf?\b|::exp\b|__exp|\bexpf?(32|64)?_|attn"),
    ("group_norm / layer_norm", r"group_norm|GroupNorm|layer_norm|LayerNorm|rms_norm"),
    ("copies (copy_strided, cat)",
     r"copy_strided|copy2d|copy_slice|Copy2D|memcpy|memmove|\bcat\b|cat_contiguous|::cat|"
     r"contiguous"),
    ("resize / pool",
     r"[uU]psample|interpolate|resize_bilinear|[rR]esize[A-Z_]|bilinear|nearest|[pP]ool[12][dD]|"
     r"[aA]vg_?[pP]ool|[mM]ax_?[pP]ool"),
    ("alloc / memset / page faults",
     r"malloc|calloc|realloc|\bfree\b|cfree|_int_free|memset|__rust_alloc|__rust_dealloc|"
     r"alloc::alloc|from_elem|extend_with|Vec<T,A>::resize|RawVec|\bmmap|munmap|\bbrk|page_fault|"
     r"clear_page|do_anonymous_page|handle_mm_fault|zap_|alloc_pages|folio"),
    ("elementwise (binary, unary, affine, reduce)",
     r"binary_map|unary_map|BinaryOp|UnaryOp|[aA]ffine|[sS]ilu|[gG]elu|[rR]elu|[sS]igmoid|WCond|"
     r"where_cond|to_dtype|\bCast|[rR]educe|sum_impl|broadcast|sqrt|tanh|binary_|"
     r"unary_|call_trampoline|execute_chunked"),
]
COMPILED = [(name, re.compile(p)) for name, p in CLASSES]
FRAME = re.compile(r"^\s*([0-9a-f]+)\s+(.*?)\s+\((.*)\)\s*$")


def demangle(sym):
    """Rust legacy symbols perf left mangled (`_ZN...E`), and the `::h<hash>` suffix."""
    if sym.startswith("_ZN") and sym.endswith("E"):
        parts, s = [], sym[3:-1]
        while s and s[0].isdigit():
            n = re.match(r"\d+", s).group()
            parts.append(s[len(n):len(n) + int(n)])
            s = s[len(n) + int(n):]
        sym = "::".join(parts).replace("$LT$", "<").replace("$GT$", ">").replace("$u20$", " ") \
            .replace("..", "::").replace("$C$", ",").replace("$RF$", "&")
    return re.sub(r"::h[0-9a-f]{16}$", "", sym)


def classify(sym):
    """The class a symbol names, GENERIC for plumbing to look through, or None."""
    if GENERIC_PAT.search(sym):
        return GENERIC
    for name, pat in COMPILED:
        if pat.search(sym):
            return name
    return None


def leaf_label(sym):
    """The class of a symbol seen as the innermost frame, for the symbol table."""
    if WAIT_PAT.search(sym):
        return WAITING
    c = classify(sym)
    return "(by its callers)" if c in (None, GENERIC) else c


def sample_class(frames):
    """frames: [(symbol, dso)] innermost first."""
    if frames and WAIT_PAT.search(frames[0][0]):
        return WAITING
    plumbing = False
    for sym, dso in frames:
        c = classify(sym)
        if c == GENERIC:
            plumbing = True
        elif c:
            return c
    if plumbing:
        return STOLEN
    if frames and frames[0][1] == "[kernel.kallsyms]":
        return "kernel (other)"
    if frames and frames[0][0] == "[unknown]":
        return "unresolved"
    return "other"


def samples(lines):
    """Yields (thread name, thread id, period, [(symbol, dso)]) per sample."""
    comm, tid, period, frames, in_sample = "", 0, 0, [], False
    for line in lines:
        line = line.rstrip("\n")
        if not line.strip():
            if in_sample:
                yield comm, tid, period, frames
            comm, tid, period, frames, in_sample = "", 0, 0, [], False
            continue
        m = FRAME.match(line) if line[:1] in ("\t", " ") and in_sample else None
        if m:
            frames.append((demangle(m.group(2)), m.group(3)))
            continue
        if in_sample:
            yield comm, tid, period, frames
        # Header: COMM TID PERIOD (COMM may hold spaces).
        m = re.match(r"^\s*(.*?)\s+(\d+)\s+(\d+)\s*$", line)
        comm, tid, period = (m.group(1), int(m.group(2)), int(m.group(3))) if m \
            else (line.strip(), 0, 1)
        frames, in_sample = [], True
    if in_sample:
        yield comm, tid, period, frames


def main():
    top = int(sys.argv[1]) if len(sys.argv) > 1 else 25
    by_class = collections.Counter()
    leaf_by_class = collections.defaultdict(collections.Counter)
    leaf = collections.Counter()
    total = 0
    n = 0
    by_thread = collections.Counter()
    tids = collections.defaultdict(set)
    for comm, tid, period, frames in samples(sys.stdin):
        n += 1
        by_thread[comm] += period
        tids[comm].add(tid)
        total += period
        c = sample_class(frames)
        by_class[c] += period
        sym = frames[0][0] if frames else "[no frames]"
        leaf_by_class[c][sym] += period
        leaf[sym] += period
    if not total:
        sys.exit("profile_cpu_summary.py: no samples (did the timed runs run under perf?)")
    pct = lambda v: f"{100 * v / total:.1f}"
    short = lambda s: (s[:90] + "…") if len(s) > 91 else s
    print(f"{n} samples, {total / 1e9:.2f} s of CPU time (cpu-clock periods).")
    print()
    print("| operator class | self % | CPU s | top symbols (% of all) |")
    print("| --- | --- | --- | --- |")
    for c, v in by_class.most_common():
        syms = "; ".join(f"`{short(s)}` {pct(w)}" for s, w in leaf_by_class[c].most_common(3))
        print(f"| {c} | {pct(v)} | {v / 1e9:.2f} | {syms} |")
    print()
    print("CPU time by thread name (rayon's workers carry the program's name; candle's barrier "
          "pool's are `candle-bp-N`):")
    print()
    print("| thread name | threads | % | CPU s |")
    print("| --- | --- | --- | --- |")
    for c, v in by_thread.most_common():
        print(f"| `{c}` | {len(tids[c])} | {pct(v)} | {v / 1e9:.2f} |")
    print()
    print(f"Top {top} symbols by self time (innermost frame):")
    print()
    print("| self % | symbol | class |")
    print("| --- | --- | --- |")
    for s, v in leaf.most_common(top):
        print(f"| {pct(v)} | `{short(s)}` | {leaf_label(s)} |")


if __name__ == "__main__":
    main()
