//! Mean and 95% confidence half-width by Student's t, with the t quantile computed here so
//! that a grid report needs no statistics dependency.

/// t_{0.975} for 1..=30 degrees of freedom (two-sided 95%), to six decimals, computed from
/// the regularised incomplete beta function with mpmath (30 digits) and matching published
/// tables (12.706, 4.303, 3.182, 2.776, 2.571, …, 2.042). Small dof are where the
/// expansion below is poor (off by 1.4 at dof 1), so they are tabled exactly.
const T975: [f64; 30] = [
    12.706205, 4.302653, 3.182446, 2.776445, 2.570582, 2.446912, 2.364624, 2.306004, 2.262157,
    2.228139, 2.200985, 2.178813, 2.160369, 2.144787, 2.131450, 2.119905, 2.109816, 2.100922,
    2.093024, 2.085963, 2.079614, 2.073873, 2.068658, 2.063899, 2.059539, 2.055529, 2.051831,
    2.048407, 2.045230, 2.042272,
];

/// The standard normal's 0.975 quantile.
const Z975: f64 = 1.959_963_984_540_054;

/// The 0.975 quantile of Student's t with `dof` ≥ 1 degrees of freedom: exact (to 1e-6) up
/// to 30, beyond by the Cornish–Fisher expansion in 1/dof (Abramowitz & Stegun 26.7.5, four
/// terms), whose error is below 3e-8 from dof 31 on.
pub fn t975(dof: usize) -> f64 {
    assert!(dof >= 1, "Student's t needs at least one degree of freedom");
    if dof <= T975.len() {
        return T975[dof - 1];
    }
    let z = Z975;
    let n = dof as f64;
    let g1 = (z.powi(3) + z) / 4.0;
    let g2 = (5.0 * z.powi(5) + 16.0 * z.powi(3) + 3.0 * z) / 96.0;
    let g3 = (3.0 * z.powi(7) + 19.0 * z.powi(5) + 17.0 * z.powi(3) - 15.0 * z) / 384.0;
    let g4 = (79.0 * z.powi(9) + 776.0 * z.powi(7) + 1482.0 * z.powi(5)
        - 1920.0 * z.powi(3)
        - 945.0 * z)
        / 92160.0;
    z + g1 / n + g2 / n.powi(2) + g3 / n.powi(3) + g4 / n.powi(4)
}

/// A mean over `n` values and, when `n` ≥ 2, the half-width of its 95% confidence interval
/// (t with n − 1 dof times the standard error); one value has no spread to estimate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    pub n: usize,
    pub mean: f64,
    pub ci95: Option<f64>,
}

impl Estimate {
    /// The estimate over `values`; `None` when there are none.
    pub fn of(values: &[f64]) -> Option<Estimate> {
        let n = values.len();
        if n == 0 {
            return None;
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        let ci95 = (n >= 2).then(|| {
            let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
            t975(n - 1) * (var / n as f64).sqrt()
        });
        Some(Estimate { n, mean, ci95 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Published two-sided 95% values (e.g. NIST/SEMATECH e-Handbook, table 1.3.6.7.2).
    #[test]
    fn t_quantiles_match_published_tables() {
        for (dof, t) in [
            (1, 12.706),
            (2, 4.303),
            (4, 2.776),
            (9, 2.262),
            (10, 2.228),
            (30, 2.042),
            (31, 2.040),
            (40, 2.021),
            (60, 2.000),
            (120, 1.980),
            (100_000, 1.960),
        ] {
            assert!(
                (t975(dof) - t).abs() < 1e-3,
                "dof {dof}: {} vs {t}",
                t975(dof)
            );
        }
    }

    /// Where table and expansion meet, the expansion agrees with the exact value
    /// (t_{0.975}(31) = 2.0395134, mpmath) and the quantile keeps falling.
    #[test]
    fn expansion_continues_the_table() {
        assert!((t975(31) - 2.039_513_4).abs() < 1e-6);
        assert!(t975(31) < t975(30));
        assert!((1..200).all(|d| t975(d + 1) < t975(d)));
    }

    /// 0.70, 0.72, 0.74: mean 0.72, sd 0.02, half-width 4.302653 · 0.02 / √3 = 0.049683.
    #[test]
    fn estimate_of_three_values() {
        let e = Estimate::of(&[0.70, 0.72, 0.74]).unwrap();
        assert_eq!(e.n, 3);
        assert!((e.mean - 0.72).abs() < 1e-12);
        assert!((e.ci95.unwrap() - 0.049_683).abs() < 1e-6);
    }

    #[test]
    fn one_value_has_no_interval_and_none_no_estimate() {
        let e = Estimate::of(&[0.5]).unwrap();
        assert_eq!((e.n, e.mean, e.ci95), (1, 0.5, None));
        assert_eq!(Estimate::of(&[]), None);
    }
}
