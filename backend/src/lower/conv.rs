//! Convolution and pooling.
//!
//! A depthwise convolution (one filter per channel) is a generated window loop. Every
//! other convolution is a matrix product per batch item and group, `W[M/g, C/g·taps] ·
//! cols[C/g·taps, positions]`, through the GEMM crate: `cols` is the input itself for
//! 1×1 kernels with unit strides and no padding, and the generated im2col of it
//! otherwise. Bias and activation follow in one pass over the product. Pooling is a
//! generated window loop.

use super::elementwise::activation_op;
use super::Lowering;
use crate::error::BackendError;
use crate::gemm::MatMul;
use crate::plan::{Kernel, Loc, Step};
use crate::window::{WindowOp, WindowSpec};
use saturate_egraph::{Activation, Id};

impl Lowering<'_> {
    /// `conv(x, w, b, strides, pads, dilations, group)`, then `act`.
    pub(super) fn conv(&mut self, i: usize, children: [Id; 7], act: Activation) -> Result<(), BackendError> {
        let [x, w, bias, strides, pads, dilations, group] = children;
        let (x, w, bias) = (usize::from(x), usize::from(w), usize::from(bias));
        let x_shape = self.ty(x).shape.clone();
        let w_shape = self.ty(w).shape.clone();
        let out_shape = self.ty(i).shape.clone();
        let (batch, channels, m) = (x_shape[0], x_shape[1], w_shape[0]);
        let group = self.int(group) as usize;
        let geometry = self.geometry(&x_shape, &out_shape, &w_shape[2..], strides, pads, dilations);
        let out = self.output(i);
        let constant = self.fusion.constant[i];
        if out_shape.contains(&0) {
            return Ok(());
        }
        let (cg, mg) = (channels / group, m / group);
        let (taps, positions) = (geometry.taps(), geometry.positions());
        if group == channels && mg == 1 {
            let spec = WindowSpec { planes: batch * channels, op: WindowOp::Depthwise { channels }, ..geometry };
            let args = vec![self.loc(x)?, self.loc(w)?, self.loc(bias)?, out];
            self.push_window("depthwise", spec, args, constant)?;
        } else {
            let direct = taps == 1
                && geometry.strides.iter().all(|&s| s == 1)
                && geometry.pads_begin.iter().chain(&geometry.pads_end).all(|&p| p == 0);
            let cols = if direct {
                self.loc(x)?
            } else {
                let cols = self.new_buffer(batch * channels * taps * positions * 4, constant);
                let spec = WindowSpec { planes: batch * channels, op: WindowOp::Im2col, ..geometry };
                let src = self.loc(x)?;
                self.push_window("im2col", spec, vec![src, cols], constant)?;
                cols
            };
            let k = cg * taps;
            let mut batch_offsets = Vec::with_capacity(batch * group);
            for n in 0..batch {
                for g in 0..group {
                    batch_offsets.push([
                        g * mg * k,
                        (n * channels + g * cg) * taps * positions,
                        (n * m + g * mg) * positions,
                    ]);
                }
            }
            let product = MatMul {
                m: mg,
                n: positions,
                k,
                batch: batch_offsets,
                a_strides: [k as isize, 1],
                b_strides: [positions as isize, 1],
                alpha: 1.0,
                accumulate: false,
            };
            let wl = self.loc(w)?;
            self.steps.push(Step {
                kernel: Kernel::MatMul(product),
                args: vec![wl, cols, out],
                writes: vec![false, false, true],
                constant,
            });
            // bias and activation in one pass over the result
            let mut channel = vec![0isize; out_shape.len()];
            channel[1] = 1;
            return self.epilogue(out, &out_shape, Some((bias, channel, 1.0)), activation_op(act), constant);
        }
        if let Some(op) = activation_op(act) {
            self.epilogue(out, &out_shape, None, Some(op), constant)?;
        }
        Ok(())
    }

    /// `max_pool` and `avg_pool`: `[kernel, strides, pads, dilations]` attributes.
    pub(super) fn pool(&mut self, i: usize, x: Id, attrs: [Id; 4], op: WindowOp) -> Result<(), BackendError> {
        let [kernel, strides, pads, dilations] = attrs;
        let x = usize::from(x);
        let x_shape = self.ty(x).shape.clone();
        let out_shape = self.ty(i).shape.clone();
        let kernel: Vec<usize> = self.ints(kernel).iter().map(|&k| k as usize).collect();
        let geometry = self.geometry(&x_shape, &out_shape, &kernel, strides, pads, dilations);
        let out = self.output(i);
        let constant = self.fusion.constant[i];
        if out_shape.contains(&0) || x_shape.contains(&0) {
            return Ok(());
        }
        let spec = WindowSpec { planes: x_shape[0] * x_shape[1], op, ..geometry };
        let src = self.loc(x)?;
        let mut args = vec![src];
        if let WindowOp::Average { count_include_pad } = op {
            let table: Vec<u8> =
                spec.average_divisors(count_include_pad).iter().flat_map(|v| v.to_le_bytes()).collect();
            let loc = self.new_buffer(table.len(), true);
            self.initial.push((loc.buffer, table));
            args.push(loc);
        }
        args.push(out);
        self.push_window("pool", spec, args, constant)
    }

    /// The window geometry of a conv or pool (planes and op to be filled in).
    fn geometry(
        &self,
        x: &[usize],
        out: &[usize],
        kernel: &[usize],
        strides: Id,
        pads: Id,
        dilations: Id,
    ) -> WindowSpec {
        let spatial = x.len() - 2;
        let to_usize = |v: Vec<i64>| v.into_iter().map(|s| s as usize).collect::<Vec<_>>();
        let pads = to_usize(self.ints(pads));
        WindowSpec {
            planes: 0,
            input: x[2..].to_vec(),
            output: out[2..].to_vec(),
            kernel: kernel.to_vec(),
            strides: to_usize(self.ints(strides)),
            dilations: to_usize(self.ints(dilations)),
            pads_begin: pads[..spatial].to_vec(),
            pads_end: pads[spatial..].to_vec(),
            op: WindowOp::Im2col,
        }
    }

    /// Adds the window kernel of `spec`; `args` are its operands then its output, and a
    /// scratch buffer for the planes' padded copies goes in before the output.
    fn push_window(
        &mut self,
        what: &str,
        spec: WindowSpec,
        mut args: Vec<Loc>,
        constant: bool,
    ) -> Result<(), BackendError> {
        if spec.planes == 0 {
            return Ok(());
        }
        let scratch = self.new_buffer(spec.planes * spec.scratch().plane_len() * 4, constant);
        args.insert(args.len() - 1, scratch);
        let index = self.jit.define(what, |b, params| crate::jit::window::generate(b, params, &spec))?;
        let per_outer = spec.positions() * spec.taps();
        // the kernel writes its scratch and its output
        let writes = (0..args.len()).map(|k| k + 2 >= args.len()).collect();
        self.steps.push(Step { kernel: Kernel::Loop { index, outer: spec.planes, per_outer }, args, writes, constant });
        Ok(())
    }
}
