//! Whole-number percentages that add up to exactly 100.

/// Shares of `counts` in whole percents by the largest-remainder (Hamilton) method:
/// each gets its floor, then the points still missing from 100 go to the largest
/// remainders, earlier options first on a tie. All zero when there are no votes.
///
/// ```
/// use tribune::poll::largest_remainder_percents;
///
/// // The seed poll: 30.6 + 27.8 + 22.2 + 19.4 shown as whole numbers that add up to 100.
/// assert_eq!(largest_remainder_percents(&[33, 30, 24, 21]), [31, 28, 22, 19]);
/// assert_eq!(largest_remainder_percents(&[0, 0]), [0, 0]);
/// ```
pub fn largest_remainder_percents(counts: &[u64]) -> Vec<u8> {
    let total: u128 = counts.iter().map(|&c| u128::from(c)).sum();
    if total == 0 {
        return vec![0; counts.len()];
    }
    let mut percents: Vec<u8> = Vec::with_capacity(counts.len());
    let mut remainders: Vec<(u128, usize)> = Vec::with_capacity(counts.len());
    for (index, &count) in counts.iter().enumerate() {
        let scaled = u128::from(count) * 100;
        percents.push((scaled / total) as u8);
        remainders.push((scaled % total, index));
    }
    let given: u32 = percents.iter().map(|&p| u32::from(p)).sum();
    // Largest remainder first; on a tie the earlier option.
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for &(_, index) in remainders
        .iter()
        .take(100_u32.saturating_sub(given) as usize)
    {
        percents[index] += 1;
    }
    percents
}

#[cfg(test)]
mod tests {
    use super::largest_remainder_percents as percents;
    use proptest::prelude::*;

    #[test]
    fn the_seed_poll() {
        assert_eq!(percents(&[33, 30, 24, 21]), [31, 28, 22, 19]);
    }

    #[test]
    fn known_cases() {
        assert_eq!(percents(&[33, 40, 20, 14]), [31, 37, 19, 13]);
        assert_eq!(percents(&[1, 1, 1]), [34, 33, 33]);
        assert_eq!(percents(&[0, 0, 0, 0]), [0, 0, 0, 0]);
        assert_eq!(percents(&[5, 0]), [100, 0]);
        assert_eq!(percents(&[]), Vec::<u8>::new());
    }

    proptest! {
        #[test]
        fn sums_to_100_and_stays_within_one_of_the_exact_share(counts in prop::collection::vec(0_u64..1_000_000, 1..12)) {
            let p = percents(&counts);
            let total: u64 = counts.iter().sum();
            prop_assert_eq!(p.len(), counts.len());
            if total == 0 {
                prop_assert!(p.iter().all(|&x| x == 0));
            } else {
                prop_assert_eq!(p.iter().map(|&x| u32::from(x)).sum::<u32>(), 100);
                for (&c, &x) in counts.iter().zip(&p) {
                    let exact = c as f64 * 100.0 / total as f64;
                    prop_assert!((f64::from(x) - exact).abs() < 1.0, "{} vs {}", x, exact);
                }
            }
        }
    }
}
