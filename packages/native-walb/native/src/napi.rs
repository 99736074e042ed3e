//! The few Node-API functions this addon uses, declared by hand (node exports them; they resolve
//! when node loads the addon), and small safe helpers over them.
#![allow(non_camel_case_types)]

use std::ffi::{c_char, c_void, CString};
use std::ptr;

pub type napi_env = *mut c_void;
pub type napi_value = *mut c_void;
pub type napi_callback_info = *mut c_void;
pub type napi_deferred = *mut c_void;
pub type napi_async_work = *mut c_void;
pub type napi_ref = *mut c_void;
pub type napi_status = i32;
pub type napi_callback = Option<unsafe extern "C" fn(napi_env, napi_callback_info) -> napi_value>;
pub type napi_async_execute = Option<unsafe extern "C" fn(napi_env, *mut c_void)>;
pub type napi_async_complete = Option<unsafe extern "C" fn(napi_env, napi_status, *mut c_void)>;

pub const NAPI_OK: napi_status = 0;
pub const NAPI_AUTO_LENGTH: usize = usize::MAX;
/// `napi_typedarray_type` of a Uint8Array.
pub const NAPI_UINT8_ARRAY: i32 = 1;
/// `napi_typedarray_type` of a Uint32Array.
pub const NAPI_UINT32_ARRAY: i32 = 6;
/// `napi_typedarray_type` of a Float64Array.
pub const NAPI_FLOAT64_ARRAY: i32 = 8;

extern "C" {
    pub fn napi_create_function(env: napi_env, name: *const c_char, len: usize, cb: napi_callback, data: *mut c_void, result: *mut napi_value) -> napi_status;
    pub fn napi_set_named_property(env: napi_env, object: napi_value, name: *const c_char, value: napi_value) -> napi_status;
    pub fn napi_get_cb_info(env: napi_env, info: napi_callback_info, argc: *mut usize, argv: *mut napi_value, this_arg: *mut napi_value, data: *mut *mut c_void) -> napi_status;
    pub fn napi_get_value_double(env: napi_env, value: napi_value, result: *mut f64) -> napi_status;
    pub fn napi_get_value_string_utf8(env: napi_env, value: napi_value, buf: *mut c_char, bufsize: usize, result: *mut usize) -> napi_status;
    pub fn napi_get_typedarray_info(env: napi_env, value: napi_value, kind: *mut i32, length: *mut usize, data: *mut *mut c_void, arraybuffer: *mut napi_value, byte_offset: *mut usize) -> napi_status;
    pub fn napi_is_typedarray(env: napi_env, value: napi_value, result: *mut bool) -> napi_status;
    pub fn napi_create_uint32(env: napi_env, value: u32, result: *mut napi_value) -> napi_status;
    pub fn napi_create_int32(env: napi_env, value: i32, result: *mut napi_value) -> napi_status;
    pub fn napi_create_double(env: napi_env, value: f64, result: *mut napi_value) -> napi_status;
    pub fn napi_create_string_utf8(env: napi_env, s: *const c_char, len: usize, result: *mut napi_value) -> napi_status;
    pub fn napi_create_buffer_copy(env: napi_env, len: usize, data: *const c_void, result_data: *mut *mut c_void, result: *mut napi_value) -> napi_status;
    pub fn napi_create_object(env: napi_env, result: *mut napi_value) -> napi_status;
    pub fn napi_create_error(env: napi_env, code: napi_value, msg: napi_value, result: *mut napi_value) -> napi_status;
    pub fn napi_throw(env: napi_env, error: napi_value) -> napi_status;
    pub fn napi_is_exception_pending(env: napi_env, result: *mut bool) -> napi_status;
    pub fn napi_get_undefined(env: napi_env, result: *mut napi_value) -> napi_status;
    pub fn napi_get_null(env: napi_env, result: *mut napi_value) -> napi_status;
    pub fn napi_create_promise(env: napi_env, deferred: *mut napi_deferred, promise: *mut napi_value) -> napi_status;
    pub fn napi_resolve_deferred(env: napi_env, deferred: napi_deferred, resolution: napi_value) -> napi_status;
    pub fn napi_reject_deferred(env: napi_env, deferred: napi_deferred, rejection: napi_value) -> napi_status;
    pub fn napi_create_async_work(env: napi_env, resource: napi_value, resource_name: napi_value, execute: napi_async_execute, complete: napi_async_complete, data: *mut c_void, result: *mut napi_async_work) -> napi_status;
    pub fn napi_queue_async_work(env: napi_env, work: napi_async_work) -> napi_status;
    pub fn napi_delete_async_work(env: napi_env, work: napi_async_work) -> napi_status;
    pub fn napi_create_external(env: napi_env, data: *mut c_void, finalize_cb: Option<unsafe extern "C" fn(napi_env, *mut c_void, *mut c_void)>, finalize_hint: *mut c_void, result: *mut napi_value) -> napi_status;
    pub fn napi_get_value_external(env: napi_env, value: napi_value, result: *mut *mut c_void) -> napi_status;
    pub fn napi_create_bigint_uint64(env: napi_env, value: u64, result: *mut napi_value) -> napi_status;
    pub fn napi_get_value_bigint_uint64(env: napi_env, value: napi_value, result: *mut u64, lossless: *mut bool) -> napi_status;
    pub fn napi_get_boolean(env: napi_env, value: bool, result: *mut napi_value) -> napi_status;
    pub fn napi_create_reference(env: napi_env, value: napi_value, initial_refcount: u32, result: *mut napi_ref) -> napi_status;
    pub fn napi_delete_reference(env: napi_env, r: napi_ref) -> napi_status;
    pub fn napi_get_value_bool(env: napi_env, value: napi_value, result: *mut bool) -> napi_status;
    pub fn napi_type_tag_object(env: napi_env, value: napi_value, tag: *const napi_type_tag) -> napi_status;
    pub fn napi_check_object_type_tag(env: napi_env, value: napi_value, tag: *const napi_type_tag, result: *mut bool) -> napi_status;
    pub fn napi_typeof(env: napi_env, value: napi_value, result: *mut i32) -> napi_status;
}

pub unsafe fn bigint(env: napi_env, n: u64) -> JsResult<napi_value> {
    let mut v = ptr::null_mut();
    check(napi_create_bigint_uint64(env, n, &mut v), "napi_create_bigint_uint64")?;
    Ok(v)
}

pub unsafe fn get_bigint(env: napi_env, v: napi_value, what: &str) -> JsResult<u64> {
    let (mut n, mut lossless) = (0u64, false);
    if napi_get_value_bigint_uint64(env, v, &mut n, &mut lossless) != NAPI_OK || !lossless {
        return Err(JsError::arg(format!("{what} must be a bigint in [0, 2^64)")));
    }
    Ok(n)
}

pub unsafe fn boolean(env: napi_env, b: bool) -> JsResult<napi_value> {
    let mut v = ptr::null_mut();
    check(napi_get_boolean(env, b, &mut v), "napi_get_boolean")?;
    Ok(v)
}

pub unsafe fn get_bool(env: napi_env, v: napi_value, what: &str) -> JsResult<bool> {
    let mut b = false;
    if napi_get_value_bool(env, v, &mut b) != NAPI_OK { return Err(JsError::arg(format!("{what} must be a boolean"))); }
    Ok(b)
}

/// Node-API's type tag: 128 bits that mark which Rust type an external holds.
#[repr(C)]
pub struct napi_type_tag {
    lower: u64,
    upper: u64,
}

/// The tag of externals holding a `T`: distinct per type within the process, so that a handle of
/// one kind passed where another is expected is refused rather than read as the wrong type.
fn tag_of<T: 'static>() -> napi_type_tag {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    std::any::TypeId::of::<T>().hash(&mut h);
    let lower = h.finish();
    std::any::type_name::<T>().hash(&mut h);
    napi_type_tag { lower, upper: h.finish() }
}

/// Hand `value` to JS as an external, tagged with its type; it is dropped when JS collects it.
pub unsafe fn external<T: Send + 'static>(env: napi_env, value: T) -> JsResult<napi_value> {
    unsafe extern "C" fn fin<T>(_env: napi_env, data: *mut c_void, _hint: *mut c_void) {
        drop(Box::from_raw(data as *mut T));
    }
    let raw = Box::into_raw(Box::new(value)) as *mut c_void;
    let mut v = ptr::null_mut();
    if napi_create_external(env, raw, Some(fin::<T>), ptr::null_mut(), &mut v) != NAPI_OK {
        drop(Box::from_raw(raw as *mut T));
        return Err(JsError::new("ERR_NAPI", "napi_create_external failed"));
    }
    check(napi_type_tag_object(env, v, &tag_of::<T>()), "napi_type_tag_object")?;
    Ok(v)
}

/// The value behind an external made by [`external`] with the same `T`.
pub unsafe fn get_external<'a, T: 'static>(env: napi_env, v: napi_value, what: &str) -> JsResult<&'a T> {
    let mut p = ptr::null_mut();
    let mut ours = false;
    if napi_check_object_type_tag(env, v, &tag_of::<T>(), &mut ours) != NAPI_OK || !ours
        || napi_get_value_external(env, v, &mut p) != NAPI_OK || p.is_null() {
        return Err(JsError::arg(format!("{what} must be a handle made by this addon")));
    }
    Ok(&*(p as *const T))
}

/// A failure to report to JS: an error code (`ERR_…`) and a message, plus an errno when one applies.
#[derive(Debug)]
pub struct JsError {
    pub code: String,
    pub message: String,
    pub errno: Option<i32>,
    /// More numeric properties of the error, for the caller to place it (an input, an offset).
    pub info: Vec<(&'static str, f64)>,
}

impl JsError {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        JsError { code: code.to_string(), message: message.into(), errno: None, info: Vec::new() }
    }
    pub fn arg(message: impl Into<String>) -> Self {
        JsError::new("ERR_INVALID_ARG", message)
    }
}

pub type JsResult<T> = Result<T, JsError>;

fn check(status: napi_status, what: &str) -> JsResult<()> {
    if status == NAPI_OK { Ok(()) } else { Err(JsError::new("ERR_NAPI", format!("{what} failed with status {status}"))) }
}

pub fn cstring(s: &str) -> CString {
    CString::new(s.replace('\0', " ")).expect("no NUL left")
}

pub unsafe fn string_value(env: napi_env, s: &str) -> JsResult<napi_value> {
    let mut v = ptr::null_mut();
    check(napi_create_string_utf8(env, s.as_ptr() as *const c_char, s.len(), &mut v), "napi_create_string_utf8")?;
    Ok(v)
}

/// A JS Error object with `code` (and `errno` when set).
pub unsafe fn error_value(env: napi_env, e: &JsError) -> napi_value {
    let mut err = ptr::null_mut();
    let code = string_value(env, &e.code).unwrap_or(ptr::null_mut());
    let msg = string_value(env, &e.message).unwrap_or(ptr::null_mut());
    napi_create_error(env, code, msg, &mut err);
    if let Some(n) = e.errno {
        let mut v = ptr::null_mut();
        napi_create_int32(env, n, &mut v);
        let key = cstring("errno");
        napi_set_named_property(env, err, key.as_ptr(), v);
    }
    for (k, x) in &e.info {
        let mut v = ptr::null_mut();
        napi_create_double(env, *x, &mut v);
        let key = cstring(k);
        napi_set_named_property(env, err, key.as_ptr(), v);
    }
    err
}

/// Throw `e` unless an exception is already pending (then return quietly: throwing twice is an error).
pub unsafe fn throw(env: napi_env, e: &JsError) {
    let mut pending = false;
    napi_is_exception_pending(env, &mut pending);
    if !pending {
        napi_throw(env, error_value(env, e));
    }
}

pub unsafe fn null(env: napi_env) -> JsResult<napi_value> {
    let mut v = ptr::null_mut();
    check(napi_get_null(env, &mut v), "napi_get_null")?;
    Ok(v)
}

pub unsafe fn undefined(env: napi_env) -> napi_value {
    let mut v = ptr::null_mut();
    napi_get_undefined(env, &mut v);
    v
}

/// Whether `v` is `undefined` (an optional argument left out).
pub unsafe fn is_undefined(env: napi_env, v: napi_value) -> bool {
    // napi_valuetype: 0 is napi_undefined.
    let mut t = -1;
    napi_typeof(env, v, &mut t) == NAPI_OK && t == 0
}

/// The call's arguments (up to N; missing ones are `undefined`).
pub unsafe fn args<const N: usize>(env: napi_env, info: napi_callback_info) -> JsResult<[napi_value; N]> {
    let mut argc = N;
    let mut argv = [ptr::null_mut(); N];
    check(napi_get_cb_info(env, info, &mut argc, argv.as_mut_ptr(), ptr::null_mut(), ptr::null_mut()), "napi_get_cb_info")?;
    for a in argv.iter_mut().skip(argc) {
        *a = undefined(env);
    }
    Ok(argv)
}

/// A whole number in [0, 2^32): anything else (a fraction, a negative number, 2^32 or more, which
/// Node-API's own conversion would wrap round) is an error naming `what`.
pub unsafe fn get_u32(env: napi_env, v: napi_value, what: &str) -> JsResult<u32> {
    let mut x = 0f64;
    if napi_get_value_double(env, v, &mut x) != NAPI_OK {
        return Err(JsError::arg(format!("{what} must be a number")));
    }
    if !(x >= 0.0 && x <= u32::MAX as f64 && x.fract() == 0.0) {
        return Err(JsError::new("ERR_INVALID_ARG_VALUE", format!("{what}: {x} is not a whole number in [0, 2^32)")));
    }
    Ok(x as u32)
}

pub unsafe fn get_string(env: napi_env, v: napi_value, what: &str) -> JsResult<String> {
    let mut len = 0usize;
    if napi_get_value_string_utf8(env, v, ptr::null_mut(), 0, &mut len) != NAPI_OK {
        return Err(JsError::arg(format!("{what} must be a string")));
    }
    if len > 4096 {
        return Err(JsError::arg(format!("{what} is longer than 4096 bytes")));
    }
    let mut buf = vec![0u8; len + 1];
    check(napi_get_value_string_utf8(env, v, buf.as_mut_ptr() as *mut c_char, buf.len(), &mut len), "napi_get_value_string_utf8")?;
    buf.truncate(len);
    String::from_utf8(buf).map_err(|_| JsError::arg(format!("{what} is not UTF-8")))
}

/// The bytes of a Uint8Array (a Buffer is one), borrowed for the duration of the call.
pub unsafe fn get_bytes<'a>(env: napi_env, v: napi_value, what: &str) -> JsResult<&'a [u8]> {
    let mut is = false;
    napi_is_typedarray(env, v, &mut is);
    if !is {
        return Err(JsError::arg(format!("{what} must be a Uint8Array")));
    }
    let (mut kind, mut len, mut data, mut ab, mut off) = (0i32, 0usize, ptr::null_mut(), ptr::null_mut(), 0usize);
    check(napi_get_typedarray_info(env, v, &mut kind, &mut len, &mut data, &mut ab, &mut off), "napi_get_typedarray_info")?;
    if kind != NAPI_UINT8_ARRAY {
        return Err(JsError::arg(format!("{what} must be a Uint8Array")));
    }
    if len == 0 {
        return Ok(&[]);
    }
    Ok(std::slice::from_raw_parts(data as *const u8, len))
}

/// A typed array of `kind` (one of the `NAPI_*_ARRAY` constants): its data pointer and its length
/// in elements. The memory belongs to JS: it stays valid while the array is referenced.
pub unsafe fn typed_array_raw(env: napi_env, v: napi_value, kind: i32, type_name: &str, what: &str) -> JsResult<(*mut c_void, usize)> {
    let mut is = false;
    napi_is_typedarray(env, v, &mut is);
    let (mut k, mut len, mut data, mut ab, mut off) = (0i32, 0usize, ptr::null_mut(), ptr::null_mut(), 0usize);
    if !is || napi_get_typedarray_info(env, v, &mut k, &mut len, &mut data, &mut ab, &mut off) != NAPI_OK || k != kind {
        return Err(JsError::arg(format!("{what} must be a {type_name}")));
    }
    Ok((data, len))
}

/// A strong reference to `v`, so the collector keeps it while a job uses its memory.
pub unsafe fn reference(env: napi_env, v: napi_value) -> JsResult<napi_ref> {
    let mut r = ptr::null_mut();
    check(napi_create_reference(env, v, 1, &mut r), "napi_create_reference")?;
    Ok(r)
}

pub unsafe fn buffer_copy(env: napi_env, bytes: &[u8]) -> JsResult<napi_value> {
    let mut v = ptr::null_mut();
    let mut d = ptr::null_mut();
    check(napi_create_buffer_copy(env, bytes.len(), bytes.as_ptr() as *const c_void, &mut d, &mut v), "napi_create_buffer_copy")?;
    Ok(v)
}

pub unsafe fn uint32(env: napi_env, n: u32) -> JsResult<napi_value> {
    let mut v = ptr::null_mut();
    check(napi_create_uint32(env, n, &mut v), "napi_create_uint32")?;
    Ok(v)
}

pub unsafe fn object(env: napi_env) -> JsResult<napi_value> {
    let mut v = ptr::null_mut();
    check(napi_create_object(env, &mut v), "napi_create_object")?;
    Ok(v)
}

pub unsafe fn set(env: napi_env, obj: napi_value, key: &str, v: napi_value) -> JsResult<()> {
    let k = cstring(key);
    check(napi_set_named_property(env, obj, k.as_ptr(), v), "napi_set_named_property")
}

pub unsafe fn export(env: napi_env, exports: napi_value, name: &str, cb: napi_callback) -> JsResult<()> {
    let mut f = ptr::null_mut();
    let n = cstring(name);
    check(napi_create_function(env, n.as_ptr(), NAPI_AUTO_LENGTH, cb, ptr::null_mut(), &mut f), "napi_create_function")?;
    check(napi_set_named_property(env, exports, n.as_ptr(), f), "napi_set_named_property")
}
