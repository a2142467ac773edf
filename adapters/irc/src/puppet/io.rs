//! What passes between the puppets' bookkeeping ([`super::Puppets`]) and
//! the I/O around it: the commands a puppet connection takes, what it
//! reports, the actions the driver carries out, and the mapping table's
//! view of kept nicks.

use cpimgate_mappings::MappingStore;
use cpimgate_model::event::Participant;
use cpimgate_model::port::Reply;
use cpimgate_model::{Message, NameAddr};

use super::ConnId;
use crate::proto::ISupport;
use crate::proto::session::Privmsg;
use crate::relay::Line;

/// What a puppet connection is told to do.
#[derive(Debug)]
pub(crate) enum Cmd {
    /// JOIN a channel.
    Join(String),
    /// PART a channel.
    Part {
        /// The channel.
        channel: String,
        /// The reason shown.
        reason: String,
    },
    /// Change nick.
    Nick(String),
    /// Send these lines; the reply of the message goes with the last one.
    Send {
        /// The lines.
        lines: Vec<Line>,
        /// The message's reply.
        reply: Reply,
    },
    /// QUIT and close.
    Quit(String),
}

/// What a puppet connection reports.
#[derive(Debug)]
pub(crate) enum Report {
    /// Registered as `nick`.
    Registered {
        /// The nick it got.
        nick: String,
        /// The server's ISUPPORT.
        isupport: Box<ISupport>,
    },
    /// It is in `channel`.
    Joined(String),
    /// It left `channel`, or was kicked from it.
    Left {
        /// The channel.
        channel: String,
        /// Kicked by an operator: the operator's nick and the reason.
        kicked: Option<(String, Option<String>)>,
    },
    /// The server refused to let it into `channel` (banned, invite-only,
    /// full, ...).
    JoinRefused {
        /// The channel.
        channel: String,
        /// The server's numeric and text.
        why: String,
    },
    /// Its nick is now this.
    NickChanged(String),
    /// The server refused this nick for a NICK change.
    NickRefused(String),
    /// An IRC user wrote to the puppet privately.
    Private {
        /// The message.
        message: Box<Privmsg>,
        /// The channels the puppet shares with the sender (the puppet
        /// reports all of its channels; the driver keeps those the
        /// sender is in, see `Driver::on_report`).
        shared: Vec<String>,
    },
    /// The connection is closed (lost, refused, or after QUIT).
    Closed(String),
}

/// What the driver must do.
#[derive(Debug)]
pub(crate) enum Action {
    /// Open puppet connection `id`, registering as `nick`.
    Open {
        /// The connection's id.
        id: ConnId,
        /// The nick to register.
        nick: String,
        /// The user's name, for the real name.
        realname: String,
    },
    /// Tell connection `id` to do something.
    Command {
        /// The connection.
        id: ConnId,
        /// What to do.
        cmd: Cmd,
    },
    /// Send `message` from the puppet `nick` on connection `id`.
    Send {
        /// The connection.
        id: ConnId,
        /// The puppet's nick (for the line budget).
        nick: String,
        /// The message.
        message: Box<Message>,
        /// Its reply.
        reply: Reply,
    },
    /// Post `message` through the gateway's connection (relay mode's way).
    Relay {
        /// The message.
        message: Box<Message>,
        /// Its reply.
        reply: Reply,
    },
    /// Remember in the mapping table that `who` is `nick` here.
    StoreNick {
        /// The remote user's address.
        who: String,
        /// The nick.
        nick: String,
    },
    /// An operator kicked the puppet of `who` from `channel`: the hub is
    /// told, so that the user leaves the bridged rooms too.
    Kicked {
        /// The remote user the puppet stands for.
        who: Participant,
        /// The channel.
        channel: String,
        /// The operator's nick.
        by: String,
        /// The reason given.
        reason: Option<String>,
    },
    /// An IRC user's private message to a puppet, for the hub.
    Private {
        /// The remote user the puppet stands for.
        to: NameAddr,
        /// The channel the sender met the puppet in, when there is one.
        channel: Option<String>,
        /// The IRC message.
        message: Box<Privmsg>,
    },
}

/// The nicks the mapping table keeps for remote users on this network.
pub(crate) trait NickBook: Send {
    /// The nick kept for `who`.
    fn nick_of(&self, who: &str) -> Option<String>;
    /// The remote user `nick` is kept for.
    fn owner_of(&self, nick: &str) -> Option<String>;
}

/// [`NickBook`] over the mapping table.
pub(crate) struct StoreBook {
    /// The table.
    pub store: MappingStore,
    /// The network's name.
    pub network: String,
}

impl NickBook for StoreBook {
    fn nick_of(&self, who: &str) -> Option<String> {
        self.store.irc_nick_for(&self.network, who)
    }

    fn owner_of(&self, nick: &str) -> Option<String> {
        self.store.irc_owner_of(&self.network, nick)
    }
}
