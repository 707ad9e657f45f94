//! Kernel keyrings of a world's own, so no test reads, clears or leaves
//! behind a key in the keyrings of the uid running the tests.
//!
//! kcc keeps kernel keys in the uid's *persistent* keyring, and `kcc clear`
//! and `kcc doctor` enumerate that keyring (they find keys no index names).
//! Every test runs as the same uid, so without isolation they would share one
//! keyring: a `clear --all` in one test would remove another's keys while it
//! runs, and every key a test forgot would stay in root's persistent keyring
//! for days (one CI run left 65).
//!
//! Persistent keyrings are per *user namespace* (keyrings(7): the register
//! hangs off the namespace), so each [`World`](crate::util::World) gets a
//! user namespace of its own with the identity mapping (uid 0 is still uid 0,
//! file ownership and `setpriv` to other uids work as outside), and every
//! command of the world enters it. Keys are still charged to the real uid
//! (quotas are per kernel uid, so the quota tests stay real), and
//! `/proc/keys` read by the test process still shows them. When the world is
//! dropped, the last reference to the namespace goes, and with it its
//! persistent keyrings and every key in them: nothing outlives the test.

use std::fs::File;
use std::os::fd::{AsRawFd, RawFd};
use std::process::{Command, Stdio};

/// An open user namespace (its `/proc/PID/ns/user`, which keeps it alive).
#[derive(Debug)]
pub struct PrivateKeyrings(File);

impl PrivateKeyrings {
    /// A fresh user namespace mapping every uid and gid to itself (as root;
    /// as another user, only that user's own uid and gid). A holder process
    /// creates it, the maps are written, the namespace file is opened, and
    /// the holder is stopped: the open file keeps the namespace.
    pub fn new() -> Result<PrivateKeyrings, String> {
        use std::os::unix::process::CommandExt;
        let mut holder = Command::new("sleep");
        holder.arg("600").stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        // SAFETY: unshare is async-signal-safe; it runs between fork and exec.
        unsafe {
            holder.pre_exec(|| {
                if libc::unshare(libc::CLONE_NEWUSER) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            })
        };
        let mut child = holder.spawn().map_err(|e| format!("cannot create a user namespace: {e}"))?;
        let pid = child.id();
        let result = map_identity(pid)
            .and_then(|()| File::open(format!("/proc/{pid}/ns/user")).map_err(|e| format!("/proc/{pid}/ns/user: {e}")));
        let _ = child.kill();
        let _ = child.wait();
        result.map(PrivateKeyrings)
    }

    /// The namespace's file descriptor, for [`enter`].
    pub fn fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

fn map_identity(pid: u32) -> Result<(), String> {
    let write = |name: &str, text: &str| {
        std::fs::write(format!("/proc/{pid}/{name}"), text).map_err(|e| format!("/proc/{pid}/{name}: {e}"))
    };
    // SAFETY: getuid/getgid cannot fail.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    if uid == 0 {
        write("uid_map", "0 0 4294967295\n")?;
        write("gid_map", "0 0 4294967295\n")
    } else {
        write("uid_map", &format!("{uid} {uid} 1\n"))?;
        write("setgroups", "deny")?;
        write("gid_map", &format!("{gid} {gid} 1\n"))
    }
}

/// Moves the calling (single-threaded, freshly forked) process into the
/// namespace `fd`. For `pre_exec`: only async-signal-safe calls.
pub fn enter(fd: RawFd) -> std::io::Result<()> {
    // SAFETY: setns only reads the descriptor.
    if unsafe { libc::setns(fd, libc::CLONE_NEWUSER) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
