//! walbjs native addon: walb kernel device control (ioctl) and fast paths, over a hand-written
//! Node-API binding (no crates). Every entry point catches panics and turns them into JS errors;
//! device I/O runs on the libuv thread pool, never on the JS thread.

mod checksum;
mod ioctl;
mod napi;

use napi::*;
use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;

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

/// `panicForTest(): never` — panics on purpose, to show a panic becomes a JS error.
unsafe extern "C" fn js_panic_for_test(env: napi_env, _info: napi_callback_info) -> napi_value {
    guard(env, || panic!("deliberate panic for the test suite"))
}

/// `version(): string` — the addon's version.
unsafe extern "C" fn js_version(env: napi_env, _info: napi_callback_info) -> napi_value {
    guard(env, || string_value(env, env!("CARGO_PKG_VERSION")))
}

/// An ioctl to run on the thread pool, and its outcome.
struct Job {
    deferred: napi_deferred,
    work: napi_async_work,
    call: ioctl::Call,
    result: Option<JsResult<ioctl::Outcome>>,
}

unsafe extern "C" fn job_execute(_env: napi_env, data: *mut c_void) {
    let job = &mut *(data as *mut Job);
    let r = catch_unwind(AssertUnwindSafe(|| ioctl::run(&job.call)));
    job.result = Some(match r {
        Ok(r) => r,
        Err(p) => Err(JsError::new("ERR_WALB_NATIVE_PANIC", format!("native code panicked: {}", panic_text(&p)))),
    });
}

unsafe extern "C" fn job_complete(env: napi_env, _status: napi_status, data: *mut c_void) {
    let job = Box::from_raw(data as *mut Job);
    let settled = catch_unwind(AssertUnwindSafe(|| -> JsResult<napi_value> {
        match job.result.as_ref() {
            Some(Ok(o)) => {
                let obj = object(env)?;
                set(env, obj, "arg", buffer_copy(env, &o.arg)?)?;
                set(env, obj, "k2u", buffer_copy(env, &o.k2u)?)?;
                set(env, obj, "ret", uint32(env, o.ret as u32)?)?;
                Ok(obj)
            }
            Some(Err(e)) => Err(JsError { code: e.code.clone(), message: e.message.clone(), errno: e.errno }),
            None => Err(JsError::new("ERR_WALB_NATIVE", "the ioctl did not run")),
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
    napi_delete_async_work(env, job.work);
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
        let mut promise = ptr::null_mut();
        let mut deferred = ptr::null_mut();
        if napi_create_promise(env, &mut deferred, &mut promise) != NAPI_OK {
            return Err(JsError::new("ERR_NAPI", "napi_create_promise failed"));
        }
        let job = Box::into_raw(Box::new(Job { deferred, work: ptr::null_mut(), call, result: None }));
        let name = string_value(env, "walb-ioctl")?;
        if napi_create_async_work(env, ptr::null_mut(), name, Some(job_execute), Some(job_complete), job as *mut c_void, &mut (*job).work) != NAPI_OK
            || napi_queue_async_work(env, (*job).work) != NAPI_OK
        {
            drop(Box::from_raw(job));
            return Err(JsError::new("ERR_NAPI", "could not queue the ioctl"));
        }
        Ok(promise)
    })
}

/// Node calls this after loading the library (the symbol `NAPI_MODULE_INIT` would define).
#[no_mangle]
pub unsafe extern "C" fn napi_register_module_v1(env: napi_env, exports: napi_value) -> napi_value {
    let r = catch_unwind(AssertUnwindSafe(|| -> JsResult<()> {
        export(env, exports, "checksum", Some(js_checksum))?;
        export(env, exports, "ioctl", Some(js_ioctl))?;
        export(env, exports, "version", Some(js_version))?;
        export(env, exports, "panicForTest", Some(js_panic_for_test))?;
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
