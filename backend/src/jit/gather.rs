//! Code generation for a [`GatherSpec`]: one slice copy per (outer index, index), the
//! index loaded, wrapped if negative and clamped into the axis. Arguments: data,
//! indices (i64), output.

use crate::gather::{GatherElementsSpec, GatherSpec, ScatterSpec};
use crate::jit::{counted_loop, flags, scalar_type};
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{types, InstBuilder, Value};
use cranelift_frontend::FunctionBuilder;
use saturate_egraph::DType;

/// `gather_elements`, one output element a step: the position p decomposed into its
/// coordinates, the index loaded, wrapped if negative, clamped into the axis. (Rare in
/// models; written for clarity over speed.)
pub fn generate_elements(b: &mut FunctionBuilder, params: [Value; 3], spec: &GatherElementsSpec) {
    let [args, begin, end] = params;
    let arg = |b: &mut FunctionBuilder, k: usize| b.ins().load(types::I64, flags(), args, (8 * k) as i32);
    let (x, indices, out) = (arg(b, 0), arg(b, 1), arg(b, 2));
    let esize = spec.dtype.byte_size() as i64;
    let ty = scalar_type(spec.dtype);
    let at = Indexed { shape: &spec.shape, x_strides: &spec.x_strides, axis: spec.axis, dim: spec.dim, esize };
    counted_loop(b, begin, end, 1, |b, p| {
        let offset = at.offset(b, indices, p);
        let src = b.ins().iadd(x, offset);
        let v = b.ins().load(ty, flags(), src, 0);
        let dst = b.ins().imul_imm_s(p, esize);
        let dst = b.ins().iadd(out, dst);
        b.ins().store(flags(), v, dst, 0);
    });
    b.ins().return_(&[]);
}

/// Where position `p` of an index tensor points in `x`: its coordinates, the axis's
/// replaced by the index there (wrapped if negative, clamped into the axis).
struct Indexed<'a> {
    shape: &'a [usize],
    x_strides: &'a [isize],
    axis: usize,
    dim: usize,
    esize: i64,
}

impl Indexed<'_> {
    /// The byte offset in `x` for position `p` of `indices`.
    fn offset(&self, b: &mut FunctionBuilder, indices: Value, p: Value) -> Value {
        let dim = self.dim as i64;
        let ia = b.ins().imul_imm_s(p, 8);
        let ia = b.ins().iadd(indices, ia);
        let idx = b.ins().load(types::I64, flags(), ia, 0);
        let wrapped = b.ins().iadd_imm_s(idx, dim);
        let negative = b.ins().icmp_imm_s(IntCC::SignedLessThan, idx, 0);
        let idx = b.ins().select(negative, wrapped, idx);
        let zero = b.ins().iconst(types::I64, 0);
        let last = b.ins().iconst(types::I64, (dim - 1).max(0));
        let idx = b.ins().smax(idx, zero);
        let idx = b.ins().smin(idx, last);
        // Σ coordinate·stride, the axis's coordinate the index
        let mut rest = p;
        let mut offset = b.ins().iconst(types::I64, 0);
        for d in (0..self.shape.len()).rev() {
            let n = self.shape[d] as i64;
            let coordinate = if d == self.axis { idx } else { b.ins().urem_imm_u(rest, n) };
            rest = b.ins().udiv_imm_u(rest, n);
            let term = b.ins().imul_imm_s(coordinate, self.x_strides[d] as i64 * self.esize);
            offset = b.ins().iadd(offset, term);
        }
        offset
    }
}

/// `scatter_elements`, all in one call (repeated targets must apply in order, so it is
/// not split across threads): x copied to the output, then one update a step.
pub fn generate_scatter(b: &mut FunctionBuilder, params: [Value; 3], spec: &ScatterSpec) {
    let [args, begin, end] = params;
    let arg = |b: &mut FunctionBuilder, k: usize| b.ins().load(types::I64, flags(), args, (8 * k) as i32);
    let (x, indices, updates, out) = (arg(b, 0), arg(b, 1), arg(b, 2), arg(b, 3));
    let esize = spec.dtype.byte_size() as i64;
    let ty = scalar_type(spec.dtype);
    let at = Indexed { shape: &spec.shape, x_strides: &spec.x_strides, axis: spec.axis, dim: spec.dim, esize };
    counted_loop(b, begin, end, 1, |b, _| {
        let zero = b.ins().iconst(types::I64, 0);
        let len = b.ins().iconst(types::I64, spec.len as i64);
        counted_loop(b, zero, len, 1, |b, e| {
            let off = b.ins().imul_imm_s(e, esize);
            let s = b.ins().iadd(x, off);
            let v = b.ins().load(ty, flags(), s, 0);
            let d = b.ins().iadd(out, off);
            b.ins().store(flags(), v, d, 0);
        });
        let count = b.ins().iconst(types::I64, spec.shape.iter().product::<usize>() as i64);
        counted_loop(b, zero, count, 1, |b, p| {
            let offset = at.offset(b, indices, p);
            let ua = b.ins().imul_imm_s(p, esize);
            let ua = b.ins().iadd(updates, ua);
            let u = b.ins().load(ty, flags(), ua, 0);
            let dst = b.ins().iadd(out, offset);
            let v = if spec.reduction == 0 {
                u
            } else {
                let old = b.ins().load(ty, flags(), dst, 0);
                combine(b, spec.reduction, spec.dtype == DType::F32, old, u)
            };
            b.ins().store(flags(), v, dst, 0);
        });
    });
    b.ins().return_(&[]);
}

/// `old ⊕ u` for a scatter's reduction code (add, mul, max, min; max and min of f32
/// propagate NaN as the interpreter's do).
fn combine(b: &mut FunctionBuilder, reduction: i64, float: bool, old: Value, u: Value) -> Value {
    match (reduction, float) {
        (1, true) => b.ins().fadd(old, u),
        (2, true) => b.ins().fmul(old, u),
        (3, true) => b.ins().fmax(old, u),
        (4, true) => b.ins().fmin(old, u),
        (1, false) => b.ins().iadd(old, u),
        (2, false) => b.ins().imul(old, u),
        (3, false) => b.ins().smax(old, u),
        (4, false) => b.ins().smin(old, u),
        _ => u,
    }
}

pub fn generate(b: &mut FunctionBuilder, params: [Value; 3], spec: &GatherSpec) {
    let [args, begin, end] = params;
    let arg = |b: &mut FunctionBuilder, k: usize| b.ins().load(types::I64, flags(), args, (8 * k) as i32);
    let (x, indices, out) = (arg(b, 0), arg(b, 1), arg(b, 2));
    let esize = spec.dtype.byte_size() as i64;
    let ty = scalar_type(spec.dtype);
    let (count, axis, post) = (spec.count as i64, spec.axis as i64, spec.post as i64);
    // the outer loop runs over (pre, j) pairs: p = pre·count + j
    counted_loop(b, begin, end, 1, |b, p| {
        let pre = b.ins().udiv_imm_u(p, count);
        let j = b.ins().urem_imm_u(p, count);
        let off = b.ins().imul_imm_s(j, 8);
        let ia = b.ins().iadd(indices, off);
        let idx = b.ins().load(types::I64, flags(), ia, 0);
        let wrapped = b.ins().iadd_imm_s(idx, axis);
        let negative = b.ins().icmp_imm_s(IntCC::SignedLessThan, idx, 0);
        let idx = b.ins().select(negative, wrapped, idx);
        let zero = b.ins().iconst(types::I64, 0);
        let last = b.ins().iconst(types::I64, (axis - 1).max(0));
        let idx = b.ins().smax(idx, zero);
        let idx = b.ins().smin(idx, last);
        let row = b.ins().imul_imm_s(pre, axis);
        let row = b.ins().iadd(row, idx);
        let src_off = b.ins().imul_imm_s(row, post * esize);
        let src = b.ins().iadd(x, src_off);
        let dst_off = b.ins().imul_imm_s(p, post * esize);
        let dst = b.ins().iadd(out, dst_off);
        let n = b.ins().iconst(types::I64, post);
        counted_loop(b, zero, n, 1, |b, e| {
            let off = b.ins().imul_imm_s(e, esize);
            let s = b.ins().iadd(src, off);
            let v = b.ins().load(ty, flags(), s, 0);
            let d = b.ins().iadd(dst, off);
            b.ins().store(flags(), v, d, 0);
        });
    });
    b.ins().return_(&[]);
}
