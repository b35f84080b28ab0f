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

# Frames that name no operator whatever their type parameters: rayon's and the standard
# library's plumbing. Looked through, and counted as GENERIC only when no other frame classifies.
GENERIC = "rayon scheduling / idle"
GENERIC_PAT = re.compile(r"^<?(rayon|rayon_core|crossbeam\w*|std::thread|std::sys|core::ops::function)"
                         r"::|sched_yield|futex|spin_loop|__sched|\bschedule\b")
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
     r"where_cond|to_dtype|\bCast|[rR]educe|sum_impl|Map1|Map2|broadcast|sqrt|tanh|binary_|"
     r"unary_"),
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
    if GENERIC_PAT.search(sym):
        return GENERIC
    for name, pat in COMPILED:
        if pat.search(sym):
            return name
    return None


def sample_class(frames):
    """frames: [(symbol, dso)] innermost first."""
    fallback = None
    for sym, dso in frames:
        c = classify(sym)
        if c == GENERIC:
            fallback = fallback or c
        elif c:
            return c
    if fallback:
        return fallback
    if frames and frames[0][1] == "[kernel.kallsyms]":
        return "kernel (other)"
    if frames and frames[0][0] == "[unknown]":
        return "unresolved"
    return "other"


def samples(lines):
    """Yields (period, [(symbol, dso)]) per sample."""
    period, frames, in_sample = 0, [], False
    for line in lines:
        line = line.rstrip("\n")
        if not line.strip():
            if in_sample:
                yield period, frames
            period, frames, in_sample = 0, [], False
            continue
        m = FRAME.match(line) if line[:1] in ("\t", " ") and in_sample else None
        if m:
            frames.append((demangle(m.group(2)), m.group(3)))
            continue
        if in_sample:
            yield period, frames
        # Header: COMM TID PERIOD (COMM may hold spaces: take the last two numbers).
        nums = re.findall(r"\b(\d+)\b", line)
        period = int(nums[-1]) if nums else 1
        frames, in_sample = [], True
    if in_sample:
        yield period, frames


def main():
    top = int(sys.argv[1]) if len(sys.argv) > 1 else 25
    by_class = collections.Counter()
    leaf_by_class = collections.defaultdict(collections.Counter)
    leaf = collections.Counter()
    total = 0
    n = 0
    for period, frames in samples(sys.stdin):
        n += 1
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
    print(f"Top {top} symbols by self time (innermost frame):")
    print()
    print("| self % | symbol | class |")
    print("| --- | --- | --- |")
    for s, v in leaf.most_common(top):
        print(f"| {pct(v)} | `{short(s)}` | {classify(s) or '(by its callers)'} |")


if __name__ == "__main__":
    main()
