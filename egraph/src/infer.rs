//! Static type inference: the result dtype and shape of every op, and the attribute
//! conventions each op follows.
//!
//! [`infer`] is the single source of truth for what a well-formed node is. Import
//! calls it on every node it creates (so an ill-shaped model fails with the ONNX node's
//! name), the e-class analysis calls it on every e-node, and graph checking calls it on
//! whole programs.
//!
//! Operands come first, attributes last. Attributes are already normalized: axes are
//! non-negative, lists are explicit, and ONNX defaults have been filled in at import.
//!
//! | op | children | result |
//! |---|---|---|
//! | `input`, `weight` | name, dtype, shape | the declared type |
//! | `fill` | value (float), shape | f32 tensor of that shape, all elements `value` |
//! | `neg`, `abs` | x (f32 or i64) | same as x |
//! | `sqrt` `reciprocal` `exp` `log` `erf` `tanh` `sigmoid` `relu` `floor` `ceil` | x (f32) | same as x |
//! | `not` | x (bool) | same as x |
//! | `leaky_relu` | x, alpha | same as x |
//! | `clip` | x, min, max (floats; `-inf`/`inf` when absent) | same as x |
//! | `cast` | x, dtype | x's shape, the given dtype |
//! | `add` `sub` `mul` `div` `max` `min` | a, b of one dtype (f32 or i64) | broadcast shape |
//! | `pow` | a (f32), b (f32) | broadcast shape |
//! | `equal` `less` `greater` | a, b of one dtype | bool, broadcast shape |
//! | `and` `or` | a, b (bool) | bool, broadcast shape |
//! | `where` | cond (bool), a, b | broadcast of all three |
//! | `matmul` | a, b (f32) | numpy matmul: batch dims broadcast, 1-D operands promoted |
//! | `gemm` | a, b, c, alpha, beta, trans_a, trans_b | `alpha·op(a)·op(b) + beta·c`, c broadcast to [M,N] |
//! | `reduce_sum` `reduce_mean` `reduce_max` `reduce_min` | x (max/min also bool), axes (sorted, distinct; `[]` reduces nothing), keepdims (0/1) | reduced shape |
//! | `softmax`, `log_softmax` | x, axis | same as x |
//! | `layer_norm` | x, scale, bias, axis, epsilon | same as x; normalizes over axes `axis..rank` |
//! | `batch_norm` | x [N,C,…], scale, bias, mean, var (each [C]), epsilon | same as x |
//! | `lrn` | x [N,C,…], size, alpha, beta, bias | same as x |
//! | `reshape` | x, shape (explicit, no 0 or -1) | shape |
//! | `flatten` | x, axis | `[prod(dims[..axis]), prod(dims[axis..])]` |
//! | `squeeze` | x, axes (each of size 1) | axes removed |
//! | `unsqueeze` | x, axes (positions in the result) | size-1 axes inserted |
//! | `transpose` | x, perm | permuted |
//! | `expand` | x, shape | broadcast of x's shape and `shape` |
//! | `concat` | axis, x₁, x₂, … | sizes along axis summed |
//! | `slice` | x, starts, ends, steps (one each per axis, clamped) | `ceil((end-start)/step)` per axis |
//! | `gather` | x, indices (i64), axis | `x.dims[..axis] ++ indices.dims ++ x.dims[axis+1..]` |
//! | `conv` | x [N,C,…], w [M,C/group,k…], b [M], strides, pads [begins…, ends…], dilations, group | [N,M,out…] |
//! | `max_pool` | x, kernel, strides, pads, dilations, ceil_mode | [N,C,out…] |
//! | `avg_pool` | x, kernel, strides, pads, dilations, ceil_mode, count_include_pad | [N,C,out…] |
//! | `global_avg_pool`, `global_max_pool` | x [N,C,…] | [N,C,1,…] |
//! | `pad` | x, pads [begins…, ends…] (non-negative), value | each dim grown by its pads |
//!
//! Fused ops, which rewrite rules introduce (each equals its decomposed form):
//!
//! | op | children | computes |
//! |---|---|---|
//! | `gelu`, `gelu_tanh` | x | `x·Φ(x)` exactly (erf), or with the tanh approximation |
//! | `silu` | x | `x·sigmoid(x)` |
//! | `rms_norm` | x, scale, axis, epsilon | `x / sqrt(mean(x², axes axis..) + eps) · scale` |
//! | `matmul_bias_act` | a, b, bias, act | `act(matmul(a, b) + bias)`, bias broadcast to the product |
//! | `conv_bias_act` | conv's seven children, act | `act(conv(…))` |
//! | `attention` | q […,s,d], k […,t,d], v […,t,e], scale | `softmax(scale · q·kᵀ) · v` over the last axis |
//! | `winograd_weights` | w [K,C,3,3], tile m (2 or 4) | `G w Gᵀ` per filter, as [(m+2)², K, C] ([`crate::winograd`]) |
//! | `winograd_conv` | x [N,C,H,W], u = `winograd_weights(w, m)`, b [K], pads, m, act | `act(conv(x, w, b))`, stride 1, by F(m×m, 3×3) |

use crate::shape::{broadcast, reduced_shape, ShapeDisplay};
use crate::{Activation, BinaryOp, DType, IntList, Name, TensorLang, TensorType, UnaryOp, View};
use egg::Id;

/// What an e-class (or a node of a program) denotes: a tensor of a static type, or an
/// attribute value.
#[derive(Debug, Clone, PartialEq)]
pub enum Meta {
    Tensor(TensorType),
    Int(i64),
    Float(f32),
    Ints(Vec<i64>),
    DType(DType),
    Name(Name),
    Act(Activation),
}

impl Meta {
    pub fn tensor(&self) -> Option<&TensorType> {
        match self {
            Meta::Tensor(t) => Some(t),
            _ => None,
        }
    }
}

/// Computes the [`Meta`] of `node` from the metas of its children, or explains in
/// one sentence why the node is ill-formed.
pub fn infer<'a>(node: &TensorLang, arg: &dyn Fn(Id) -> &'a Meta) -> Result<Meta, String> {
    use View as L;
    let a = Args { arg };
    let out = match node.view() {
        L::Leaf => return Ok(leaf_meta(node)),

        L::Input([_, d, s]) | L::Weight([_, d, s]) => TensorType::new(a.dtype(*d)?, a.dims(*s)?),
        L::Fill([v, s]) => {
            a.float(*v)?;
            TensorType::f32(a.dims(*s)?)
        }

        L::Unary(op, c) => a.unary(op, c)?,
        L::Cast([x, d]) => TensorType::new(a.dtype(*d)?, a.tensor(*x)?.shape.clone()),

        L::Binary(op, ab) => a.binary(op, *ab)?,
        L::Where([c, x, y]) => {
            let c = a.tensor_of(*c, &[DType::Bool])?;
            let (x, y) = (a.tensor(*x)?, a.tensor(*y)?);
            same_dtype(x, y)?;
            let xy = broadcast_or_err(&x.shape, &y.shape)?;
            TensorType::new(x.dtype, broadcast_or_err(&c.shape, &xy)?)
        }

        L::MatMul([x, y]) => matmul(a.tensor_of(*x, &[DType::F32])?, a.tensor_of(*y, &[DType::F32])?)?,
        L::Gemm([x, y, c, alpha, beta, ta, tb]) => {
            a.float(*alpha)?;
            a.float(*beta)?;
            gemm(
                a.tensor_of(*x, &[DType::F32])?,
                a.tensor_of(*y, &[DType::F32])?,
                a.tensor_of(*c, &[DType::F32])?,
                a.flag(*ta)?,
                a.flag(*tb)?,
            )?
        }

        L::ReduceSum([x, axes, keep])
        | L::ReduceProd([x, axes, keep])
        | L::ReduceMean([x, axes, keep])
        | L::ReduceMax([x, axes, keep])
        | L::ReduceMin([x, axes, keep]) => {
            let order_only = matches!(node, TensorLang::ReduceMax(_) | TensorLang::ReduceMin(_));
            let dtypes: &[DType] =
                if order_only { &[DType::F32, DType::I64, DType::Bool] } else { &[DType::F32, DType::I64] };
            let t = a.tensor_of(*x, dtypes)?;
            let axes = a.axes(*axes, t.rank())?;
            TensorType::new(t.dtype, reduced_shape(&t.shape, &axes, a.flag(*keep)?))
        }
        L::ArgMax([x, axis, keep, last]) | L::ArgMin([x, axis, keep, last]) => {
            let t = a.tensor_of(*x, &[DType::F32, DType::I64])?;
            let axis = a.axis(*axis, t.rank())?;
            a.flag(*last)?;
            TensorType::new(DType::I64, reduced_shape(&t.shape, &[axis], a.flag(*keep)?))
        }
        L::CumSum([x, axis, exclusive, reverse]) => {
            let t = a.tensor_of(*x, &[DType::F32, DType::I64])?;
            a.axis(*axis, t.rank())?;
            a.flag(*exclusive)?;
            a.flag(*reverse)?;
            t.clone()
        }
        L::Softmax([x, axis]) | L::LogSoftmax([x, axis]) => {
            let t = a.tensor_of(*x, &[DType::F32])?;
            a.axis(*axis, t.rank())?;
            t.clone()
        }
        L::LayerNorm([x, scale, bias, axis, eps]) => {
            let t = a.tensor_of(*x, &[DType::F32])?;
            let axis = a.axis(*axis, t.rank())?;
            a.float(*eps)?;
            let normalized = &t.shape[axis..];
            for (what, p) in [("scale", scale), ("bias", bias)] {
                let p = a.tensor_of(*p, &[DType::F32])?;
                if broadcast(&p.shape, normalized).as_deref() != Some(normalized) {
                    return Err(format!(
                        "layer_norm {what} {} does not broadcast to the normalized dims {}",
                        ShapeDisplay(&p.shape),
                        ShapeDisplay(normalized)
                    ));
                }
            }
            t.clone()
        }
        L::BatchNorm([x, scale, bias, mean, var, eps]) => {
            let t = a.tensor_of(*x, &[DType::F32])?;
            a.float(*eps)?;
            let channels = channel_dim(t, "batch_norm")?;
            for (what, p) in [("scale", scale), ("bias", bias), ("mean", mean), ("var", var)] {
                let p = a.tensor_of(*p, &[DType::F32])?;
                if p.shape != [channels] {
                    return Err(format!(
                        "batch_norm {what} has shape {} but the input {} has {channels} channels",
                        ShapeDisplay(&p.shape),
                        ShapeDisplay(&t.shape)
                    ));
                }
            }
            t.clone()
        }
        L::Lrn([x, size, alpha, beta, bias]) => {
            let t = a.tensor_of(*x, &[DType::F32])?;
            channel_dim(t, "lrn")?;
            if a.int(*size)? < 1 {
                return Err("lrn size must be at least 1".into());
            }
            for f in [alpha, beta, bias] {
                a.float(*f)?;
            }
            t.clone()
        }

        L::Reshape([x, shape]) => {
            let t = a.tensor(*x)?;
            let shape = a.dims(*shape)?;
            if shape.iter().product::<usize>() != t.numel() {
                return Err(format!(
                    "cannot reshape {} ({} elements) to {}",
                    ShapeDisplay(&t.shape),
                    t.numel(),
                    ShapeDisplay(&shape)
                ));
            }
            TensorType::new(t.dtype, shape)
        }
        L::Flatten([x, axis]) => {
            let t = a.tensor(*x)?;
            let axis = a.int(*axis)?;
            if axis < 0 || axis as usize > t.rank() {
                return Err(format!("flatten axis {axis} is outside 0..={}", t.rank()));
            }
            let (outer, inner) = t.shape.split_at(axis as usize);
            TensorType::new(t.dtype, vec![outer.iter().product(), inner.iter().product()])
        }
        L::Squeeze([x, axes]) => {
            let t = a.tensor(*x)?;
            let axes = a.axes(*axes, t.rank())?;
            if let Some(&bad) = axes.iter().find(|&&i| t.shape[i] != 1) {
                return Err(format!(
                    "cannot squeeze axis {bad} of {}: its size is {}, not 1",
                    ShapeDisplay(&t.shape),
                    t.shape[bad]
                ));
            }
            let shape = (0..t.rank()).filter(|i| !axes.contains(i)).map(|i| t.shape[i]).collect();
            TensorType::new(t.dtype, shape)
        }
        L::Unsqueeze([x, axes]) => {
            let t = a.tensor(*x)?;
            let rank = t.rank() + a.ints(*axes)?.len();
            let axes = a.axes(*axes, rank)?;
            let mut dims = t.shape.iter();
            let shape = (0..rank).map(|i| if axes.contains(&i) { 1 } else { *dims.next().unwrap() }).collect();
            TensorType::new(t.dtype, shape)
        }
        L::Transpose([x, perm]) => {
            let t = a.tensor(*x)?;
            let perm = a.ints(*perm)?;
            let mut seen = vec![false; t.rank()];
            let valid = perm.len() == t.rank()
                && perm.iter().all(|&p| {
                    let ok = p >= 0 && (p as usize) < seen.len() && !seen[p as usize];
                    if ok {
                        seen[p as usize] = true;
                    }
                    ok
                });
            if !valid {
                return Err(format!(
                    "{} is not a permutation of the {} axes of {}",
                    IntList(perm.to_vec()),
                    t.rank(),
                    ShapeDisplay(&t.shape)
                ));
            }
            TensorType::new(t.dtype, perm.iter().map(|&p| t.shape[p as usize]).collect())
        }
        L::Expand([x, shape]) => {
            let t = a.tensor(*x)?;
            let target = a.dims(*shape)?;
            TensorType::new(t.dtype, broadcast_or_err(&t.shape, &target)?)
        }
        L::Concat(children) => concat(&a, children)?,
        L::Slice([x, starts, ends, steps]) => slice(&a, *x, *starts, *ends, *steps)?,
        L::GatherElements([x, idx, axis]) => {
            let t = a.tensor(*x)?;
            let idx = a.tensor_of(*idx, &[DType::I64])?;
            let axis = a.axis(*axis, t.rank())?;
            let fits = idx.rank() == t.rank() && (0..t.rank()).all(|d| d == axis || idx.shape[d] <= t.shape[d]);
            if !fits {
                return Err(format!(
                    "gather_elements indices {} must have the rank of the data {} and no larger dims off axis {axis}",
                    ShapeDisplay(&idx.shape),
                    ShapeDisplay(&t.shape)
                ));
            }
            TensorType::new(t.dtype, idx.shape.clone())
        }
        L::ScatterElements([x, idx, updates, axis, reduction]) => {
            let t = a.tensor(*x)?;
            let idx = a.tensor_of(*idx, &[DType::I64])?;
            let u = a.tensor_of(*updates, &[t.dtype])?;
            let axis = a.axis(*axis, t.rank())?;
            let fits = idx.rank() == t.rank() && (0..t.rank()).all(|d| d == axis || idx.shape[d] <= t.shape[d]);
            if !fits || u.shape != idx.shape {
                return Err(format!(
                    "scatter_elements indices {} must have the rank of the data {} and no larger dims off axis {axis}, and updates {} their shape",
                    ShapeDisplay(&idx.shape),
                    ShapeDisplay(&t.shape),
                    ShapeDisplay(&u.shape)
                ));
            }
            let r = a.int(*reduction)?;
            if !(0..crate::ops::SCATTER_REDUCTIONS.len() as i64).contains(&r) {
                return Err(format!("scatter_elements reduction {r} is not one of 0..5"));
            }
            if (t.dtype == DType::Bool || t.dtype.is_storage_only()) && r != 0 {
                return Err(format!("scatter_elements of {} tensors only replaces (reduction 0)", t.dtype));
            }
            t.clone()
        }
        L::Gather([x, idx, axis]) => {
            let t = a.tensor(*x)?;
            let idx = a.tensor_of(*idx, &[DType::I64])?;
            let axis = a.axis(*axis, t.rank())?;
            let mut shape = t.shape[..axis].to_vec();
            shape.extend(&idx.shape);
            shape.extend(&t.shape[axis + 1..]);
            TensorType::new(t.dtype, shape)
        }

        L::Conv([x, w, b, strides, pads, dilations, group]) => conv(
            a.tensor_of(*x, &[DType::F32])?,
            a.tensor_of(*w, &[DType::F32])?,
            a.tensor_of(*b, &[DType::F32])?,
            &Window::read(&a, None, *strides, *pads, *dilations)?,
            a.int(*group)?,
        )?,
        L::MaxPool([x, kernel, strides, pads, dilations, ceil]) => {
            let t = a.tensor_of(*x, &[DType::F32])?;
            pool(t, &Window::read(&a, Some(*kernel), *strides, *pads, *dilations)?, a.flag(*ceil)?)?
        }
        L::AvgPool([x, kernel, strides, pads, dilations, ceil, include_pad]) => {
            let t = a.tensor_of(*x, &[DType::F32])?;
            a.flag(*include_pad)?;
            pool(t, &Window::read(&a, Some(*kernel), *strides, *pads, *dilations)?, a.flag(*ceil)?)?
        }
        L::Pad([x, pads, value]) => {
            let t = a.tensor(*x)?;
            a.float(*value)?;
            let pads = a.dims(*pads)?;
            if pads.len() != 2 * t.rank() {
                return Err(format!(
                    "pad needs {} values (begins, then ends) for {}",
                    2 * t.rank(),
                    ShapeDisplay(&t.shape)
                ));
            }
            let shape = (0..t.rank()).map(|i| t.shape[i] + pads[i] + pads[i + t.rank()]).collect();
            TensorType::new(t.dtype, shape)
        }
        L::RmsNorm([x, scale, axis, eps]) => {
            let t = a.tensor_of(*x, &[DType::F32])?;
            let axis = a.axis(*axis, t.rank())?;
            a.float(*eps)?;
            let normalized = &t.shape[axis..];
            let p = a.tensor_of(*scale, &[DType::F32])?;
            if broadcast(&p.shape, normalized).as_deref() != Some(normalized) {
                return Err(format!(
                    "rms_norm scale {} does not broadcast to the normalized dims {}",
                    ShapeDisplay(&p.shape),
                    ShapeDisplay(normalized)
                ));
            }
            t.clone()
        }
        L::MatMulBiasAct([x, y, bias, act]) => {
            a.act(*act)?;
            let t = matmul(a.tensor_of(*x, &[DType::F32])?, a.tensor_of(*y, &[DType::F32])?)?;
            let b = a.tensor_of(*bias, &[DType::F32])?;
            if broadcast(&b.shape, &t.shape).as_deref() != Some(&t.shape[..]) {
                return Err(format!(
                    "bias {} does not broadcast to the product {}",
                    ShapeDisplay(&b.shape),
                    ShapeDisplay(&t.shape)
                ));
            }
            t
        }
        L::ConvBiasAct([x, w, b, strides, pads, dilations, group, act]) => {
            a.act(*act)?;
            conv(
                a.tensor_of(*x, &[DType::F32])?,
                a.tensor_of(*w, &[DType::F32])?,
                a.tensor_of(*b, &[DType::F32])?,
                &Window::read(&a, None, *strides, *pads, *dilations)?,
                a.int(*group)?,
            )?
        }
        L::WinogradWeights([w, tile]) => {
            let w = a.tensor_of(*w, &[DType::F32])?;
            let tile = winograd_tile(&a, *tile)?;
            if w.rank() != 4 || w.shape[2..] != [3, 3] {
                return Err(format!("winograd_weights needs 3×3 filters [K,C,3,3], got {}", ShapeDisplay(&w.shape)));
            }
            TensorType::f32(vec![tile.alpha() * tile.alpha(), w.shape[0], w.shape[1]])
        }
        L::WinogradConv([x, u, b, pads, tile, act]) => {
            a.act(*act)?;
            let (x, u, b) =
                (a.tensor_of(*x, &[DType::F32])?, a.tensor_of(*u, &[DType::F32])?, a.tensor_of(*b, &[DType::F32])?);
            let tile = winograd_tile(&a, *tile)?;
            let area = tile.alpha() * tile.alpha();
            if x.rank() != 4 || u.rank() != 3 || u.shape[0] != area || u.shape[2] != x.shape[1] {
                return Err(format!(
                    "winograd_conv of tile {} needs input [N,C,H,W] and transformed weights [{area},K,C], got {} and {}",
                    tile.m,
                    ShapeDisplay(&x.shape),
                    ShapeDisplay(&u.shape)
                ));
            }
            let window = Window { kernel: None, strides: vec![1, 1], pads: a.dims(*pads)?, dilations: vec![1, 1] };
            let w = TensorType::f32(vec![u.shape[1], x.shape[1], 3, 3]);
            conv(x, &w, b, &window, 1)?
        }
        L::Attention([q, k, v, scale]) => {
            a.float(*scale)?;
            let (q, k, v) =
                (a.tensor_of(*q, &[DType::F32])?, a.tensor_of(*k, &[DType::F32])?, a.tensor_of(*v, &[DType::F32])?);
            if q.rank() < 2 || k.rank() < 2 || v.rank() < 2 {
                return Err("attention needs q, k and v of rank ≥ 2".into());
            }
            let mut kt = k.clone();
            let r = kt.rank();
            kt.shape.swap(r - 2, r - 1);
            let scores = matmul(q, &kt)?;
            matmul(&scores, v)?
        }
        L::GlobalAvgPool(x) | L::GlobalMaxPool(x) => {
            let t = a.tensor_of(*x, &[DType::F32])?;
            channel_dim(t, "global pooling")?;
            let mut shape = t.shape.clone();
            shape[2..].iter_mut().for_each(|d| *d = 1);
            TensorType::new(t.dtype, shape)
        }
    };
    Ok(Meta::Tensor(out))
}

/// Typed access to the children's metas, with errors that say what was expected.
struct Args<'f, 'a> {
    arg: &'f dyn Fn(Id) -> &'a Meta,
}

impl<'a> Args<'_, 'a> {
    fn tensor(&self, id: Id) -> Result<&'a TensorType, String> {
        match (self.arg)(id) {
            Meta::Tensor(t) => Ok(t),
            other => Err(format!("expected a tensor operand, found the attribute {other:?}")),
        }
    }

    fn tensor_of(&self, id: Id, dtypes: &[DType]) -> Result<&'a TensorType, String> {
        let t = self.tensor(id)?;
        if dtypes.contains(&t.dtype) {
            Ok(t)
        } else {
            let names: Vec<&str> = dtypes.iter().map(|d| d.name()).collect();
            Err(format!("operand of type {t} is not {}", names.join(" or ")))
        }
    }

    fn int(&self, id: Id) -> Result<i64, String> {
        match (self.arg)(id) {
            Meta::Int(v) => Ok(*v),
            other => Err(format!("expected an integer attribute, found {other:?}")),
        }
    }

    fn flag(&self, id: Id) -> Result<bool, String> {
        match self.int(id)? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(format!("expected a 0/1 flag, found {v}")),
        }
    }

    fn float(&self, id: Id) -> Result<f32, String> {
        match (self.arg)(id) {
            Meta::Float(v) => Ok(*v),
            other => Err(format!("expected a float attribute, found {other:?}")),
        }
    }

    fn ints(&self, id: Id) -> Result<&'a [i64], String> {
        match (self.arg)(id) {
            Meta::Ints(v) => Ok(v),
            other => Err(format!("expected an integer list attribute, found {other:?}")),
        }
    }

    fn dims(&self, id: Id) -> Result<Vec<usize>, String> {
        let v = self.ints(id)?;
        IntList(v.to_vec()).to_usizes().ok_or_else(|| format!("shape {} has a negative dimension", IntList(v.to_vec())))
    }

    fn act(&self, id: Id) -> Result<crate::Activation, String> {
        match (self.arg)(id) {
            Meta::Act(a) => Ok(*a),
            other => Err(format!("expected an activation attribute, found {other:?}")),
        }
    }

    fn dtype(&self, id: Id) -> Result<DType, String> {
        match (self.arg)(id) {
            Meta::DType(d) => Ok(*d),
            other => Err(format!("expected a dtype attribute, found {other:?}")),
        }
    }

    /// A normalized axis: in `0..rank`.
    fn axis(&self, id: Id, rank: usize) -> Result<usize, String> {
        let v = self.int(id)?;
        usize::try_from(v).ok().filter(|&v| v < rank).ok_or_else(|| format!("axis {v} is outside 0..{rank}"))
    }

    /// Normalized axes: strictly increasing, each in `0..rank`.
    fn axes(&self, id: Id, rank: usize) -> Result<Vec<usize>, String> {
        let v = self.ints(id)?;
        let ok = v.iter().all(|&x| x >= 0 && (x as usize) < rank) && v.windows(2).all(|w| w[0] < w[1]);
        if !ok {
            return Err(format!("axes {} must be increasing and within 0..{rank}", IntList(v.to_vec())));
        }
        Ok(v.iter().map(|&x| x as usize).collect())
    }

    /// A unary elementwise function: its operand of a dtype the function is defined
    /// on, its params floats (not NaN).
    fn unary(&self, op: UnaryOp, children: &[Id]) -> Result<TensorType, String> {
        let d = op.desc();
        for &p in &children[1..] {
            if self.float(p)?.is_nan() {
                return Err(format!("{} parameters must not be NaN", d.name));
            }
        }
        let float = d.float.is_some() || d.predicate.is_some();
        let dtypes: Vec<DType> = [
            (float, DType::F32),
            (float, DType::F64),
            (d.int.is_some(), DType::I64),
            (d.logical.is_some(), DType::Bool),
        ]
        .into_iter()
        .filter_map(|(defined, dtype)| defined.then_some(dtype))
        .collect();
        let x = self.tensor_of(children[0], &dtypes)?;
        let dtype = if d.predicate.is_some() { DType::Bool } else { x.dtype };
        Ok(TensorType::new(dtype, x.shape.clone()))
    }

    /// A binary elementwise op: operands of one dtype it is defined on, broadcasting;
    /// a comparison gives bool.
    fn binary(&self, op: BinaryOp, [x, y]: [Id; 2]) -> Result<TensorType, String> {
        let d = op.desc();
        let dtypes: &[DType] = if d.compare.is_some() {
            &[DType::F32, DType::F64, DType::I64, DType::Bool]
        } else if d.logical.is_some() {
            &[DType::Bool]
        } else if d.int.is_some() && d.float.is_some() {
            &[DType::F32, DType::F64, DType::I64]
        } else if d.int.is_some() {
            &[DType::I64]
        } else {
            &[DType::F32, DType::F64]
        };
        let (x, y) = (self.tensor_of(x, dtypes)?, self.tensor_of(y, dtypes)?);
        same_dtype(x, y)?;
        let result = if d.compare.is_some() { DType::Bool } else { x.dtype };
        Ok(TensorType::new(result, broadcast_or_err(&x.shape, &y.shape)?))
    }
}

/// The meta of an attribute leaf: its value.
fn leaf_meta(node: &TensorLang) -> Meta {
    match node {
        TensorLang::Int(v) => Meta::Int(*v),
        TensorLang::Float(v) => Meta::Float(v.get()),
        TensorLang::Ints(v) => Meta::Ints(v.0.clone()),
        TensorLang::DType(d) => Meta::DType(*d),
        TensorLang::Name(n) => Meta::Name(*n),
        TensorLang::Act(a) => Meta::Act(*a),
        op => unreachable!("{op} is an op, not a leaf"),
    }
}

fn same_dtype(x: &TensorType, y: &TensorType) -> Result<(), String> {
    if x.dtype == y.dtype {
        Ok(())
    } else {
        Err(format!("operands have different types: {x} and {y}"))
    }
}

fn broadcast_or_err(a: &[usize], b: &[usize]) -> Result<Vec<usize>, String> {
    broadcast(a, b).ok_or_else(|| format!("shapes {} and {} do not broadcast", ShapeDisplay(a), ShapeDisplay(b)))
}

/// The channel count of an `[N, C, …]` input.
fn channel_dim(t: &TensorType, op: &str) -> Result<usize, String> {
    if t.rank() < 2 {
        return Err(format!("{op} needs an input of rank ≥ 2 ([N,C,…]), got {}", ShapeDisplay(&t.shape)));
    }
    Ok(t.shape[1])
}

fn matmul(x: &TensorType, y: &TensorType) -> Result<TensorType, String> {
    if x.rank() == 0 || y.rank() == 0 {
        return Err("matmul operands must have rank ≥ 1".into());
    }
    // promote 1-D operands to matrices, and drop the added dimension afterwards
    let xs = if x.rank() == 1 { vec![1, x.shape[0]] } else { x.shape.clone() };
    let ys = if y.rank() == 1 { vec![y.shape[0], 1] } else { y.shape.clone() };
    let (m, k) = (xs[xs.len() - 2], xs[xs.len() - 1]);
    let (k2, n) = (ys[ys.len() - 2], ys[ys.len() - 1]);
    if k != k2 {
        return Err(format!("matmul inner dimensions differ: {} × {}", ShapeDisplay(&x.shape), ShapeDisplay(&y.shape)));
    }
    let mut shape = broadcast_or_err(&xs[..xs.len() - 2], &ys[..ys.len() - 2])?;
    if x.rank() > 1 {
        shape.push(m);
    }
    if y.rank() > 1 {
        shape.push(n);
    }
    Ok(TensorType::f32(shape))
}

fn gemm(x: &TensorType, y: &TensorType, c: &TensorType, ta: bool, tb: bool) -> Result<TensorType, String> {
    if x.rank() != 2 || y.rank() != 2 {
        return Err(format!("gemm needs 2-D operands, got {} and {}", ShapeDisplay(&x.shape), ShapeDisplay(&y.shape)));
    }
    let (m, k) = if ta { (x.shape[1], x.shape[0]) } else { (x.shape[0], x.shape[1]) };
    let (k2, n) = if tb { (y.shape[1], y.shape[0]) } else { (y.shape[0], y.shape[1]) };
    if k != k2 {
        return Err(format!(
            "gemm inner dimensions differ: {}{} × {}{}",
            ShapeDisplay(&x.shape),
            if ta { "ᵀ" } else { "" },
            ShapeDisplay(&y.shape),
            if tb { "ᵀ" } else { "" }
        ));
    }
    if broadcast(&c.shape, &[m, n]).as_deref() != Some(&[m, n][..]) {
        return Err(format!("gemm bias {} does not broadcast to [{m},{n}]", ShapeDisplay(&c.shape)));
    }
    Ok(TensorType::f32(vec![m, n]))
}

fn concat(a: &Args, children: &[Id]) -> Result<TensorType, String> {
    let Some((&axis, inputs)) = children.split_first() else {
        return Err("concat needs an axis and at least one operand".into());
    };
    let Some(first) = inputs.first() else {
        return Err("concat needs at least one operand".into());
    };
    let first = a.tensor(*first)?;
    let axis = a.axis(axis, first.rank())?;
    let mut shape = first.shape.clone();
    shape[axis] = 0;
    for &x in inputs {
        let t = a.tensor(x)?;
        same_dtype(first, t)?;
        let compatible = t.rank() == first.rank() && (0..t.rank()).all(|i| i == axis || t.shape[i] == first.shape[i]);
        if !compatible {
            return Err(format!(
                "cannot concatenate {} and {} along axis {axis}",
                ShapeDisplay(&first.shape),
                ShapeDisplay(&t.shape)
            ));
        }
        shape[axis] += t.shape[axis];
    }
    Ok(TensorType::new(first.dtype, shape))
}

fn slice(a: &Args, x: Id, starts: Id, ends: Id, steps: Id) -> Result<TensorType, String> {
    let t = a.tensor(x)?;
    let (starts, ends, steps) = (a.ints(starts)?, a.ints(ends)?, a.ints(steps)?);
    if starts.len() != t.rank() || ends.len() != t.rank() || steps.len() != t.rank() {
        return Err(format!("slice needs one start, end and step per axis of {}", ShapeDisplay(&t.shape)));
    }
    let mut shape = Vec::with_capacity(t.rank());
    for i in 0..t.rank() {
        let (dim, start, end, step) = (t.shape[i] as i64, starts[i], ends[i], steps[i]);
        // starts and ends are clamped at import: positive steps walk [start, end) within
        // [0, dim]; negative steps walk (end, start] within [-1, dim-1]
        let valid = match step {
            0 => false,
            s if s > 0 => 0 <= start && start <= dim && 0 <= end && end <= dim,
            _ => -1 <= start && start < dim && -1 <= end && end < dim,
        };
        if !valid {
            return Err(format!(
                "slice axis {i} of size {dim}: start {start}, end {end}, step {step} is not normalized"
            ));
        }
        let len = if step > 0 { (end - start + step - 1) / step } else { (start - end + (-step) - 1) / (-step) };
        shape.push(len.max(0) as usize);
    }
    Ok(TensorType::new(t.dtype, shape))
}

fn winograd_tile(a: &Args, tile: Id) -> Result<&'static crate::WinogradTile, String> {
    let m = a.int(tile)?;
    crate::WinogradTile::of(m).ok_or_else(|| format!("a Winograd tile has 2 or 4 outputs a side, not {m}"))
}

/// Spatial window attributes shared by conv and pooling.
struct Window {
    kernel: Option<Vec<usize>>,
    strides: Vec<usize>,
    pads: Vec<usize>,
    dilations: Vec<usize>,
}

impl Window {
    fn read(a: &Args, kernel: Option<Id>, strides: Id, pads: Id, dilations: Id) -> Result<Window, String> {
        let kernel = kernel.map(|k| a.dims(k)).transpose()?;
        let w = Window { kernel, strides: a.dims(strides)?, pads: a.dims(pads)?, dilations: a.dims(dilations)? };
        if w.strides.contains(&0) || w.dilations.contains(&0) {
            return Err("strides and dilations must be positive".into());
        }
        Ok(w)
    }

    /// Checks the attribute lengths against `spatial` dimensions.
    fn check_rank(&self, spatial: usize) -> Result<(), String> {
        let kernel_ok = self.kernel.as_ref().is_none_or(|k| k.len() == spatial);
        if !kernel_ok
            || self.strides.len() != spatial
            || self.dilations.len() != spatial
            || self.pads.len() != 2 * spatial
        {
            return Err(format!(
                "window attributes do not match {spatial} spatial dims (kernel, strides and dilations need {spatial} values, pads {})",
                2 * spatial
            ));
        }
        Ok(())
    }

    /// Output size along spatial axis `i` for input size `input` and kernel size `k`.
    fn output_size(&self, i: usize, input: usize, k: usize, ceil_mode: bool) -> Result<usize, String> {
        let spatial = self.strides.len();
        let padded = input + self.pads[i] + self.pads[i + spatial];
        let extent = (k - 1) * self.dilations[i] + 1;
        if k == 0 || padded < extent {
            return Err(format!("window of extent {extent} does not fit spatial size {input} padded to {padded}"));
        }
        let s = self.strides[i];
        let span = padded - extent;
        let mut out = if ceil_mode { span.div_ceil(s) } else { span / s } + 1;
        // with ceil_mode, the last window must start inside the input or its left padding
        if ceil_mode && (out - 1) * s >= input + self.pads[i] {
            out -= 1;
        }
        Ok(out)
    }
}

fn conv(x: &TensorType, w: &TensorType, b: &TensorType, win: &Window, group: i64) -> Result<TensorType, String> {
    if x.rank() < 3 || w.rank() != x.rank() {
        return Err(format!(
            "conv needs input [N,C,…] and weight [M,C/group,…] of equal rank ≥ 3, got {} and {}",
            ShapeDisplay(&x.shape),
            ShapeDisplay(&w.shape)
        ));
    }
    let spatial = x.rank() - 2;
    win.check_rank(spatial)?;
    let (c, m) = (x.shape[1], w.shape[0]);
    let group = usize::try_from(group).ok().filter(|&g| g > 0).ok_or("conv group must be positive")?;
    if c != w.shape[1] * group || m % group != 0 {
        return Err(format!(
            "conv input {} has {c} channels but weight {} with group {group} expects {}",
            ShapeDisplay(&x.shape),
            ShapeDisplay(&w.shape),
            w.shape[1] * group
        ));
    }
    if b.shape != [m] {
        return Err(format!("conv bias {} should be [{m}]", ShapeDisplay(&b.shape)));
    }
    let mut shape = vec![x.shape[0], m];
    for i in 0..spatial {
        shape.push(win.output_size(i, x.shape[2 + i], w.shape[2 + i], false)?);
    }
    Ok(TensorType::f32(shape))
}

fn pool(x: &TensorType, win: &Window, ceil_mode: bool) -> Result<TensorType, String> {
    channel_dim(x, "pooling")?;
    let spatial = x.rank() - 2;
    win.check_rank(spatial)?;
    let kernel = win.kernel.as_ref().expect("pooling reads a kernel");
    let mut shape = x.shape[..2].to_vec();
    for (i, &k) in kernel.iter().enumerate() {
        shape.push(win.output_size(i, x.shape[2 + i], k, ceil_mode)?);
    }
    Ok(TensorType::f32(shape))
}

#[cfg(test)]
mod tests {
    use super::*;
    use egg::RecExpr;

    fn infer_expr(text: &str) -> Result<TensorType, String> {
        let expr: RecExpr<TensorLang> = text.parse().unwrap();
        let mut metas: Vec<Meta> = Vec::new();
        for node in expr.as_ref() {
            let meta = infer(node, &|id| &metas[usize::from(id)])?;
            metas.push(meta);
        }
        Ok(metas.last().unwrap().tensor().unwrap().clone())
    }

    #[test]
    fn conv_output_follows_the_onnx_formula() {
        let t = infer_expr(
            "(conv (input %x f32 [1,3,224,224]) (weight %w f32 [64,3,7,7]) (fill 0.0 [64]) [2,2] [3,3,3,3] [1,1] 1)",
        )
        .unwrap();
        assert_eq!(t.shape, vec![1, 64, 112, 112]);
    }

    #[test]
    fn grouped_conv_checks_channels() {
        let err = infer_expr(
            "(conv (input %x f32 [1,6,8,8]) (weight %w f32 [4,4,3,3]) (fill 0.0 [4]) [1,1] [0,0,0,0] [1,1] 2)",
        )
        .unwrap_err();
        assert!(err.contains("6 channels"), "{err}");
    }

    #[test]
    fn ceil_mode_pooling_drops_a_window_starting_in_the_padding() {
        // 5 wide, kernel 2, stride 2, no padding: floor gives 2, ceil gives 3
        let floor = infer_expr("(max_pool (input %x f32 [1,1,5,5]) [2,2] [2,2] [0,0,0,0] [1,1] 0)").unwrap();
        let ceil = infer_expr("(max_pool (input %x f32 [1,1,5,5]) [2,2] [2,2] [0,0,0,0] [1,1] 1)").unwrap();
        assert_eq!((floor.shape[2], ceil.shape[2]), (2, 3));
    }

    #[test]
    fn matmul_broadcasts_batches_and_promotes_vectors() {
        let t = infer_expr("(matmul (input %a f32 [2,1,3,4]) (input %b f32 [5,4,6]))").unwrap();
        assert_eq!(t.shape, vec![2, 5, 3, 6]);
        let t = infer_expr("(matmul (input %a f32 [4]) (input %b f32 [3,4,6]))").unwrap();
        assert_eq!(t.shape, vec![3, 6]);
        assert!(infer_expr("(matmul (input %a f32 [2,3]) (input %b f32 [4,5]))").is_err());
    }

    #[test]
    fn slices_count_elements_for_both_step_signs() {
        let t = infer_expr("(slice (input %x f32 [10,4]) [1,0] [8,4] [3,1])").unwrap();
        assert_eq!(t.shape, vec![3, 4]);
        let t = infer_expr("(slice (input %x f32 [10,4]) [9,0] [-1,4] [-1,1])").unwrap();
        assert_eq!(t.shape, vec![10, 4]);
    }

    #[test]
    fn reshape_must_keep_the_element_count() {
        assert!(infer_expr("(reshape (input %x f32 [2,3]) [3,2])").is_ok());
        let err = infer_expr("(reshape (input %x f32 [2,3]) [4,2])").unwrap_err();
        assert!(err.contains("6 elements"), "{err}");
    }
}
