/// Jensen–Shannon distance with base-2 logarithms: √JSD, in [0, 1]; 0 for equal distributions.
pub fn js_distance(p: &[f64], q: &[f64]) -> f64 {
    debug_assert_eq!(p.len(), q.len());
    let kl_to_mid = |a: &[f64], b: &[f64]| -> f64 {
        a.iter()
            .zip(b)
            .filter(|(&x, _)| x > 0.0)
            .map(|(&x, &y)| x * (2.0 * x / (x + y)).log2())
            .sum()
    };
    let jsd = 0.5 * kl_to_mid(p, q) + 0.5 * kl_to_mid(q, p);
    // Rounding can push a zero divergence slightly below 0 or a maximal one slightly above 1.
    jsd.clamp(0.0, 1.0).sqrt()
}

/// Alignment of a policy distribution with a group's distribution: 1 − JS distance.
pub fn alignment(policy: &[f64], group: &[f64]) -> f64 {
    1.0 - js_distance(policy, group)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        assert_eq!(js_distance(&[0.5, 0.5], &[0.5, 0.5]), 0.0);
        // Disjoint supports are maximally far apart in base 2.
        assert!((js_distance(&[1.0, 0.0], &[0.0, 1.0]) - 1.0).abs() < 1e-12);
        // scipy.spatial.distance.jensenshannon([.1,.4,.5], [.3,.3,.4], base=2) = 0.2166340245
        let d = js_distance(&[0.1, 0.4, 0.5], &[0.3, 0.3, 0.4]);
        assert!((d - 0.216_634_024_5).abs() < 1e-9, "{d}");
        assert!((alignment(&[0.1, 0.4, 0.5], &[0.3, 0.3, 0.4]) - (1.0 - d)).abs() < 1e-15);
    }

    #[test]
    fn symmetric() {
        let (p, q) = ([0.7, 0.2, 0.1], [0.2, 0.2, 0.6]);
        assert!((js_distance(&p, &q) - js_distance(&q, &p)).abs() < 1e-15);
    }
}
