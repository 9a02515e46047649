//! Seeded random streams. Every consumer derives its own stream from the run seed and a label
//! (stage id, round, group), so numbers do not depend on which rayon thread ran first.
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};

/// ChaCha8 is portable and version-stable, unlike `StdRng`, whose algorithm may change.
pub type Rng = ChaCha8Rng;

/// An independent stream for `(seed, labels…)`.
pub fn stream(seed: u64, labels: &[&str]) -> Rng {
    let mut h = Sha256::new();
    h.update(seed.to_le_bytes());
    for l in labels {
        h.update((l.len() as u64).to_le_bytes());
        h.update(l.as_bytes());
    }
    Rng::from_seed(h.finalize().into())
}

#[cfg(test)]
mod tests {
    use rand::Rng as _;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a: u64 = super::stream(1, &["split"]).random();
        let b: u64 = super::stream(1, &["split"]).random();
        let c: u64 = super::stream(1, &["spli", "t"]).random();
        let d: u64 = super::stream(2, &["split"]).random();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
    }
}
