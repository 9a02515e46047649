//! The groups × rollouts reward matrix: what every group sends the server in one round.
use std::borrow::Cow;

use crate::AggregateError;

/// One round's rewards: row g holds group g's reward for every rollout.
///
/// Row-major because each group scores all rollouts with its own reward model, so a row is
/// what one group sends to the server. The values are borrowed when the matrix comes across
/// the plugin boundary (no copy per call) and owned when the host builds it.
#[derive(Debug, Clone, PartialEq)]
pub struct RewardMatrix<'a> {
    groups: usize,
    rollouts: usize,
    values: Cow<'a, [f64]>,
}

impl<'a> RewardMatrix<'a> {
    /// Checks the shape and that every reward is finite, so no rule has to guard against NaN.
    pub fn new(
        groups: usize,
        rollouts: usize,
        values: impl Into<Cow<'a, [f64]>>,
    ) -> Result<Self, AggregateError> {
        let values = values.into();
        let m = Self::shaped(groups, rollouts, values)?;
        if let Some(i) = m.values.iter().position(|v| !v.is_finite()) {
            return Err(AggregateError::NonFinite {
                group: i / rollouts,
                rollout: i % rollouts,
                value: m.values[i],
            });
        }
        Ok(m)
    }

    /// Checks the shape only. For the plugin side of the ABI, where the host has already
    /// checked every value (the ABI promises finite rewards) and a second pass would cost.
    pub(crate) fn shaped(
        groups: usize,
        rollouts: usize,
        values: Cow<'a, [f64]>,
    ) -> Result<Self, AggregateError> {
        if groups == 0 || rollouts == 0 {
            return Err(AggregateError::Empty { groups, rollouts });
        }
        if groups.checked_mul(rollouts) != Some(values.len()) {
            return Err(AggregateError::Shape {
                groups,
                rollouts,
                len: values.len(),
            });
        }
        Ok(RewardMatrix {
            groups,
            rollouts,
            values,
        })
    }

    #[inline]
    pub fn groups(&self) -> usize {
        self.groups
    }

    #[inline]
    pub fn rollouts(&self) -> usize {
        self.rollouts
    }

    /// Every reward, row after row (group-major).
    #[inline]
    pub fn values(&self) -> &[f64] {
        &self.values
    }

    /// Group `g`'s rewards, one per rollout. Panics if `g` is out of range, like indexing.
    #[inline]
    pub fn row(&self, g: usize) -> &[f64] {
        &self.values[g * self.rollouts..(g + 1) * self.rollouts]
    }

    /// Group `g`'s reward for rollout `r`. Panics if either is out of range, like indexing.
    #[inline]
    pub fn get(&self, g: usize, r: usize) -> f64 {
        assert!(r < self.rollouts, "rollout {r} of {}", self.rollouts);
        self.values[g * self.rollouts + r]
    }

    /// Rollout `r`'s rewards, one per group, written into `column` (length `groups`): the
    /// view a per-rollout rule works on, without allocating per rollout.
    #[inline]
    pub fn column_into(&self, r: usize, column: &mut [f64]) {
        for (g, c) in column.iter_mut().enumerate() {
            *c = self.values[g * self.rollouts + r];
        }
    }

    /// a_g, the mean of each group's rewards this round: the only per-group alignment signal
    /// the server may see, which is what the stateful rules track.
    pub fn group_means(&self) -> Vec<f64> {
        let n = self.rollouts as f64;
        (0..self.groups)
            .map(|g| self.row(g).iter().sum::<f64>() / n)
            .collect()
    }

    /// The same matrix with owned values.
    pub fn into_owned(self) -> RewardMatrix<'static> {
        RewardMatrix {
            groups: self.groups,
            rollouts: self.rollouts,
            values: Cow::Owned(self.values.into_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accessors() {
        let m = RewardMatrix::new(2, 2, vec![1.0, 0.8, 0.2, 0.4]).unwrap();
        assert_eq!((m.groups(), m.rollouts()), (2, 2));
        assert_eq!(m.row(1), &[0.2, 0.4]);
        assert_eq!(m.get(0, 1), 0.8);
        let mut column = [0.0; 2];
        m.column_into(1, &mut column);
        assert_eq!(column, [0.8, 0.4]);
        // (1.0 + 0.8) / 2, (0.2 + 0.4) / 2
        let a = m.group_means();
        assert!((a[0] - 0.9).abs() < 1e-15 && (a[1] - 0.3).abs() < 1e-15);
        let borrowed = [1.0, 2.0];
        let b = RewardMatrix::new(1, 2, &borrowed[..]).unwrap();
        assert_eq!(b.into_owned().values(), &[1.0, 2.0]);
    }

    #[test]
    fn nan_reward_names_its_group() {
        let err = RewardMatrix::new(2, 2, vec![1.0, 2.0, f64::NAN, 4.0]).unwrap_err();
        assert!(matches!(
            err,
            AggregateError::NonFinite {
                group: 1,
                rollout: 0,
                ..
            }
        ));
        assert!(err.to_string().contains("group 1"), "{err}");
        let err = RewardMatrix::new(3, 1, vec![0.0, f64::INFINITY, 0.0]).unwrap_err();
        assert!(err.to_string().contains("group 1"), "{err}");
    }

    #[test]
    fn bad_shapes_are_errors() {
        assert!(matches!(
            RewardMatrix::new(2, 2, vec![1.0; 3]),
            Err(AggregateError::Shape { len: 3, .. })
        ));
        assert!(matches!(
            RewardMatrix::new(0, 2, vec![]),
            Err(AggregateError::Empty { .. })
        ));
        assert!(matches!(
            RewardMatrix::new(2, 0, vec![]),
            Err(AggregateError::Empty { .. })
        ));
        assert!(matches!(
            RewardMatrix::new(usize::MAX, 2, vec![1.0]),
            Err(AggregateError::Shape { .. })
        ));
    }
}
