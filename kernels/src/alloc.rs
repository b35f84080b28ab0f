//! How the process allocator treats the large, short-lived buffers of a CPU forward pass.
//!
//! Every candle op allocates its output. glibc's malloc serves blocks above its (dynamic,
//! ≤ 32 MiB) mmap threshold with fresh `mmap`s and unmaps them on free, and trims the heap top
//! when it is free, so each forward pass faults in and zeroes hundreds of MiB of new pages
//! (measured: ~116 k page faults per SD1.5 UNet evaluation at 256², ~10 % of its time in the
//! kernel). [`keep_freed_buffers`] makes malloc serve every block from its heaps and keep up to
//! [`KEEP_FREE_BYTES`] of freed top memory, so buffers are reused (~10× fewer faults) and the
//! peak resident size stays the same. Elsewhere (other C libraries, other systems) it does
//! nothing.

/// Free memory at the heap top that glibc keeps instead of returning it to the system.
pub const KEEP_FREE_BYTES: usize = 1 << 30;

/// Environment variable that turns the tuning off (`DEFECT_STUDIO_MALLOC=default`).
pub const MALLOC_ENV: &str = "DEFECT_STUDIO_MALLOC";

/// Sets glibc's malloc to reuse freed large blocks (no `mmap` per block, a high trim
/// threshold); call once at start, before threads allocate. Returns whether it applied.
pub fn keep_freed_buffers() -> bool {
    if std::env::var(MALLOC_ENV).is_ok_and(|v| v.trim().eq_ignore_ascii_case("default")) {
        return false;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only changes allocator parameters; both values are in range.
        unsafe {
            libc::mallopt(libc::M_MMAP_MAX, 0) == 1
                && libc::mallopt(libc::M_TRIM_THRESHOLD, KEEP_FREE_BYTES as libc::c_int) == 1
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}
