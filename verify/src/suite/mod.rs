//! The model suite: the graphs Tensat (MLSys'21) optimized, built in Rust, next to the
//! ONNX "light" zoo and the bundled transformer layer.
//!
//! The structures follow the TASO/Tensat benchmark definitions (BERT, NasRNN, ResNeXt-50,
//! NasNet-A, Inception-v3) at the sizes DESIGN.md gives, with two corrections to BERT
//! (TASO's version drops the attention result and has no softmax; here the scaled-softmax
//! attention feeds the output projection and a residual connection). Weights are seeded
//! random values scaled by fan-in, so the differential tests compare meaningful numbers.
//!
//! [`load`] builds a model by name; `saturate` accepts `suite:NAME` wherever it takes a
//! model file.

pub mod net;

use net::{Net, Padding};
use saturate_egraph::{Activation, Graph, Id};

/// A model of the suite.
pub struct SuiteModel {
    pub name: &'static str,
    pub about: &'static str,
    pub build: fn() -> Graph,
}

/// Every model built in Rust, in the order of Tensat's table.
pub const MODELS: &[SuiteModel] = &[
    SuiteModel {
        name: "bert",
        about: "BERT encoder: seq 64, hidden 1024, 16 heads, 8 layers (Tensat's graph)",
        build: bert,
    },
    SuiteModel { name: "nasrnn", about: "NasRNN: 5 steps, hidden 512 (TASO's cell)", build: nasrnn },
    SuiteModel { name: "resnext50", about: "ResNeXt-50 (32 groups), input 1×3×224×224", build: resnext50 },
    SuiteModel {
        name: "nasnet_a",
        about: "NasNet-A: 3 × (5 normal + 1 reduction) cells, input 1×3×224×224",
        build: nasnet_a,
    },
    SuiteModel { name: "inception_v3", about: "Inception-v3, input 1×3×299×299", build: inception_v3 },
];

/// Builds a suite model by name.
pub fn load(name: &str) -> Result<Graph, String> {
    MODELS.iter().find(|m| m.name == name).map(|m| (m.build)()).ok_or_else(|| {
        format!(
            "no suite model `{name}`; the suite has {}",
            MODELS.iter().map(|m| m.name).collect::<Vec<_>>().join(", ")
        )
    })
}

/// BERT as Tensat benchmarked it: 8 attention layers over a [64, 1024] sequence.
pub fn bert() -> Graph {
    let (seq, hidden, heads) = (64, 1024, 16);
    let head = hidden / heads;
    let mut n = Net::new(1);
    let input = n.input("input", &[seq, hidden]);
    let mut x = n.relu(input);
    let scale = n.fill(1.0 / (head as f32).sqrt(), &[]);
    for _ in 0..8 {
        let proj = |n: &mut Net, x| {
            let w = n.weight_for(&[hidden, hidden], hidden);
            n.matmul(x, w)
        };
        let (q, k, v) = (proj(&mut n, x), proj(&mut n, x), proj(&mut n, x));
        let split = |n: &mut Net, t, perm: &[i64]| {
            let r = n.reshape(t, &[seq, heads, head]);
            n.transpose(r, perm)
        };
        let q = split(&mut n, q, &[1, 0, 2]);
        let kt = split(&mut n, k, &[1, 2, 0]);
        let v = split(&mut n, v, &[1, 0, 2]);
        let scores = n.matmul(q, kt);
        let scaled = n.mul(scores, scale);
        let probs = n.softmax(scaled, 2);
        let context = n.matmul(probs, v);
        let merged = n.transpose(context, &[1, 0, 2]);
        let merged = n.reshape(merged, &[seq, hidden]);
        let out = proj(&mut n, merged);
        x = n.add(x, out);
    }
    n.finish(&[("output", x)])
}

/// NasRNN: TASO's recurrent cell, eight input/state projections per step combined by
/// elementwise ops, unrolled over 5 steps.
pub fn nasrnn() -> Graph {
    let (steps, hidden) = (5, 512);
    let mut n = Net::new(2);
    let xs: Vec<Id> = (0..steps).map(|i| n.input(&format!("x{i}"), &[1, hidden])).collect();
    let mut state = n.weight(&[1, hidden], 0.5);
    for &x in &xs {
        let mut t = Vec::new();
        for _ in 0..8 {
            let (w1, w2) = (n.weight_for(&[hidden, hidden], hidden), n.weight_for(&[hidden, hidden], hidden));
            let (a, b) = (n.matmul(x, w1), n.matmul(state, w2));
            t.push(n.add(a, b));
        }
        let (r0, s3) = (n.relu(t[0]), n.sigmoid(t[3]));
        let m0 = n.add(r0, s3);
        let (s1, h2) = (n.sigmoid(t[1]), n.tanh(t[2]));
        let m1 = n.add(s1, h2);
        let (s4, h5) = (n.sigmoid(t[4]), n.tanh(t[5]));
        let m2 = n.mul(s4, h5);
        let (s6, r7) = (n.sigmoid(t[6]), n.relu(t[7]));
        let m3 = n.mul(s6, r7);
        let (s_m1, h_m2) = (n.sigmoid(m1), n.tanh(m2));
        let m4 = n.add(s_m1, h_m2);
        let (h_m0, h_m3) = (n.tanh(m0), n.tanh(m3));
        let m5 = n.mul(h_m0, h_m3);
        let (h_m4, h_m5) = (n.tanh(m4), n.tanh(m5));
        let m6 = n.mul(h_m4, h_m5);
        state = n.tanh(m6);
    }
    n.finish(&[("state", state)])
}

fn resnext_block(n: &mut Net, x: Id, stride: usize, width: usize, groups: usize) -> Id {
    let same = Padding::Same;
    let t = n.conv(x, width, [1, 1], [1, 1], same, 1, Activation::Relu);
    let t = n.conv(t, width, [3, 3], [stride, stride], same, groups, Activation::Relu);
    let t = n.conv(t, 2 * width, [1, 1], [1, 1], same, 1, Activation::Id);
    let shortcut = if stride > 1 || n.shape(x)[1] != 2 * width {
        n.conv(x, 2 * width, [1, 1], [stride, stride], same, 1, Activation::Relu)
    } else {
        x
    };
    let sum = n.add(shortcut, t);
    n.relu(sum)
}

/// ResNeXt-50 (32×4d-style blocks as in TASO's benchmark) with the usual stem.
pub fn resnext50() -> Graph {
    let mut n = Net::new(3);
    let input = n.input("input", &[1, 3, 224, 224]);
    let t = n.conv(input, 64, [7, 7], [2, 2], Padding::Same, 1, Activation::Relu);
    let mut t = n.max_pool(t, [3, 3], [2, 2], Padding::Same);
    for (blocks, width) in [(3, 128), (4, 256), (6, 512), (3, 1024)] {
        for i in 0..blocks {
            let stride = if i == 0 && width > 128 { 2 } else { 1 };
            t = resnext_block(&mut n, t, stride, width, 32);
        }
    }
    n.finish(&[("output", t)])
}

fn squeeze(n: &mut Net, out: usize, x: Id) -> Id {
    n.conv(x, out, [1, 1], [1, 1], Padding::Same, 1, Activation::Relu)
}

/// Brings `x` to the spatial size and channels of `like`.
fn fit(n: &mut Net, like: Id, x: Id) -> Id {
    let (cs, xs) = (n.shape(like), n.shape(x));
    if cs[2] == xs[2] {
        squeeze(n, cs[1], x)
    } else {
        n.conv(x, cs[1], [3, 3], [2, 2], Padding::Same, 1, Activation::Relu)
    }
}

/// A depthwise-style grouped conv (groups = out channels) then a pointwise conv.
fn separable(n: &mut Net, x: Id, out: usize, k: usize, stride: usize) -> Id {
    let t = n.conv(x, out, [k, k], [stride, stride], Padding::Same, out, Activation::Id);
    n.conv(t, out, [1, 1], [1, 1], Padding::Same, 1, Activation::Id)
}

fn normal_cell(n: &mut Net, prev: Id, cur: Id, out: usize) -> Id {
    let cur = squeeze(n, out, cur);
    let prev = fit(n, cur, prev);
    let same = Padding::Same;
    let ts = [
        separable(n, cur, out, 3, 1),
        cur,
        separable(n, prev, out, 3, 1),
        separable(n, cur, out, 3, 1),
        n.avg_pool(cur, [3, 3], [1, 1], same),
        prev,
        n.avg_pool(prev, [3, 3], [1, 1], same),
        n.avg_pool(prev, [3, 3], [1, 1], same),
        separable(n, prev, out, 3, 1),
        separable(n, prev, out, 3, 1),
    ];
    let outputs: Vec<Id> = (0..5).map(|i| n.add(ts[2 * i], ts[2 * i + 1])).collect();
    n.concat(1, &outputs)
}

fn reduction_cell(n: &mut Net, prev: Id, cur: Id, out: usize) -> Id {
    let cur = squeeze(n, out, cur);
    let prev = fit(n, cur, prev);
    let same = Padding::Same;
    let (a, b) = (separable(n, prev, out, 7, 2), separable(n, cur, out, 5, 2));
    let o0 = n.add(a, b);
    let (a, b) = (n.max_pool(cur, [3, 3], [2, 2], same), separable(n, prev, out, 7, 2));
    let o1 = n.add(a, b);
    let (a, b) = (n.avg_pool(cur, [3, 3], [2, 2], same), separable(n, prev, out, 5, 2));
    let o2 = n.add(a, b);
    let (a, b) = (n.max_pool(cur, [3, 3], [2, 2], same), separable(n, o0, out, 3, 1));
    let o3 = n.add(a, b);
    let a = n.avg_pool(o0, [3, 3], [1, 1], same);
    let o4 = n.add(a, o1);
    n.concat(1, &[o0, o1, o2, o3, o4])
}

/// NasNet-A as in TASO's benchmark: a stem, then three stages of five normal cells and
/// a reduction cell.
pub fn nasnet_a() -> Graph {
    let mut n = Net::new(4);
    let input = n.input("input", &[1, 3, 224, 224]);
    let t = n.conv(input, 64, [7, 7], [2, 2], Padding::Same, 1, Activation::Relu);
    let mut x = n.max_pool(t, [3, 3], [2, 2], Padding::Same);
    let mut out = 128;
    for _ in 0..3 {
        let (mut prev, mut cur) = (x, x);
        for _ in 0..5 {
            let t = normal_cell(&mut n, prev, cur, out);
            prev = cur;
            cur = t;
        }
        out *= 2;
        x = reduction_cell(&mut n, prev, cur, out);
    }
    n.finish(&[("output", x)])
}

fn conv_relu(n: &mut Net, x: Id, out: usize, kernel: [usize; 2], stride: usize, padding: Padding) -> Id {
    n.conv(x, out, kernel, [stride, stride], padding, 1, Activation::Relu)
}

fn inception_a(n: &mut Net, x: Id, pool_features: usize) -> Id {
    let s = Padding::Same;
    let t1 = conv_relu(n, x, 64, [1, 1], 1, s);
    let t2 = conv_relu(n, x, 48, [1, 1], 1, s);
    let t2 = conv_relu(n, t2, 64, [5, 5], 1, s);
    let t3 = conv_relu(n, x, 64, [1, 1], 1, s);
    let t3 = conv_relu(n, t3, 96, [3, 3], 1, s);
    let t3 = conv_relu(n, t3, 96, [3, 3], 1, s);
    let t4 = n.avg_pool(x, [3, 3], [1, 1], s);
    let t4 = conv_relu(n, t4, pool_features, [1, 1], 1, s);
    n.concat(1, &[t1, t2, t3, t4])
}

fn inception_b(n: &mut Net, x: Id) -> Id {
    let (s, v) = (Padding::Same, Padding::Valid);
    let t1 = conv_relu(n, x, 384, [3, 3], 2, v);
    let t2 = conv_relu(n, x, 64, [1, 1], 1, s);
    let t2 = conv_relu(n, t2, 96, [3, 3], 1, s);
    let t2 = conv_relu(n, t2, 96, [3, 3], 2, v);
    let t3 = n.max_pool(x, [3, 3], [2, 2], v);
    n.concat(1, &[t1, t2, t3])
}

fn inception_c(n: &mut Net, x: Id, channels: usize) -> Id {
    let s = Padding::Same;
    let t1 = conv_relu(n, x, 192, [1, 1], 1, s);
    let t2 = conv_relu(n, x, channels, [1, 1], 1, s);
    let t2 = conv_relu(n, t2, channels, [1, 7], 1, s);
    let t2 = conv_relu(n, t2, 192, [7, 1], 1, s);
    let t3 = conv_relu(n, x, channels, [1, 1], 1, s);
    let t3 = conv_relu(n, t3, channels, [7, 1], 1, s);
    let t3 = conv_relu(n, t3, channels, [1, 7], 1, s);
    let t3 = conv_relu(n, t3, channels, [7, 1], 1, s);
    let t3 = conv_relu(n, t3, 192, [1, 7], 1, s);
    let t4 = n.avg_pool(x, [3, 3], [1, 1], s);
    let t4 = conv_relu(n, t4, 192, [1, 1], 1, s);
    n.concat(1, &[t1, t2, t3, t4])
}

fn inception_d(n: &mut Net, x: Id) -> Id {
    let (s, v) = (Padding::Same, Padding::Valid);
    let t1 = conv_relu(n, x, 192, [1, 1], 1, s);
    let t1 = conv_relu(n, t1, 320, [3, 3], 2, v);
    let t2 = conv_relu(n, x, 192, [1, 1], 1, s);
    let t2 = conv_relu(n, t2, 192, [1, 7], 1, s);
    let t2 = conv_relu(n, t2, 192, [7, 1], 1, s);
    let t2 = conv_relu(n, t2, 192, [3, 3], 2, v);
    let t3 = n.max_pool(x, [3, 3], [2, 2], v);
    n.concat(1, &[t1, t2, t3])
}

fn inception_e(n: &mut Net, x: Id) -> Id {
    let s = Padding::Same;
    let t1 = conv_relu(n, x, 320, [1, 1], 1, s);
    let t2i = conv_relu(n, x, 384, [1, 1], 1, s);
    let t2 = conv_relu(n, t2i, 384, [1, 3], 1, s);
    let t3 = conv_relu(n, t2i, 384, [3, 1], 1, s);
    let t3i = conv_relu(n, x, 448, [1, 1], 1, s);
    let t3i = conv_relu(n, t3i, 384, [3, 3], 1, s);
    let t4 = conv_relu(n, t3i, 384, [1, 3], 1, s);
    let t5 = conv_relu(n, t3i, 384, [3, 1], 1, s);
    let t6 = n.avg_pool(x, [3, 3], [1, 1], s);
    let t6 = conv_relu(n, t6, 192, [1, 1], 1, s);
    n.concat(1, &[t1, t2, t3, t4, t5, t6])
}

/// Inception-v3 (without the auxiliary head and classifier), as Tensat benchmarked it.
pub fn inception_v3() -> Graph {
    let (s, v) = (Padding::Same, Padding::Valid);
    let mut n = Net::new(5);
    let input = n.input("input", &[1, 3, 299, 299]);
    let x = conv_relu(&mut n, input, 32, [3, 3], 2, v);
    let x = conv_relu(&mut n, x, 32, [3, 3], 1, v);
    let x = conv_relu(&mut n, x, 64, [3, 3], 1, s);
    let x = n.max_pool(x, [3, 3], [2, 2], v);
    let x = conv_relu(&mut n, x, 80, [1, 1], 1, v);
    let x = conv_relu(&mut n, x, 192, [3, 3], 1, v);
    let mut x = n.max_pool(x, [3, 3], [2, 2], v);
    for pool_features in [32, 64, 64] {
        x = inception_a(&mut n, x, pool_features);
    }
    x = inception_b(&mut n, x);
    for channels in [128, 160, 160, 192] {
        x = inception_c(&mut n, x, channels);
    }
    x = inception_d(&mut n, x);
    x = inception_e(&mut n, x);
    x = inception_e(&mut n, x);
    let x = n.avg_pool(x, [8, 8], [1, 1], v);
    n.finish(&[("output", x)])
}
