//! walbjs native addon: walb kernel device control (ioctl) and fast paths, over a hand-written
//! Node-API binding (no crates). Every entry point catches panics and turns them into JS errors;
//! device I/O runs on the libuv thread pool, never on the JS thread.

mod aligned;
mod buf_pool;
mod capture;
mod checksum;
mod copy_pieces;
mod helper;
mod holes;
mod ioctl;
mod live_parts;
mod napi;
mod numbers;
mod nbd;
mod snappy;
mod log_scan;
mod mapped;
mod merge_sorted;
mod prefetch;
mod punch;
mod scratch;
mod store_batch;
mod sum_extents;
mod sysfs;
mod walk_link;
mod writeback;
mod wdiff_index;

use napi::*;
use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::Arc;

/// Run `f`, turning an `Err` or a panic into a thrown JS error.
unsafe fn guard(env: napi_env, f: impl FnOnce() -> JsResult<napi_value>) -> napi_value {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => {
            throw(env, &e);
            ptr::null_mut()
        }
        Err(p) => {
            throw(env, &JsError::new("ERR_WALB_NATIVE_PANIC", format!("native code panicked: {}", panic_text(&p))));
            ptr::null_mut()
        }
    }
}

fn panic_text(p: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}

/// `checksum(data: Uint8Array, salt: number): number` — the WalB checksum.
unsafe extern "C" fn js_checksum(env: napi_env, info: napi_callback_info) -> napi_value {
    guard(env, || {
        let [d, s] = args::<2>(env, info)?;
        let data = get_bytes(env, d, "data")?;
        let salt = get_u32(env, s, "salt")?;
        uint32(env, checksum::checksum(data, salt))
    })
}

/// `liveParts(addrs, blocks, whole, start, pieces) → Promise<number>`: on the thread pool, what
/// later IOs of a log leave visible of each IO (see live_parts.rs): `addrs` and `blocks`
/// (Float64Array of n, in log order) read, `whole` (Uint8Array of n), `start` (Uint32Array of
/// n + 1) and `pieces` (Float64Array of at least 4 n) filled; resolves to the numbers written to
/// `pieces`. None of the arrays may overlap or be touched until the promise settles. Bad numbers
/// reject with `ERR_INVALID_ARG_VALUE`, nothing written.
unsafe extern "C" fn js_live_parts(env: napi_env, info: napi_callback_info) -> napi_value {
    guard(env, || {
        let [a, b, w, s, p] = args::<5>(env, info)?;
        let (ap, an) = typed_array_raw(env, a, NAPI_FLOAT64_ARRAY, "Float64Array", "addrs")?;
        let (bp, bn) = typed_array_raw(env, b, NAPI_FLOAT64_ARRAY, "Float64Array", "blocks")?;
        let (wp, wn) = typed_array_raw(env, w, NAPI_UINT8_ARRAY, "Uint8Array", "whole")?;
        let (sp, sn) = typed_array_raw(env, s, NAPI_UINT32_ARRAY, "Uint32Array", "start")?;
        let (pp, pn) = typed_array_raw(env, p, NAPI_FLOAT64_ARRAY, "Float64Array", "pieces")?;
        disjoint(&[(ap as usize, an * 8, "addrs"), (bp as usize, bn * 8, "blocks"), (wp as usize, wn, "whole"), (sp as usize, sn * 4, "start"), (pp as usize, pn * 8, "pieces")])?;
        let refs = vec![reference(env, a)?, reference(env, b)?, reference(env, w)?, reference(env, s)?, reference(env, p)?];
        let (ap, bp, wp, sp, pp) = (ap as usize, bp as usize, wp as usize, sp as usize, pp as usize);
        spawn_job_holding(env, refs, Box::new(move || {
            let f64s = |p: usize, n: usize| if n == 0 { &mut [][..] } else { std::slice::from_raw_parts_mut(p as *mut f64, n) };
            let (addrs, blocks, pieces) = (f64s(ap, an), f64s(bp, bn), f64s(pp, pn));
            let whole = if wn == 0 { &mut [][..] } else { std::slice::from_raw_parts_mut(wp as *mut u8, wn) };
            let start = if sn == 0 { &mut [][..] } else { std::slice::from_raw_parts_mut(sp as *mut u32, sn) };
            let used = live_parts::live_parts(addrs, blocks, whole, start, pieces).map_err(|m| JsError::new("ERR_INVALID_ARG_VALUE", format!("liveParts: {m}")))?;
            Ok(Value::U32(used as u32))
        }))
    })
}

/// `snappyCompress(data: Uint8Array, onlyIfSmaller: boolean): Buffer | null` — a raw snappy block
/// of `data`; with `onlyIfSmaller`, null as soon as it would not be shorter than `data` (nothing
/// allocated for an incompressible record).
unsafe extern "C" fn js_snappy_compress(env: napi_env, info: napi_callback_info) -> napi_value {
    guard(env, || {
        let [d, o] = args::<2>(env, info)?;
        let data = get_bytes(env, d, "data")?;
        let only = get_bool(env, o, "onlyIfSmaller")?;
        snappy::compress_with_scratch(data, only, |block| match block {
            Some(b) => buffer_copy(env, b),
            None => null(env),
        })
    })
}

/// `alignOffset(data: Uint8Array, align: number): number` — how many bytes from the start of
/// `data` the first address that is a multiple of `align` (a power of two) lies: a buffer
/// allocated `align` bytes larger holds an aligned one for direct IO from there.
unsafe extern "C" fn js_align_offset(env: napi_env, info: napi_callback_info) -> napi_value {
    guard(env, || {
        let [d, a] = args::<2>(env, info)?;
        let data = get_bytes(env, d, "data")?;
        let align = get_u32(env, a, "align")? as usize;
        if !align.is_power_of_two() { return Err(JsError::new("ERR_INVALID_ARG_VALUE", format!("align: {align} is not a power of two"))); }
        let addr = data.as_ptr() as usize;
        uint32(env, ((align - addr % align) % align) as u32)
    })
}

/// `seekData(fd: number, offset: bigint): bigint | null` — the first offset at or after `offset`
/// where the file holds data rather than a hole (`lseek` with `SEEK_DATA`); null when only a hole
/// follows up to the end. Where the file system cannot tell (any other failure), `offset` itself:
/// a caller then reads, it never skips data. Moves the descriptor's file position.
unsafe extern "C" fn js_seek_data(env: napi_env, info: napi_callback_info) -> napi_value {
    guard(env, || {
        let [f, o] = args::<2>(env, info)?;
        let fd = get_u32(env, f, "fd")?;
        let offset = get_bigint(env, o, "offset")?;
        match holes::seek_data(fd as i32, offset) {
            Some(at) => bigint(env, at),
            None => null(env),
        }
    })
}

/// `panicForTest(): never` — panics on purpose, to show a panic becomes a JS error.
unsafe extern "C" fn js_panic_for_test(env: napi_env, _info: napi_callback_info) -> napi_value {
    guard(env, || panic!("deliberate panic for the test suite"))
}

/// `version(): string` — the addon's version.
unsafe extern "C" fn js_version(env: napi_env, _info: napi_callback_info) -> napi_value {
    guard(env, || string_value(env, env!("CARGO_PKG_VERSION")))
}

/// What a job on the thread pool produces.
enum Value {
    Ioctl(ioctl::Outcome),
    Device(Arc<capture::Device>),
    Text(Option<String>),
    Bool(bool),
    U32(u32),
    Unit,
}

/// Work to run on the thread pool, and its outcome.
struct Job {
    deferred: napi_deferred,
    work: napi_async_work,
    /// JS values whose memory the work uses: released when it ends.
    refs: Vec<napi_ref>,
    run: Option<Box<dyn FnOnce() -> JsResult<Value> + Send>>,
    result: Option<JsResult<Value>>,
}

unsafe extern "C" fn job_execute(_env: napi_env, data: *mut c_void) {
    let job = &mut *(data as *mut Job);
    let f = job.run.take();
    let r = catch_unwind(AssertUnwindSafe(|| match f { Some(f) => f(), None => Ok(Value::Unit) }));
    job.result = Some(match r {
        Ok(r) => r,
        Err(p) => Err(JsError::new("ERR_WALB_NATIVE_PANIC", format!("native code panicked: {}", panic_text(&p)))),
    });
}

unsafe extern "C" fn job_complete(env: napi_env, _status: napi_status, data: *mut c_void) {
    let mut job = Box::from_raw(data as *mut Job);
    let settled = catch_unwind(AssertUnwindSafe(|| -> JsResult<napi_value> {
        match job.result.take() {
            Some(Ok(Value::Ioctl(o))) => {
                let obj = object(env)?;
                set(env, obj, "arg", buffer_copy(env, &o.arg)?)?;
                set(env, obj, "k2u", buffer_copy(env, &o.k2u)?)?;
                set(env, obj, "ret", uint32(env, o.ret as u32)?)?;
                Ok(obj)
            }
            Some(Ok(Value::Device(d))) => external(env, d),
            Some(Ok(Value::Unit)) => Ok(undefined(env)),
            Some(Ok(Value::Bool(b))) => boolean(env, b),
            Some(Ok(Value::U32(n))) => uint32(env, n),
            Some(Ok(Value::Text(Some(t)))) => string_value(env, &t),
            Some(Ok(Value::Text(None))) => { let mut v = ptr::null_mut(); napi::napi_get_null(env, &mut v); Ok(v) }
            Some(Err(e)) => Err(e),
            None => Err(JsError::new("ERR_WALB_NATIVE", "the job did not run")),
        }
    }));
    match settled {
        Ok(Ok(v)) => { napi_resolve_deferred(env, job.deferred, v); }
        Ok(Err(e)) => { napi_reject_deferred(env, job.deferred, error_value(env, &e)); }
        Err(p) => {
            let e = JsError::new("ERR_WALB_NATIVE_PANIC", format!("native code panicked: {}", panic_text(&p)));
            napi_reject_deferred(env, job.deferred, error_value(env, &e));
        }
    }
    for r in job.refs.drain(..) { napi_delete_reference(env, r); }
    napi_delete_async_work(env, job.work);
}

/// Run `f` on the thread pool; returns the promise of its value.
unsafe fn spawn_job(env: napi_env, f: Box<dyn FnOnce() -> JsResult<Value> + Send>) -> JsResult<napi_value> {
    spawn_job_holding(env, Vec::new(), f)
}

/// [`spawn_job`], keeping the JS values `refs` point at alive until `f` has finished.
unsafe fn spawn_job_holding(env: napi_env, refs: Vec<napi_ref>, f: Box<dyn FnOnce() -> JsResult<Value> + Send>) -> JsResult<napi_value> {
    let release = |refs: Vec<napi_ref>| for r in refs { napi_delete_reference(env, r); };
    let mut promise = ptr::null_mut();
    let mut deferred = ptr::null_mut();
    if napi_create_promise(env, &mut deferred, &mut promise) != NAPI_OK {
        release(refs);
        return Err(JsError::new("ERR_NAPI", "napi_create_promise failed"));
    }
    let job = Box::into_raw(Box::new(Job { deferred, work: ptr::null_mut(), refs, run: Some(f), result: None }));
    let name = match string_value(env, "walb-native") {
        Ok(n) => n,
        Err(e) => { release(Box::from_raw(job).refs); return Err(e); }
    };
    if napi_create_async_work(env, ptr::null_mut(), name, Some(job_execute), Some(job_complete), job as *mut c_void, &mut (*job).work) != NAPI_OK
        || napi_queue_async_work(env, (*job).work) != NAPI_OK
    {
        release(Box::from_raw(job).refs);
        return Err(JsError::new("ERR_NAPI", "could not queue the work"));
    }
    Ok(promise)
}

/// A whole number in `[0, max]` from entry `i` of the Float64Array `list`.
fn whole(x: f64, max: f64, list: &str, what: &str, i: usize) -> JsResult<u64> {
    if x >= 0.0 && x <= max && x.fract() == 0.0 { Ok(x as u64) } else { Err(JsError::new("ERR_INVALID_ARG_VALUE", format!("{list}[{i}]: {what} {x} is not a whole number in [0, {max}]"))) }
}

/// Fail unless the memory spans (address, bytes, name) a job writes are pairwise disjoint.
fn disjoint(spans: &[(usize, usize, &str)]) -> JsResult<()> {
    for (i, &(a, al, an)) in spans.iter().enumerate() {
        for &(b, bl, bn) in &spans[i + 1..] {
            if al > 0 && bl > 0 && a < b + bl && b < a + al { return Err(JsError::new("ERR_INVALID_ARG_VALUE", format!("{an} and {bn} overlap"))); }
        }
    }
    Ok(())
}

/// `n` bytes at address `p`, checked by the caller (any `p` when `n` is 0).
unsafe fn bytes_mut<'a>(p: usize, n: usize) -> &'a mut [u8] {
    if n == 0 { &mut [] } else { std::slice::from_raw_parts_mut(p as *mut u8, n) }
}

/// `n` u32 words at address `p`, checked by the caller (any `p` when `n` is 0).
unsafe fn words_mut<'a>(p: usize, n: usize) -> &'a mut [u32] {
    if n == 0 { &mut [] } else { std::slice::from_raw_parts_mut(p as *mut u32, n) }
}

/// The JS error of a failed read of a job.
fn read_error(e: store_batch::StoreError) -> JsError {
    match e {
        store_batch::StoreError::Io { fd, pos, errno } => {
            let mut j = JsError::new("ERR_WALB_READ", format!("read of descriptor {fd} at byte {pos} failed (errno {errno})"));
            j.errno = Some(errno);
            j
        }
        store_batch::StoreError::Short { fd, pos, got, len } => JsError::new("ERR_WALB_SHORT_READ", format!("descriptor {fd}: the file ended {got} bytes into a read of {len} at byte {pos}")),
    }
}

/// `storeBatch(reads, src, pieces, codec, dst, out) → Promise<void>`: on the thread pool, read
/// `reads` (Float64Array of (fd, pos, len, at)) into `src`, then store each record of `pieces`
/// (Uint32Array of (at, len, raw sum known, raw sum) in `src`) with `codec` (0 none, 2 snappy)
/// into `dst`, describing each in `out` (Uint32Array, 4 words a record; see store_batch.rs).
/// Every range is checked here, on the JS thread; `src`, `dst` and `out` must not overlap and
/// must not be touched until the promise settles.
unsafe extern "C" fn js_store_batch(env: napi_env, info: napi_callback_info) -> napi_value {
    guard(env, || {
        let [r, s, p, c, d, o] = args::<6>(env, info)?;
        let (rp, rn) = typed_array_raw(env, r, NAPI_FLOAT64_ARRAY, "Float64Array", "reads")?;
        let (sp, sn) = typed_array_raw(env, s, NAPI_UINT8_ARRAY, "Uint8Array", "src")?;
        let (pp, pn) = typed_array_raw(env, p, NAPI_UINT32_ARRAY, "Uint32Array", "pieces")?;
        let codec = get_u32(env, c, "codec")?;
        let (dp, dn) = typed_array_raw(env, d, NAPI_UINT8_ARRAY, "Uint8Array", "dst")?;
        let (op, on) = typed_array_raw(env, o, NAPI_UINT32_ARRAY, "Uint32Array", "out")?;
        let bad = |m: String| Err(JsError::new("ERR_INVALID_ARG_VALUE", m));
        if codec != store_batch::CODEC_NONE && codec != store_batch::CODEC_SNAPPY { return bad(format!("codec: {codec} is neither 0 (none) nor 2 (snappy)")); }
        if rn % 4 != 0 { return bad(format!("reads: {rn} numbers, not a multiple of 4 (fd, pos, len, at)")); }
        if pn % 4 != 0 { return bad(format!("pieces: {pn} numbers, not a multiple of 4 (at, len, sum known, sum)")); }
        if on != pn / 4 * store_batch::OUT_WORDS { return bad(format!("out: {on} words for {} records, which need {}", pn / 4, pn / 4 * store_batch::OUT_WORDS)); }
        let rv = if rn == 0 { &[][..] } else { std::slice::from_raw_parts(rp as *const f64, rn) };
        let mut reads = Vec::with_capacity(rn / 4);
        for (i, q) in rv.chunks_exact(4).enumerate() {
            let fd = whole(q[0], i32::MAX as f64, "reads", "fd", i)? as i32;
            let pos = whole(q[1], 9_007_199_254_740_991.0, "reads", "pos", i)?;
            let len = whole(q[2], sn as f64, "reads", "len", i)? as usize;
            let at = whole(q[3], sn as f64, "reads", "at", i)? as usize;
            if at + len > sn { return bad(format!("reads[{i}]: {len} bytes at {at} pass the end of src ({sn} bytes)")); }
            reads.push(store_batch::Read { fd, pos, len, at });
        }
        let pv = if pn == 0 { &[][..] } else { std::slice::from_raw_parts(pp as *const u32, pn) };
        let mut pieces = Vec::with_capacity(pn / 4);
        let mut total = 0usize;
        for (i, q) in pv.chunks_exact(4).enumerate() {
            let (at, len) = (q[0] as usize, q[1] as usize);
            if at + len > sn { return bad(format!("pieces[{i}]: {len} bytes at {at} pass the end of src ({sn} bytes)")); }
            total += len;
            pieces.push(store_batch::Piece { at, len, raw_sum: if q[2] != 0 { Some(q[3]) } else { None } });
        }
        if codec == store_batch::CODEC_SNAPPY && total > dn { return bad(format!("dst: {dn} bytes, the records may need {total}")); }
        // The job writes src, dst and out: they must be distinct memory.
        disjoint(&[(sp as usize, sn, "src"), (dp as usize, dn, "dst"), (op as usize, on * 4, "out")])?;
        let refs = vec![reference(env, s)?, reference(env, d)?, reference(env, o)?];
        let (sp, dp, op) = (sp as usize, dp as usize, op as usize);
        spawn_job_holding(env, refs, Box::new(move || {
            let (src, dst, out) = (bytes_mut(sp, sn), bytes_mut(dp, dn), words_mut(op, on));
            store_batch::store_batch(&reads, src, &pieces, codec, dst, out).map(|_| Value::Unit).map_err(read_error)
        }))
    })
}

/// `sumExtents(fd, ext, sums) → Promise<void>`: on the thread pool, put the salt-0 WalB checksum
/// of each extent of the open file `fd` (`ext`: Float64Array of (offset, length) pairs) in
/// `sums`, on two threads, through mappings of the file or by reads (see sum_extents.rs). `sums` must
/// not be touched until the promise settles.
unsafe extern "C" fn js_sum_extents(env: napi_env, info: napi_callback_info) -> napi_value {
    guard(env, || {
        let [f, e, s] = args::<3>(env, info)?;
        let fd = get_u32(env, f, "fd")?;
        let (ep, en) = typed_array_raw(env, e, NAPI_FLOAT64_ARRAY, "Float64Array", "ext")?;
        let (sp, sn) = typed_array_raw(env, s, NAPI_UINT32_ARRAY, "Uint32Array", "sums")?;
        let bad = |m: String| Err(JsError::new("ERR_INVALID_ARG_VALUE", m));
        if fd > i32::MAX as u32 { return bad(format!("fd: {fd} is not a descriptor")); }
        if en % 2 != 0 { return bad(format!("ext: {en} numbers, not a multiple of 2 (offset, length)")); }
        if sn != en / 2 { return bad(format!("sums: {sn} words for {} extents", en / 2)); }
        let ev = if en == 0 { &[][..] } else { std::slice::from_raw_parts(ep as *const f64, en) };
        let mut ext = Vec::with_capacity(en / 2);
        for (i, q) in ev.chunks_exact(2).enumerate() {
            let off = whole(q[0], 9_007_199_254_740_991.0, "ext", "offset", i)? as usize;
            let len = whole(q[1], 9_007_199_254_740_991.0, "ext", "length", i)? as usize;
            ext.push(sum_extents::Extent { off, len });
        }
        // Only `sums` is written by the job (the extents were copied above).
        let refs = vec![reference(env, s)?];
        let sp = sp as usize;
        spawn_job_holding(env, refs, Box::new(move || {
            let sums = words_mut(sp, sn);
            sum_extents::sum_file_extents(fd as i32, &ext, sums).map(|_| Value::Unit).map_err(read_error)
        }))
    })
}

/// A descriptor and a Float64Array of (offset, length) byte pairs, each a whole number below 2^53,
/// checked here on the calling thread before any job starts.
unsafe fn fd_and_ranges(env: napi_env, f: napi_value, r: napi_value) -> JsResult<(u32, Vec<(u64, u64)>)> {
    let fd = get_u32(env, f, "fd")?;
    let (rp, rn) = typed_array_raw(env, r, NAPI_FLOAT64_ARRAY, "Float64Array", "ranges")?;
    let bad = |m: String| Err(JsError::new("ERR_INVALID_ARG_VALUE", m));
    if fd > i32::MAX as u32 { return bad(format!("fd: {fd} is not a descriptor")); }
    if rn % 2 != 0 { return bad(format!("ranges: {rn} numbers, not a multiple of 2 (offset, length)")); }
    let rv = if rn == 0 { &[][..] } else { std::slice::from_raw_parts(rp as *const f64, rn) };
    let mut ranges = Vec::with_capacity(rn / 2);
    for (i, q) in rv.chunks_exact(2).enumerate() {
        ranges.push((whole(q[0], 9_007_199_254_740_991.0, "ranges", "offset", i)?, whole(q[1], 9_007_199_254_740_991.0, "ranges", "length", i)?));
    }
    Ok((fd, ranges))
}

/// `prefetchRanges(fd, ranges) → Promise<void>`: on the thread pool, ask the kernel to read the
/// (offset, length) pairs of `ranges` (a Float64Array) of the open file `fd` into the page cache
/// (`posix_fadvise` with `POSIX_FADV_WILLNEED`), without waiting for the reads; a batch whose
/// sampled pages are all cached already is left alone (see prefetch.rs).
unsafe extern "C" fn js_prefetch_ranges(env: napi_env, info: napi_callback_info) -> napi_value {
    guard(env, || {
        let [f, r] = args::<2>(env, info)?;
        let (fd, ranges) = fd_and_ranges(env, f, r)?;
        spawn_job(env, Box::new(move || match prefetch::prefetch(fd as i32, &ranges) {
            Ok(_) => Ok(Value::Unit),
            Err((e, off, len)) => {
                let mut j = JsError::new("ERR_WALB_PREFETCH", format!("posix_fadvise of descriptor {fd} at byte {off} (+{len}) failed (errno {e})"));
                j.errno = Some(e);
                Err(j)
            }
        }))
    })
}

/// `punchHoles(fd, ranges, isBlock) → Promise<void>`: on the thread pool, give back each
/// (offset, length) pair of `ranges` (a Float64Array) of the open `fd`, in order: a hole punched
/// in a file, its size kept, or with `isBlock` a discard of the block device (see punch.rs). The
/// first range refused rejects with `ERR_WALB_PUNCH`, its `errno`, and its `index`, `offset` and
/// `length` (those before it are done).
unsafe extern "C" fn js_punch_holes(env: napi_env, info: napi_callback_info) -> napi_value {
    guard(env, || {
        let [f, r, b] = args::<3>(env, info)?;
        let (fd, ranges) = fd_and_ranges(env, f, r)?;
        let block = get_bool(env, b, "isBlock")?;
        spawn_job(env, Box::new(move || punch::punch_holes(fd as i32, &ranges, block).map(|_| Value::Unit).map_err(|e| {
            let how = if block { "discard (BLKDISCARD)" } else { "hole punch (fallocate)" };
            let why = std::io::Error::from_raw_os_error(e.errno);
            let mut j = JsError::new("ERR_WALB_PUNCH", format!("{how} of descriptor {fd}, range {} ({} bytes at byte {}), failed: {why}", e.index, e.length, e.offset));
            j.errno = Some(e.errno);
            j.info = vec![("index", e.index as f64), ("offset", e.offset as f64), ("length", e.length as f64)];
            j
        })))
    })
}

/// `startWriteback(fd) → Promise<void>`: on the thread pool, start writing back the dirty pages
/// of the open `fd` without waiting for them (see writeback.rs). A refusal rejects with
/// `ERR_WALB_WRITEBACK` and its `errno`.
unsafe extern "C" fn js_start_writeback(env: napi_env, info: napi_callback_info) -> napi_value {
    guard(env, || {
        let [f] = args::<1>(env, info)?;
        let fd = get_u32(env, f, "fd")?;
        spawn_job(env, Box::new(move || writeback::start_writeback(fd as i32).map(|_| Value::Unit).map_err(|errno| {
            let mut j = JsError::new("ERR_WALB_WRITEBACK", format!("starting the writeback of descriptor {fd} failed: {}", std::io::Error::from_raw_os_error(errno)));
            j.errno = Some(errno);
            j
        })))
    })
}

/// `copyPieces(srcs, dst, pieces, state) → Promise<void>`: on the thread pool, check and write
/// the pieces of wdiffs (`pieces`: Float64Array of (file, source offset or -1 for zeros, length,
/// target offset or -1 to only check, salt-0 checksum or -1) quintuples, `file` an index into
/// `srcs`, a Uint32Array of open descriptors) to the open target `dst` (see copy_pieces.rs).
/// `state` (Float64Array of 2) gets the pieces finished and, after an `ERR_WALB_SUM` rejection,
/// the sum the failing piece (the next one) has.
unsafe extern "C" fn js_copy_pieces(env: napi_env, info: napi_callback_info) -> napi_value {
    guard(env, || {
        let [s, d, p, st] = args::<4>(env, info)?;
        let (sp, sn) = typed_array_raw(env, s, NAPI_UINT32_ARRAY, "Uint32Array", "srcs")?;
        let dst = get_u32(env, d, "dst")?;
        let (pp, pn) = typed_array_raw(env, p, NAPI_FLOAT64_ARRAY, "Float64Array", "pieces")?;
        let (stp, stn) = typed_array_raw(env, st, NAPI_FLOAT64_ARRAY, "Float64Array", "state")?;
        let bad = |m: String| Err(JsError::new("ERR_INVALID_ARG_VALUE", m));
        let srcs: Vec<u32> = if sn == 0 { Vec::new() } else { std::slice::from_raw_parts(sp as *const u32, sn).to_vec() };
        if dst > i32::MAX as u32 || srcs.iter().any(|&f| f > i32::MAX as u32) { return bad("srcs and dst must be descriptors".to_string()); }
        if pn % 5 != 0 { return bad(format!("pieces: {pn} numbers, not a multiple of 5 (file, source, length, target, checksum)")); }
        if stn != 2 { return bad(format!("state: {stn} numbers, not 2")); }
        const MAX: f64 = 9_007_199_254_740_991.0;
        let opt = |x: f64, max: f64, what: &str, i: usize| -> JsResult<Option<u64>> { if x == -1.0 { Ok(None) } else { whole(x, max, "pieces", what, i).map(Some) } };
        let pv = if pn == 0 { &[][..] } else { std::slice::from_raw_parts(pp as *const f64, pn) };
        let mut pieces = Vec::with_capacity(pn / 5);
        for (i, q) in pv.chunks_exact(5).enumerate() {
            let file = whole(q[0], (srcs.len().max(1) - 1) as f64, "pieces", "file", i)? as usize;
            let piece = copy_pieces::Piece { file, src: opt(q[1], MAX, "source", i)?, len: whole(q[2], MAX, "pieces", "length", i)?, dst: opt(q[3], MAX, "target", i)?, sum: opt(q[4], u32::MAX as f64, "checksum", i)?.map(|x| x as u32) };
            if piece.src.is_none() && (piece.dst.is_none() || piece.sum.is_some()) { return bad(format!("pieces[{i}]: zeros need a target and no checksum")); }
            if piece.src.is_some() && file >= srcs.len() { return bad(format!("pieces[{i}]: file {file}, but srcs has {}", srcs.len())); }
            pieces.push(piece);
        }
        let refs = vec![reference(env, st)?];
        let stp = stp as usize;
        spawn_job_holding(env, refs, Box::new(move || {
            let state = std::slice::from_raw_parts_mut(stp as *mut f64, 2);
            let files: Vec<log_scan::FileAt> = srcs.iter().map(|&fd| log_scan::FileAt { fd: fd as i32, pos: 0 }).collect();
            let mut done = 0;
            let r = copy_pieces::copy_pieces(&files, &copy_pieces::FdTarget(dst as i32), &pieces, &mut done);
            state[0] = done as f64;
            match r {
                Ok(()) => Ok(Value::Unit),
                Err(copy_pieces::CopyError::Read(e)) => Err(read_error(e)),
                Err(copy_pieces::CopyError::Write { pos, errno }) => {
                    let mut j = JsError::new("ERR_WALB_WRITE", format!("write of descriptor {dst} at byte {pos} failed (errno {errno})"));
                    j.errno = Some(errno);
                    Err(j)
                }
                Err(copy_pieces::CopyError::Sum { index, got }) => {
                    state[1] = got as f64;
                    Err(JsError::new("ERR_WALB_SUM", format!("piece {index}: its bytes sum to {got:#010x}, not to its checksum")))
                }
            }
        }))
    })
}

/// `scanLogChunk(state, buf, hdr, salt, codec, dst, out) → Promise<void>`: on the thread pool,
/// read `buf.length` bytes of a wlog at a position and walk its logpacks, summing, classifying and
/// storing each IO (see log_scan.rs). `state` (Float64Array of 8) holds in: descriptor, position,
/// record of `hdr`'s pack to start at, and with codec 254 (headers only) the bytes to walk (0: as
/// many as `buf` holds; `buf` is not touched); out, from index 2: that record, events, stop reason,
/// bytes consumed, bytes needed, bytes read. `hdr` is one physical block. None of the buffers may
/// overlap or be touched until the promise settles.
unsafe extern "C" fn js_scan_log_chunk(env: napi_env, info: napi_callback_info) -> napi_value {
    guard(env, || {
        let [st, b, h, sa, c, d, o, po, af] = args::<9>(env, info)?;
        let (stp, stn) = typed_array_raw(env, st, NAPI_FLOAT64_ARRAY, "Float64Array", "state")?;
        let (bp, bn) = typed_array_raw(env, b, NAPI_UINT8_ARRAY, "Uint8Array", "buf")?;
        let (hp, hn) = typed_array_raw(env, h, NAPI_UINT8_ARRAY, "Uint8Array", "hdr")?;
        let salt = get_u32(env, sa, "salt")?;
        let codec = get_u32(env, c, "codec")?;
        let (dp, dn) = typed_array_raw(env, d, NAPI_UINT8_ARRAY, "Uint8Array", "dst")?;
        let (op, on) = typed_array_raw(env, o, NAPI_UINT32_ARRAY, "Uint32Array", "out")?;
        let bad = |m: String| Err(JsError::new("ERR_INVALID_ARG_VALUE", m));
        if stn != 8 { return bad(format!("state: {stn} numbers, not 8")); }
        if codec != store_batch::CODEC_NONE && codec != store_batch::CODEC_SNAPPY && codec != log_scan::SUMS_ONLY && codec != log_scan::HEADERS_ONLY { return bad(format!("codec: {codec} is not 0 (none), 2 (snappy), 254 (headers only) or 255 (sums only)")); }
        if !(512..=65536).contains(&hn) || !hn.is_power_of_two() { return bad(format!("hdr: {hn} bytes is not a physical block size")); }
        if bn > u32::MAX as usize || dn > u32::MAX as usize { return bad("buf and dst must be under 4 GiB".to_string()); }
        let sv = std::slice::from_raw_parts(stp as *const f64, 8);
        let num = |x: f64, max: f64, what: &str| -> JsResult<u64> {
            if x >= 0.0 && x <= max && x.fract() == 0.0 { Ok(x as u64) } else { Err(JsError::new("ERR_INVALID_ARG_VALUE", format!("state: {what} {x} is not a whole number in [0, {max}]"))) }
        };
        let fd = num(sv[0], i32::MAX as f64, "fd")? as i32;
        let pos = num(sv[1], 9_007_199_254_740_991.0, "pos")?;
        let rec = num(sv[2], u16::MAX as f64, "record")? as u32;
        // Reading headers alone, the stretch need not fit in buf: state[3] says how far to walk.
        // Offsets in the events are 32-bit: a walk goes 4 GiB at most.
        let limit = if codec == log_scan::HEADERS_ONLY && sv[3] != 0.0 { num(sv[3], u32::MAX as f64, "limit")? as usize } else { bn };
        disjoint(&[(stp as usize, 64, "state"), (bp as usize, bn, "buf"), (hp as usize, hn, "hdr"), (dp as usize, dn, "dst"), (op as usize, on * 4, "out")])?;
        // The links of a walk queued behind another (see walk_link.rs): not for headers alone.
        let link = |v: napi_value, what: &str| -> JsResult<Option<Arc<walk_link::WalkLink>>> {
            if is_undefined(env, v) { return Ok(None); }
            if codec == log_scan::HEADERS_ONLY { return Err(JsError::new("ERR_INVALID_ARG_VALUE", format!("{what}: a walk of headers alone takes no link"))); }
            Ok(Some(get_external::<Arc<walk_link::WalkLink>>(env, v, what)?.clone()))
        };
        let (post, after) = (link(po, "post")?, link(af, "after")?);
        if let (Some(p), Some(a)) = (&post, &after) {
            if Arc::ptr_eq(p, a) { return bad("post and after are the same link".to_string()); }
        }
        if let Some(a) = &after {
            if let Err(why) = a.follow(hp as usize) { return bad(format!("after: {why}")); }
        }
        if post.as_ref().is_some_and(|p| !p.take(hp as usize)) { return bad("post: another walk posts to this link".to_string()); }
        // From here on the link is posted to whatever happens: None when this walk does not run
        // (a failure below, the job dropped unrun), so a walk behind it never waits for ever.
        let poster = walk_link::Poster(post);
        let refs = vec![reference(env, st)?, reference(env, b)?, reference(env, h)?, reference(env, d)?, reference(env, o)?];
        let (stp, bp, hp, dp, op) = (stp as usize, bp as usize, hp as usize, dp as usize, op as usize);
        spawn_job_holding(env, refs, Box::new(move || {
            // Before any view of the buffers: the walk before this one writes `hdr` until it posts.
            let from = after.map(|l| l.wait());
            let (buf, hdr, dst, out) = (bytes_mut(bp, bn), bytes_mut(hp, hn), bytes_mut(dp, dn), words_mut(op, on));
            let state = std::slice::from_raw_parts_mut(stp as *mut f64, 8);
            let (pos, rec) = match from {
                None => (pos, rec),
                Some(Some(from)) => from,
                Some(None) => {
                    state[2..8].copy_from_slice(&[rec as f64, 0.0, log_scan::NOT_STARTED as f64, 0.0, 0.0, 0.0]);
                    return Ok(Value::Unit);
                }
            };
            state[1] = pos as f64;
            let mut next_rec = rec;
            let w = if codec == log_scan::HEADERS_ONLY {
                log_scan::scan_headers(&log_scan::FileAt { fd, pos }, limit, hdr, &mut next_rec, out)
            } else {
                log_scan::scan_chunk(fd, pos, buf, hdr, &mut next_rec, salt, codec, dst, out)
            }.map_err(read_error)?;
            state[2..8].copy_from_slice(&[w.next_rec as f64, w.events as f64, w.stop as u32 as f64, w.consumed as f64, w.need as f64, w.read as f64]);
            poster.post(if w.goes_on(bn) { Some((pos + w.consumed as u64, w.next_rec)) } else { None });
            Ok(Value::Unit)
        }))
    })
}

/// `scanLink()`: a link between two walks of a log (see walk_link.rs), posted by the first
/// (`post`), waited on by the one queued behind it (`after`). Freed when collected.
unsafe extern "C" fn js_scan_link(env: napi_env, _info: napi_callback_info) -> napi_value {
    guard(env, || external(env, Arc::new(walk_link::WalkLink::default())))
}

type IndexHandle = std::sync::Mutex<wdiff_index::IndexBuilder>;

/// `indexNew()`: an empty index of an indexed wdiff (see wdiff_index.rs), to give IOs in write order.
unsafe extern "C" fn js_index_new(env: napi_env, _info: napi_callback_info) -> napi_value {
    guard(env, || external(env, IndexHandle::default()))
}

/// `indexAdd(index, ios, count): number` — add the first `count` IOs of `ios` (a Float64Array of 8
/// numbers an IO: address, LB, kind 0/1/2 for normal/all zeros/discard, codec, image offset,
/// stored size, image LB, checksum), each newer than the ones before; returns the visible pieces
/// now. Every IO is checked before any is added: on an error nothing changes.
unsafe extern "C" fn js_index_add(env: napi_env, info: napi_callback_info) -> napi_value {
    guard(env, || {
        let [h, a, c] = args::<3>(env, info)?;
        let ix: &IndexHandle = get_external(env, h, "index")?;
        let (p, n) = typed_array_raw(env, a, NAPI_FLOAT64_ARRAY, "Float64Array", "ios")?;
        let count = get_u32(env, c, "count")? as usize;
        let k = wdiff_index::IO_NUMBERS;
        if count > n / k { return Err(JsError::new("ERR_INVALID_ARG_VALUE", format!("count: {count} IOs, ios holds {}", n / k))); }
        let nums = if count == 0 { &[][..] } else { std::slice::from_raw_parts(p as *const f64, count * k) };
        let ios = nums.chunks_exact(k).enumerate()
            .map(|(i, x)| wdiff_index::IndexIo::parse(x).map_err(|m| JsError::new("ERR_INVALID_ARG_VALUE", format!("ios: IO {i}: {m}"))))
            .collect::<JsResult<Vec<_>>>()?;
        let mut b = ix.lock().unwrap_or_else(|e| e.into_inner());
        if b.encoding() { return Err(JsError::new("ERR_INVALID_STATE", "index: its records are being taken; no IO can be added")); }
        for io in &ios { b.add(io); }
        uint32(env, b.len().min(u32::MAX as usize) as u32)
    })
}

/// `indexEncode(index, cap, max): Buffer` — the next index records, at most `max` (1 to 2^20) of
/// them (48 bytes each, in address order; empty once all were taken), every visible piece split
/// into power-of-two aligned extents of at most `cap` LB (0 or a power of two up to 2^31; 0: no
/// cap). No IO can be added once records were taken.
unsafe extern "C" fn js_index_encode(env: napi_env, info: napi_callback_info) -> napi_value {
    guard(env, || {
        let [h, c, m] = args::<3>(env, info)?;
        let ix: &IndexHandle = get_external(env, h, "index")?;
        let cap = get_u32(env, c, "cap")?;
        let max = get_u32(env, m, "max")?;
        if cap != 0 && (!cap.is_power_of_two() || cap > 1 << 31) { return Err(JsError::new("ERR_INVALID_ARG_VALUE", format!("cap: {cap} is neither 0 nor a power of two up to 2^31"))); }
        if !(1..=1 << 20).contains(&max) { return Err(JsError::new("ERR_INVALID_ARG_VALUE", format!("max: {max} records is not in [1, 2^20]"))); }
        let recs = ix.lock().unwrap_or_else(|e| e.into_inner()).encode_next(cap as u64, max as usize);
        buffer_copy(env, &recs)
    })
}

type MergeHandle = Arc<std::sync::Mutex<merge_sorted::Merge>>;

/// The JS error of a failed merge, with `input` (its index) and `offset` (a byte of it) where
/// they apply.
fn merge_error(e: merge_sorted::MergeError) -> JsError {
    use merge_sorted::MergeError as M;
    let with = |mut j: JsError, input: usize, off: u64| { j.info = vec![("input", input as f64), ("offset", off as f64)]; j };
    match e {
        M::Read { input, e: store_batch::StoreError::Io { pos, errno, .. } } => {
            let mut j = JsError::new("ERR_WALB_READ", format!("input {input}: read at byte {pos} failed (errno {errno})"));
            j.errno = Some(errno);
            with(j, input, pos)
        }
        M::Read { input, e: store_batch::StoreError::Short { pos, got, len, .. } } => with(JsError::new("ERR_WALB_SHORT_READ", format!("input {input}: the file ended {got} bytes into a read of {len} at byte {pos}")), input, pos),
        M::Sum { input, off, want, got } => {
            let mut j = with(JsError::new("ERR_WALB_SUM", format!("input {input}: the image at byte {off} sums to {got:#010x}, not {want:#010x}")), input, off);
            j.info.push(("expected", want as f64));
            j.info.push(("actual", got as f64));
            j
        }
        M::Snappy { input, off, stored, size, why } => {
            let mut j = with(JsError::new("ERR_WALB_SNAPPY", why), input, off);
            j.info.push(("stored", stored as f64));
            j.info.push(("size", size as f64));
            j
        }
        M::Order { input, addr } => with(JsError::new("ERR_INVALID_ARG_VALUE", format!("input {input}: a record at LB {addr} overlaps or precedes the one before")), input, 0),
        M::Write { errno, pos } => {
            let mut j = JsError::new("ERR_WALB_WRITE", format!("write at byte {pos} of the output failed (errno {errno})"));
            j.errno = Some(errno);
            j.info = vec![("offset", pos as f64)];
            j
        }
        M::State(m) => JsError::new("ERR_INVALID_STATE", format!("merge: {m}")),
    }
}

/// The merge behind `h`, when no job holds it.
unsafe fn merge_now<'a>(env: napi_env, h: napi_value) -> JsResult<(MergeHandle, std::sync::MutexGuard<'a, merge_sorted::Merge>)> {
    let m: &'a MergeHandle = get_external(env, h, "merge")?;
    let g = m.try_lock().map_err(|_| JsError::new("ERR_INVALID_STATE", "merge: a job is running on it"))?;
    Ok((m.clone(), g))
}

/// `mergeOpen(fds, out, codec, maxIoBlocks, prefix) → handle`: a merge of the open wdiffs `fds`
/// (Uint32Array, oldest first) into the output (`out`: Float64Array of its descriptor and its
/// O_DIRECT descriptor or -1) with `codec` (0 none, 2 snappy), output IOs split at `maxIoBlocks`
/// (0: not split), the output starting with `prefix` (see merge_sorted.rs). Starts its writer
/// thread.
unsafe extern "C" fn js_merge_open(env: napi_env, info: napi_callback_info) -> napi_value {
    guard(env, || {
        let [f, o, c, x, p] = args::<5>(env, info)?;
        let (fp, fnum) = typed_array_raw(env, f, NAPI_UINT32_ARRAY, "Uint32Array", "fds")?;
        let (op, on) = typed_array_raw(env, o, NAPI_FLOAT64_ARRAY, "Float64Array", "out")?;
        let codec = get_u32(env, c, "codec")?;
        let max_io = get_u32(env, x, "maxIoBlocks")?;
        let prefix = get_bytes(env, p, "prefix")?;
        let bad = |m: String| Err(JsError::new("ERR_INVALID_ARG_VALUE", m));
        if codec != 0 && codec != 2 { return bad(format!("codec: {codec} is neither 0 (none) nor 2 (snappy)")); }
        if fnum == 0 { return bad("fds: no input".into()); }
        if on != 2 { return bad(format!("out: {on} numbers, not 2 (fd, direct fd or -1)")); }
        let fds: Vec<i32> = std::slice::from_raw_parts(fp as *const u32, fnum).iter().map(|&x| x as i32).collect();
        let ov = std::slice::from_raw_parts(op as *const f64, 2);
        let fd = whole(ov[0], i32::MAX as f64, "out", "fd", 0)? as i32;
        let direct = if ov[1] == -1.0 { -1 } else { whole(ov[1], i32::MAX as f64, "out", "direct fd", 1)? as i32 };
        let m = merge_sorted::Merge::new(&fds, fd, direct, codec as u8, max_io, prefix);
        external(env, MergeHandle::new(std::sync::Mutex::new(m)))
    })
}

/// `mergeFeed(handle, input, recs, ended)`: queue records of input `input` (`recs`: Float64Array
/// of 9 numbers a record, see `merge_sorted::InRec`), in address order; `ended`: its last ones.
/// Every record is checked before any is queued.
unsafe extern "C" fn js_merge_feed(env: napi_env, info: napi_callback_info) -> napi_value {
    guard(env, || {
        let [h, i, r, e] = args::<4>(env, info)?;
        let input = get_u32(env, i, "input")? as usize;
        let (rp, rn) = typed_array_raw(env, r, NAPI_FLOAT64_ARRAY, "Float64Array", "recs")?;
        let ended = get_bool(env, e, "ended")?;
        let k = merge_sorted::REC_NUMBERS;
        if rn % k != 0 { return Err(JsError::new("ERR_INVALID_ARG_VALUE", format!("recs: {rn} numbers, not a multiple of {k}"))); }
        let nums = if rn == 0 { &[][..] } else { std::slice::from_raw_parts(rp as *const f64, rn) };
        let recs = nums.chunks_exact(k).enumerate()
            .map(|(j, x)| merge_sorted::InRec::parse(x).map_err(|m| JsError::new("ERR_INVALID_ARG_VALUE", format!("recs: record {j}: {m}"))))
            .collect::<JsResult<Vec<_>>>()?;
        let (_m, mut g) = merge_now(env, h)?;
        g.feed(input, &recs, ended).map_err(merge_error)?;
        Ok(undefined(env))
    })
}

/// `mergeRun(handle, budget) → Promise<number>`: on the thread pool, merge until an input needs
/// records (0), about `budget` bytes more were written (1), or every record is written (2).
unsafe extern "C" fn js_merge_run(env: napi_env, info: napi_callback_info) -> napi_value {
    guard(env, || {
        let [h, b] = args::<2>(env, info)?;
        let budget = get_u32(env, b, "budget")? as u64;
        let m: &MergeHandle = get_external(env, h, "merge")?;
        let m = m.clone();
        spawn_job(env, Box::new(move || {
            let mut g = m.lock().unwrap_or_else(|e| e.into_inner());
            let s = g.run(budget.max(1)).map_err(merge_error)?;
            Ok(Value::U32(match s { merge_sorted::Step::NeedInput => 0, merge_sorted::Step::Progress => 1, merge_sorted::Step::Done => 2 }))
        }))
    })
}

/// `mergeState(handle, out)`: `out` (Float64Array of 3 + 2 per input) gets records, packs and
/// bytes written so far, then for each input the records queued and 1 when it ended.
unsafe extern "C" fn js_merge_state(env: napi_env, info: napi_callback_info) -> napi_value {
    guard(env, || {
        let [h, o] = args::<2>(env, info)?;
        let (op, on) = typed_array_raw(env, o, NAPI_FLOAT64_ARRAY, "Float64Array", "out")?;
        let (_m, g) = merge_now(env, h)?;
        let out = std::slice::from_raw_parts_mut(op as *mut f64, on);
        let (records, packs, bytes) = g.summary();
        let mut vals = vec![records as f64, packs as f64, bytes as f64];
        for i in 0..g.inputs() { let (q, e) = g.queued(i); vals.push(q as f64); vals.push(if e { 1.0 } else { 0.0 }); }
        if on < vals.len() { return Err(JsError::new("ERR_INVALID_ARG_VALUE", format!("out: {on} numbers, the state has {}", vals.len()))); }
        out[..vals.len()].copy_from_slice(&vals);
        Ok(undefined(env))
    })
}

/// `mergeFinish(handle) → Promise<void>`: on the thread pool, write the last pack, the END pack
/// and everything pending, and end the writer thread: the output is complete (not synced).
unsafe extern "C" fn js_merge_finish(env: napi_env, info: napi_callback_info) -> napi_value {
    guard(env, || {
        let [h] = args::<1>(env, info)?;
        let m: &MergeHandle = get_external(env, h, "merge")?;
        let m = m.clone();
        spawn_job(env, Box::new(move || {
            m.lock().unwrap_or_else(|e| e.into_inner()).finish().map_err(merge_error)?;
            Ok(Value::Unit)
        }))
    })
}

/// `mergeStop(handle) → Promise<void>`: on the thread pool, end the writer thread (after what it
/// was given) and the merge: its descriptors may be closed once this settles.
unsafe extern "C" fn js_merge_stop(env: napi_env, info: napi_callback_info) -> napi_value {
    guard(env, || {
        let [h] = args::<1>(env, info)?;
        let m: &MergeHandle = get_external(env, h, "merge")?;
        let m = m.clone();
        spawn_job(env, Box::new(move || {
            m.lock().unwrap_or_else(|e| e.into_inner()).stop();
            Ok(Value::Unit)
        }))
    })
}

type DeviceHandle = Arc<capture::Device>;

/// `captureOpen(ldev, ddev, errorBeforeOverflow, checkpointMs, maxPackKb) → Promise<handle>`: open
/// (and redo) a userspace capture device.
unsafe extern "C" fn js_capture_open(env: napi_env, info: napi_callback_info) -> napi_value {
    guard(env, || {
        let [l, d, e, c, m] = args::<5>(env, info)?;
        let ldev = get_string(env, l, "ldev")?;
        let ddev = get_string(env, d, "ddev")?;
        let ebo = get_bool(env, e, "errorBeforeOverflow")?;
        let ms = get_u32(env, c, "checkpointMs")? as u64;
        let kb = get_u32(env, m, "maxPackKb")? as u64;
        spawn_job(env, Box::new(move || {
            let s = capture::Settings { error_before_overflow: ebo, checkpoint_ms: ms, max_pack_pb: 0 };
            let dev = capture::Device::open(&ldev, &ddev, s)?;
            dev.set_settings(capture::Settings { max_pack_pb: (kb * 1024 / dev.pbs).max(1), ..s });
            Ok(Value::Device(dev))
        }))
    })
}

/// `captureServe(handle, unix: boolean, address, exportName) → { server, address }`.
unsafe extern "C" fn js_capture_serve(env: napi_env, info: napi_callback_info) -> napi_value {
    guard(env, || {
        let [h, u, a, n] = args::<4>(env, info)?;
        let dev: &DeviceHandle = get_external(env, h, "handle")?;
        let unix = get_bool(env, u, "unix")?;
        let addr = get_string(env, a, "address")?;
        let name = get_string(env, n, "exportName")?;
        let server = nbd::serve(dev.clone(), unix, &addr, &name).map_err(|e| {
            let mut j = JsError::new("ERR_WALB_SERVE", format!("cannot listen on {addr}: {e}"));
            j.errno = e.raw_os_error();
            j
        })?;
        let obj = object(env)?;
        set(env, obj, "address", string_value(env, &server.address)?)?;
        set(env, obj, "server", external(env, server)?)?;
        Ok(obj)
    })
}

/// `captureStopServer(server)`: stop accepting connections.
unsafe extern "C" fn js_capture_stop_server(env: napi_env, info: napi_callback_info) -> napi_value {
    guard(env, || {
        let [s] = args::<1>(env, info)?;
        let server: &nbd::Server = get_external(env, s, "server")?;
        server.stop();
        Ok(undefined(env))
    })
}

/// `captureLsids(handle) → { latest, completed, permanent, written, prevWritten, oldest, overflow, frozen, ringBufferSize }`.
unsafe extern "C" fn js_capture_lsids(env: napi_env, info: napi_callback_info) -> napi_value {
    guard(env, || {
        let [h] = args::<1>(env, info)?;
        let dev: &DeviceHandle = get_external(env, h, "handle")?;
        let (l, overflow, frozen) = dev.lsids();
        let o = object(env)?;
        for (k, v) in [("latest", l.latest), ("completed", l.completed), ("permanent", l.permanent), ("written", l.written), ("prevWritten", l.prev_written), ("oldest", l.oldest), ("ringBufferSize", dev.rb_size)] {
            set(env, o, k, bigint(env, v)?)?;
        }
        set(env, o, "overflow", boolean(env, overflow)?)?;
        set(env, o, "frozen", boolean(env, frozen)?)?;
        Ok(o)
    })
}

/// `captureSetOldest(handle, lsid: bigint) → Promise<void>`.
unsafe extern "C" fn js_capture_set_oldest(env: napi_env, info: napi_callback_info) -> napi_value {
    guard(env, || {
        let [h, l] = args::<2>(env, info)?;
        let dev: DeviceHandle = get_external::<DeviceHandle>(env, h, "handle")?.clone();
        let lsid = get_bigint(env, l, "lsid")?;
        spawn_job(env, Box::new(move || { dev.set_oldest(lsid)?; Ok(Value::Unit) }))
    })
}

/// `captureCheckpoint(handle) → Promise<void>`.
unsafe extern "C" fn js_capture_checkpoint(env: napi_env, info: napi_callback_info) -> napi_value {
    guard(env, || {
        let [h] = args::<1>(env, info)?;
        let dev: DeviceHandle = get_external::<DeviceHandle>(env, h, "handle")?.clone();
        spawn_job(env, Box::new(move || { dev.checkpoint()?; Ok(Value::Unit) }))
    })
}

/// `captureFreeze(handle, frozen: boolean)`.
unsafe extern "C" fn js_capture_freeze(env: napi_env, info: napi_callback_info) -> napi_value {
    guard(env, || {
        let [h, f] = args::<2>(env, info)?;
        let dev: &DeviceHandle = get_external(env, h, "handle")?;
        dev.set_frozen(get_bool(env, f, "frozen")?);
        Ok(undefined(env))
    })
}

/// `captureClearLog(handle) → Promise<void>`: new uuid and salt, every lsid 0.
unsafe extern "C" fn js_capture_clear_log(env: napi_env, info: napi_callback_info) -> napi_value {
    guard(env, || {
        let [h] = args::<1>(env, info)?;
        let dev: DeviceHandle = get_external::<DeviceHandle>(env, h, "handle")?.clone();
        spawn_job(env, Box::new(move || { dev.clear_log()?; Ok(Value::Unit) }))
    })
}

/// `waitSysfsChange(path, timeoutMs) → Promise<string | null>`: the attribute's content after its
/// change notification, or null on timeout.
unsafe extern "C" fn js_wait_sysfs_change(env: napi_env, info: napi_callback_info) -> napi_value {
    guard(env, || {
        let [p, t] = args::<2>(env, info)?;
        let path = get_string(env, p, "path")?;
        let ms = get_u32(env, t, "timeoutMs")?.min(i32::MAX as u32) as i32;
        spawn_job(env, Box::new(move || sysfs::wait_change(&path, ms).map(Value::Text)))
    })
}

/// `captureClose(handle) → Promise<void>`: finish queued writes, checkpoint, stop.
unsafe extern "C" fn js_capture_close(env: napi_env, info: napi_callback_info) -> napi_value {
    guard(env, || {
        let [h] = args::<1>(env, info)?;
        let dev: DeviceHandle = get_external::<DeviceHandle>(env, h, "handle")?.clone();
        spawn_job(env, Box::new(move || { dev.close()?; Ok(Value::Unit) }))
    })
}

/// `captureInUse(path) → Promise<boolean>`: whether a capture device (of any process) has `path`
/// open as its log or data device (it holds the file's lock), on the thread pool.
unsafe extern "C" fn js_capture_in_use(env: napi_env, info: napi_callback_info) -> napi_value {
    guard(env, || {
        let [p] = args::<1>(env, info)?;
        let path = get_string(env, p, "path")?;
        spawn_job(env, Box::new(move || capture::in_use(&path).map(Value::Bool)))
    })
}

/// `ioctl(path: string, request: number, arg: Uint8Array, u2k?: Uint8Array, k2uSize?: number, openWrite?: number)`
/// → `Promise<{ arg: Buffer, k2u: Buffer, ret: number }>`: opens `path`, issues the ioctl with a copy of
/// `arg` (a `walb_ctl` gets its `u2k.buf` and `k2u.buf` pointed at copies of `u2k` and a `k2uSize`
/// buffer), on the thread pool.
unsafe extern "C" fn js_ioctl(env: napi_env, info: napi_callback_info) -> napi_value {
    guard(env, || {
        let [p, r, a, u, k, w] = args::<6>(env, info)?;
        let path = get_string(env, p, "path")?;
        let request = get_u32(env, r, "request")?;
        let arg = get_bytes(env, a, "arg")?.to_vec();
        let mut kind = 0i32;
        let mut is_ta = false;
        napi_is_typedarray(env, u, &mut is_ta);
        let u2k = if is_ta { get_bytes(env, u, "u2k")?.to_vec() } else { Vec::new() };
        let _ = &mut kind;
        let k2u_size = get_u32(env, k, "k2uSize").unwrap_or(0) as usize;
        let write = get_u32(env, w, "openWrite").unwrap_or(1) != 0;
        let call = ioctl::Call::new(path, request as u64, arg, u2k, k2u_size, write)?;
        spawn_job(env, Box::new(move || ioctl::run(&call).map(Value::Ioctl)))
    })
}

/// Node calls this after loading the library (the symbol `NAPI_MODULE_INIT` would define).
#[no_mangle]
pub unsafe extern "C" fn napi_register_module_v1(env: napi_env, exports: napi_value) -> napi_value {
    let r = catch_unwind(AssertUnwindSafe(|| -> JsResult<()> {
        export(env, exports, "checksum", Some(js_checksum))?;
        export(env, exports, "snappyCompress", Some(js_snappy_compress))?;
        export(env, exports, "alignOffset", Some(js_align_offset))?;
        export(env, exports, "seekData", Some(js_seek_data))?;
        export(env, exports, "prefetchRanges", Some(js_prefetch_ranges))?;
        export(env, exports, "punchHoles", Some(js_punch_holes))?;
        export(env, exports, "startWriteback", Some(js_start_writeback))?;
        export(env, exports, "storeBatch", Some(js_store_batch))?;
        export(env, exports, "sumExtents", Some(js_sum_extents))?;
        export(env, exports, "copyPieces", Some(js_copy_pieces))?;
        export(env, exports, "scanLogChunk", Some(js_scan_log_chunk))?;
        export(env, exports, "scanLink", Some(js_scan_link))?;
        export(env, exports, "liveParts", Some(js_live_parts))?;
        export(env, exports, "indexNew", Some(js_index_new))?;
        export(env, exports, "indexAdd", Some(js_index_add))?;
        export(env, exports, "indexEncode", Some(js_index_encode))?;
        export(env, exports, "mergeOpen", Some(js_merge_open))?;
        export(env, exports, "mergeFeed", Some(js_merge_feed))?;
        export(env, exports, "mergeRun", Some(js_merge_run))?;
        export(env, exports, "mergeState", Some(js_merge_state))?;
        export(env, exports, "mergeFinish", Some(js_merge_finish))?;
        export(env, exports, "mergeStop", Some(js_merge_stop))?;
        export(env, exports, "ioctl", Some(js_ioctl))?;
        export(env, exports, "version", Some(js_version))?;
        export(env, exports, "panicForTest", Some(js_panic_for_test))?;
        export(env, exports, "captureOpen", Some(js_capture_open))?;
        export(env, exports, "captureServe", Some(js_capture_serve))?;
        export(env, exports, "captureStopServer", Some(js_capture_stop_server))?;
        export(env, exports, "captureLsids", Some(js_capture_lsids))?;
        export(env, exports, "captureSetOldest", Some(js_capture_set_oldest))?;
        export(env, exports, "captureCheckpoint", Some(js_capture_checkpoint))?;
        export(env, exports, "captureFreeze", Some(js_capture_freeze))?;
        export(env, exports, "captureClose", Some(js_capture_close))?;
        export(env, exports, "captureClearLog", Some(js_capture_clear_log))?;
        export(env, exports, "captureInUse", Some(js_capture_in_use))?;
        export(env, exports, "waitSysfsChange", Some(js_wait_sysfs_change))?;
        Ok(())
    }));
    match r {
        Ok(Ok(())) => exports,
        Ok(Err(e)) => { throw(env, &e); ptr::null_mut() }
        Err(_) => { throw(env, &JsError::new("ERR_WALB_NATIVE_PANIC", "panic while registering the module")); ptr::null_mut() }
    }
}

/// The Node-API version this addon targets (functions up to Node-API 8).
#[no_mangle]
pub extern "C" fn node_api_module_get_api_version_v1() -> i32 {
    8
}
