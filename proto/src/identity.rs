//! Identities carried as URI subject alternative names in client certificates.
//!
//! An agent's certificate names the locality it serves as `spiffe://chiso/agent/<code>`, where
//! the code is a province or ministry code of the unit catalogue. An operator's names a person or role as
//! `spiffe://chiso/operator/<name>`.

use std::fmt;

const AGENT_PREFIX: &str = "spiffe://chiso/agent/";
const OPERATOR_PREFIX: &str = "spiffe://chiso/operator/";

/// A peer identity read from a certificate's URI SAN.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Identity {
    /// An agent serving the locality with this unit code.
    Agent(String),
    /// An operator of the hub.
    Operator(String),
}

impl Identity {
    /// Parses a URI SAN, returning `None` for any URI outside the `spiffe://chiso/` scheme.
    pub fn parse(uri: &str) -> Option<Identity> {
        let (prefix_len, make): (usize, fn(String) -> Identity) = if uri.starts_with(AGENT_PREFIX) {
            (AGENT_PREFIX.len(), Identity::Agent)
        } else if uri.starts_with(OPERATOR_PREFIX) {
            (OPERATOR_PREFIX.len(), Identity::Operator)
        } else {
            return None;
        };

        let name = &uri[prefix_len..];
        let valid = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
        valid.then(|| make(name.to_string()))
    }

    /// Returns the URI to put in a certificate's subject alternative names.
    pub fn uri(&self) -> String {
        match self {
            Identity::Agent(code) => format!("{AGENT_PREFIX}{code}"),
            Identity::Operator(name) => format!("{OPERATOR_PREFIX}{name}"),
        }
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.uri())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_uri_round_trips() {
        let id = Identity::Agent("79".into());
        assert_eq!(id.uri(), "spiffe://chiso/agent/79");
        assert_eq!(Identity::parse(&id.uri()), Some(id));
    }

    #[test]
    fn foreign_or_malformed_uris_are_not_identities() {
        for uri in [
            "spiffe://other/agent/79",
            "spiffe://chiso/agent/",
            "spiffe://chiso/agent/7 9",
            "spiffe://chiso/agent/79/extra",
            "https://chiso/agent/79",
        ] {
            assert_eq!(Identity::parse(uri), None, "{uri}");
        }
    }

    #[test]
    fn operator_uri_parses() {
        assert_eq!(
            Identity::parse("spiffe://chiso/operator/ops-team"),
            Some(Identity::Operator("ops-team".into()))
        );
    }
}
