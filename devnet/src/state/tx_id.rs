//! The transaction ID of a proposal on a channel, as ledger.md defines it.

use ledger::canonical::{value_to_jcs, CanonicalError, Hash32};
use ledger::model::{Proposal, TxKind};

/// The transaction ID of a proposal on a channel: sha256(JCS(proposal + {"channel"})).
pub fn tx_id(proposal: &Proposal, channel: &str) -> Result<Hash32, CanonicalError> {
    tx_id_and_args(proposal, channel).map(|(id, _)| id)
}

/// [`tx_id`], also returning the JCS bytes of the proposal's `args`: the committed
/// transaction starts with the same bytes, so its encoding can reuse them instead of
/// walking the argument tree a second time (see [`Executed::encode`]).
pub(crate) fn tx_id_and_args(
    proposal: &Proposal,
    channel: &str,
) -> Result<(Hash32, Vec<u8>), CanonicalError> {
    let args = value_to_jcs(&proposal.args)?;
    let id = tx_id_of(
        &args,
        channel,
        &proposal.creator,
        proposal.kind,
        &proposal.nonce,
    )?;
    Ok((id, args))
}

/// The transaction ID of a proposal whose `args` encode as `args_jcs`.
pub(crate) fn tx_id_of(
    args_jcs: &[u8],
    channel: &str,
    creator: &str,
    kind: TxKind,
    nonce: &str,
) -> Result<Hash32, CanonicalError> {
    use sha2::{Digest, Sha256};
    // The members of proposal + {"channel"} in JCS order: args, channel, creator, kind,
    // nonce (all ASCII names, so byte order is UTF-16 order), hashed as they are written:
    // copying the args into one buffer first cost an allocation and a copy per proposal.
    let mut h = HashWriter(Sha256::new());
    h.0.update(b"{\"args\":");
    h.0.update(args_jcs);
    h.0.update(b",\"channel\":");
    serde_json::to_writer(&mut h, channel)?;
    h.0.update(b",\"creator\":");
    serde_json::to_writer(&mut h, creator)?;
    h.0.update(b",\"kind\":");
    serde_json::to_writer(&mut h, &kind)?;
    h.0.update(b",\"nonce\":");
    serde_json::to_writer(&mut h, nonce)?;
    h.0.update(b"}");
    Ok(Hash32(h.0.finalize().into()))
}

/// serde_json writes into the hash as it goes. sha2 0.11 (digest 0.11, `no_std`) no longer
/// implements `std::io::Write` itself; this is that impl, not worth the `digest-io` crate.
struct HashWriter(sha2::Sha256);

impl std::io::Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        sha2::Digest::update(&mut self.0, buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chaincode::CreateArgs;
    use crate::generate::{DemoData, Generator};
    use ledger::canonical::sha256;
    use ledger::id::PropertyId;
    use ledger::model::VerificationStatus;

    #[test]
    fn tx_ids_are_the_digest_of_the_proposal_with_its_channel() {
        // ledger.md: tx_id = sha256(JCS(proposal + {"channel"})). Checked against an
        // independent JCS implementation, for creates and every kind of follow-up, in
        // Latin, Telugu and Kannada script, and for a creator and nonce that need escaping.
        let mut gen = Generator::new(3, DemoData::embedded());
        let mut proposals = Vec::new();
        for i in 0..400u64 {
            let p = match (i % 2 == 1).then(|| gen.follow_up()).flatten() {
                Some((_, p)) => p,
                None => {
                    let p = gen.create();
                    let args: CreateArgs = serde_json::from_value(p.args.clone()).unwrap();
                    let id = PropertyId::sharded(&args.state, 2026, 1, i + 1).unwrap();
                    let r = args.into_record(id, VerificationStatus::Pending, 0);
                    gen.remember(&r, sha256(&i.to_le_bytes()));
                    p
                }
            };
            proposals.push(p);
        }
        let mut odd = proposals[0].clone();
        odd.creator = "registrar@TS \"\\\n".into();
        odd.nonce = "ఒకటి\u{1}".into();
        proposals.push(odd);
        for p in proposals {
            let mut whole = serde_json::to_value(&p).unwrap();
            whole["channel"] = "land-registry-primary".into();
            let expected = sha256(&serde_json_canonicalizer::to_vec(&whole).unwrap());
            assert_eq!(
                tx_id(&p, "land-registry-primary").unwrap(),
                expected,
                "{p:?}"
            );
        }
    }
}
