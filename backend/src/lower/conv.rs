//! Convolution and pooling.
//!
//! A depthwise convolution (one filter per channel) is a generated window loop. Every
//! other convolution is a matrix product per batch item and group, `W[M/g, C/g·taps] ·
//! cols[C/g·taps, positions]`, through the GEMM crate: `cols` is the input itself for
//! 1×1 kernels with unit strides and no padding, and the generated im2col of it
//! otherwise — or, for stride-1 convolutions over many channels, one product per tap
//! over the shifted padded input. Bias and activation follow in one pass over the
//! product; a bias without activation whose one reader is an elementwise loop (a
//! residual add) is added in that loop's pass instead. Pooling is a generated window
//! loop.

use super::elementwise::activation_op;
use super::Lowering;
use crate::error::BackendError;
use crate::gemm::MatMul;
use crate::loops::{contiguous_strides, Expr, LoopSpec, Operand, Output};
use crate::plan::{ConvAlgorithm, Kernel, Loc, Step};
use crate::window::{WindowOp, WindowSpec};
use saturate_egraph::{Activation, DType, Id};

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
        let depthwise = group == channels && mg == 1;
        let shifted = if depthwise { None } else { self.shifted_taps(&geometry, cg, group) };
        let algorithm = if depthwise {
            ConvAlgorithm::Depthwise
        } else if shifted.is_some() {
            ConvAlgorithm::ShiftedTaps
        } else if taps == 1
            && geometry.strides.iter().all(|&s| s == 1)
            && geometry.pads_begin.iter().chain(&geometry.pads_end).all(|&p| p == 0)
        {
            ConvAlgorithm::Pointwise
        } else {
            ConvAlgorithm::Im2col
        };
        if !constant {
            self.convolutions.push(algorithm);
        }
        if algorithm == ConvAlgorithm::Depthwise {
            let spec = WindowSpec { planes: batch * channels, op: WindowOp::Depthwise { channels }, ..geometry };
            let args = vec![self.loc(x)?, self.loc(w)?, self.loc(bias)?, out];
            self.push_window("depthwise", spec, args, constant)?;
        } else if let Some(padded) = shifted {
            return self.conv_by_shifted_taps(x, w, bias, act, &geometry, padded, out, constant);
        } else {
            let cols = if algorithm == ConvAlgorithm::Pointwise {
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
            self.push_matmul(product, wl, cols, out, constant);
            // bias and activation in one pass over the result, or the bias in the pass
            // of the elementwise loop that reads it (a residual add, typically)
            let mut channel = vec![0isize; out_shape.len()];
            channel[1] = 1;
            if act == Activation::Id && self.bias_can_wait(i) {
                self.deferred_bias[i] = Some((bias, channel));
                return Ok(());
            }
            return self.epilogue(out, &out_shape, Some((bias, channel, 1.0)), activation_op(act), constant);
        }
        if let Some(op) = activation_op(act) {
            self.epilogue(out, &out_shape, None, Some(op), constant)?;
        }
        Ok(())
    }

    /// Whether node `i`'s bias can be added by its one reader, a run-time elementwise
    /// loop, instead of a pass of its own.
    fn bias_can_wait(&self, i: usize) -> bool {
        let is_output = self.graph.outputs.iter().any(|p| usize::from(p.id) == i);
        match self.fusion.sole_consumer[i] {
            Some(c) => {
                !is_output && !self.fusion.constant[i] && self.fusion.is_loop_element(c) && !self.fusion.constant[c]
            }
            None => false,
        }
    }

    /// Whether a convolution runs as one product per tap over shifted views of its
    /// padded input (see [`conv_by_shifted_taps`](Self::conv_by_shifted_taps)), and if
    /// so the padded plane's `[height, width]`: 2-D, one group, unit strides and
    /// dilations, enough input channels, and at most 10 % more columns computed than
    /// kept.
    fn shifted_taps(&self, g: &WindowSpec, channels: usize, group: usize) -> Option<[usize; 2]> {
        let unit = |v: &[usize]| v.iter().all(|&s| s == 1);
        if g.input.len() != 2 || group != 1 || !unit(&g.strides) || !unit(&g.dilations) || g.taps() == 1 {
            return None;
        }
        let padded = [0, 1].map(|d| g.pads_begin[d] + g.input[d] + g.pads_end[d]);
        let fits = (0..2).all(|d| padded[d] + 1 == g.output[d] + g.kernel[d]);
        let extra = g.kernel[1] - 1;
        // each product's depth is the channel count: too shallow for the GEMM unless the
        // products are wide (measured: 32 channels on 147×147 gain, 64 on 35×35 lose)
        let deep_enough = channels >= 80 || (channels >= 16 && g.positions() >= 4096);
        (fits && deep_enough && extra * 10 <= g.output[1]).then_some(padded)
    }

    /// A stride-1 convolution without im2col: the input is copied once into a padded
    /// buffer, and with the output computed on the padded width (`Wp` columns a row, the
    /// last `kw − 1` of them junk), tap `(ky, kx)` contributes `W[:, :, ky, kx] ·
    /// padded[:, ky·Wp + kx …]` — a product whose right operand is the padded buffer
    /// itself, shifted. The products accumulate into a scratch result; the epilogue
    /// drops the junk columns while adding the bias and applying the activation.
    #[allow(clippy::too_many_arguments)]
    fn conv_by_shifted_taps(
        &mut self,
        x: usize,
        w: usize,
        bias: usize,
        act: Activation,
        g: &WindowSpec,
        [hp, wp]: [usize; 2],
        out: Loc,
        constant: bool,
    ) -> Result<(), BackendError> {
        let x_shape = self.ty(x).shape.clone();
        let (batch, channels) = (x_shape[0], x_shape[1]);
        let m = self.ty(w).shape[0];
        let (ho, wo) = (g.output[0], g.output[1]);
        let (kh, kw) = (g.kernel[0], g.kernel[1]);
        let taps = kh * kw;
        // the padded input, plus kw − 1 elements the last row's junk columns read
        let plane = hp * wp;
        let padded = self.new_buffer((batch * channels * plane + kw - 1) * 4, constant);
        let padded_shape = [batch, channels, hp, wp];
        self.push_loop(
            "pad_fill",
            super::elementwise::fill_spec(&padded_shape, DType::F32, 0.0),
            vec![padded],
            constant,
        )?;
        let dims = x_shape.clone();
        let interior = g.pads_begin[0] * wp + g.pads_begin[1];
        let copy = LoopSpec {
            dims: dims.clone(),
            operands: vec![Operand { dtype: DType::F32, strides: contiguous_strides(&dims) }],
            exprs: vec![Expr::Load(0)],
            outputs: vec![Output { expr: 0, strides: contiguous_strides(&padded_shape) }],
        };
        let src = self.loc(x)?;
        self.push_loop("pad_copy", copy, vec![src, padded.at(interior * 4)], constant)?;
        let columns = ho * wp;
        let result = self.new_buffer(batch * m * columns * 4, constant);
        let wl = self.loc(w)?;
        for (first, tap_range) in [(true, 0..1), (false, 1..taps)] {
            let mut offsets = Vec::new();
            for n in 0..batch {
                for t in tap_range.clone() {
                    let shift = (t / kw) * wp + t % kw;
                    offsets.push([t, n * channels * plane + shift, n * m * columns]);
                }
            }
            if offsets.is_empty() {
                continue;
            }
            let product = MatMul {
                m,
                n: columns,
                k: channels,
                batch: offsets,
                a_strides: [(channels * taps) as isize, taps as isize],
                b_strides: [plane as isize, 1],
                alpha: 1.0,
                accumulate: !first,
            };
            self.push_matmul(product, wl, padded, result, constant);
        }
        let out_shape = [batch, m, ho, wo];
        let kept = vec![(m * columns) as isize, columns as isize, wp as isize, 1];
        let channel = vec![0, 1, 0, 0];
        self.epilogue_from(
            Some((result, kept)),
            out,
            &out_shape,
            Some((bias, channel, 1.0)),
            activation_op(act),
            constant,
        )
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
        // room past every plane's copy for the wide window kernel's last reads (which
        // spaces its parts so; CLIF's kernel packs them and leaves the rest unused)
        let slack = crate::wide::SCRATCH_SLACK;
        let scratch = self.new_buffer(spec.planes * (spec.scratch().plane_len() + slack) * 4, constant);
        args.insert(args.len() - 1, scratch);
        let index = self.jit.define(what, |b, params| crate::jit::window::generate(b, params, &spec))?;
        let per_outer = spec.positions() * spec.taps();
        // the kernel writes its scratch and its output
        let writes = (0..args.len()).map(|k| k + 2 >= args.len()).collect();
        let outer = spec.planes;
        let program =
            self.wide.and_then(|isa| crate::wide::WindowProgram::new(&spec, isa)).map(crate::wide::Program::Window);
        let kernel = Kernel::wide_or_loop(index, program, outer, per_outer);
        self.steps.push(Step { kernel, args, writes, constant });
        Ok(())
    }
}
