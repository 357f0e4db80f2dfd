//! `--partition count:K/N` or `hash:K/N`: the share of a run's tests that one of N machines
//! asks, with cargo-nextest's syntax, so that a CI matrix shards `eyetest run` the way it
//! shards `cargo nextest run --partition`.
//!
//! `count` deals the selected tests out in turn (balanced, but a test added early moves the
//! ones after it to other shards); `hash` places each test by its name alone (stable as the
//! suite grows, less even). Either way every test lands in exactly one shard, and the shards'
//! results files read as one run with `eyetest report a.jsonl b.jsonl ...`.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

/// Which share of the tests this process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    pub how: Deal,
    /// 1-based shard number.
    pub shard: u64,
    pub of: u64,
}

/// How tests are dealt to shards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deal {
    Count,
    Hash,
}

/// A `--partition` value that is not `count:K/N` or `hash:K/N` with 1 <= K <= N.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid partition `{given}`: {why}; write `count:K/N` or `hash:K/N` with 1 <= K <= N, e.g. `count:1/4`")]
pub struct PartitionError {
    given: String,
    why: &'static str,
}

impl FromStr for Partition {
    type Err = PartitionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |why| PartitionError {
            given: s.to_string(),
            why,
        };
        let (how, rest) = match s.split_once(':') {
            Some(("count", rest)) => (Deal::Count, rest),
            Some(("hash", rest)) => (Deal::Hash, rest),
            Some(_) => return Err(err("the kind is neither `count` nor `hash`")),
            None => (Deal::Count, s),
        };
        let (k, n) = rest
            .split_once('/')
            .ok_or_else(|| err("no `/` between K and N"))?;
        let shard: u64 = k
            .trim()
            .parse()
            .map_err(|_| err("K is not a whole number"))?;
        let of: u64 = n
            .trim()
            .parse()
            .map_err(|_| err("N is not a whole number"))?;
        if of == 0 || shard == 0 || shard > of {
            return Err(err("K must be between 1 and N"));
        }
        Ok(Partition { how, shard, of })
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let how = match self.how {
            Deal::Count => "count",
            Deal::Hash => "hash",
        };
        write!(f, "{how}:{}/{}", self.shard, self.of)
    }
}

impl Partition {
    /// Whether the `index`-th selected test (in spec order), named `test`, is this shard's.
    pub fn keeps(&self, index: usize, test: &str) -> bool {
        let slot = match self.how {
            Deal::Count => index as u64 % self.of,
            Deal::Hash => {
                let digest = Sha256::digest(test.as_bytes());
                let head = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
                head % self.of
            }
        };
        slot + 1 == self.shard
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nextest_syntax_and_refuses_the_rest() {
        let p: Partition = "count:2/3".parse().unwrap();
        assert_eq!((p.how, p.shard, p.of), (Deal::Count, 2, 3));
        assert_eq!("1/2".parse::<Partition>().unwrap().to_string(), "count:1/2");
        assert_eq!("hash:3/3".parse::<Partition>().unwrap().how, Deal::Hash);
        for bad in ["0/2", "3/2", "1/0", "count:1", "slice:1/2", "a/b", ""] {
            let e = bad.parse::<Partition>().unwrap_err().to_string();
            assert!(e.contains("write `count:K/N`"), "{bad}: {e}");
        }
    }

    #[test]
    fn every_test_lands_in_exactly_one_shard() {
        let names: Vec<String> = (0..97).map(|i| format!("smoke/x::case-{i}@sim")).collect();
        for how in ["count", "hash"] {
            let shards: Vec<Partition> = (1..=4)
                .map(|k| format!("{how}:{k}/4").parse().unwrap())
                .collect();
            let mut sizes = [0usize; 4];
            for (i, n) in names.iter().enumerate() {
                let owners: Vec<usize> = (0..4).filter(|&s| shards[s].keeps(i, n)).collect();
                assert_eq!(owners.len(), 1, "{how}: {n} in {owners:?}");
                sizes[owners[0]] += 1;
            }
            assert!(sizes.iter().all(|&s| s > 0), "{how}: {sizes:?}");
            if how == "count" {
                assert_eq!(sizes, [25, 24, 24, 24]);
            }
        }
    }
}
