//! The JSON view of a parsed message, for `cpimgate inspect --as cpim`.
//!
//! Header lines are listed as written; the typed fields follow, each `null`
//! (or empty) when its header is absent or bad, with the reason in
//! `problems`.

use serde::ser::{Serialize, SerializeMap, SerializeStruct, Serializer};

use super::{Cpim, CpimError, Header, NsDecl, Separator};
use crate::body::Body;

struct HeaderJson<'a>(Header<'a>);

impl Serialize for HeaderJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let h = &self.0;
        let params = h.params_raw().trim_matches([' ', '\t']);
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("name", h.name())?;
        if !params.is_empty() {
            m.serialize_entry("params", params)?;
        }
        m.serialize_entry("value", h.value_raw())?;
        m.serialize_entry("span", &h.span())?;
        m.end()
    }
}

struct NsMap<'a>(Vec<NsDecl<'a>>);

impl Serialize for NsMap<'_> {
    /// `{"prefix": "uri"}`, the default name space under `""`.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|d| (d.prefix.unwrap_or(""), d.uri)))
    }
}

fn ok<T>(problems: &mut Vec<String>, r: Result<T, CpimError>) -> Option<T> {
    r.map_err(|e| problems.push(e.to_string())).ok()
}

impl Serialize for Cpim {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut problems: Vec<String> = Vec::new();
        let pr = &mut problems;
        let from = ok(pr, self.from()).flatten();
        let to = ok(pr, self.to()).unwrap_or_default();
        let cc = ok(pr, self.cc()).unwrap_or_default();
        let datetime = ok(pr, self.datetime()).flatten().map(|t| t.to_rfc3339());
        let ns = NsMap(ok(pr, self.ns()).unwrap_or_default());
        if self.separator == Separator::Missing {
            problems.push(
                "no blank line between the CPIM headers and the encapsulated part \
                 (read as if there were one)"
                    .to_owned(),
            );
        }
        let headers: Vec<_> = self.headers().map(HeaderJson).collect();
        let mime_headers: Vec<_> = self.mime_headers().map(HeaderJson).collect();
        let trailer = self.trailer();
        let trailer = (!trailer.is_empty()).then(|| Body(bytes::Bytes::copy_from_slice(trailer)));

        let mut st = s.serialize_struct("Cpim", 16)?;
        st.serialize_field("headers", &headers)?;
        st.serialize_field("from", &from)?;
        st.serialize_field("to", &to)?;
        st.serialize_field("cc", &cc)?;
        st.serialize_field("datetime", &datetime)?;
        st.serialize_field("subject", &self.subject())?;
        st.serialize_field("ns", &ns)?;
        st.serialize_field("require", &self.require())?;
        st.serialize_field("imdn_message_id", &self.imdn_message_id())?;
        st.serialize_field("mime_headers", &mime_headers)?;
        st.serialize_field("content_type", &self.content_type())?;
        st.serialize_field("body", &Body(self.body()))?;
        st.serialize_field("trailer", &trailer)?;
        st.serialize_field("line_ending", &self.line_ending())?;
        st.serialize_field("problems", &problems)?;
        st.end()
    }
}
