//! The CPU model: a roofline whose rates are measured on this host, once, and cached.
//!
//! Calibration times three things on one core: a single-precision GEMM (the
//! `matrixmultiply` crate, 384³), an elementwise multiply-add loop over data in cache, and
//! a copy of a buffer far larger than the caches (memory bandwidth). It takes about a
//! second; the result is cached in `$SATURATE_CACHE_DIR/cpu.json` (default
//! `~/.cache/saturate/cpu.json`) with the CPU's name, and `saturate calibrate` measures
//! again. A kernel launch on the CPU is a call and a loop setup, taken as 1 µs.

use crate::Roofline;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Instant;

/// A calibration with the machine it was measured on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Calibration {
    pub cpu: String,
    pub roofline: Roofline,
}

/// Where the calibration is cached.
pub fn cache_path() -> PathBuf {
    if let Some(dir) = std::env::var_os("SATURATE_CACHE_DIR") {
        return PathBuf::from(dir).join("cpu.json");
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("saturate").join("cpu.json")
}

/// The host's model: from the cache if it was measured on this CPU, else measured now
/// (and cached).
pub fn host_model() -> Result<Roofline, String> {
    let path = cache_path();
    if let Ok(text) = std::fs::read_to_string(&path) {
        if let Ok(cal) = serde_json::from_str::<Calibration>(&text) {
            if cal.cpu == cpu_name() {
                return Ok(cal.roofline);
            }
        }
    }
    Ok(calibrate()?.roofline)
}

/// A fixed CPU roofline (100 GFLOP/s in products, 20 in loops, 20 GB/s, 1 µs a
/// kernel), for what must not depend on the machine or its load: tests, and fuzz
/// campaigns, whose seed must pick the same programs everywhere.
pub fn reference() -> Roofline {
    Roofline { name: "cpu".into(), gemm_flops: 1e11, vector_flops: 2e10, bandwidth: 2e10, launch: 1e-6 }
}

/// Measures the host and caches the result.
pub fn calibrate() -> Result<Calibration, String> {
    let cal = Calibration { cpu: cpu_name(), roofline: measure() };
    let path = cache_path();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let text = serde_json::to_string_pretty(&cal).map_err(|e| e.to_string())?;
    std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(cal)
}

/// The CPU's model name, to tell whether a cached calibration is this machine's.
pub fn cpu_name() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = info
        .lines()
        .find_map(|l| l.strip_prefix("model name").map(|r| r.trim_start_matches([' ', '\t', ':']).to_string()));
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    format!("{} ({cores} threads)", model.unwrap_or_else(|| std::env::consts::ARCH.to_string()))
}

/// Runs the three measurements.
pub fn measure() -> Roofline {
    Roofline {
        name: "cpu".into(),
        gemm_flops: gemm_rate(),
        vector_flops: vector_rate(),
        bandwidth: bandwidth(),
        launch: 1e-6,
    }
}

/// The median of `runs` timings of `f`, in seconds.
fn median_seconds(runs: usize, mut f: impl FnMut()) -> f64 {
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[runs / 2]
}

fn gemm_rate() -> f64 {
    let n = 384;
    let a: Vec<f32> = (0..n * n).map(|i| (i % 7) as f32 * 0.1).collect();
    let b: Vec<f32> = (0..n * n).map(|i| (i % 5) as f32 * 0.1).collect();
    let mut c = vec![0f32; n * n];
    let seconds = median_seconds(7, || unsafe {
        // SAFETY: the slices hold n×n row-major matrices, as the strides say
        matrixmultiply::sgemm(
            n,
            n,
            n,
            1.0,
            a.as_ptr(),
            n as isize,
            1,
            b.as_ptr(),
            n as isize,
            1,
            0.0,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    });
    std::hint::black_box(&c);
    2.0 * (n * n * n) as f64 / seconds
}

fn vector_rate() -> f64 {
    let n = 1 << 14;
    let (x, y) = (vec![1.0001f32; n], vec![0.9999f32; n]);
    let mut z = vec![0f32; n];
    let reps = 200;
    let seconds = median_seconds(5, || {
        for _ in 0..reps {
            for ((z, &x), &y) in z.iter_mut().zip(&x).zip(&y) {
                *z = *z * x + y;
            }
            std::hint::black_box(&mut z);
        }
    });
    2.0 * (n * reps) as f64 / seconds
}

fn bandwidth() -> f64 {
    let n = 32 << 20; // 128 MB of f32, beyond any cache
    let src = vec![1.0f32; n];
    let mut dst = vec![0.0f32; n];
    let seconds = median_seconds(5, || {
        dst.copy_from_slice(&src);
        std::hint::black_box(&mut dst);
    });
    // a copy reads and writes every byte
    2.0 * (n * 4) as f64 / seconds
}
