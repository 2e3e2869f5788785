//! Winograd convolutions ([`saturate_egraph::winograd`]): the weight transform as one
//! product by the constant `G ⊗ G` (a constant step wherever the weights are, so it runs
//! at compile time), and `winograd_conv` as its input transform, one product per point
//! of the (m+2)² space through the GEMM crate, and its output transform, which adds the
//! bias and applies a ReLU (another activation gets a pass of its own).

use super::elementwise::activation_op;
use super::Lowering;
use crate::error::BackendError;
use crate::gemm::MatMul;
use crate::plan::{ConvAlgorithm, Kernel, Step};
use crate::wide::{WinogradKernel, WinogradSpec, WinogradTransform};
use saturate_egraph::{Activation, Id, WinogradTile};

impl Lowering<'_> {
    /// `winograd_weights(w, m)`: `U[(a, b), f] = Σ (G ⊗ G)[(a, b), t] · w[f, t]` over
    /// the nine taps `t` of each filter `f` — one product, its right operand the
    /// weights read with the taps as rows.
    pub(super) fn winograd_weights(&mut self, i: usize, w: Id, tile: Id) -> Result<(), BackendError> {
        let tile = winograd_tile(self.int(tile));
        let w = usize::from(w);
        let filters = self.ty(w).shape[..2].iter().product::<usize>();
        let area = tile.alpha() * tile.alpha();
        let transform: Vec<u8> = tile.weight_transform().iter().flat_map(|&v| (v as f32).to_le_bytes()).collect();
        let g = self.new_buffer(transform.len(), true);
        self.initial.push((g.buffer, transform));
        let out = self.output(i);
        if filters == 0 {
            return Ok(());
        }
        let product = MatMul {
            m: area,
            n: filters,
            k: 9,
            batch: vec![[0, 0, 0]],
            a_strides: [9, 1],
            b_strides: [1, 9],
            alpha: 1.0,
            accumulate: false,
        };
        let wl = self.loc(w)?;
        let constant = self.fusion.constant[i];
        self.push_matmul(product, g, wl, out, constant);
        Ok(())
    }

    /// `winograd_conv(x, u, b, pads, m, act)`.
    pub(super) fn winograd_conv(&mut self, i: usize, children: [Id; 6]) -> Result<(), BackendError> {
        let [x, u, bias, pads, tile, act] = children;
        let (x, u, bias) = (usize::from(x), usize::from(u), usize::from(bias));
        let (tile, act) = (winograd_tile(self.int(tile)), self.act(act));
        let x_shape = self.ty(x).shape.clone();
        let out_shape = self.ty(i).shape.clone();
        let pads = self.ints(pads);
        let spec = WinogradSpec {
            m: tile.m,
            batch: x_shape[0],
            channels: x_shape[1],
            out_channels: out_shape[1],
            input: [x_shape[2], x_shape[3]],
            output: [out_shape[2], out_shape[3]],
            pads_begin: [pads[0] as usize, pads[1] as usize],
        };
        let out = self.output(i);
        let constant = self.fusion.constant[i];
        if out_shape.contains(&0) {
            return Ok(());
        }
        if !constant {
            self.convolutions.push(if tile.m == 2 { ConvAlgorithm::Winograd2 } else { ConvAlgorithm::Winograd4 });
        }
        let (area, tiles) = (tile.alpha() * tile.alpha(), spec.tiles());
        let (channels, k) = (spec.channels, spec.out_channels);
        let planes = spec.batch * channels;
        let transformed = if channels == 0 {
            None
        } else {
            let v = self.new_buffer(area * spec.point_stride(channels) * 4, constant);
            let scratch = self.new_buffer(planes * spec.scratch_per_plane() * 4, constant);
            let src = self.loc(x)?;
            let kernel = WinogradKernel { transform: WinogradTransform::Input(spec.clone()), isa: self.wide };
            let per_plane = spec.input[0] * spec.input[1] * 4;
            self.push_winograd(kernel, planes, per_plane, vec![src, scratch, v], constant);
            Some(v)
        };
        let (v_stride, m_stride) = (spec.point_stride(channels), spec.point_stride(k));
        let products = self.new_buffer(area * m_stride * 4, constant);
        match transformed {
            Some(v) => {
                let product = MatMul {
                    m: k,
                    n: tiles,
                    k: channels,
                    batch: (0..area).map(|p| [p * k * channels, p * v_stride, p * m_stride]).collect(),
                    a_strides: [channels as isize, 1],
                    b_strides: [tiles as isize, 1],
                    alpha: 1.0,
                    accumulate: false,
                };
                let ul = self.loc(u)?;
                self.push_matmul(product, ul, v, products, constant);
            }
            // no input channels: every product is zero
            None => self.push_loop(
                "winograd_zero",
                super::elementwise::fill_spec(&[area * m_stride], saturate_egraph::DType::F32, 0.0),
                vec![products],
                constant,
            )?,
        }
        let relu = act == Activation::Relu;
        let kernel =
            WinogradKernel { transform: WinogradTransform::Output { spec: spec.clone(), relu }, isa: self.wide };
        let bl = self.loc(bias)?;
        let per_plane = spec.output[0] * spec.output[1] * 4;
        self.push_winograd(kernel, spec.batch * k, per_plane, vec![products, bl, out], constant);
        match activation_op(act) {
            Some(op) if !relu => self.epilogue(out, &out_shape, None, Some(op), constant),
            _ => Ok(()),
        }
    }

    /// Adds a transform step over `outer` planes; `args` end with the one it writes,
    /// the input transform's scratch before that.
    fn push_winograd(
        &mut self,
        kernel: WinogradKernel,
        outer: usize,
        per_outer: usize,
        args: Vec<crate::plan::Loc>,
        constant: bool,
    ) {
        let input = matches!(kernel.transform, WinogradTransform::Input(_));
        let writes = (0..args.len()).map(|k| k + 1 == args.len() || (input && k == 1)).collect();
        let kernel = Kernel::Winograd { kernel: Box::new(kernel), outer, per_outer };
        self.steps.push(Step { kernel, args, writes, constant });
    }
}

fn winograd_tile(m: i64) -> &'static WinogradTile {
    WinogradTile::of(m).expect("type checking allows tiles of 2 and 4 only")
}
