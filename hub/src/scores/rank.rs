//! Ranking units of the same level by total points.
//!
//! Only units with data in the period (a leaf with a nonzero denominator) are ranked; the rest
//! get rank 0. Equal totals share a rank and the next rank skips accordingly (1, 2, 2, 4), and
//! totals are compared at full precision.

use chiso_proto::v1::UnitScore;

use super::engine::has_data;

/// Sets `rank` and `rank_of` of every unit of one peer set.
pub(super) fn assign(peers: &mut [UnitScore]) {
    let ranked: Vec<f64> = peers
        .iter()
        .filter(|unit| has_data(unit))
        .map(|unit| unit.points)
        .collect();
    let rank_of = u32::try_from(ranked.len()).unwrap_or(u32::MAX);
    for unit in peers.iter_mut() {
        if has_data(unit) {
            let higher = ranked
                .iter()
                .filter(|&&points| points > unit.points)
                .count();
            unit.rank = u32::try_from(higher + 1).unwrap_or(u32::MAX);
            unit.rank_of = rank_of;
        } else {
            unit.rank = 0;
            unit.rank_of = rank_of;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chiso_proto::v1::IndicatorScore;

    fn unit(code: &str, points: f64, denominator: u64) -> UnitScore {
        UnitScore {
            unit_code: code.to_string(),
            points,
            indicators: vec![IndicatorScore {
                denominator,
                ..IndicatorScore::default()
            }],
            ..UnitScore::default()
        }
    }

    #[test]
    fn ties_share_rank() {
        let mut peers = vec![
            unit("a", 70.0, 5),
            unit("b", 82.5, 5),
            unit("c", 70.0, 3),
            unit("d", 40.0, 1),
            unit("e", 2.0, 0),
        ];
        assign(&mut peers);
        let ranks: Vec<(u32, u32)> = peers.iter().map(|u| (u.rank, u.rank_of)).collect();
        assert_eq!(ranks, vec![(2, 4), (1, 4), (2, 4), (4, 4), (0, 4)]);
    }
}
