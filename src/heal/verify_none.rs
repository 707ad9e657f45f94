//! Where healing cannot run (no `/proc`: macOS, Windows, the BSDs), kcc
//! never asks the server: [`probe`] answers "no answer" and the cached
//! credential is served. [`super::Client::parent`] is None there anyway, so
//! this is never reached; it keeps the module's shape on every platform
//! without compiling a TLS stack nobody calls.

use std::time::Duration;

use super::ServerSaid;
use super::cluster::Cluster;

/// The bound of the check (unused here).
pub const BOUND: Duration = Duration::from_secs(2);

/// What a probe found.
#[derive(Debug, Clone)]
pub struct Probe {
    /// Always [`ServerSaid::NoAnswer`].
    pub said: ServerSaid,
    /// Why.
    pub detail: Option<String>,
}

/// Never asks: healing is Linux-only.
pub fn probe(_cluster: &Cluster, _json: &str, _bound: Duration) -> Probe {
    Probe { said: ServerSaid::NoAnswer, detail: Some("healing checks run on Linux only".into()) }
}
