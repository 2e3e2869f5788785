//! Elementwise ops: unary functions, broadcasting binary ops, `where` and `cast`.
//!
//! Float functions are computed in f64 and rounded once. Integer arithmetic wraps on
//! overflow, as numpy's does; integer division truncates toward zero and a division
//! by zero is an error, not a crash. `max`/`min` propagate NaN.

use ndarray::{ArrayD, ArrayViewD, IxDyn, Zip};
use saturate_egraph::shape::broadcast;
use saturate_egraph::{Activation, BinaryOp, DType, Element, Tensor, UnaryOp};

/// The activation functions of fused epilogues, in f64.
pub fn activation(act: Activation, x: f64) -> f64 {
    match act.unary().and_then(|op| op.desc().float) {
        Some(f) => f(x, &[]),
        None => x,
    }
}

/// Applies an activation to every element.
pub fn activate(x: &ndarray::ArrayD<f32>, act: Activation) -> ndarray::ArrayD<f32> {
    x.mapv(|v| activation(act, v as f64) as f32)
}

/// A unary elementwise function with its params, as its row of the op table defines it:
/// floats in f64, rounded once (to f32 for f32 elements).
pub fn unary(x: &Tensor, op: UnaryOp, params: &[f32]) -> Result<Tensor, String> {
    let d = op.desc();
    let undefined = || format!("{} is not defined on {}", d.name, x.dtype());
    Ok(match x {
        Tensor::F32(a) if d.predicate.is_some() => {
            let test = d.predicate.expect("checked");
            Tensor::Bool(a.mapv(|v| test(v as f64, params)))
        }
        Tensor::F32(a) => {
            let f = d.float.ok_or_else(undefined)?;
            Tensor::F32(a.mapv(|v| f(v as f64, params) as f32))
        }
        Tensor::F64(a) if d.predicate.is_some() => {
            let test = d.predicate.expect("checked");
            Tensor::Bool(a.mapv(|v| test(v, params)))
        }
        Tensor::F64(a) => {
            let f = d.float.ok_or_else(undefined)?;
            Tensor::F64(a.mapv(|v| f(v, params)))
        }
        Tensor::I64(a) => Tensor::I64(a.mapv(d.int.ok_or_else(undefined)?)),
        Tensor::Bool(a) => Tensor::Bool(a.mapv(d.logical.ok_or_else(undefined)?)),
        _ => return Err(undefined()),
    })
}

/// A binary elementwise op with numpy broadcasting, as its row of the op table defines
/// it. Integer arithmetic wraps; an integer division by zero is an error.
pub fn binary(x: &Tensor, y: &Tensor, op: BinaryOp) -> Result<Tensor, String> {
    let d = op.desc();
    let undefined = || format!("{} of {} and {}", d.name, x.ty(), y.ty());
    if let Some(holds) = d.compare {
        return Ok(Tensor::Bool(match (x, y) {
            (Tensor::F32(a), Tensor::F32(b)) => zip2(a, b, |p, q| holds(p.partial_cmp(&q)))?,
            (Tensor::F64(a), Tensor::F64(b)) => zip2(a, b, |p, q| holds(p.partial_cmp(&q)))?,
            (Tensor::I64(a), Tensor::I64(b)) => zip2(a, b, |p, q| holds(Some(p.cmp(&q))))?,
            (Tensor::Bool(a), Tensor::Bool(b)) => zip2(a, b, |p, q| holds(Some(p.cmp(&q))))?,
            _ => return Err(undefined()),
        }));
    }
    Ok(match (x, y) {
        (Tensor::F32(a), Tensor::F32(b)) => {
            let f = d.float.ok_or_else(undefined)?;
            Tensor::F32(zip2(a, b, |p, q| f(p as f64, q as f64) as f32)?)
        }
        (Tensor::F64(a), Tensor::F64(b)) => Tensor::F64(zip2(a, b, d.float.ok_or_else(undefined)?)?),
        (Tensor::I64(a), Tensor::I64(b)) => {
            let f = d.int.ok_or_else(undefined)?;
            let values = zip2(a, b, f)?;
            if values.iter().any(Option::is_none) {
                return Err(format!("integer {} undefined: integer division by zero", d.name));
            }
            Tensor::I64(values.mapv(|v| v.expect("checked")))
        }
        (Tensor::Bool(a), Tensor::Bool(b)) => Tensor::Bool(zip2(a, b, d.logical.ok_or_else(undefined)?)?),
        _ => return Err(undefined()),
    })
}

/// Broadcasts two arrays against each other and combines them elementwise.
fn zip2<A: Copy, B: Copy, C>(a: &ArrayD<A>, b: &ArrayD<B>, f: impl Fn(A, B) -> C) -> Result<ArrayD<C>, String> {
    let shape = broadcast(a.shape(), b.shape())
        .ok_or_else(|| format!("shapes {:?} and {:?} do not broadcast", a.shape(), b.shape()))?;
    let (a, b) = (view_as(a, &shape), view_as(b, &shape));
    Ok(Zip::from(&a).and(&b).map_collect(|&p, &q| f(p, q)))
}

/// `a` broadcast to `shape` (which broadcasting has already validated).
pub(crate) fn view_as<'a, T>(a: &'a ArrayD<T>, shape: &[usize]) -> ArrayViewD<'a, T> {
    a.broadcast(IxDyn(shape)).expect("shapes were checked to broadcast")
}

/// `where(cond, x, y)` with three-way broadcasting.
pub fn select(cond: &Tensor, x: &Tensor, y: &Tensor) -> Result<Tensor, String> {
    let c = cond.as_bool().ok_or("where needs a bool condition")?;
    let shape = broadcast(x.shape(), y.shape())
        .and_then(|s| broadcast(c.shape(), &s))
        .ok_or("where operands do not broadcast")?;
    fn pick<T: Copy>(c: &ArrayD<bool>, a: &ArrayD<T>, b: &ArrayD<T>, shape: &[usize]) -> ArrayD<T> {
        Zip::from(&view_as(c, shape))
            .and(&view_as(a, shape))
            .and(&view_as(b, shape))
            .map_collect(|&c, &p, &q| if c { p } else { q })
    }
    Ok(match (x, y) {
        (x, y) if x.dtype() == y.dtype() => {
            fn same<T: Element>(c: &ArrayD<bool>, a: &ArrayD<T>, y: &Tensor, shape: &[usize]) -> ArrayD<T> {
                pick(c, a, T::array(y).expect("dtypes checked"), shape)
            }
            saturate_egraph::map_tensor!(x, a => same(c, a, y, &shape))
        }
        _ => return Err(format!("where of {} and {}", x.ty(), y.ty())),
    })
}

/// Converts element types, as [`saturate_egraph::Element::cast`] defines: floats round
/// to nearest, truncate toward zero (saturating) into integers, integers wrap, anything
/// non-zero is `true`.
pub fn cast(x: &Tensor, to: DType) -> Tensor {
    x.cast(to)
}
