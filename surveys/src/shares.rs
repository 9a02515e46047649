//! The rule both readers apply to a question's shares once they line up with its options.
//!
//! The listed options are the substantive answers; respondents who chose none of them ("don't
//! know", no answer, refused) are not among them, so the listed shares may sum well below 1
//! (Japan's WVS shares often sum to 0.56–0.94). The distribution that stands for a group is
//! the one among those who chose a listed option, as in the survey-alignment literature
//! (Santurkar et al. 2023; Durmus et al. 2023): the shares divided by their sum. The rule is
//! therefore asymmetric:
//!
//! - sum below `min_answered`: too few chose a listed option for their distribution to stand
//!   for the group, `too_little_answered`;
//! - sum above 1 + `max_excess`: more than rounding can add, the numbers are wrong,
//!   `sum_above_one`;
//! - otherwise the shares are divided by their sum and the question counts as renormalised:
//!   over substantive answers when the sum is below 1 − [`ROUNDING`], as a rounding
//!   correction when it is within [`ROUNDING`] of 1 (a sum of 1 up to float noise is left
//!   alone).
use crate::report::{DropReason, ROUNDING};

/// Shares whose sum is this close to a bound count as at the bound (float noise in the
/// addition); this close to 1 they count as summing to 1, not as a repair.
const EXACT: f64 = 1e-9;

/// Shares summing to 1 after the sum rule.
pub(crate) struct Normalised {
    pub shares: Vec<f64>,
    /// The shares were divided by their sum (which was off 1 by more than float noise).
    pub renormalised: bool,
    /// … and the sum was below 1 − [`ROUNDING`]: renormalised over substantive answers, not a
    /// rounding correction.
    pub substantive: bool,
}

/// A share is a finite number ≥ 0; the sum must lie in [`min_answered`, 1 + `max_excess`],
/// and within that the shares are divided by it (see the module documentation).
pub(crate) fn normalise(
    shares: Vec<f64>,
    min_answered: f64,
    max_excess: f64,
) -> Result<Normalised, DropReason> {
    if shares.iter().any(|s| !s.is_finite() || *s < 0.0) {
        return Err(DropReason::InvalidShare);
    }
    let sum: f64 = shares.iter().sum();
    // The small slack keeps a sum written as exactly a bound (0.5, 1.05) inside, whatever the
    // float rounding of the addition. `min_answered` > 0 keeps a zero sum out.
    if sum < min_answered - EXACT {
        return Err(DropReason::TooLittleAnswered);
    }
    if sum > 1.0 + max_excess + EXACT {
        return Err(DropReason::SumAboveOne);
    }
    Ok(Normalised {
        renormalised: (sum - 1.0).abs() > EXACT,
        substantive: sum < 1.0 - ROUNDING - EXACT,
        shares: shares.into_iter().map(|s| s / sum).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(shares: &[f64]) -> Result<Normalised, DropReason> {
        normalise(shares.to_vec(), 0.5, 0.05)
    }

    #[test]
    fn sums_between_min_answered_and_one_plus_max_excess_are_renormalised() {
        // Rounding: within 0.05 of 1, either side.
        for shares in [&[0.5, 0.45][..], &[0.5, 0.47], &[0.6, 0.45], &[0.5, 0.55]] {
            let r = n(shares).unwrap();
            assert!(r.renormalised && !r.substantive, "{shares:?}");
            assert!((r.shares.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        }
        // Non-substantive answers left out: from min_answered (inclusive) to 0.95 (exclusive).
        for shares in [&[0.3, 0.2][..], &[0.5, 0.44], &[0.7, 0.1]] {
            let r = n(shares).unwrap();
            assert!(r.renormalised && r.substantive, "{shares:?}");
            assert!((r.shares.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        }
        let r = n(&[0.5, 0.3]).unwrap();
        assert!((r.shares[0] - 0.625).abs() < 1e-12);
        let exact = n(&[0.7, 0.2, 0.1]).unwrap();
        assert!(!exact.renormalised && !exact.substantive);
    }

    #[test]
    fn too_little_answered_and_sums_above_one_plus_max_excess_are_dropped() {
        assert_eq!(n(&[0.3, 0.19]).err(), Some(DropReason::TooLittleAnswered));
        assert_eq!(n(&[0.0, 0.0]).err(), Some(DropReason::TooLittleAnswered));
        assert_eq!(n(&[0.6, 0.46]).err(), Some(DropReason::SumAboveOne));
        assert_eq!(n(&[0.7, 0.5]).err(), Some(DropReason::SumAboveOne));
        assert_eq!(n(&[1.1, -0.1]).err(), Some(DropReason::InvalidShare));
        assert_eq!(n(&[f64::NAN, 1.0]).err(), Some(DropReason::InvalidShare));
        // The knobs move the bounds.
        assert_eq!(
            normalise(vec![0.5, 0.3], 0.85, 0.05).err(),
            Some(DropReason::TooLittleAnswered)
        );
        assert!(normalise(vec![0.6, 0.5], 0.5, 0.1).is_ok());
        assert!(normalise(vec![0.6, 0.4], 1.0, 0.0).is_ok());
    }
}
