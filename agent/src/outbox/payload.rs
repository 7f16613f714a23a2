//! Payloads: every row that keeps a record (`outbox`, `retained`, `rejected`) stores the
//! record's own message encoded with prost (a `Dossier`, a `Procedure`, ...) beside a `kind`
//! column, and the pair decodes back to the record. Dossier payloads are therefore the same bytes
//! as in outbox files written before other kinds existed.

use chiso_proto::record::Kind;
use chiso_proto::v1::record::Body;
use chiso_proto::v1::{Dossier, DossierStep, Feedback, Procedure, Rating};
use chiso_proto::vntime::{day_number, vietnam_day};
use prost::Message;
use sha2::{Digest, Sha256};

/// Encodes the record's message, without the `Body` wrapper.
pub(super) fn encode(body: &Body) -> Vec<u8> {
    match body {
        Body::Dossier(message) => message.encode_to_vec(),
        Body::Procedure(message) => message.encode_to_vec(),
        Body::Feedback(message) => message.encode_to_vec(),
        Body::Rating(message) => message.encode_to_vec(),
        Body::Step(message) => message.encode_to_vec(),
    }
}

/// Decodes a payload stored for `kind`.
pub(super) fn decode(kind: Kind, payload: &[u8]) -> Result<Body, prost::DecodeError> {
    Ok(match kind {
        Kind::Dossier => Body::Dossier(Dossier::decode(payload)?),
        Kind::Procedure => Body::Procedure(Procedure::decode(payload)?),
        Kind::Feedback => Body::Feedback(Feedback::decode(payload)?),
        Kind::Rating => Body::Rating(Rating::decode(payload)?),
        Kind::Step => Body::Step(DossierStep::decode(payload)?),
    })
}

/// Returns the SHA-256 of the record's content: its encoding with version 0. Prost encodes a
/// given message to the same bytes every time, which makes equal content give equal hashes.
pub(super) fn content_hash(body: &Body) -> Vec<u8> {
    let mut content = body.clone();
    chiso_proto::record::set_version(&mut content, 0);
    Sha256::digest(encode(&content)).to_vec()
}

/// Returns the ledger day of a record (`yyyymmdd`, Vietnam time): the day a dossier or feedback
/// item was received, a rating given, a step taken, or a procedure announced (else published).
/// A procedure with neither date has day 0. Completeness digests read only dossier days.
pub(super) fn ledger_day(body: &Body) -> i64 {
    let instant = match body {
        Body::Dossier(dossier) => Some(dossier.received_at),
        Body::Procedure(procedure) => procedure.announced_at.or(procedure.published_at),
        Body::Feedback(feedback) => Some(feedback.received_at),
        Body::Rating(rating) => Some(rating.rated_at),
        Body::Step(step) => Some(step.at),
    };
    instant.map_or(0, |instant| day_number(vietnam_day(instant)))
}
