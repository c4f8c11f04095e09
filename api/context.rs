//! The context a server handler receives with every method call.

use zbus::{Connection, message::Header, object_server::SignalEmitter};

/// What a handler may need to know about the call it is serving: who sent it, on which
/// connection, and how to emit signals from the called object.
#[derive(Debug)]
pub struct CallContext<'a> {
    header: &'a Header<'a>,
    connection: &'a Connection,
    emitter: &'a SignalEmitter<'a>,
}

impl<'a> CallContext<'a> {
    /// Bundles the parts zbus hands to an interface method. Used by generated adapters.
    pub fn new(
        header: &'a Header<'a>,
        connection: &'a Connection,
        emitter: &'a SignalEmitter<'a>,
    ) -> Self {
        Self {
            header,
            connection,
            emitter,
        }
    }

    /// The message header of the call (sender, member, serial).
    pub fn header(&self) -> &Header<'a> {
        self.header
    }

    /// The caller's unique bus name, if the call came through a bus.
    pub fn sender(&self) -> Option<&str> {
        self.header.sender().map(|s| s.as_str())
    }

    /// The connection the call arrived on.
    pub fn connection(&self) -> &Connection {
        self.connection
    }

    /// A signal emitter for the called object.
    pub fn emitter(&self) -> &SignalEmitter<'a> {
        self.emitter
    }
}
