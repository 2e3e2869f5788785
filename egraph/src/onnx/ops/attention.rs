//! ONNX `Attention` (opset 23), composed from products, a softmax and masks as the spec
//! defines it:
//!
//! 1. 3-D inputs `[B, S, heads·H]` are split into heads, `[B, heads, S, H]`;
//! 2. `past_key`/`past_value` are prepended along the sequence (the outputs
//!    `present_key`/`present_value`);
//! 3. grouped-query attention repeats each key/value head for the query heads that
//!    share it (`q_num_heads` a multiple of `kv_num_heads`);
//! 4. scores `q·kᵀ·scale` (`scale` 1/√H by default), soft-capped
//!    (`softcap·tanh(s/softcap)`) if asked, plus a bias: the mask (a float one added, a
//!    boolean one as 0 or −inf, padded with −inf to the key length), the causal mask
//!    (−inf above the diagonal shifted by the past length), and the padding of
//!    `nonpad_kv_seqlen`;
//! 5. softmax along the keys, times the values, merged back to 3-D if the inputs were.
//!
//! The optional fourth output is the scores at the stage `qk_matmul_output_mode` names
//! (0 and 1: after the product and any softcap, 2: with the bias, 3: after softmax).

use super::Cx;
use crate::{DType, Result, Tensor, TensorLang as L};
use egg::Id;

pub(super) fn attention(cx: &mut Cx) -> Result<Vec<Option<Id>>> {
    let (q, k, v) = (cx.input(0)?, cx.input(1)?, cx.input(2)?);
    let three_d = cx.rank(q) == 3;
    if !three_d && cx.rank(q) != 4 {
        return Err(cx.attr_error("Q, K and V must be 3-D or 4-D".into()));
    }
    let q_heads = cx.int_attr("q_num_heads", Some(0))? as usize;
    let kv_heads = cx.int_attr("kv_num_heads", Some(0))? as usize;
    let (q, k, v) = if three_d {
        if q_heads == 0 || kv_heads == 0 {
            return Err(cx.attr_error("3-D inputs need q_num_heads and kv_num_heads".into()));
        }
        (split_heads(cx, q, q_heads)?, split_heads(cx, k, kv_heads)?, split_heads(cx, v, kv_heads)?)
    } else {
        (q, k, v)
    };
    // the key/value cache
    let past = cx.opt_input(4).map(|p| cx.shape(p)[2]).unwrap_or(0);
    let k = match cx.opt_input(4) {
        Some(pk) => concat_sequence(cx, pk, k)?,
        None => k,
    };
    let v = match cx.opt_input(5) {
        Some(pv) => concat_sequence(cx, pv, v)?,
        None => v,
    };
    let (present_k, present_v) = (k, v);
    let [batch, heads, s, h] = dims4(cx, q)?;
    let kv = cx.shape(k)[1];
    let t = cx.shape(k)[2];
    let (k, v) = if heads != kv {
        if kv == 0 || heads % kv != 0 {
            return Err(cx.attr_error(format!("{heads} query heads do not share {kv} key/value heads evenly")));
        }
        (repeat_heads(cx, k, heads / kv)?, repeat_heads(cx, v, heads / kv)?)
    } else {
        (k, v)
    };
    // scores
    let scale = match cx.attr("scale").and_then(|a| a.f) {
        Some(s) => s,
        None => 1.0 / (h as f32).sqrt(),
    };
    let perm = cx.imp.b.ints(vec![0, 1, 3, 2]);
    let kt = cx.add(L::Transpose([k, perm]))?;
    let qk = cx.add(L::MatMul([q, kt]))?;
    let sc = cx.imp.b.fill(scale, &[]);
    let mut qk = cx.add(L::Mul([qk, sc]))?;
    let softcap = cx.float_attr("softcap", 0.0)?;
    if softcap > 0.0 {
        let inv = cx.imp.b.fill(1.0 / softcap, &[]);
        let scaled = cx.add(L::Mul([qk, inv]))?;
        let th = cx.add(L::Tanh(scaled))?;
        let cap = cx.imp.b.fill(softcap, &[]);
        qk = cx.add(L::Mul([th, cap]))?;
    }
    let capped = qk;
    let biased = match bias(cx, batch, s, t, past)? {
        Some(b) => cx.add(L::Add([qk, b]))?,
        None => qk,
    };
    let axis = cx.imp.b.int(3);
    let probs = cx.add(L::Softmax([biased, axis]))?;
    let y = cx.add(L::MatMul([probs, v]))?;
    let y = if three_d { merge_heads(cx, y)? } else { y };
    let scores = match cx.int_attr("qk_matmul_output_mode", Some(0))? {
        0 | 1 => capped,
        2 => biased,
        3 => probs,
        other => return Err(cx.attr_error(format!("qk_matmul_output_mode {other} is not 0 to 3"))),
    };
    Ok(vec![Some(y), Some(present_k), Some(present_v), Some(scores)])
}

/// `[B, S, heads·H]` → `[B, heads, S, H]`.
fn split_heads(cx: &mut Cx, x: Id, heads: usize) -> Result<Id> {
    let [b, s, hidden] = match cx.shape(x)[..] {
        [b, s, hidden] => [b, s, hidden],
        _ => return Err(cx.attr_error("3-D inputs must all be 3-D".into())),
    };
    if hidden % heads != 0 {
        return Err(cx.attr_error(format!("hidden size {hidden} is not a multiple of {heads} heads")));
    }
    let r = cx.reshape(x, &[b, s, heads, hidden / heads])?;
    let p = cx.imp.b.ints(vec![0, 2, 1, 3]);
    cx.add(L::Transpose([r, p]))
}

/// `[B, heads, S, H]` → `[B, S, heads·H]`.
fn merge_heads(cx: &mut Cx, y: Id) -> Result<Id> {
    let [b, heads, s, h] = dims4(cx, y)?;
    cx.regroup(y, &[b, heads, s, h], &[0, 2, 1, 3], &[b, s, heads * h])
}

fn dims4(cx: &Cx, x: Id) -> Result<[usize; 4]> {
    match cx.shape(x)[..] {
        [a, b, c, d] => Ok([a, b, c, d]),
        _ => Err(cx.attr_error("expected [B, heads, S, H]".into())),
    }
}

/// The cache and the new keys (or values), along the sequence.
fn concat_sequence(cx: &mut Cx, past: Id, new: Id) -> Result<Id> {
    let axis = cx.imp.b.int(2);
    cx.add(L::Concat(vec![axis, past, new].into_boxed_slice()))
}

/// `[B, kv, T, H]` → `[B, kv·reps, T, H]`, each head repeated `reps` times in place.
fn repeat_heads(cx: &mut Cx, x: Id, reps: usize) -> Result<Id> {
    let [b, kv, t, h] = dims4(cx, x)?;
    let a = cx.imp.b.ints(vec![2]);
    let u = cx.add(L::Unsqueeze([x, a]))?;
    let to = cx.imp.b.dims(&[b, kv, reps, t, h]);
    let e = cx.add(L::Expand([u, to]))?;
    cx.reshape(e, &[b, kv * reps, t, h])
}

/// The bias added to the scores `[B, heads, S, T]`: the mask, the causal mask, the
/// key padding; `None` if there is none.
fn bias(cx: &mut Cx, batch: usize, s: usize, t: usize, past: usize) -> Result<Option<Id>> {
    let minus_inf = f32::NEG_INFINITY;
    let mut bias = match cx.opt_input(3) {
        Some(mask) => {
            // a boolean mask keeps where true; pad the key axis to T with −inf
            let mask = if cx.ty(mask).dtype == DType::Bool {
                let (zero, ninf) = (cx.imp.b.fill(0.0, &[]), cx.imp.b.fill(minus_inf, &[]));
                cx.add(L::Where([mask, zero, ninf]))?
            } else {
                mask
            };
            let shape = cx.shape(mask);
            let last = *shape.last().ok_or_else(|| cx.attr_error("attn_mask has no axes".into()))?;
            if last < t {
                let rank = shape.len();
                let mut pads = vec![0usize; 2 * rank];
                pads[2 * rank - 1] = t - last;
                let (p, value) = (cx.imp.b.dims(&pads), cx.imp.b.float(minus_inf));
                Some(cx.add(L::Pad([mask, p, value]))?)
            } else {
                Some(mask)
            }
        }
        None => None,
    };
    if cx.int_attr("is_causal", Some(0))? != 0 {
        // −inf where key j lies after query i (shifted by the cached past)
        let values: Vec<f32> = (0..s * t).map(|e| if (e % t) > past + e / t { minus_inf } else { 0.0 }).collect();
        let causal = Tensor::F32(ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&[s, t]), values).expect("sizes"));
        let causal = cx.constant_part(causal, "causal");
        bias = Some(match bias {
            Some(b) => cx.add(L::Add([b, causal]))?,
            None => causal,
        });
    }
    if let Some(lengths) = cx.opt_input(6) {
        // keys at or past each batch's length weigh nothing
        let positions = Tensor::I64(
            ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&[1, t]), (0..t as i64).collect()).expect("sizes"),
        );
        let positions = cx.constant_part(positions, "key_positions");
        let lengths = match cx.ty(lengths).dtype {
            DType::I64 => lengths,
            _ => {
                let d = cx.imp.b.dtype(DType::I64);
                cx.add(L::Cast([lengths, d]))?
            }
        };
        let a = cx.imp.b.ints(vec![1]);
        let lengths = cx.add(L::Unsqueeze([lengths, a]))?;
        let kept = cx.add(L::Less([positions, lengths]))?;
        let (zero, ninf) = (cx.imp.b.fill(0.0, &[]), cx.imp.b.fill(minus_inf, &[]));
        let padding = cx.add(L::Where([kept, zero, ninf]))?;
        let padding = cx.reshape(padding, &[batch, 1, 1, t])?;
        bias = Some(match bias {
            Some(b) => cx.add(L::Add([b, padding]))?,
            None => padding,
        });
    }
    Ok(bias)
}
