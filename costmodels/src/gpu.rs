//! Analytic GPU models: roofline with published peak rates, plus a launch overhead per
//! kernel.
//!
//! Rates are FP32 without tensor cores (saturate computes in f32): V100 SXM2 15.7 TFLOP/s
//! and 900 GB/s HBM2; H100 SXM 67 TFLOP/s and 3.35 TB/s HBM3 (NVIDIA datasheets). Large
//! GEMMs reach about 85 % of peak and streaming kernels about 80 % of bandwidth, so the
//! models use those fractions. A kernel launch costs about 5 µs on V100 and 3 µs on H100
//! (launch plus the gap between dependent kernels).

use crate::Roofline;

pub fn v100() -> Roofline {
    Roofline {
        name: "gpu-v100".into(),
        gemm_flops: 0.85 * 15.7e12,
        vector_flops: 0.85 * 15.7e12,
        bandwidth: 0.8 * 900e9,
        launch: 5e-6,
    }
}

pub fn h100() -> Roofline {
    Roofline {
        name: "gpu-h100".into(),
        gemm_flops: 0.85 * 67e12,
        vector_flops: 0.85 * 67e12,
        bandwidth: 0.8 * 3.35e12,
        launch: 3e-6,
    }
}
