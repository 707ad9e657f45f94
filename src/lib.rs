//! kcc — kube-credential-cache.
//!
//! A caching proxy for Kubernetes exec credential plugins (`aws eks get-token`,
//! `gke-gcloud-auth-plugin`, `kubelogin`, …). kubectl runs the plugin on every
//! invocation; kcc runs it once, keeps the `ExecCredential` it printed in a
//! file-locked store and serves it until shortly before it expires.
//!
//! The binary is a chimera (see `src/main.rs`): its personality comes from the
//! name it was called by (`kcc`, `kcc-cache`, `kcc-injector`) and, for `kcc`,
//! from the subcommand. Data flows one way on the hot path:
//! argv → [`config`] → [`key`] → [`store`] → ([`plugin`] → [`store`]) → stdout.
//! [`diagnostics`] is called from every step and never calls back.

pub mod backoff;
pub mod capture;
pub mod cli;
pub mod cmd;
pub mod config;
pub mod credential;
pub mod diagnostics;
pub mod dispatch;
pub mod duration;
#[doc(hidden)]
pub mod fuzz;
pub mod generate;
pub mod heal;
pub mod identity;
pub mod key;
pub mod kubeconfig;
pub mod kuberc;
pub mod lock;
pub mod paths;
pub mod personality;
pub mod platform;
pub mod plugin;
pub mod refresh;
pub mod report;
pub mod store;
