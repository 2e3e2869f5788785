//! Timing a compiled program: warm up, then run until enough runs and enough time have
//! passed, and report the median and the spread (these machines are shared and noisy,
//! so a single run means little).

use crate::error::BackendError;
use crate::runtime::Executable;
use crate::{compile, Options};
use saturate_egraph::{Graph, Tensor};
use std::time::{Duration, Instant};

/// How long to measure.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub warmup: usize,
    pub min_runs: usize,
    pub max_runs: usize,
    /// Keep running (up to `max_runs`) until this much time has been measured. The cap
    /// is far above what any kernel reaches in a few seconds: a small kernel's
    /// figure should cover as much time as a big one's (and as the peers' do).
    pub min_time: Duration,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions { warmup: 3, min_runs: 10, max_runs: 1_000_000, min_time: Duration::from_secs(2) }
    }
}

/// Run times in milliseconds.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Timing {
    pub runs: usize,
    pub median_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
    /// The 25th and 75th percentiles.
    pub p25_ms: f64,
    pub p75_ms: f64,
}

impl Timing {
    pub fn of(mut samples_ms: Vec<f64>) -> Timing {
        samples_ms.sort_by(f64::total_cmp);
        let at = |q: f64| samples_ms[((samples_ms.len() - 1) as f64 * q).round() as usize];
        Timing {
            runs: samples_ms.len(),
            median_ms: at(0.5),
            min_ms: samples_ms[0],
            max_ms: samples_ms[samples_ms.len() - 1],
            p25_ms: at(0.25),
            p75_ms: at(0.75),
        }
    }
}

/// Times `exe` on `inputs`.
///
/// Each run reads the inputs in place and writes into the same output tensors, as a
/// serving loop would: what is timed is the program, not allocation or copies.
pub fn measure(exe: &mut Executable, inputs: &[Tensor], options: &BenchOptions) -> Result<Timing, BackendError> {
    let mut samples = Vec::with_capacity(options.max_runs.clamp(1, 1 << 16));
    sample(exe, inputs, options, &mut samples)?;
    Ok(Timing::of(samples))
}

/// Appends the run times (ms) of one [`measure`]ment of `exe` to `samples`.
fn sample(
    exe: &mut Executable,
    inputs: &[Tensor],
    options: &BenchOptions,
    samples: &mut Vec<f64>,
) -> Result<(), BackendError> {
    let mut outputs = exe.new_outputs();
    for _ in 0..options.warmup {
        exe.run_into(inputs, &mut outputs)?;
    }
    let (start, first) = (Instant::now(), samples.len());
    while samples.len() - first < options.max_runs.max(1)
        && (samples.len() - first < options.min_runs.max(1) || start.elapsed() < options.min_time)
    {
        let t = Instant::now();
        exe.run_into(inputs, &mut outputs)?;
        samples.push(t.elapsed().as_secs_f64() * 1e3);
    }
    Ok(())
}

/// How many rounds [`compare`] interleaves.
pub const COMPARE_ROUNDS: usize = 3;

/// One program's times in a [`compare`]: every run pooled, and the median of its
/// fastest round.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Compared {
    pub pooled: Timing,
    /// The lowest of the rounds' medians: what the program takes when the machine
    /// leaves it alone. On a shared VM a neighbour's burst can slow a whole round by
    /// 20 % or more; it rarely slows all of them.
    pub best_round_ms: f64,
}

/// Times several programs against each other on the same `inputs`: each is compiled
/// once, then they take turns, [`COMPARE_ROUNDS`] rounds of `per_program / rounds`
/// each, so that a machine's slow minute (these are shared) falls on all of them
/// rather than on one. A program that fails to compile or run gets its error and the
/// others go on.
pub fn compare(
    programs: &[Graph],
    inputs: &[Tensor],
    options: &Options,
    per_program: Duration,
) -> Vec<Result<Compared, BackendError>> {
    let mut exes: Vec<Result<Executable, BackendError>> = programs.iter().map(|g| compile(g, options)).collect();
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); programs.len()];
    let mut best = vec![f64::INFINITY; programs.len()];
    let round =
        BenchOptions { warmup: 1, min_runs: 3, min_time: per_program / COMPARE_ROUNDS as u32, ..Default::default() };
    for r in 0..COMPARE_ROUNDS {
        for ((exe, samples), best) in exes.iter_mut().zip(&mut samples).zip(&mut best) {
            let Ok(ready) = exe else { continue };
            let warmed = BenchOptions { warmup: if r == 0 { 3 } else { round.warmup }, ..round.clone() };
            let first = samples.len();
            match sample(ready, inputs, &warmed, samples) {
                Ok(()) => *best = best.min(Timing::of(samples[first..].to_vec()).median_ms),
                Err(e) => *exe = Err(e),
            }
        }
    }
    exes.into_iter()
        .zip(samples.into_iter().zip(best))
        .map(|(exe, (samples, best_round_ms))| exe.map(|_| Compared { pooled: Timing::of(samples), best_round_ms }))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_known_sample() {
        let t = Timing::of(vec![5.0, 1.0, 4.0, 2.0, 3.0]);
        assert_eq!((t.runs, t.median_ms, t.min_ms, t.max_ms, t.p25_ms, t.p75_ms), (5, 3.0, 1.0, 5.0, 2.0, 4.0));
    }
}
