//! An NBD server (fixed newstyle handshake) exporting a capture device: every write goes through
//! the device's log before it is acknowledged.

use crate::buf_pool::LocalBufs;
use crate::capture::{Device, Done, Op, Payload, ReplySink, LBS};
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

const NBDMAGIC: u64 = 0x4e42_444d_4147_4943;
const IHAVEOPT: u64 = 0x4948_4156_454f_5054;
const OPT_REPLY_MAGIC: u64 = 0x0003_e889_0455_65a9;
const REQUEST_MAGIC: u32 = 0x2560_9513;
const SIMPLE_REPLY_MAGIC: u32 = 0x6744_6698;
const STRUCTURED_REPLY_MAGIC: u32 = 0x668e_33ef;

const FLAG_FIXED_NEWSTYLE: u16 = 1;
const FLAG_NO_ZEROES: u16 = 2;
const OPT_EXPORT_NAME: u32 = 1;
const OPT_ABORT: u32 = 2;
const OPT_LIST: u32 = 3;
const OPT_INFO: u32 = 6;
const OPT_GO: u32 = 7;
const OPT_STRUCTURED_REPLY: u32 = 8;
const REP_ACK: u32 = 1;
const REP_SERVER: u32 = 2;
const REP_INFO: u32 = 3;
const REP_ERR_UNSUP: u32 = 0x8000_0001;
const REP_ERR_INVALID: u32 = 0x8000_0003;
const REP_ERR_UNKNOWN: u32 = 0x8000_0006;
/// Longest export name the protocol allows.
const MAX_NAME: usize = 4096;
const INFO_EXPORT: u16 = 0;
const INFO_BLOCK_SIZE: u16 = 3;

const TF_HAS_FLAGS: u16 = 1;
const TF_SEND_FLUSH: u16 = 4;
const TF_SEND_FUA: u16 = 8;
const TF_SEND_TRIM: u16 = 32;
const TF_SEND_WRITE_ZEROES: u16 = 64;
const TF_CAN_MULTI_CONN: u16 = 256;

const CMD_READ: u16 = 0;
const CMD_WRITE: u16 = 1;
const CMD_DISC: u16 = 2;
const CMD_FLUSH: u16 = 3;
const CMD_TRIM: u16 = 4;
const CMD_WRITE_ZEROES: u16 = 6;
const CMD_FLAG_FUA: u16 = 1;

const EIO: i32 = 5;
const EINVAL: i32 = 22;
const ENOSPC: i32 = 28;
const EOVERFLOW: i32 = 75;
const MAX_REQUEST: u32 = 32 << 20;

trait Conn: Read + Write + Send + 'static {
    fn dup(&self) -> io::Result<Box<dyn Conn>>;
    fn close(&self);
}
impl Conn for TcpStream {
    fn dup(&self) -> io::Result<Box<dyn Conn>> { Ok(Box::new(self.try_clone()?)) }
    fn close(&self) { let _ = self.shutdown(std::net::Shutdown::Both); }
}
impl Conn for UnixStream {
    fn dup(&self) -> io::Result<Box<dyn Conn>> { Ok(Box::new(self.try_clone()?)) }
    fn close(&self) { let _ = self.shutdown(std::net::Shutdown::Both); }
}

/// A running server: stop it to close the listener (open connections end when their clients go).
pub struct Server {
    stop: Arc<AtomicBool>,
    pub address: String,
    /// A unix socket's path and inode: removed by `stop`.
    socket: Option<(String, u64)>,
}

impl Server {
    /// Stop accepting. A unix socket's file goes at once (a process that stops its server and
    /// exits leaves nothing behind), unless another server has bound that path since; only the
    /// first call removes it: the file a later server binds there may get the same inode number,
    /// which then tells nothing.
    pub fn stop(&self) {
        if self.stop.swap(true, Ordering::SeqCst) { return; }
        if let Some((path, ino)) = &self.socket { remove_if_same(path, Some(*ino)); }
    }
}

fn remove_if_same(path: &str, ino: Option<u64>) {
    if ino.is_some() && std::fs::symlink_metadata(path).map(|m| m.ino()).ok() == ino { let _ = std::fs::remove_file(path); }
}

/// Listen on `address` (a unix socket path, or TCP `host:port`) and export `dev` under the name
/// `export_name`: a client asking for another name is refused, as the protocol asks of a server
/// without that export (a client meaning another server reaches no disk by mistake).
pub fn serve(dev: Arc<Device>, unix: bool, address: &str, export_name: &str) -> io::Result<Server> {
    if export_name.len() > MAX_NAME { return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("export name longer than {MAX_NAME} bytes"))); }
    let name: Arc<str> = Arc::from(export_name);
    let stop = Arc::new(AtomicBool::new(false));
    let s2 = stop.clone();
    let actual;
    let mut socket = None;
    if unix {
        clear_stale_socket(address)?;
        let l = UnixListener::bind(address)?;
        l.set_nonblocking(true)?;
        actual = address.to_string();
        // The socket file goes with the server (`stop`), unless another one has replaced it
        // meanwhile. Not from the accepting thread when it ends: by then, up to a poll interval
        // later, a new server may have bound the path to a file with the old one's inode number.
        let path = address.to_string();
        let ino = std::fs::symlink_metadata(&path).map(|m| m.ino()).ok();
        socket = ino.map(|i| (path, i));
        thread::Builder::new().name("walb-nbd-accept".into()).spawn(move || {
            accept_loop(|| l.accept().map(|(s, _)| Box::new(s) as Box<dyn Conn>), dev, name, s2);
        })?;
    } else {
        let l = TcpListener::bind(address)?;
        l.set_nonblocking(true)?;
        actual = l.local_addr()?.to_string();
        thread::Builder::new().name("walb-nbd-accept".into()).spawn(move || accept_loop(|| l.accept().map(|(s, _)| { let _ = s.set_nodelay(true); Box::new(s) as Box<dyn Conn> }), dev, name, s2))?;
    }
    Ok(Server { stop, address: actual, socket })
}

/// Make room for a unix socket at `path`: a socket left by a server that is gone is removed; a
/// socket someone still listens on, or anything that is not a socket, is an error (never deleted).
fn clear_stale_socket(path: &str) -> io::Result<()> {
    use std::os::unix::fs::FileTypeExt;
    let Ok(m) = std::fs::symlink_metadata(path) else { return Ok(()) };
    if !m.file_type().is_socket() {
        return Err(io::Error::new(io::ErrorKind::AlreadyExists, format!("{path} exists and is not a socket")));
    }
    if UnixStream::connect(path).is_ok() {
        return Err(io::Error::new(io::ErrorKind::AddrInUse, format!("another server listens on {path}")));
    }
    std::fs::remove_file(path)
}

fn accept_loop(accept: impl Fn() -> io::Result<Box<dyn Conn>>, dev: Arc<Device>, name: Arc<str>, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::SeqCst) {
        match accept() {
            Ok(c) => {
                let d = dev.clone();
                let n = name.clone();
                let _ = thread::Builder::new().name("walb-nbd-conn".into()).spawn(move || { let _ = connection(c, d, &n); });
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => thread::sleep(Duration::from_millis(20)),
            Err(_) => thread::sleep(Duration::from_millis(20)),
        }
    }
}

fn read_u32(r: &mut dyn Read) -> io::Result<u32> { let mut b = [0u8; 4]; r.read_exact(&mut b)?; Ok(u32::from_be_bytes(b)) }
fn read_u64(r: &mut dyn Read) -> io::Result<u64> { let mut b = [0u8; 8]; r.read_exact(&mut b)?; Ok(u64::from_be_bytes(b)) }

fn opt_reply(w: &mut dyn Write, opt: u32, kind: u32, data: &[u8]) -> io::Result<()> {
    let mut b = Vec::with_capacity(20 + data.len());
    b.extend_from_slice(&OPT_REPLY_MAGIC.to_be_bytes());
    b.extend_from_slice(&opt.to_be_bytes());
    b.extend_from_slice(&kind.to_be_bytes());
    b.extend_from_slice(&(data.len() as u32).to_be_bytes());
    b.extend_from_slice(data);
    w.write_all(&b)
}

fn tflags() -> u16 {
    TF_HAS_FLAGS | TF_SEND_FLUSH | TF_SEND_FUA | TF_SEND_TRIM | TF_SEND_WRITE_ZEROES | TF_CAN_MULTI_CONN
}

fn info_export(dev: &Device) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&INFO_EXPORT.to_be_bytes());
    b.extend_from_slice(&(dev.size_lb * LBS).to_be_bytes());
    b.extend_from_slice(&tflags().to_be_bytes());
    b
}

fn info_block_size() -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&INFO_BLOCK_SIZE.to_be_bytes());
    b.extend_from_slice(&512u32.to_be_bytes());
    b.extend_from_slice(&4096u32.to_be_bytes());
    b.extend_from_slice(&MAX_REQUEST.to_be_bytes());
    b
}

/// Handshake; returns whether structured replies were negotiated, or None when the client left
/// (or is sent away: an export name other than `name`, flags this server does not know).
fn handshake(c: &mut dyn Conn, dev: &Device, name: &str) -> io::Result<Option<bool>> {
    let mut hello = Vec::new();
    hello.extend_from_slice(&NBDMAGIC.to_be_bytes());
    hello.extend_from_slice(&IHAVEOPT.to_be_bytes());
    hello.extend_from_slice(&(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES).to_be_bytes());
    c.write_all(&hello)?;
    let cflags = read_u32(c)?;
    // Flags this server did not offer: the client speaks something else, and the protocol says
    // to close.
    if cflags & !((FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES) as u32) != 0 { return Ok(None); }
    let no_zeroes = cflags & FLAG_NO_ZEROES as u32 != 0;
    let mut structured = false;
    loop {
        if read_u64(c)? != IHAVEOPT { return Ok(None); }
        let opt = read_u32(c)?;
        let len = read_u32(c)?;
        if len > 65536 {
            return Ok(None);
        }
        let mut data = vec![0u8; len as usize];
        c.read_exact(&mut data)?;
        match opt {
            OPT_EXPORT_NAME => {
                // This option has no error reply: the protocol's answer to an unknown name is to close.
                if data != name.as_bytes() { return Ok(None); }
                let mut b = Vec::new();
                b.extend_from_slice(&(dev.size_lb * LBS).to_be_bytes());
                b.extend_from_slice(&tflags().to_be_bytes());
                if !no_zeroes { b.extend_from_slice(&[0u8; 124]); }
                c.write_all(&b)?;
                return Ok(Some(structured));
            }
            OPT_ABORT => { let _ = opt_reply(c, opt, REP_ACK, &[]); return Ok(None); }
            OPT_LIST => {
                if len != 0 { opt_reply(c, opt, REP_ERR_INVALID, b"LIST takes no data")?; continue; }
                let mut b = Vec::with_capacity(4 + name.len());
                b.extend_from_slice(&(name.len() as u32).to_be_bytes());
                b.extend_from_slice(name.as_bytes());
                opt_reply(c, opt, REP_SERVER, &b)?;
                opt_reply(c, opt, REP_ACK, &[])?;
            }
            OPT_STRUCTURED_REPLY => {
                if len != 0 { opt_reply(c, opt, REP_ERR_INVALID, b"STRUCTURED_REPLY takes no data")?; continue; }
                structured = true;
                opt_reply(c, opt, REP_ACK, &[])?;
            }
            OPT_INFO | OPT_GO => {
                if data.len() < 6 { opt_reply(c, opt, REP_ERR_INVALID, b"short request")?; continue; }
                let nl = u32::from_be_bytes(data[0..4].try_into().unwrap()) as usize;
                if 4 + nl + 2 > data.len() { opt_reply(c, opt, REP_ERR_INVALID, b"bad name length")?; continue; }
                let n_info = u16::from_be_bytes(data[4 + nl..4 + nl + 2].try_into().unwrap()) as usize;
                if data.len() != 4 + nl + 2 + 2 * n_info { opt_reply(c, opt, REP_ERR_INVALID, b"bad information request count")?; continue; }
                if &data[4..4 + nl] != name.as_bytes() {
                    opt_reply(c, opt, REP_ERR_UNKNOWN, format!("no export of that name (this server exports {name:?})").as_bytes())?;
                    continue;
                }
                opt_reply(c, opt, REP_INFO, &info_export(dev))?;
                opt_reply(c, opt, REP_INFO, &info_block_size())?;
                opt_reply(c, opt, REP_ACK, &[])?;
                if opt == OPT_GO { return Ok(Some(structured)); }
            }
            _ => opt_reply(c, opt, REP_ERR_UNSUP, b"unsupported option")?,
        }
    }
}

/// A connection's answers: replies are gathered here and leave in one write per batch; the bytes
/// of write requests not yet answered are counted so a client cannot queue without bound.
struct Out {
    buf: Mutex<Vec<u8>>,
    w: Mutex<Box<dyn Conn>>,
    /// Requests in flight and the bytes of data they carry. Atomics, added once per batch handed
    /// on, rather than a mutex taken twice per request (`perf` put about 5% of the device's CPU on
    /// that lock with 4 KiB writes; IOPS did not move beyond this machine's noise without it).
    reqs: AtomicUsize,
    bytes: AtomicUsize,
    /// The connection waits for the counts to go down (a wake-up is a system call even when
    /// nobody waits, so answers look at this first).
    waiting: AtomicBool,
    wait_lock: Mutex<()>,
    cond: Condvar,
}

impl ReplySink for Out {
    fn flush(&self) {
        let mut w = self.w.lock().unwrap();
        let bytes = std::mem::take(&mut *self.buf.lock().unwrap());
        // A failed send shows up as a failed read on the connection's own thread.
        if !bytes.is_empty() { let _ = w.write_all(&bytes); }
    }
}

impl Out {
    fn settled(&self, bytes: usize) {
        self.reqs.fetch_sub(1, Ordering::SeqCst);
        self.bytes.fetch_sub(bytes, Ordering::SeqCst);
        // SeqCst on both sides: either the waiter's flag is seen here, or the waiter sees the
        // counts already down (see `wait_while`).
        if self.waiting.load(Ordering::SeqCst) {
            let _g = self.wait_lock.lock().unwrap();
            self.cond.notify_all();
        }
    }
    /// Wait while `busy` holds of the counts (requests, bytes).
    fn wait_while(&self, busy: impl Fn(usize, usize) -> bool) {
        let mut g = self.wait_lock.lock().unwrap();
        loop {
            self.waiting.store(true, Ordering::SeqCst);
            if !busy(self.reqs.load(Ordering::SeqCst), self.bytes.load(Ordering::SeqCst)) { break; }
            g = self.cond.wait(g).unwrap();
        }
        self.waiting.store(false, Ordering::SeqCst);
    }
    /// Wait until at most `limit` bytes are in flight.
    fn wait_below(&self, limit: usize) {
        if self.bytes.load(Ordering::SeqCst) <= limit { return; }
        self.wait_while(|_, b| b > limit);
    }
    /// Wait until every request handed on is answered.
    fn wait_until_answered(&self) {
        self.wait_while(|n, _| n > 0);
    }
}

type Replies = Arc<Out>;

fn simple_reply(out: &Replies, handle: u64, err: i32, data: Option<&[u8]>) {
    let mut b = out.buf.lock().unwrap();
    b.extend_from_slice(&SIMPLE_REPLY_MAGIC.to_be_bytes());
    b.extend_from_slice(&(err as u32).to_be_bytes());
    b.extend_from_slice(&handle.to_be_bytes());
    if let Some(d) = data { b.extend_from_slice(d); }
}

fn read_reply(out: &Replies, structured: bool, handle: u64, offset: u64, res: Result<Vec<u8>, i32>) {
    if !structured {
        match res { Ok(d) => simple_reply(out, handle, 0, Some(&d)), Err(e) => simple_reply(out, handle, e, None) }
        return;
    }
    let mut b = out.buf.lock().unwrap();
    b.extend_from_slice(&STRUCTURED_REPLY_MAGIC.to_be_bytes());
    b.extend_from_slice(&1u16.to_be_bytes()); // DONE
    match res {
        // An OFFSET_DATA chunk carries at least one byte: an empty read is answered with NONE.
        Ok(d) if d.is_empty() => {
            b.extend_from_slice(&0u16.to_be_bytes()); // NONE
            b.extend_from_slice(&handle.to_be_bytes());
            b.extend_from_slice(&0u32.to_be_bytes());
        }
        Ok(d) => {
            b.extend_from_slice(&1u16.to_be_bytes()); // OFFSET_DATA
            b.extend_from_slice(&handle.to_be_bytes());
            b.extend_from_slice(&((8 + d.len()) as u32).to_be_bytes());
            b.extend_from_slice(&offset.to_be_bytes());
            b.extend_from_slice(&d);
        }
        Err(e) => {
            b.extend_from_slice(&32769u16.to_be_bytes()); // ERROR
            b.extend_from_slice(&handle.to_be_bytes());
            b.extend_from_slice(&6u32.to_be_bytes());
            b.extend_from_slice(&(e as u32).to_be_bytes());
            b.extend_from_slice(&0u16.to_be_bytes());
        }
    }
}

/// Requests read but not yet handed to the log, with their counts for [`Out`].
#[derive(Default)]
struct Gathered {
    ops: Vec<(Op, Done)>,
    reqs: usize,
    bytes: usize,
}

/// Queue the operations of one request; its reply is gathered once all of them are done (the
/// first error wins). `bytes` counts against the connection's in-flight limit until then.
fn queue_request(pending: &mut Gathered, out: &Replies, handle: u64, ops: Vec<Op>, bytes: usize) {
    // Nothing to do (a zero-length write of zeros): answered at once, as nothing would answer it.
    if ops.is_empty() { simple_reply(out, handle, 0, None); return; }
    let dones = request_dones(pending, out, handle, ops.len(), bytes);
    pending.ops.extend(ops.into_iter().zip(dones));
}

/// The completions of a request done in `n` operations, made one by one as its operations are
/// queued: its reply is sent once all are done (the first error wins). The request counts in
/// `pending` (then, once handed on, against the connection's in-flight limit) until it is answered.
fn request_dones(pending: &mut Gathered, out: &Replies, handle: u64, n: usize, bytes: usize) -> Dones {
    pending.reqs += 1;
    pending.bytes += bytes;
    // The common case, one operation: its result is the reply, nothing shared.
    if n == 1 { return Dones::One(Some((out.clone(), handle, bytes))); }
    Dones::Many { out: out.clone(), handle, bytes, rest: n, left: Arc::new(AtomicUsize::new(n)), err: Arc::new(Mutex::new(0)) }
}

enum Dones {
    One(Option<(Replies, u64, usize)>),
    /// `rest`: completions not yet made; `left`: operations not yet done.
    Many { out: Replies, handle: u64, bytes: usize, rest: usize, left: Arc<AtomicUsize>, err: Arc<Mutex<i32>> },
}

impl Iterator for Dones {
    type Item = Done;
    fn next(&mut self) -> Option<Done> {
        match self {
            Dones::One(o) => {
                let (out, handle, bytes) = o.take()?;
                Some(Box::new(move |r: Result<(), i32>| {
                    simple_reply(&out, handle, r.err().unwrap_or(0), None);
                    out.settled(bytes);
                }))
            }
            Dones::Many { out, handle, bytes, rest, left, err } => {
                if *rest == 0 { return None; }
                *rest -= 1;
                let (out, handle, bytes, left, err) = (out.clone(), *handle, *bytes, left.clone(), err.clone());
                Some(Box::new(move |r: Result<(), i32>| {
                    if let Err(e) = r { let mut g = err.lock().unwrap(); if *g == 0 { *g = e; } }
                    if left.fetch_sub(1, Ordering::SeqCst) == 1 {
                        simple_reply(&out, handle, *err.lock().unwrap(), None);
                        out.settled(bytes);
                    }
                }))
            }
        }
    }
}

/// Hand what is pending to the device's log; its replies go out when its batch is done.
fn submit(dev: &Device, pending: &mut Gathered, out: &Replies) {
    if pending.ops.is_empty() { return; }
    // Counted before the log can answer any of them.
    out.reqs.fetch_add(pending.reqs, Ordering::SeqCst);
    out.bytes.fetch_add(pending.bytes, Ordering::SeqCst);
    let p = std::mem::take(pending);
    dev.submit(p.ops, Some(out.clone() as Arc<dyn ReplySink>));
}

/// Most requests gathered before they are handed to the log.
const MAX_BATCH_OPS: usize = 256;
/// Read replies waiting to be sent beyond this many bytes go out before the next request is read.
const REPLY_FLUSH_BYTES: usize = 8 << 20;
/// Most bytes of write data a connection may have in flight before it stops reading requests.
const MAX_INFLIGHT: usize = 64 << 20;

fn connection(mut c: Box<dyn Conn>, dev: Arc<Device>, name: &str) -> io::Result<()> {
    let Some(structured) = handshake(&mut *c, &dev, name)? else { c.close(); return Ok(()); };
    let out: Replies = Arc::new(Out { buf: Mutex::new(Vec::new()), w: Mutex::new(c.dup()?), reqs: AtomicUsize::new(0), bytes: AtomicUsize::new(0), waiting: AtomicBool::new(false), wait_lock: Mutex::new(()), cond: Condvar::new() });
    let mut pending = Gathered::default();
    let size = dev.size_lb * LBS;
    // Clients pipeline requests: read them through a buffer and hand every write already received
    // to the log before waiting for more. The log and the data device work on other threads, so
    // this one goes on reading while earlier requests are logged (group commit).
    let mut rd = io::BufReader::with_capacity(256 * 1024, c.dup()?);
    let mut bufs = LocalBufs::new();
    loop {
        if rd.buffer().len() < 28 || pending.ops.len() >= MAX_BATCH_OPS {
            submit(&dev, &mut pending, &out);
            out.flush();
            out.wait_below(MAX_INFLIGHT);
        }
        let mut hdr = [0u8; 28];
        if rd.read_exact(&mut hdr).is_err() { break; }
        let magic = u32::from_be_bytes(hdr[0..4].try_into().unwrap());
        if magic != REQUEST_MAGIC { break; }
        let flags = u16::from_be_bytes(hdr[4..6].try_into().unwrap());
        let kind = u16::from_be_bytes(hdr[6..8].try_into().unwrap());
        let handle = u64::from_be_bytes(hdr[8..16].try_into().unwrap());
        let offset = u64::from_be_bytes(hdr[16..24].try_into().unwrap());
        let length = u32::from_be_bytes(hdr[24..28].try_into().unwrap());
        let fua = flags & CMD_FLAG_FUA != 0;
        let in_range = offset.checked_add(length as u64).map_or(false, |e| e <= size);
        let aligned = offset % LBS == 0 && length as u64 % LBS == 0;
        match kind {
            CMD_READ => {
                // A read sees every write answered before it (those still in flight may or may
                // not show, as NBD allows).
                if length > MAX_REQUEST { read_reply(&out, structured, handle, offset, Err(EINVAL)); break; }
                if !in_range { read_reply(&out, structured, handle, offset, Err(EINVAL)); continue; }
                let a = offset / LBS * LBS;
                let e = (offset + length as u64).div_ceil(LBS) * LBS;
                let mut tmp = vec![0u8; (e - a) as usize];
                let r = dev.read(a / LBS, &mut tmp).map(|_| tmp[(offset - a) as usize..(offset - a) as usize + length as usize].to_vec()).map_err(|_| EIO);
                read_reply(&out, structured, handle, offset, r);
                // Replies gather until the requests buffered so far are handled: with pipelined
                // reads that is their whole data (a client sent 40 reads of 32 MiB: 1.3 GB here).
                // Send them once a few MiB wait; the socket then paces the client.
                if out.buf.lock().unwrap().len() >= REPLY_FLUSH_BYTES { out.flush(); }
            }
            CMD_WRITE => {
                if length > MAX_REQUEST { break; }
                if !in_range || !aligned {
                    // Drained and refused.
                    if io::copy(&mut (&mut rd).take(length as u64), &mut io::sink()).map_or(true, |n| n < length as u64) { break; }
                    simple_reply(&out, handle, if in_range { EINVAL } else { ENOSPC }, None);
                    continue;
                }
                // A zero-length write changes nothing: a log record of size 0 is invalid in the
                // WalB format (readers stop at it, and every later log would be lost to them).
                // With FUA it still asks for what came before to be durable.
                if length == 0 {
                    if fua { queue_request(&mut pending, &out, handle, vec![Op::Flush], 0); } else { simple_reply(&out, handle, 0, None); }
                    continue;
                }
                // Each piece of the log is read into a buffer of its own from the pool, and handed
                // to the log as soon as it is in: a large write is logged while the rest of it is
                // still arriving.
                let pieces = (length as usize).div_ceil(dev.piece);
                let mut dones = request_dones(&mut pending, &out, handle, pieces, length as usize);
                let mut pos = 0usize;
                let mut lost = false;
                for k in 0..pieces {
                    let n = (length as usize - pos).min(dev.piece);
                    let mut b = bufs.take(&dev.bufs, n);
                    if rd.read_exact(&mut b[..n]).is_err() { lost = true; break; }
                    pending.ops.push((Op::Write { lb: (offset + pos as u64) / LBS, data: Payload::Bytes(b, n), fua }, dones.next().unwrap()));
                    pos += n;
                    if k + 1 < pieces { submit(&dev, &mut pending, &out); }
                }
                if lost { submit(&dev, &mut pending, &out); for d in dones { d(Err(EIO)); } break; }
            }
            CMD_WRITE_ZEROES => {
                if !in_range { simple_reply(&out, handle, ENOSPC, None); continue; }
                if !aligned { simple_reply(&out, handle, EINVAL, None); continue; }
                let mut ops = Vec::new();
                let mut pos = 0u64;
                while pos < length as u64 {
                    let n = (length as u64 - pos).min(dev.piece as u64);
                    ops.push(Op::Write { lb: (offset + pos) / LBS, data: Payload::Zeros(n as usize), fua });
                    pos += n;
                }
                queue_request(&mut pending, &out, handle, ops, length as usize);
            }
            CMD_TRIM => {
                if !in_range { simple_reply(&out, handle, ENOSPC, None); continue; }
                if !aligned || length == 0 { simple_reply(&out, handle, if length == 0 { 0 } else { EINVAL }, None); continue; }
                queue_request(&mut pending, &out, handle, vec![Op::Discard { lb: offset / LBS, blocks: length as u64 / LBS, fua }], 0);
            }
            CMD_FLUSH => queue_request(&mut pending, &out, handle, vec![Op::Flush], 0),
            CMD_DISC => break,
            _ => simple_reply(&out, handle, if length > MAX_REQUEST { EOVERFLOW } else { EINVAL }, None),
        }
    }
    // What was received is answered before the socket closes.
    submit(&dev, &mut pending, &out);
    out.wait_until_answered();
    out.flush();
    c.close();
    Ok(())
}
