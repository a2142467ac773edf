//! A bare external component (XEP-0114) on a test Prosody: no gateway
//! behind it and no XML library in front of it. It writes stanzas from
//! strings and finds message bodies by scanning the bytes, so it costs
//! next to nothing on its side of the socket. What it reaches through
//! Prosody is the most any gateway's component path can carry on the
//! same machine: the benchmarks' ceiling.
//!
//! It understands only what the benchmarks send it: `<message>` stanzas
//! whose body needs no XML escaping (letters, digits, spaces, `-`).

use std::net::SocketAddr;

use sha1::{Digest as _, Sha1};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use crate::HarnessError;

/// A body the component was sent, with the sender's full JID.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    /// The `from` attribute of the message.
    pub from: String,
    /// The text of its `<body>`.
    pub body: String,
}

/// A connected, authenticated bare component.
#[derive(Debug)]
pub struct BareComponent {
    reader: OwnedReadHalf,
    writer: OwnedWriteHalf,
    input: Vec<u8>,
    output: Vec<u8>,
    domain: String,
    /// Write messages as a XEP-0359 room does: with an `id` and a
    /// `<stanza-id/>` by this room (see [`BareComponent::stanza_ids`]).
    stanza_ids_by: Option<String>,
    sent: u64,
}

/// What `prosody.cfg.lua` needs for a bare component `domain`.
pub fn prosody_lua(domain: &str, secret: &str) -> String {
    format!("Component \"{domain}\"\n    component_secret = \"{secret}\"\n")
}

impl BareComponent {
    /// Connects to Prosody's component port at `addr` as `domain` and
    /// completes the handshake (XEP-0114 §3: the stream id and the secret,
    /// hashed with SHA-1, in hex).
    pub async fn connect(
        addr: SocketAddr,
        domain: &str,
        secret: &str,
    ) -> Result<BareComponent, HarnessError> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| HarnessError::io(format!("bare component: connecting to {addr}"), e))?;
        stream
            .set_nodelay(true)
            .map_err(|e| HarnessError::io("bare component: TCP_NODELAY", e))?;
        let (reader, writer) = stream.into_split();
        let mut c = BareComponent {
            reader,
            writer,
            input: Vec::with_capacity(64 * 1024),
            output: Vec::with_capacity(64 * 1024),
            domain: domain.to_owned(),
            stanza_ids_by: None,
            sent: 0,
        };
        c.output.extend_from_slice(
            format!(
                "<stream:stream xmlns='jabber:component:accept' \
                 xmlns:stream='http://etherx.jabber.org/streams' to='{domain}'>"
            )
            .as_bytes(),
        );
        c.flush().await?;
        let header = c.read_until(b">", b"<stream:stream").await?;
        let id = attribute(&header, "id").ok_or_else(|| {
            HarnessError::Xmpp(format!("bare component: no stream id in {header}"))
        })?;
        let digest = Sha1::digest(format!("{id}{secret}").as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        c.output
            .extend_from_slice(format!("<handshake>{hex}</handshake>").as_bytes());
        c.flush().await?;
        let answer = c.read_until(b">", b"<").await?;
        if !answer.starts_with("<handshake") {
            return Err(HarnessError::Xmpp(format!(
                "bare component: handshake refused: {answer}"
            )));
        }
        Ok(c)
    }

    /// The component's domain.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// From now on, messages go out as a room that supports XEP-0359
    /// writes them (`by`: the room's JID): with an `id` attribute and a
    /// `<stanza-id/>` of 32 hex digits (§2), the shape of the messages a
    /// gateway's room writes. `None`: a `<body/>` alone, the least a
    /// message can be.
    pub fn stanza_ids(&mut self, by: Option<&str>) {
        self.stanza_ids_by = by.map(str::to_owned);
    }

    /// Queues a groupchat message (written at the next [`flush`] or when
    /// the queue passes 64 KiB).
    ///
    /// [`flush`]: BareComponent::flush
    pub async fn groupchat(
        &mut self,
        from: &str,
        to: &str,
        body: &str,
    ) -> Result<(), HarnessError> {
        self.sent += 1;
        let stanza = match &self.stanza_ids_by {
            None => format!(
                "<message type='groupchat' from='{from}' to='{to}'><body>{body}</body></message>"
            ),
            Some(by) => format!(
                "<message type='groupchat' from='{from}' to='{to}' id='bare-{n}'><body>{body}</body>\
                 <stanza-id xmlns='urn:xmpp:sid:0' by='{by}' id='{n:032x}'/></message>",
                n = self.sent
            ),
        };
        self.output.extend_from_slice(stanza.as_bytes());
        if self.output.len() >= 64 * 1024 {
            self.flush().await?;
        }
        Ok(())
    }

    /// Writes what is queued.
    pub async fn flush(&mut self) -> Result<(), HarnessError> {
        if !self.output.is_empty() {
            self.writer
                .write_all(&self.output)
                .await
                .map_err(|e| HarnessError::io("bare component: writing", e))?;
            self.output.clear();
        }
        Ok(())
    }

    /// The next message with a body the component is sent; what is queued
    /// is written first, so a reader never holds back its own writes.
    pub async fn next_body(&mut self) -> Result<Received, HarnessError> {
        loop {
            if let Some(got) = self.take_message() {
                return Ok(got);
            }
            self.flush().await?;
            self.fill().await?;
        }
    }

    /// Takes the first complete `<message …>…</message>` off the input;
    /// bodiless messages and other stanzas are dropped as they pass.
    fn take_message(&mut self) -> Option<Received> {
        loop {
            let start = find(&self.input, b"<message")?;
            let end = find(&self.input[start..], b"</message>")? + start + b"</message>".len();
            let stanza = String::from_utf8_lossy(&self.input[start..end]).into_owned();
            self.input.drain(..end);
            let open_end = stanza.find('>').unwrap_or(stanza.len());
            let from = attribute(&stanza[..open_end], "from").unwrap_or_default();
            let body = stanza.find("<body>").and_then(|b| {
                let text = &stanza[b + "<body>".len()..];
                text.find("</body>").map(|e| text[..e].to_owned())
            });
            if let Some(body) = body {
                return Some(Received { from, body });
            }
        }
    }

    async fn fill(&mut self) -> Result<(), HarnessError> {
        // Into the input's spare room, without a copy through the stack.
        self.input.reserve(64 * 1024);
        let n = self
            .reader
            .read_buf(&mut self.input)
            .await
            .map_err(|e| HarnessError::io("bare component: reading", e))?;
        if n == 0 {
            return Err(HarnessError::Xmpp(
                "bare component: the server closed the stream".into(),
            ));
        }
        Ok(())
    }

    /// Reads until an element starting with `start` is complete up to the
    /// first `end` after it; returns that opening tag and drops what came
    /// before.
    async fn read_until(&mut self, end: &[u8], start: &[u8]) -> Result<String, HarnessError> {
        loop {
            if let Some(s) = find(&self.input, start)
                && let Some(e) = find(&self.input[s..], end)
            {
                let tag = String::from_utf8_lossy(&self.input[s..s + e + end.len()]).into_owned();
                self.input.drain(..s + e + end.len());
                return Ok(tag);
            }
            self.fill().await?;
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The value of attribute `name` in an opening tag, either quote, after
/// any whitespace.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let bytes = tag.as_bytes();
    let mut from = 0;
    while let Some(at) = tag[from..].find(name).map(|i| i + from) {
        from = at + name.len();
        let before_ok = at > 0 && bytes[at - 1].is_ascii_whitespace();
        let rest = &tag[from..];
        let mut chars = rest.chars();
        if before_ok && chars.next() == Some('=') {
            let quote = chars.next()?;
            if quote == '\'' || quote == '"' {
                let value = &rest[2..];
                return value.find(quote).map(|e| value[..e].to_owned());
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_read_with_either_quote() {
        // XEP-0114 §3, Example 2 (the server's stream header).
        let header = "<stream:stream\n    xmlns:stream='http://etherx.jabber.org/streams'\n    \
                      xmlns='jabber:component:accept'\n    from='plays.shakespeare.lit'\n    \
                      id='3BF96D32'>";
        assert_eq!(attribute(header, "id").as_deref(), Some("3BF96D32"));
        assert_eq!(
            attribute("<message from=\"a@b/c\" to='x'>", "from").as_deref(),
            Some("a@b/c")
        );
        assert_eq!(attribute("<message to='x'>", "from"), None);
        assert_eq!(attribute("<message xfrom='x'>", "from"), None);
    }
}
