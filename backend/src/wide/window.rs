//! Depthwise convolution on wide vectors: 2-D, stride 1, no dilation (the shape of
//! MobileNet's, EfficientNet's and ConvNeXt's), any kernel size and padding.
//!
//! Each plane (one channel of one image) is copied, zero-padded, into its part of the
//! scratch buffer (in L1 or L2 for the planes of these models); each output row then
//! accumulates, over the taps, the padded input row shifted by the tap times the tap's
//! weight, four vectors of outputs at a time in registers, starting from the bias.
//! Other depthwise convolutions run in CLIF's window kernel.

#![allow(unsafe_op_in_unsafe_fn)]

use super::vector::Vector;
use super::Isa;
use crate::window::{WindowOp, WindowSpec};

/// A depthwise [`WindowSpec`] ready to run on wide vectors.
#[derive(Debug, Clone)]
pub struct DepthwiseProgram {
    pub(super) isa: Isa,
    channels: usize,
    input: [usize; 2],
    output: [usize; 2],
    kernel: [usize; 2],
    pads: [usize; 2],
    /// Rows and row pitch of a plane's padded copy, and its elements.
    rows: usize,
    pitch: usize,
    plane_len: usize,
}

impl DepthwiseProgram {
    pub fn new(spec: &WindowSpec, isa: Isa) -> Option<DepthwiseProgram> {
        let WindowOp::Depthwise { channels } = spec.op else { return None };
        let unit = |v: &[usize]| v.iter().all(|&s| s == 1);
        if spec.input.len() != 2 || !unit(&spec.strides) || !unit(&spec.dilations) {
            return None;
        }
        let scratch = spec.scratch();
        let (rows, pitch) = (scratch.outer[0], scratch.phase_len);
        // the padded copy holds every row and column a tap reads
        let fits = rows >= spec.output[0] + spec.kernel[0] - 1
            && pitch >= spec.output[1] + spec.kernel[1] - 1
            && rows >= spec.pads_begin[0] + spec.input[0]
            && pitch >= spec.pads_begin[1] + spec.input[1];
        // the last block reads up to 4 vectors and the kernel's width past its row
        let slack = 4 * 16 + spec.kernel[1] <= SCRATCH_SLACK + pitch;
        if !fits || !slack || scratch.phases != 1 || spec.output[1] < 16 {
            return None;
        }
        Some(DepthwiseProgram {
            isa,
            channels,
            input: [spec.input[0], spec.input[1]],
            output: [spec.output[0], spec.output[1]],
            kernel: [spec.kernel[0], spec.kernel[1]],
            pads: [spec.pads_begin[0], spec.pads_begin[1]],
            rows,
            pitch,
            plane_len: scratch.plane_len(),
        })
    }

    /// Planes `[begin, end)`.
    ///
    /// # Safety
    /// `args` holds the input, weights `[C, taps]`, bias `[C]`, scratch (a plane's
    /// padded copy and [`SCRATCH_SLACK`] per plane) and output addresses, each as big as
    /// the spec says.
    #[inline(always)]
    pub(super) unsafe fn run_with<V: Vector>(&self, args: *const *mut u8, begin: usize, end: usize) {
        let arg = |k: usize| unsafe { (*args.add(k)).cast::<f32>() };
        let (x, w, b, scratch, out) = (arg(0), arg(1), arg(2), arg(3), arg(4));
        let [h, wi] = self.input;
        let [oh, ow] = self.output;
        let [kh, kw] = self.kernel;
        let taps = kh * kw;
        for p in begin..end {
            let c = p % self.channels;
            unsafe {
                // each plane's copy followed by its own slack, which its last reads reach
                let s = scratch.add(p * (self.plane_len + SCRATCH_SLACK));
                std::ptr::write_bytes(s, 0, self.rows * self.pitch);
                for y in 0..h {
                    let src = x.add((p * h + y) * wi);
                    std::ptr::copy_nonoverlapping(src, s.add((y + self.pads[0]) * self.pitch + self.pads[1]), wi);
                }
                let weights = w.add(c * taps);
                let bias = *b.add(c);
                for oy in 0..oh {
                    let o = out.add((p * oh + oy) * ow);
                    let top = s.add(oy * self.pitch);
                    self.output_row::<V>(top, weights, bias, o, ow);
                }
            }
        }
    }

    /// One output row of `ow`: `bias + Σ w[ky,kx] · s[ky][x + kx]`, the padded rows
    /// starting at `top`, four vectors at a time (independent chains, so the FMAs
    /// overlap). The last block reads past the row's end (into the next row, or the
    /// scratch's slack) and stores only the lanes that are outputs.
    #[inline(always)]
    unsafe fn output_row<V: Vector>(&self, top: *const f32, w: *const f32, bias: f32, o: *mut f32, ow: usize) {
        const BLOCK: usize = 4;
        let [kh, kw] = self.kernel;
        let l = V::LANES;
        let mut x0 = 0;
        unsafe {
            while x0 < ow {
                let mut acc = [V::splat(bias); BLOCK];
                for ky in 0..kh {
                    let row = top.add(ky * self.pitch + x0);
                    for kx in 0..kw {
                        let wv = V::splat(*w.add(ky * kw + kx));
                        for (a, v) in acc.iter_mut().enumerate() {
                            *v = V::load(row.add(kx + a * l)).fma(wv, *v);
                        }
                    }
                }
                for (a, v) in acc.iter().enumerate() {
                    let at = x0 + a * l;
                    if at + l <= ow {
                        v.store(o.add(at));
                    } else if at < ow {
                        let mut lanes = [0f32; 16];
                        v.store(lanes.as_mut_ptr());
                        std::ptr::copy_nonoverlapping(lanes.as_ptr(), o.add(at), ow - at);
                    }
                }
                x0 += BLOCK * l;
            }
        }
    }
}

/// Elements the scratch buffer holds past each plane's copy, for the reads of a last
/// block of [`DepthwiseProgram`] that run past its row.
pub const SCRATCH_SLACK: usize = 4 * 16 + 64;
