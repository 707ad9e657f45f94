//! A minimal, blocking D-Bus client for the Secret Service probe.
//!
//! Why not zbus for this: a zbus connection starts an executor, an I/O
//! reactor and a thread pool, ~5 ms of a debug build's CPU per process — under
//! 16 parallel kubectl calls on two cores that alone blew a 50 ms budget.
//! This client does what the probe needs and nothing else, on the calling
//! thread, with socket timeouts derived from one deadline: connect, SASL
//! `EXTERNAL`, `Hello`, `NameHasOwner` (answered by the bus daemon, never
//! activates anything) and a `Properties.Get` of the default collection's
//! `Locked`, sent with `NO_AUTO_START` so it cannot start a service either.
//! It speaks to `unix:path=`, `unix:abstract=` and `unix:runtime=yes`
//! addresses; kcc never autolaunches a bus.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A parsed session bus address kcc can connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusAddress {
    /// A socket file.
    Path(PathBuf),
    /// A Linux abstract socket name.
    Abstract(String),
}

/// Picks the first usable entry of a D-Bus address list; `Err` says why none.
pub fn parse_address(list: &str) -> Result<BusAddress, String> {
    let mut seen = Vec::new();
    for entry in list.split(';').map(str::trim).filter(|e| !e.is_empty()) {
        let Some((transport, params)) = entry.split_once(':') else { continue };
        seen.push(transport.to_string());
        if transport != "unix" {
            continue;
        }
        for kv in params.split(',') {
            match kv.split_once('=') {
                Some(("path", p)) => return Ok(BusAddress::Path(PathBuf::from(unescape(p)))),
                Some(("abstract", a)) => return Ok(BusAddress::Abstract(unescape(a))),
                Some(("runtime", "yes")) => {
                    if let Ok(dir) = std::env::var("XDG_RUNTIME_DIR") {
                        return Ok(BusAddress::Path(Path::new(&dir).join("bus")));
                    }
                }
                _ => {}
            }
        }
    }
    if seen.iter().any(|t| t == "autolaunch") {
        return Err("the session bus address asks for autolaunch; kcc never autolaunches a bus".into());
    }
    Err(format!("no unix: session bus address kcc can use in '{list}'"))
}

/// D-Bus addresses escape bytes as `%xx`.
fn unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A connection that gives up at a deadline.
pub struct Bus {
    stream: BufReader<UnixStream>,
    deadline: Instant,
    serial: u32,
    /// Replies that arrived while waiting for another serial (calls are
    /// pipelined: several are sent before the first reply is read).
    early: Vec<(u32, Reply)>,
}

/// What a method call got back.
#[derive(Debug)]
pub enum Reply {
    /// A method return: its body bytes and whether they are little-endian.
    Return(Vec<u8>, bool),
    /// An error reply: the error name.
    Error(String),
}

impl Bus {
    /// Connects, authenticates and says `Hello`, all before `deadline`.
    pub fn connect(address: &BusAddress, deadline: Instant) -> io::Result<Bus> {
        let stream = match address {
            BusAddress::Path(p) => UnixStream::connect(p)?,
            #[cfg(any(target_os = "linux", target_os = "android"))]
            BusAddress::Abstract(name) => {
                use std::os::linux::net::SocketAddrExt;
                let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
                UnixStream::connect_addr(&addr)?
            }
            #[cfg(not(any(target_os = "linux", target_os = "android")))]
            BusAddress::Abstract(_) => {
                return Err(io::Error::new(io::ErrorKind::Unsupported, "abstract sockets exist on Linux only"));
            }
        };
        let mut bus = Bus { stream: BufReader::new(stream), deadline, serial: 0, early: Vec::new() };
        // SAFETY: getuid has no preconditions and cannot fail.
        let uid = unsafe { libc::getuid() };
        let hex: String = uid.to_string().bytes().map(|b| format!("{b:02x}")).collect();
        bus.arm()?;
        bus.stream.get_mut().write_all(format!("\0AUTH EXTERNAL {hex}\r\n").as_bytes())?;
        let mut line = String::new();
        bus.arm()?;
        bus.stream.read_line(&mut line)?;
        if !line.starts_with("OK ") {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("bus refused EXTERNAL auth: {}", line.trim()),
            ));
        }
        bus.stream.get_mut().write_all(b"BEGIN\r\n")?;
        // `Hello` must be the first message; its reply is not waited for:
        // the bus handles messages in order, so the caller's next calls can
        // follow at once, and a failed `Hello` fails them too.
        let hello = Call {
            path: "/org/freedesktop/DBus",
            interface: "org.freedesktop.DBus",
            member: "Hello",
            destination: "org.freedesktop.DBus",
            signature: "",
            no_auto_start: false,
        };
        bus.send(&hello, &[])?;
        Ok(bus)
    }

    /// Moves the deadline (a later stage may get its own budget).
    pub fn set_deadline(&mut self, deadline: Instant) {
        self.deadline = deadline;
    }

    /// Sets the socket timeouts to what is left before the deadline.
    fn arm(&mut self) -> io::Result<()> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "deadline passed"));
        }
        let left = left.max(Duration::from_millis(1));
        self.stream.get_ref().set_read_timeout(Some(left))?;
        self.stream.get_ref().set_write_timeout(Some(left))
    }

    /// Calls a method whose body the caller marshalled (see [`put_string`],
    /// [`put_dict_ss`], [`put_variant_string`]) and waits for its reply.
    pub fn call_with(&mut self, call: &Call<'_>, body: &[u8]) -> io::Result<Reply> {
        let serial = self.send(call, body)?;
        self.wait(serial)
    }

    /// Sends a method call without waiting; [`Bus::wait`] takes its reply.
    /// Pipelining saves a round trip per call (a keyring hit is a handful of
    /// them, each a few hundred microseconds against gnome-keyring).
    pub fn send(&mut self, call: &Call<'_>, body: &[u8]) -> io::Result<u32> {
        self.serial += 1;
        let serial = self.serial;
        let message = method_call(serial, call, body);
        self.arm()?;
        self.stream.get_mut().write_all(&message)?;
        Ok(serial)
    }

    /// Waits for the reply to `serial`, keeping replies to other calls for
    /// their own `wait` and skipping signals (such as `NameAcquired`).
    pub fn wait(&mut self, serial: u32) -> io::Result<Reply> {
        if let Some(at) = self.early.iter().position(|(s, _)| *s == serial) {
            return Ok(self.early.remove(at).1);
        }
        loop {
            self.arm()?;
            let mut fixed = [0u8; 16];
            self.stream.read_exact(&mut fixed)?;
            let le = match fixed[0] {
                b'l' => true,
                b'B' => false,
                _ => return Err(io::Error::new(io::ErrorKind::InvalidData, "not a D-Bus message")),
            };
            let kind = fixed[1];
            let body_len = u32_at(&fixed, 4, le) as usize;
            let fields_len = u32_at(&fixed, 12, le) as usize;
            if body_len > 1 << 20 || fields_len > 1 << 16 {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "oversized D-Bus message"));
            }
            let mut rest = vec![0u8; pad8(16 + fields_len) - 16 + body_len];
            self.stream.read_exact(&mut rest)?;
            let fields = &rest[..fields_len];
            let body = rest[pad8(16 + fields_len) - 16..].to_vec();
            let (reply_serial, error_name) = reply_fields(fields, le);
            let reply = match kind {
                2 => Reply::Return(body, le),
                3 => Reply::Error(error_name.unwrap_or_else(|| "unknown error".into())),
                _ => continue, // a signal or a call to us
            };
            match reply_serial {
                Some(s) if s == serial => return Ok(reply),
                // A reply to another pipelined call (Hello's, or one to a
                // different destination that answered first).
                Some(s) if s <= self.serial && self.early.len() < 16 => self.early.push((s, reply)),
                _ => {}
            }
        }
    }
}

fn pad8(n: usize) -> usize {
    n.div_ceil(8) * 8
}

/// A u32 at `at` in the given byte order.
pub fn u32_at(bytes: &[u8], at: usize, le: bool) -> u32 {
    let b: [u8; 4] = bytes.get(at..at + 4).and_then(|s| s.try_into().ok()).unwrap_or([0; 4]);
    if le { u32::from_le_bytes(b) } else { u32::from_be_bytes(b) }
}

/// Finds REPLY_SERIAL (5) and ERROR_NAME (4) in a header field array.
/// Offsets inside `fields` are message offsets minus 16 (a multiple of 8), so
/// alignment can be computed on them directly.
pub(crate) fn reply_fields(fields: &[u8], le: bool) -> (Option<u32>, Option<String>) {
    let mut at = 0;
    let (mut serial, mut error) = (None, None);
    while at < fields.len() {
        at = at.next_multiple_of(8);
        let Some(&code) = fields.get(at) else { break };
        let Some(&sig_len) = fields.get(at + 1) else { break };
        let sig = fields.get(at + 2..at + 2 + sig_len as usize).unwrap_or_default().to_vec();
        at += 2 + sig_len as usize + 1;
        match sig.as_slice() {
            b"u" => {
                at = at.next_multiple_of(4);
                if code == 5 {
                    serial = Some(u32_at(fields, at, le));
                }
                at += 4;
            }
            b"s" | b"o" => {
                at = at.next_multiple_of(4);
                let len = u32_at(fields, at, le) as usize;
                if code == 4 {
                    error = fields.get(at + 4..at + 4 + len).map(|s| String::from_utf8_lossy(s).into_owned());
                }
                at += 4 + len + 1;
            }
            b"g" => {
                let len = fields.get(at).copied().unwrap_or(0) as usize;
                at += 1 + len + 1;
            }
            _ => break,
        }
    }
    (serial, error)
}

/// The header of a method call.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    pub path: &'a str,
    pub interface: &'a str,
    pub member: &'a str,
    pub destination: &'a str,
    /// The body's D-Bus signature ("" for none).
    pub signature: &'a str,
    /// Never let the bus start (activate) the destination.
    pub no_auto_start: bool,
}

/// Marshals a little-endian method call around an already marshalled body.
fn method_call(serial: u32, call: &Call<'_>, body: &[u8]) -> Vec<u8> {
    let mut m = vec![b'l', 1, if call.no_auto_start { 2 } else { 0 }, 1];
    m.extend_from_slice(&(body.len() as u32).to_le_bytes());
    m.extend_from_slice(&serial.to_le_bytes());
    m.extend_from_slice(&[0; 4]); // field array length, patched below
    let fields_start = m.len();
    let field = |m: &mut Vec<u8>, code: u8, ty: u8, value: &str| {
        align(m, 8);
        m.extend_from_slice(&[code, 1, ty, 0]);
        if ty == b'g' {
            m.push(value.len() as u8);
            m.extend_from_slice(value.as_bytes());
            m.push(0);
        } else {
            put_string(m, value);
        }
    };
    field(&mut m, 1, b'o', call.path);
    field(&mut m, 2, b's', call.interface);
    field(&mut m, 3, b's', call.member);
    field(&mut m, 6, b's', call.destination);
    if !call.signature.is_empty() {
        field(&mut m, 8, b'g', call.signature);
    }
    let fields_len = (m.len() - fields_start) as u32;
    m[12..16].copy_from_slice(&fields_len.to_le_bytes());
    align(&mut m, 8);
    m.extend_from_slice(body);
    m
}

/// Appends `a{ss}` (a dict of strings), e.g. Secret Service search attributes.
pub fn put_dict_ss(buf: &mut Vec<u8>, entries: &[(&str, &str)]) {
    align(buf, 4);
    let len_at = buf.len();
    buf.extend_from_slice(&[0; 4]);
    align(buf, 8); // dict entries are 8-aligned; this padding is not counted
    let start = buf.len();
    for (k, v) in entries {
        align(buf, 8);
        put_string(buf, k);
        put_string(buf, v);
    }
    let len = (buf.len() - start) as u32;
    buf[len_at..len_at + 4].copy_from_slice(&len.to_le_bytes());
}

/// Appends a variant holding a string (`v` of signature `s`).
pub fn put_variant_string(buf: &mut Vec<u8>, s: &str) {
    buf.extend_from_slice(&[1, b's', 0]);
    put_string(buf, s);
}

/// Reads a message body in the marshalling order of its signature. Offsets
/// are body offsets (bodies start 8-aligned, so alignment is the same).
/// Every read is bounds-checked: a short or hostile body is an error, never
/// a panic.
pub struct BodyReader<'a> {
    body: &'a [u8],
    at: usize,
    le: bool,
}

impl<'a> BodyReader<'a> {
    pub fn new(body: &'a [u8], le: bool) -> BodyReader<'a> {
        BodyReader { body, at: 0, le }
    }

    fn invalid(what: &str) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, format!("malformed D-Bus reply ({what})"))
    }

    pub fn align(&mut self, to: usize) {
        self.at = self.at.next_multiple_of(to);
    }

    pub fn u32(&mut self) -> io::Result<u32> {
        self.align(4);
        if self.at + 4 > self.body.len() {
            return Err(Self::invalid("u32"));
        }
        let v = u32_at(self.body, self.at, self.le);
        self.at += 4;
        Ok(v)
    }

    /// `ay`: a byte array.
    pub fn bytes(&mut self) -> io::Result<&'a [u8]> {
        let len = self.u32()? as usize;
        let out = self.body.get(self.at..self.at + len).ok_or_else(|| Self::invalid("byte array"))?;
        self.at += len;
        Ok(out)
    }

    /// `s` or `o`: a string and its terminating NUL.
    pub fn string(&mut self) -> io::Result<&'a str> {
        let bytes = self.bytes()?;
        self.at += 1;
        std::str::from_utf8(bytes).map_err(|_| Self::invalid("string"))
    }

    /// `g`: a signature (one length byte).
    pub fn signature(&mut self) -> io::Result<&'a str> {
        let len = *self.body.get(self.at).ok_or_else(|| Self::invalid("signature"))? as usize;
        let out = self.body.get(self.at + 1..self.at + 1 + len).ok_or_else(|| Self::invalid("signature"))?;
        self.at += len + 2;
        std::str::from_utf8(out).map_err(|_| Self::invalid("signature"))
    }

    /// `ao`: an array of object paths.
    pub fn object_paths(&mut self) -> io::Result<Vec<&'a str>> {
        let len = self.u32()? as usize;
        let end = self.at.checked_add(len).filter(|&e| e <= self.body.len()).ok_or_else(|| Self::invalid("array"))?;
        let mut out = Vec::new();
        while self.at < end {
            out.push(self.string()?);
        }
        Ok(out)
    }
}

fn align(buf: &mut Vec<u8>, to: usize) {
    while !buf.len().is_multiple_of(to) {
        buf.push(0);
    }
}

/// Appends `s` or `o`: a string.
pub fn put_string(buf: &mut Vec<u8>, s: &str) {
    align(buf, 4);
    buf.extend_from_slice(&(s.len() as u32).to_le_bytes());
    buf.extend_from_slice(s.as_bytes());
    buf.push(0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_kcc_can_and_cannot_use() {
        assert_eq!(parse_address("unix:path=/run/user/1/bus").unwrap(), BusAddress::Path("/run/user/1/bus".into()));
        assert_eq!(
            parse_address("unix:abstract=/tmp/dbus-x,guid=1").unwrap(),
            BusAddress::Abstract("/tmp/dbus-x".into())
        );
        assert_eq!(parse_address("tcp:host=h;unix:path=/a%20b").unwrap(), BusAddress::Path("/a b".into()));
        assert!(parse_address("autolaunch:").unwrap_err().contains("never autolaunches"));
        assert!(parse_address("tcp:host=localhost,port=1").is_err());
    }

    #[test]
    fn a_method_call_reads_back_its_own_fields() {
        let mut body = Vec::new();
        put_string(&mut body, "x");
        let call =
            Call { path: "/p", interface: "i.f", member: "M", destination: "d.e", signature: "s", no_auto_start: true };
        let m = method_call(7, &call, &body);
        let body_len = u32_at(&m, 4, true) as usize;
        assert_eq!(body_len, 4 + 1 + 1, "one string: length, bytes, NUL");
        assert_eq!((m.len() - body_len) % 8, 0, "the body starts 8-aligned");
        let fields_len = u32_at(&m, 12, true) as usize;
        let (serial, error) = reply_fields(&m[16..16 + fields_len], true);
        assert_eq!((serial, error), (None, None));
        assert_eq!(m[2], 2, "NO_AUTO_START");
    }

    #[test]
    fn bodies_marshal_and_read_back() {
        let mut body = Vec::new();
        put_string(&mut body, "plain");
        put_variant_string(&mut body, "");
        put_dict_ss(&mut body, &[("service", "kube-credential-cache"), ("username", "k")]);
        let mut r = BodyReader::new(&body, true);
        assert_eq!(r.string().unwrap(), "plain");
        assert_eq!(r.signature().unwrap(), "s");
        assert_eq!(r.string().unwrap(), "");
        let len = r.u32().unwrap() as usize;
        r.align(8);
        let end = r.at + len;
        assert_eq!(end, body.len());
        r.align(8);
        assert_eq!((r.string().unwrap(), r.string().unwrap()), ("service", "kube-credential-cache"));
        r.align(8);
        assert_eq!((r.string().unwrap(), r.string().unwrap()), ("username", "k"));

        let mut paths = Vec::new();
        paths.extend_from_slice(&[0; 4]);
        put_string(&mut paths, "/a/b");
        put_string(&mut paths, "/c");
        let len = (paths.len() - 4) as u32;
        paths[..4].copy_from_slice(&len.to_le_bytes());
        assert_eq!(BodyReader::new(&paths, true).object_paths().unwrap(), vec!["/a/b", "/c"]);
        // Truncated or hostile bodies are errors, not panics.
        for cut in 0..paths.len() {
            let _ = BodyReader::new(&paths[..cut], true).object_paths();
        }
        assert!(BodyReader::new(&[0xff, 0xff, 0xff, 0xff], true).object_paths().is_err());
    }
}
