//! The hit path's keyring read, straight over D-Bus.
//!
//! Why: through the keyring crate a read costs ~17 ms per process — zbus
//! starts an executor and a thread pool, and the Secret Service session is
//! negotiated with a 1024-bit Diffie-Hellman exchange — which made a keyring
//! hit 8–10x the cost of starting `/bin/true`, every kubectl call. This
//! reader does the three calls a read needs on the calling thread with the
//! same minimal client as the probe ([`super::dbus`]): `SearchItems` with
//! the keyring crate's attributes (`service`, `username`), `OpenSession`
//! with the `plain` algorithm and `Item.GetSecret`, all sent with
//! `NO_AUTO_START` and bounded by one deadline.
//!
//! `plain` means the secret crosses the private session-bus socket
//! unencrypted. It never leaves the machine or the user: the bus is a unix
//! socket only the user can open, and any process that could watch it could
//! as well ask the (unlocked) Secret Service for the secret itself. libsecret
//! and secret-tool accept the same trade-off; writes still go through the
//! keyring crate (encrypted session).
//!
//! Anything this reader is not sure about — a locked or ambiguous match, a
//! split entry (the caller checks), an error reply — is left to the keyring
//! crate's path ([`Direct::Fallback`]), which handles every case.

use std::io;
use std::time::Instant;

use super::dbus::{BodyReader, Bus, BusAddress, Call, Reply, put_dict_ss, put_string, put_variant_string};

const SECRETS: &str = "org.freedesktop.secrets";

/// What the direct read found.
#[derive(Debug)]
pub enum Direct {
    /// The one unlocked item's secret.
    Found(Vec<u8>),
    /// No item, locked or unlocked, has these attributes.
    Missing,
    /// Not decided here (a locked or ambiguous match, an error reply).
    Fallback,
}

/// A connection to the Secret Service for reads, with its `plain` session
/// opened on first use.
pub struct Reader {
    bus: Bus,
    session: Option<String>,
}

fn call<'a>(path: &'a str, interface: &'a str, member: &'a str, signature: &'a str) -> Call<'a> {
    Call { path, interface, member, destination: SECRETS, signature, no_auto_start: true }
}

impl Reader {
    /// Connects to the session bus; every later call is bounded by `deadline`.
    pub fn connect(address: &BusAddress, deadline: Instant) -> io::Result<Reader> {
        Ok(Reader { bus: Bus::connect(address, deadline)?, session: None })
    }

    /// Reads over an established connection (the probe's).
    pub fn over(mut bus: Bus, deadline: Instant) -> Reader {
        bus.set_deadline(deadline);
        Reader { bus, session: None }
    }

    /// Reads the secret of `account` under `service`.
    pub fn read(&mut self, service: &str, account: &str) -> io::Result<Direct> {
        let mut body = Vec::new();
        put_dict_ss(&mut body, &[("service", service), ("username", account)]);
        let search = call("/org/freedesktop/secrets", "org.freedesktop.Secret.Service", "SearchItems", "a{ss}");
        let search_serial = self.bus.send(&search, &body)?;
        // The session is opened alongside the search (one round trip for
        // both); it costs the service nothing when the item turns out missing.
        let session_serial = match self.session {
            None => Some(self.send_open_session()?),
            Some(_) => None,
        };
        let (unlocked, locked) = match self.bus.wait(search_serial)? {
            Reply::Return(body, le) => {
                let mut r = BodyReader::new(&body, le);
                let unlocked: Vec<String> = r.object_paths()?.into_iter().map(str::to_owned).collect();
                (unlocked, r.object_paths()?.len())
            }
            Reply::Error(_) => return Ok(Direct::Fallback),
        };
        let item = match (unlocked.as_slice(), locked) {
            ([], 0) => return Ok(Direct::Missing),
            ([item], 0) => item.clone(),
            _ => return Ok(Direct::Fallback),
        };
        if let Some(serial) = session_serial {
            self.session = self.wait_session(serial)?;
        }
        let Some(session) = self.session.clone() else { return Ok(Direct::Fallback) };

        let mut body = Vec::new();
        put_string(&mut body, &session);
        let get = call(&item, "org.freedesktop.Secret.Item", "GetSecret", "o");
        Ok(match self.bus.call_with(&get, &body)? {
            Reply::Return(body, le) => {
                // (oayays): session, parameters, value, content type.
                let mut r = BodyReader::new(&body, le);
                r.align(8);
                r.string()?;
                r.bytes()?;
                Direct::Found(r.bytes()?.to_vec())
            }
            Reply::Error(_) => Direct::Fallback,
        })
    }

    /// Sends `OpenSession("plain", "")`; the session ends with the connection.
    fn send_open_session(&mut self) -> io::Result<u32> {
        let mut body = Vec::new();
        put_string(&mut body, "plain");
        put_variant_string(&mut body, "");
        let open = call("/org/freedesktop/secrets", "org.freedesktop.Secret.Service", "OpenSession", "sv");
        self.bus.send(&open, &body)
    }

    /// The session path from `OpenSession`'s reply; None on an odd reply.
    fn wait_session(&mut self, serial: u32) -> io::Result<Option<String>> {
        Ok(match self.bus.wait(serial)? {
            Reply::Return(body, le) => {
                let mut r = BodyReader::new(&body, le);
                if r.signature()? != "s" {
                    return Ok(None);
                }
                r.string()?;
                Some(r.string()?.to_owned())
            }
            Reply::Error(_) => None,
        })
    }
}
