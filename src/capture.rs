//! The plugin's stderr, shown as it comes and kept (the last
//! [`TAIL_LIMIT`] bytes), so a failure can be answered again later without
//! running the plugin (see [`crate::backoff`]).
//!
//! Used only when kcc's own stderr is not a terminal: a plugin that prompts
//! or colours its output when stderr is a terminal must see the terminal,
//! so there the plugin inherits kcc's stderr as before and nothing is kept.
//! Where kcc's stderr is a pipe or a file (kubectl run by an IDE, k9s
//! logging, a CI job) the plugin could not tell a terminal anyway.
//!
//! Why a file and not a pipe: the plugin's stderr is an unlinked 0600 file in
//! the store's private flight directory, followed by a thread with `pread`
//! (its own offset; the plugin's writes move only the plugin's) that copies
//! every new byte to kcc's stderr within [`POLL`]. With a pipe, a process the
//! plugin leaves behind (the browser a login plugin opens) would keep the
//! pipe open: kcc would have to wait for it or leave it writing into a closed
//! pipe, and SIGPIPE kills Go programs that write to stderr. A file never
//! blocks and never breaks: what such a process writes after the plugin
//! exited lands in the unlinked file and is freed when it closes it. On Linux
//! the bytes already copied are punched out of the file, so a plugin that
//! floods stderr costs no disk.
//!
//! Unix only; elsewhere [`Capture::start`] fails and the plugin inherits
//! kcc's stderr (nothing kept, the back-off then says so).

use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

/// How much of the plugin's stderr is kept (its end: errors come last).
pub const TAIL_LIMIT: usize = 4096;

/// How often the file is checked for new output while the plugin runs.
#[cfg(unix)]
const POLL: std::time::Duration = std::time::Duration::from_millis(15);

/// Consumed bytes are punched out of the file once this many piled up.
#[cfg(target_os = "linux")]
const PUNCH_AFTER: u64 = 1 << 20;

/// A running capture; [`Capture::finish`] ends it.
#[derive(Debug)]
pub struct Capture {
    file: File,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Vec<u8>>>,
}

impl Capture {
    /// Creates the scratch file at `scratch` (which must not exist), unlinks
    /// it at once and starts copying what is written to it to kcc's stderr.
    #[cfg(unix)]
    pub fn start(scratch: &Path) -> io::Result<Capture> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(scratch)?;
        std::fs::remove_file(scratch)?;
        let reader = file.try_clone()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread =
            std::thread::Builder::new().name("plugin-stderr".into()).spawn(move || follow(&reader, &stopped))?;
        Ok(Capture { file, stop, thread: Some(thread) })
    }

    /// Not supported here: the plugin inherits kcc's stderr.
    #[cfg(not(unix))]
    pub fn start(_scratch: &Path) -> io::Result<Capture> {
        Err(io::Error::new(io::ErrorKind::Unsupported, "stderr capture needs pread"))
    }

    /// The handle to give the plugin as its stderr.
    pub fn for_child(&self) -> io::Result<File> {
        self.file.try_clone()
    }

    /// Copies what is left (call it once the plugin has exited) and returns
    /// the last [`TAIL_LIMIT`] bytes it wrote.
    pub fn finish(mut self) -> Vec<u8> {
        self.stop.store(true, Ordering::Release);
        self.thread.take().and_then(|t| t.join().ok()).unwrap_or_default()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

/// The copying loop: drains the file, then sleeps; after `stop` one last
/// drain (everything the plugin wrote before it exited) and the tail.
#[cfg(unix)]
fn follow(file: &File, stop: &AtomicBool) -> Vec<u8> {
    use std::io::Write;
    use std::os::unix::fs::FileExt;
    let mut offset = 0u64;
    let mut punched = 0u64;
    let mut tail = Tail::default();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let stopping = stop.load(Ordering::Acquire);
        loop {
            match file.read_at(&mut buf, offset) {
                Ok(0) => break,
                Ok(n) => {
                    let _ = io::stderr().write_all(&buf[..n]);
                    tail.push(&buf[..n]);
                    offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return tail.bytes,
            }
        }
        #[cfg(target_os = "linux")]
        if offset - punched >= PUNCH_AFTER {
            punch(file, punched, offset - punched);
            punched = offset;
        }
        #[cfg(not(target_os = "linux"))]
        let _ = &mut punched;
        if stopping {
            return tail.bytes;
        }
        std::thread::sleep(POLL);
    }
}

/// Frees the disk blocks of bytes already copied (best effort; the offsets
/// and the file size stay as they are).
#[cfg(target_os = "linux")]
fn punch(file: &File, from: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(from), Ok(len)) = (libc::off_t::try_from(from), libc::off_t::try_from(len)) else { return };
    // SAFETY: fallocate only reads its integer arguments; the descriptor is
    // open for as long as `file` lives.
    unsafe {
        libc::fallocate(file.as_raw_fd(), libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE, from, len);
    }
}

/// The last [`TAIL_LIMIT`] bytes pushed.
#[derive(Debug, Default)]
#[cfg_attr(not(unix), allow(dead_code))]
struct Tail {
    bytes: Vec<u8>,
}

#[cfg_attr(not(unix), allow(dead_code))]
impl Tail {
    fn push(&mut self, chunk: &[u8]) {
        if chunk.len() >= TAIL_LIMIT {
            self.bytes.clear();
            self.bytes.extend_from_slice(&chunk[chunk.len() - TAIL_LIMIT..]);
            return;
        }
        let overflow = (self.bytes.len() + chunk.len()).saturating_sub(TAIL_LIMIT);
        self.bytes.drain(..overflow);
        self.bytes.extend_from_slice(chunk);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_keeps_the_last_bytes() {
        let mut t = Tail::default();
        t.push(b"abc");
        t.push(&vec![b'x'; TAIL_LIMIT - 1]);
        assert_eq!(t.bytes.len(), TAIL_LIMIT);
        assert_eq!(&t.bytes[..1], b"c");
        t.push(&vec![b'y'; TAIL_LIMIT + 7]);
        assert_eq!(t.bytes, vec![b'y'; TAIL_LIMIT]);
    }

    #[cfg(unix)]
    #[test]
    fn a_child_writing_to_the_capture_is_kept_and_outliving_writers_do_not_block() {
        use std::time::Duration;
        let dir = tempfile::tempdir().unwrap();
        let scratch = dir.path().join("s");
        let capture = Capture::start(&scratch).unwrap();
        assert!(!scratch.exists(), "the scratch file is unlinked at once");
        let started = std::time::Instant::now();
        // A grandchild keeps the file open for 5 s after the child exits.
        let status = std::process::Command::new("sh")
            .args(["-c", "echo first >&2; sleep 0.1; echo second >&2; (sleep 5; echo late >&2) &"])
            .stderr(capture.for_child().unwrap())
            .status()
            .unwrap();
        assert!(status.success());
        let kept = capture.finish();
        assert_eq!(String::from_utf8_lossy(&kept), "first\nsecond\n");
        assert!(started.elapsed() < Duration::from_secs(3), "did not wait for the grandchild");
    }
}
