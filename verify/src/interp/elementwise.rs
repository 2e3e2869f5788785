//! Elementwise ops: unary functions, broadcasting binary ops, `where` and `cast`.
//!
//! Float functions are computed in f64 and rounded once. Integer arithmetic wraps on
//! overflow, as numpy's does; integer division truncates toward zero and a division
//! by zero is an error, not a crash. `max`/`min` propagate NaN.

use ndarray::{ArrayD, ArrayViewD, IxDyn, Zip};
use saturate_egraph::shape::broadcast;
use saturate_egraph::{Activation, DType, Tensor};

/// A one-operand elementwise function.
#[derive(Debug, Clone, Copy)]
pub enum Unary {
    Neg,
    Abs,
    Sqrt,
    Reciprocal,
    Exp,
    Log,
    Erf,
    Tanh,
    Sigmoid,
    Relu,
    Floor,
    Ceil,
    Not,
    LeakyRelu(f32),
    Clip(f32, f32),
}

impl Unary {
    fn apply(self, x: f64) -> f64 {
        match self {
            Unary::Neg => -x,
            Unary::Abs => x.abs(),
            Unary::Sqrt => x.sqrt(),
            Unary::Reciprocal => 1.0 / x,
            Unary::Exp => x.exp(),
            Unary::Log => x.ln(),
            Unary::Erf => libm::erf(x),
            Unary::Tanh => x.tanh(),
            Unary::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            Unary::Relu => {
                if x < 0.0 {
                    0.0
                } else {
                    x
                }
            }
            Unary::Floor => x.floor(),
            Unary::Ceil => x.ceil(),
            Unary::LeakyRelu(alpha) => {
                if x < 0.0 {
                    alpha as f64 * x
                } else {
                    x
                }
            }
            Unary::Clip(lo, hi) => {
                if x.is_nan() {
                    x
                } else {
                    x.max(lo as f64).min(hi as f64)
                }
            }
            Unary::Not => unreachable!("not is boolean"),
        }
    }
}

/// The activation functions of fused epilogues, in f64.
pub fn activation(act: Activation, x: f64) -> f64 {
    match act {
        Activation::Id => x,
        Activation::Relu => Unary::Relu.apply(x),
        Activation::Sigmoid => Unary::Sigmoid.apply(x),
        Activation::Tanh => x.tanh(),
        Activation::Silu => x / (1.0 + (-x).exp()),
        Activation::Gelu => 0.5 * x * (1.0 + libm::erf(x / std::f64::consts::SQRT_2)),
        Activation::GeluTanh => {
            let k = (2.0 / std::f64::consts::PI).sqrt();
            0.5 * x * (1.0 + (k * (x + 0.044715 * x * x * x)).tanh())
        }
    }
}

/// Applies an activation to every element.
pub fn activate(x: &ndarray::ArrayD<f32>, act: Activation) -> ndarray::ArrayD<f32> {
    x.mapv(|v| activation(act, v as f64) as f32)
}

pub fn unary(x: &Tensor, op: Unary) -> Result<Tensor, String> {
    Ok(match (x, op) {
        (Tensor::F32(a), Unary::Not) => return Err(format!("not of {}", Tensor::F32(a.clone()).ty())),
        (Tensor::F32(a), op) => Tensor::F32(a.mapv(|v| op.apply(v as f64) as f32)),
        (Tensor::I64(a), Unary::Neg) => Tensor::I64(a.mapv(i64::wrapping_neg)),
        (Tensor::I64(a), Unary::Abs) => Tensor::I64(a.mapv(i64::wrapping_abs)),
        (Tensor::Bool(a), Unary::Not) => Tensor::Bool(a.mapv(|v| !v)),
        (t, op) => return Err(format!("{op:?} is not defined on {}", t.dtype())),
    })
}

/// A two-operand elementwise op with numpy broadcasting.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Binary {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    Max,
    Min,
    Equal,
    Less,
    Greater,
    And,
    Or,
}

pub fn binary(x: &Tensor, y: &Tensor, op: Binary) -> Result<Tensor, String> {
    use Binary as B;
    Ok(match (x, y) {
        (Tensor::F32(a), Tensor::F32(b)) => match op {
            B::Equal | B::Less | B::Greater => Tensor::Bool(zip2(a, b, |p, q| compare(op, p, q))?),
            _ => Tensor::F32(zip2(a, b, |p, q| float_op(op, p as f64, q as f64) as f32)?),
        },
        (Tensor::I64(a), Tensor::I64(b)) => match op {
            B::Equal | B::Less | B::Greater => Tensor::Bool(zip2(a, b, |p, q| compare(op, p, q))?),
            B::Div if b.iter().any(|&q| q == 0) => return Err("integer division by zero".into()),
            _ => Tensor::I64(zip2(a, b, |p, q| int_op(op, p, q))?),
        },
        (Tensor::Bool(a), Tensor::Bool(b)) => Tensor::Bool(match op {
            B::And => zip2(a, b, |p, q| p && q)?,
            B::Or => zip2(a, b, |p, q| p || q)?,
            B::Equal => zip2(a, b, |p, q| p == q)?,
            _ => return Err(format!("{op:?} is not defined on bool")),
        }),
        _ => return Err(format!("{op:?} of {} and {}", x.ty(), y.ty())),
    })
}

fn float_op(op: Binary, p: f64, q: f64) -> f64 {
    match op {
        Binary::Add => p + q,
        Binary::Sub => p - q,
        Binary::Mul => p * q,
        Binary::Div => p / q,
        Binary::Pow => p.powf(q),
        Binary::Max if p.is_nan() || q.is_nan() => f64::NAN,
        Binary::Min if p.is_nan() || q.is_nan() => f64::NAN,
        Binary::Max => p.max(q),
        Binary::Min => p.min(q),
        _ => unreachable!("{op:?} is not arithmetic"),
    }
}

fn int_op(op: Binary, p: i64, q: i64) -> i64 {
    match op {
        Binary::Add => p.wrapping_add(q),
        Binary::Sub => p.wrapping_sub(q),
        Binary::Mul => p.wrapping_mul(q),
        Binary::Div => p.wrapping_div(q),
        Binary::Max => p.max(q),
        Binary::Min => p.min(q),
        _ => unreachable!("{op:?} is not integer arithmetic"),
    }
}

fn compare<T: PartialOrd>(op: Binary, p: T, q: T) -> bool {
    match op {
        Binary::Equal => p == q,
        Binary::Less => p < q,
        Binary::Greater => p > q,
        _ => unreachable!("{op:?} is not a comparison"),
    }
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
        (Tensor::F32(a), Tensor::F32(b)) => Tensor::F32(pick(c, a, b, &shape)),
        (Tensor::I64(a), Tensor::I64(b)) => Tensor::I64(pick(c, a, b, &shape)),
        (Tensor::Bool(a), Tensor::Bool(b)) => Tensor::Bool(pick(c, a, b, &shape)),
        _ => return Err(format!("where of {} and {}", x.ty(), y.ty())),
    })
}

/// Converts element types: floats truncate toward zero when cast to integers, and
/// anything non-zero is `true`.
pub fn cast(x: &Tensor, to: DType) -> Tensor {
    match (x, to) {
        (Tensor::F32(a), DType::F32) => Tensor::F32(a.clone()),
        (Tensor::F32(a), DType::I64) => Tensor::I64(a.mapv(|v| v as i64)),
        (Tensor::F32(a), DType::Bool) => Tensor::Bool(a.mapv(|v| v != 0.0)),
        (Tensor::I64(a), DType::F32) => Tensor::F32(a.mapv(|v| v as f32)),
        (Tensor::I64(a), DType::I64) => Tensor::I64(a.clone()),
        (Tensor::I64(a), DType::Bool) => Tensor::Bool(a.mapv(|v| v != 0)),
        (Tensor::Bool(a), DType::F32) => Tensor::F32(a.mapv(|v| v as u8 as f32)),
        (Tensor::Bool(a), DType::I64) => Tensor::I64(a.mapv(|v| v as i64)),
        (Tensor::Bool(a), DType::Bool) => Tensor::Bool(a.clone()),
    }
}
