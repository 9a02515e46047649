//! The rule both readers apply to a question's shares once they line up with its options.
use crate::report::DropReason;

/// Shares whose sum is this close to 1 count as summing to 1: float noise, not a repair.
const EXACT: f64 = 1e-9;

/// Shares summing to 1 after the sum rule.
pub(crate) struct Normalised {
    pub shares: Vec<f64>,
    /// The shares were divided by their sum (which was off by more than float noise).
    pub renormalised: bool,
}

/// A share is a finite number ≥ 0; the sum may miss 1 by at most `tolerance` (rounding to two
/// decimals, and respondents who chose none of the listed options, like "don't know"), and
/// within it the shares are divided by their sum: the distribution among those who answered.
/// Further off, the options cannot be the whole answer scale or the numbers are wrong, and
/// the question is dropped.
pub(crate) fn normalise(shares: Vec<f64>, tolerance: f64) -> Result<Normalised, DropReason> {
    if shares.iter().any(|s| !s.is_finite() || *s < 0.0) {
        return Err(DropReason::InvalidShare);
    }
    let sum: f64 = shares.iter().sum();
    // The small slack keeps a sum written as exactly 1 − tolerance (0.95 at 0.05) inside,
    // whatever the float rounding of the addition.
    if (sum - 1.0).abs() > tolerance + EXACT {
        return Err(DropReason::SumOutOfTolerance);
    }
    Ok(Normalised {
        renormalised: (sum - 1.0).abs() > EXACT,
        shares: shares.into_iter().map(|s| s / sum).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn within_tolerance_is_renormalised_and_beyond_is_dropped() {
        let n = normalise(vec![0.5, 0.45], 0.05).unwrap();
        assert!(n.renormalised);
        assert!((n.shares.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!(!normalise(vec![0.7, 0.2, 0.1], 0.05).unwrap().renormalised);
        assert_eq!(
            normalise(vec![0.5, 0.44], 0.05).err(),
            Some(DropReason::SumOutOfTolerance)
        );
        assert_eq!(
            normalise(vec![0.6, 0.46], 0.05).err(),
            Some(DropReason::SumOutOfTolerance)
        );
        assert_eq!(
            normalise(vec![0.0, 0.0], 0.05).err(),
            Some(DropReason::SumOutOfTolerance)
        );
        assert_eq!(
            normalise(vec![1.1, -0.1], 0.05).err(),
            Some(DropReason::InvalidShare)
        );
        assert_eq!(
            normalise(vec![f64::NAN, 1.0], 0.05).err(),
            Some(DropReason::InvalidShare)
        );
    }
}
