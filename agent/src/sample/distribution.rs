//! The shares that shape generated records, with defaults taken from the figures the national
//! portal published for Phú Thọ for January to late September 2026 (597,918 dossiers received,
//! 570 feedback items, 89 procedures under the province).
//!
//! Shares the portal did not publish are marked as assumptions. Every share is a probability in
//! `[0, 1]`, and [`Distribution::check`] enforces that before any dossier is drawn.

use super::SampleError;

/// Shares and deadlines for the generator. `Distribution::default()` contains the Phú Thọ
/// figures.
#[derive(Debug, Clone, PartialEq)]
pub struct Distribution {
    /// Share filed online (KenhThucHien 2): 589,496 of 597,918 received, 98.6%.
    pub online: f64,
    /// Share filed through the public postal service (KenhThucHien 3): 0 of 597,918. The rest
    /// is filed in person (8,398).
    pub post: f64,
    /// Share of handled dossiers finished early or on time: 88.4%.
    pub on_time: f64,
    /// Share of finished dossiers with an electronic result: 72.5%.
    pub electronic_result: f64,
    /// Share of dossiers with digitized components: 24.3%.
    pub digitized: f64,
    /// Share of dossiers reusing digitized data: 22.9%.
    pub reused: f64,
    /// Share of dossiers that carry a fee.
    /// NOTE: not published; 30% is an assumption of this generator.
    pub fee_bearing: f64,
    /// Share of fee-bearing dossiers paid online: 86.3%.
    pub paid_online: f64,
    /// Share of dossiers filed by a business (LoaiDoiTuong 2); the rest are citizens.
    /// NOTE: not published; 10% is an assumption.
    pub business: f64,
    /// Share of dossiers handled at province level rather than by a commune.
    /// NOTE: not published; 20% is an assumption.
    pub province_level: f64,
    /// Share not accepted (TrangThaiHoSo 3). NOTE: not published; 1% is an assumption.
    pub not_accepted: f64,
    /// Share withdrawn by the applicant (TrangThaiHoSo 7). NOTE: not published; 0.5% assumed.
    pub withdrawn: f64,
    /// Share stopped (TrangThaiHoSo 8). NOTE: not published; 0.5% assumed.
    pub stopped: f64,
    /// Amount by which a unit's shares move from the defaults, as a fraction of the distance to
    /// the nearer bound of `[0, 1]`. 0 makes every unit alike, and 1 lets a unit reach 0% or 100%.
    pub unit_spread: f64,
    /// Procedure deadlines in days, one per sample procedure. Working days are treated as
    /// calendar days, which moves due dates by at most a weekend or two.
    pub deadline_days: Vec<u32>,
    /// Share of dossiers that used the national population database: 54.5%. Procedures for
    /// citizens are connected to it with the same share (an assumption).
    pub population_data: f64,
    /// Feedback items per dossier: 570 per 597,918 dossiers.
    pub feedback_per_dossier: f64,
    /// Share of feedback items handled by their deadline: 51.9%.
    pub feedback_on_time: f64,
    /// Days a unit has to answer a feedback item. NOTE: an assumption of this generator.
    pub feedback_due_days: u32,
    /// Share of feedback items about a dossier, which then name its MaHoSo. NOTE: assumed 60%.
    pub feedback_linked: f64,
    /// Share of feedback items about a procedure (the rest split between staff and other).
    /// NOTE: assumed 70%, staff 15%, other 15%.
    pub feedback_about_procedure: f64,
    /// Share of feedback items about staff. NOTE: assumed 15%.
    pub feedback_about_staff: f64,
    /// Share of answered feedback items whose sender was dissatisfied. NOTE: assumed 10%.
    pub feedback_dissatisfied: f64,
    /// Share of answered feedback items complained about again. NOTE: assumed 5%.
    pub feedback_recomplained: f64,
    /// Share of finished dossiers whose applicant rated them. NOTE: assumed 30%.
    pub rated: f64,
    /// Share of ratings at level 4 or 5 (satisfied): 88.4%, the portal's share of satisfied
    /// dossiers, applied here to ratings.
    pub satisfied: f64,
    /// Procedures applied by the province: 89 under Phú Thọ.
    pub province_procedures: usize,
    /// Procedures applied by each commune. NOTE: not published; 20 is an assumption.
    pub commune_procedures: usize,
    /// Share of procedures with partial online service: 31 of 89.
    pub procedure_partial: f64,
    /// Share of procedures with full online service: 21 of 89.
    pub procedure_full: f64,
    /// Share of procedures announced by their legal deadline. NOTE: assumed 90%.
    pub procedure_announced_on_time: f64,
    /// Share of procedures made public by their deadline. NOTE: assumed 90%.
    pub procedure_published_on_time: f64,
    /// Share of public procedure entries with every required part. NOTE: assumed 95%.
    pub procedure_complete: f64,
}

impl Default for Distribution {
    fn default() -> Distribution {
        Distribution {
            online: 589_496.0 / 597_918.0,
            post: 0.0,
            on_time: 0.884,
            electronic_result: 0.725,
            digitized: 0.243,
            reused: 0.229,
            fee_bearing: 0.30,
            paid_online: 0.863,
            business: 0.10,
            province_level: 0.20,
            not_accepted: 0.01,
            withdrawn: 0.005,
            stopped: 0.005,
            unit_spread: 0.5,
            deadline_days: vec![1, 3, 5, 7, 10, 15],
            population_data: 0.545,
            feedback_per_dossier: 570.0 / 597_918.0,
            feedback_on_time: 0.519,
            feedback_due_days: 10,
            feedback_linked: 0.6,
            feedback_about_procedure: 0.7,
            feedback_about_staff: 0.15,
            feedback_dissatisfied: 0.10,
            feedback_recomplained: 0.05,
            rated: 0.30,
            satisfied: 0.884,
            province_procedures: 89,
            commune_procedures: 20,
            procedure_partial: 31.0 / 89.0,
            procedure_full: 21.0 / 89.0,
            procedure_announced_on_time: 0.9,
            procedure_published_on_time: 0.9,
            procedure_complete: 0.95,
        }
    }
}

impl Distribution {
    /// Checks that every share is a probability and that shares of one choice add up to 1 at
    /// most.
    pub fn check(&self) -> Result<(), SampleError> {
        let shares = [
            ("online", self.online),
            ("post", self.post),
            ("on_time", self.on_time),
            ("electronic_result", self.electronic_result),
            ("digitized", self.digitized),
            ("reused", self.reused),
            ("fee_bearing", self.fee_bearing),
            ("paid_online", self.paid_online),
            ("business", self.business),
            ("province_level", self.province_level),
            ("not_accepted", self.not_accepted),
            ("withdrawn", self.withdrawn),
            ("stopped", self.stopped),
            ("unit_spread", self.unit_spread),
            ("online + post", self.online + self.post),
            (
                "not_accepted + withdrawn + stopped",
                self.not_accepted + self.withdrawn + self.stopped,
            ),
            ("population_data", self.population_data),
            ("feedback_per_dossier", self.feedback_per_dossier),
            ("feedback_on_time", self.feedback_on_time),
            ("feedback_linked", self.feedback_linked),
            (
                "feedback_about_procedure + feedback_about_staff",
                self.feedback_about_procedure + self.feedback_about_staff,
            ),
            ("feedback_about_procedure", self.feedback_about_procedure),
            ("feedback_about_staff", self.feedback_about_staff),
            ("feedback_dissatisfied", self.feedback_dissatisfied),
            ("feedback_recomplained", self.feedback_recomplained),
            ("rated", self.rated),
            ("satisfied", self.satisfied),
            (
                "procedure_partial + procedure_full",
                self.procedure_partial + self.procedure_full,
            ),
            ("procedure_partial", self.procedure_partial),
            ("procedure_full", self.procedure_full),
            (
                "procedure_announced_on_time",
                self.procedure_announced_on_time,
            ),
            (
                "procedure_published_on_time",
                self.procedure_published_on_time,
            ),
            ("procedure_complete", self.procedure_complete),
        ];
        for (parameter, value) in shares {
            // A small tolerance lets sums such as 0.7 + 0.3 pass despite rounding.
            if !(0.0..=1.0 + 1e-9).contains(&value) {
                return Err(SampleError::InvalidDistribution {
                    parameter,
                    value: value.to_string(),
                    expected: "a share between 0 and 1",
                });
            }
        }
        if self.deadline_days.is_empty() || self.deadline_days.iter().any(|&days| days > 365) {
            return Err(SampleError::InvalidDistribution {
                parameter: "deadline_days",
                value: format!("{:?}", self.deadline_days),
                expected: "at least one deadline, each from 0 to 365 days",
            });
        }
        if !(1..=365).contains(&self.feedback_due_days) {
            return Err(SampleError::InvalidDistribution {
                parameter: "feedback_due_days",
                value: self.feedback_due_days.to_string(),
                expected: "1 to 365 days",
            });
        }
        let max_procedures = 10_000;
        for (parameter, count) in [
            ("province_procedures", self.province_procedures),
            ("commune_procedures", self.commune_procedures),
        ] {
            if count > max_procedures {
                return Err(SampleError::InvalidDistribution {
                    parameter,
                    value: count.to_string(),
                    expected: "0 to 10000 procedures per unit",
                });
            }
        }
        Ok(())
    }

    /// Returns the shares of one unit. Each share moves by `offset` (from -1 to 1) times
    /// `unit_spread` times its distance to the nearer bound, so it stays in `[0, 1]`.
    pub(super) fn for_unit(&self, offset: f64) -> Distribution {
        let shift = |share: f64| share + offset * self.unit_spread * share.min(1.0 - share);
        Distribution {
            online: shift(self.online),
            on_time: shift(self.on_time),
            electronic_result: shift(self.electronic_result),
            digitized: shift(self.digitized),
            reused: shift(self.reused),
            paid_online: shift(self.paid_online),
            population_data: shift(self.population_data),
            feedback_on_time: shift(self.feedback_on_time),
            satisfied: shift(self.satisfied),
            ..self.clone()
        }
    }
}
