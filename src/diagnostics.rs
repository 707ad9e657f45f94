//! Turns every decision kcc takes into words.
//!
//! One place explains why this key, which backend and why, hit or miss and
//! why, and what a refresh did, so `KUBE_CREDENTIAL_CACHE_DEBUG` output and
//! `kcc doctor` say the same thing in the same words. This module is called;
//! it never calls back into the store or the plugin. It is given timestamps,
//! durations and key texts — never a credential — so it cannot leak a token.

use std::io::Write;

use jiff::{SignedDuration, Timestamp};

use crate::credential::ExpirySource;
use crate::duration::format_go_duration;

/// Why a cached credential was not served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Miss {
    /// Nothing stored under the key.
    NoEntry,
    /// The entry's expiry has passed.
    Expired {
        /// When it expired.
        at: Timestamp,
    },
    /// The entry expires within the refresh margin.
    WithinMargin {
        /// When it expires.
        at: Timestamp,
        /// The margin in force.
        margin: SignedDuration,
    },
    /// The stored entry could not be read.
    Corrupt {
        /// What was wrong (never its content).
        why: String,
    },
    /// The entry answers a different apiVersion than kubectl asked for.
    DifferentApiVersion {
        /// What is stored.
        stored: String,
        /// What kubectl wants.
        wanted: String,
    },
    /// The identity the plugin would use now is not the one the entry was
    /// stored for (see [`crate::identity`]).
    IdentityChanged {
        /// The recorded identity, in words.
        from: String,
        /// The current one.
        to: String,
    },
    /// The store could not be read at all.
    StoreUnreadable {
        /// The I/O error.
        why: String,
    },
}

/// What the next call for a key would do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Served from the cache.
    Hit {
        /// Expiry of the served credential.
        expiry: Timestamp,
        /// Whether that expiry is the default TTL kcc assigned.
        default_ttl: bool,
    },
    /// The plugin runs.
    Miss(Miss),
}

/// Short, human form of a span: `14m59s`, `2h0m0s`, `-3m0s`.
pub fn span(d: SignedDuration) -> String {
    format_go_duration(SignedDuration::from_secs(d.as_secs()))
}

/// A timestamp in RFC 3339 UTC, second precision.
pub fn when(t: Timestamp) -> String {
    let t = Timestamp::from_second(t.as_second()).unwrap_or(t);
    t.to_string()
}

/// Explains a decision at `now`.
pub fn describe(decision: &Decision, now: Timestamp) -> String {
    match decision {
        Decision::Hit { expiry, default_ttl } => {
            let ttl = if *default_ttl { " (default TTL: the plugin reported no expiry)" } else { "" };
            format!("hit: expires {} (in {}){ttl}", when(*expiry), span(expiry.duration_since(now)))
        }
        Decision::Miss(miss) => format!("miss: {}", describe_miss(miss, now)),
    }
}

/// Explains why the cache could not answer.
pub fn describe_miss(miss: &Miss, now: Timestamp) -> String {
    match miss {
        Miss::NoEntry => "no entry for this key".into(),
        Miss::Expired { at } => format!("expired at {} ({} ago)", when(*at), span(now.duration_since(*at))),
        Miss::WithinMargin { at, margin } => format!(
            "expires at {} (in {}), within the refresh margin of {}",
            when(*at),
            span(at.duration_since(now)),
            format_go_duration(*margin)
        ),
        Miss::Corrupt { why } => format!("corrupt entry ({why})"),
        Miss::DifferentApiVersion { stored, wanted } => {
            format!("the entry is {stored} but kubectl asks for {wanted}")
        }
        Miss::StoreUnreadable { why } => format!("the store cannot be read ({why})"),
        Miss::IdentityChanged { from, to } => format!("identity changed: {from} → {to}"),
    }
}

/// What a plugin run produced, in words.
pub fn describe_refresh(
    command: &str,
    took: std::time::Duration,
    expiry: Timestamp,
    source: ExpirySource,
    default_ttl: SignedDuration,
    now: Timestamp,
) -> String {
    let how = match source {
        ExpirySource::Reported => "as reported by the plugin".to_string(),
        ExpirySource::DefaultTtl => format!(
            "default TTL {} applied: the plugin reported no expiry or one far in the past",
            format_go_duration(default_ttl)
        ),
    };
    format!(
        "refreshed: ran '{command}' in {}ms; expires {} (in {}), {how}",
        took.as_millis(),
        when(expiry),
        span(expiry.duration_since(now))
    )
}

/// Prints explanations on stderr when debug output is on.
#[derive(Debug, Clone, Copy)]
pub struct Diag {
    enabled: bool,
}

impl Diag {
    /// A printer that prints only when `enabled`.
    pub fn new(enabled: bool) -> Diag {
        Diag { enabled }
    }

    /// Whether debug output is on.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Prints `kcc: debug: <message>` when enabled; the message is only built then.
    pub fn debug(&self, message: impl FnOnce() -> String) {
        if self.enabled {
            let _ = writeln!(std::io::stderr().lock(), "kcc: debug: {}", message());
        }
    }

    /// Prints a warning whether or not debug is on: something the user
    /// should know although kubectl's call still succeeds.
    pub fn warn(&self, message: &str) {
        let _ = writeln!(std::io::stderr().lock(), "kcc: warning: {message}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_for_each_decision() {
        let now: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let later = now + SignedDuration::from_mins(15);
        let hit = describe(&Decision::Hit { expiry: later, default_ttl: false }, now);
        assert_eq!(hit, "hit: expires 2026-01-01T00:15:00Z (in 15m0s)");
        let margin = describe(
            &Decision::Miss(Miss::WithinMargin {
                at: now + SignedDuration::from_secs(10),
                margin: SignedDuration::from_secs(30),
            }),
            now,
        );
        assert!(margin.contains("within the refresh margin of 30s"), "{margin}");
    }
}
