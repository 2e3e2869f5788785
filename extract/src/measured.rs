//! # A search that measures
//!
//! A cost model ranks programs; the clock decides between them. After extraction,
//! [`choose_by_clock`] takes the input program and the `k` best distinct candidates the
//! extractors found (by estimate, from [`OptimizeReport::candidates`]), has a caller's
//! clock time them all (in `saturate`, the JIT: compiled once each, timed in interleaved
//! rounds on the same inputs), and keeps the fastest, if it beats the input again in a
//! rematch. The input is always one of the programs timed, so the result is never
//! slower by that clock than what came in.
//!
//! This crate knows nothing of how programs run: the clock is a function from programs
//! to their median times, and a program it cannot time (it failed to compile, say) is
//! reported with the reason and never chosen.

use crate::optimize::{Candidate, OptimizeReport};
use saturate_egraph::Graph;

/// One program the clock timed.
#[derive(Debug, Clone)]
pub struct Trial {
    /// `input`, or the candidate's extractor and pricing.
    pub source: String,
    /// The cost model's estimate, in seconds.
    pub estimate: f64,
    /// The measured median, in milliseconds, or why there is none.
    pub measured_ms: Result<f64, String>,
}

/// What the clock found: `trials[0]` is the input, then the candidates, best estimate
/// first; `chosen` indexes the program kept.
#[derive(Debug, Clone)]
pub struct Measured {
    pub trials: Vec<Trial>,
    pub chosen: usize,
    /// The winner of the first round timed again against the input, when it was not the
    /// input.
    pub rematch: Option<Rematch>,
}

impl Measured {
    /// The input's time, in milliseconds, if it could be timed: from the rematch when
    /// there was one.
    pub fn input_ms(&self) -> Option<f64> {
        match self.rematch {
            Some(r) => Some(r.input_ms),
            None => self.trials[0].measured_ms.as_ref().ok().copied(),
        }
    }

    /// The kept program's time, in milliseconds: from the rematch when there was one
    /// (the input's there, if the winner lost it).
    pub fn chosen_ms(&self) -> Option<f64> {
        match self.rematch {
            Some(r) if r.upheld => Some(r.kept_ms),
            Some(r) => Some(r.input_ms),
            None => self.trials[self.chosen].measured_ms.as_ref().ok().copied(),
        }
    }

    /// What extraction alone would have returned: the best estimate, or the input when
    /// no candidate beat the input's estimate.
    pub fn estimated_best(&self) -> usize {
        match self.trials.get(1) {
            Some(t) if t.estimate < self.trials[0].estimate => 1,
            _ => 0,
        }
    }
}

/// Times `input` and up to `k` of the report's candidates (best estimate first) with
/// `clock`, and returns the fastest program, with its weights, and the trials. The report
/// is updated to describe the program kept.
///
/// `clock` gets the programs in trial order, with their weights, and returns one time
/// (ms) or error each. Candidates whose estimate is no better than the input's are
/// timed too: the estimates are what is in question.
///
/// The fastest of several noisy times is biased low (the winner's curse), so a winner
/// other than the input is timed again against the input alone, in a second call to
/// `clock`: it is kept only if it wins again, and that rematch gives the speedup
/// reported ([`Measured::rematch`]).
pub fn choose_by_clock(
    input: &Graph,
    report: &mut OptimizeReport,
    k: usize,
    mut clock: impl FnMut(&[Graph]) -> Vec<Result<f64, String>>,
) -> (Graph, Measured) {
    let input_program = input.canonicalize();
    let chosen_candidates: Vec<Candidate> =
        report.candidates.iter().filter(|c| c.program.expr != input_program.expr).take(k).cloned().collect();
    let mut programs = vec![input_program];
    programs.extend(chosen_candidates.iter().map(|c| c.program.clone().with_weights_from(input)));
    let mut times = clock(&programs);
    times.resize_with(programs.len(), || Err("the clock returned no time".into()));

    let mut trials = vec![Trial { source: "input".into(), estimate: report.cost_before, measured_ms: Ok(0.0) }];
    trials.extend(chosen_candidates.iter().map(|c| Trial {
        source: c.source.clone(),
        estimate: c.estimate,
        measured_ms: Ok(0.0),
    }));
    for (trial, time) in trials.iter_mut().zip(times) {
        trial.measured_ms = time;
    }
    let mut chosen = fastest(&trials);
    let mut rematch = None;
    if chosen > 0 && trials[0].measured_ms.is_ok() {
        let pair = [programs[0].clone(), programs[chosen].clone()];
        let times = clock(&pair);
        if let [Ok(input_ms), Ok(kept_ms)] = times[..] {
            rematch = Some(Rematch { input_ms, kept_ms, winner: chosen, upheld: kept_ms < input_ms });
            if kept_ms >= input_ms {
                chosen = 0;
            }
        }
    }
    report.adopt(chosen.checked_sub(1).map(|i| &chosen_candidates[i]));
    let program = programs.swap_remove(chosen);
    (program, Measured { trials, chosen, rematch })
}

/// The second timing of the first round's winner against the input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rematch {
    pub input_ms: f64,
    pub kept_ms: f64,
    /// The index of the first round's winner in [`Measured::trials`].
    pub winner: usize,
    /// Whether it won again (and so is kept).
    pub upheld: bool,
}

/// The index of the fastest trial; the input (0) when none could be timed, and on a tie.
fn fastest(trials: &[Trial]) -> usize {
    let mut best = 0;
    for (i, t) in trials.iter().enumerate().skip(1) {
        let Ok(ms) = t.measured_ms else { continue };
        match trials[best].measured_ms {
            Ok(b) if ms >= b => {}
            _ => best = i,
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trial(ms: Result<f64, &str>) -> Trial {
        Trial { source: String::new(), estimate: 0.0, measured_ms: ms.map_err(String::from) }
    }

    #[test]
    fn the_fastest_timed_program_wins_and_ties_keep_the_input() {
        assert_eq!(fastest(&[trial(Ok(2.0)), trial(Ok(1.0)), trial(Ok(1.5))]), 1);
        assert_eq!(fastest(&[trial(Ok(1.0)), trial(Ok(1.0))]), 0);
        assert_eq!(fastest(&[trial(Ok(1.0)), trial(Err("no")), trial(Ok(3.0))]), 0);
        // an input that could not be timed loses to any program that could
        assert_eq!(fastest(&[trial(Err("no")), trial(Ok(3.0))]), 1);
        assert_eq!(fastest(&[trial(Err("no")), trial(Err("no"))]), 0);
    }
}
