//! Message bodies: bytes that serialize as text where a person reads them.

use std::fmt;

use bytes::Bytes;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

/// The bytes of a message body.
///
/// In a human-readable format (JSON, for `cpimgate inspect`) a body that is
/// valid UTF-8 is written as a string and any other body as
/// `{"base64": "..."}`; in a binary format (the durable queue) it is written
/// as plain bytes.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Body(pub Bytes);

impl Body {
    /// The body as text, if it is valid UTF-8.
    pub fn as_text(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Number of bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the body is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.as_text() {
            Some(t) => fmt::Debug::fmt(t, f),
            None => write!(f, "<{} bytes>", self.0.len()),
        }
    }
}

impl From<Bytes> for Body {
    fn from(b: Bytes) -> Self {
        Body(b)
    }
}

impl From<&str> for Body {
    fn from(s: &str) -> Self {
        Body(Bytes::copy_from_slice(s.as_bytes()))
    }
}

impl From<String> for Body {
    fn from(s: String) -> Self {
        Body(Bytes::from(s))
    }
}

impl From<Vec<u8>> for Body {
    fn from(v: Vec<u8>) -> Self {
        Body(Bytes::from(v))
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64_encode(input: &[u8]) -> String {
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn base64_decode(input: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(input.len() / 4 * 3);
    let mut acc = 0u32;
    let mut bits = 0u32;
    for c in input.bytes() {
        if c == b'=' {
            break;
        }
        let v = B64.iter().position(|&x| x == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

impl Serialize for Body {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if !s.is_human_readable() {
            return s.serialize_bytes(&self.0);
        }
        match self.as_text() {
            Some(t) => s.serialize_str(t),
            None => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("base64", &base64_encode(&self.0))?;
                m.end()
            }
        }
    }
}

struct BodyVisitor;

impl<'de> Visitor<'de> for BodyVisitor {
    type Value = Body;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string, bytes, or {\"base64\": ...}")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Body, E> {
        Ok(Body::from(v))
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Body, E> {
        Ok(Body(Bytes::copy_from_slice(v)))
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Body, E> {
        Ok(Body::from(v))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Body, A::Error> {
        let mut out = None;
        while let Some(key) = map.next_key::<String>()? {
            if key != "base64" {
                return Err(de::Error::unknown_field(&key, &["base64"]));
            }
            let s: String = map.next_value()?;
            out = Some(base64_decode(&s).ok_or_else(|| de::Error::custom("invalid base64"))?);
        }
        out.map(Body::from)
            .ok_or_else(|| de::Error::missing_field("base64"))
    }
}

impl<'de> Deserialize<'de> for Body {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Body, D::Error> {
        if d.is_human_readable() {
            d.deserialize_any(BodyVisitor)
        } else {
            d.deserialize_bytes(BodyVisitor)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn base64_round_trip() {
        for len in 0..10 {
            let v: Vec<u8> = (0..len).map(|i| (i * 37 + 200) as u8).collect();
            assert_eq!(base64_decode(&base64_encode(&v)), Some(v));
        }
        assert_eq!(base64_encode(b"Man"), "TWFu");
        assert_eq!(base64_encode(b"Ma"), "TWE=");
    }

    #[test]
    fn json_is_text_or_base64() {
        let text = Body::from("hé");
        assert_eq!(serde_json::to_string(&text).unwrap(), "\"hé\"");
        let bin = Body::from(vec![0xff, 0x00]);
        let j = serde_json::to_string(&bin).unwrap();
        assert_eq!(j, "{\"base64\":\"/wA=\"}");
        assert_eq!(serde_json::from_str::<Body>(&j).unwrap(), bin);
    }

    #[test]
    fn binary_format_keeps_bytes() {
        let bin = Body::from(vec![0xff, 0x00, b'a']);
        let enc = postcard::to_allocvec(&bin).unwrap();
        assert_eq!(postcard::from_bytes::<Body>(&enc).unwrap(), bin);
    }
}
