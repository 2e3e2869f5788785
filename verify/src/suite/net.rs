//! [`Net`]: a small builder for writing models in Rust, op by op, with seeded random
//! weights scaled by fan-in so activations stay near unit size through deep networks.

use crate::rng::Rng;
use ndarray::{ArrayD, IxDyn};
use saturate_egraph::{Activation, Graph, GraphBuilder, Id, Port, Tensor, TensorLang, TensorType};
use std::collections::BTreeMap;

/// Padding of a window op, as TASO and ONNX spell it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Padding {
    /// Output size `ceil(input / stride)`, extra padding at the end.
    Same,
    /// No padding.
    Valid,
}

/// A graph under construction.
pub struct Net {
    b: GraphBuilder,
    weights: BTreeMap<String, Tensor>,
    inputs: Vec<Port>,
    rng: Rng,
}

impl Net {
    pub fn new(seed: u64) -> Self {
        Net { b: GraphBuilder::default(), weights: BTreeMap::new(), inputs: Vec::new(), rng: Rng::new(seed) }
    }

    pub fn shape(&self, id: Id) -> Vec<usize> {
        self.b.tensor_type(id).expect("a tensor").shape.clone()
    }

    /// Adds a node; the models are written to be well-typed, so a type error is a bug here.
    pub fn op(&mut self, node: TensorLang) -> Id {
        match self.b.add(node.clone()) {
            Ok(id) => id,
            Err(e) => panic!("suite model is ill-typed at {node}: {e}"),
        }
    }

    pub fn input(&mut self, name: &str, shape: &[usize]) -> Id {
        let id = self.b.input(name, &TensorType::f32(shape.to_vec()));
        self.inputs.push(Port { name: name.into(), id });
        id
    }

    /// A weight of normal values with standard deviation `scale`.
    pub fn weight(&mut self, shape: &[usize], scale: f64) -> Id {
        let name = format!("w{}", self.weights.len());
        let n: usize = shape.iter().product();
        let values: Vec<f32> = (0..n).map(|_| (self.rng.normal() * scale) as f32).collect();
        let tensor = Tensor::F32(ArrayD::from_shape_vec(IxDyn(shape), values).expect("size matches"));
        let id = self.b.weight(&name, &tensor.ty());
        self.weights.insert(name, tensor);
        id
    }

    /// A weight scaled for `fan_in` inputs (He initialization).
    pub fn weight_for(&mut self, shape: &[usize], fan_in: usize) -> Id {
        self.weight(shape, (2.0 / fan_in.max(1) as f64).sqrt())
    }

    pub fn fill(&mut self, value: f32, shape: &[usize]) -> Id {
        self.b.fill(value, shape)
    }

    pub fn ints(&mut self, v: &[i64]) -> Id {
        self.b.ints(v.to_vec())
    }

    pub fn int(&mut self, v: i64) -> Id {
        self.b.int(v)
    }

    pub fn float(&mut self, v: f32) -> Id {
        self.b.float(v)
    }

    pub fn matmul(&mut self, a: Id, b: Id) -> Id {
        self.op(TensorLang::MatMul([a, b]))
    }

    pub fn add(&mut self, a: Id, b: Id) -> Id {
        self.op(TensorLang::Add([a, b]))
    }

    pub fn mul(&mut self, a: Id, b: Id) -> Id {
        self.op(TensorLang::Mul([a, b]))
    }

    pub fn relu(&mut self, x: Id) -> Id {
        self.op(TensorLang::Relu(x))
    }

    pub fn sigmoid(&mut self, x: Id) -> Id {
        self.op(TensorLang::Sigmoid(x))
    }

    pub fn tanh(&mut self, x: Id) -> Id {
        self.op(TensorLang::Tanh(x))
    }

    pub fn reshape(&mut self, x: Id, shape: &[usize]) -> Id {
        let s = self.b.dims(shape);
        self.op(TensorLang::Reshape([x, s]))
    }

    pub fn transpose(&mut self, x: Id, perm: &[i64]) -> Id {
        let p = self.ints(perm);
        self.op(TensorLang::Transpose([x, p]))
    }

    pub fn softmax(&mut self, x: Id, axis: usize) -> Id {
        let a = self.int(axis as i64);
        self.op(TensorLang::Softmax([x, a]))
    }

    pub fn concat(&mut self, axis: usize, parts: &[Id]) -> Id {
        let mut children = vec![self.int(axis as i64)];
        children.extend(parts);
        self.op(TensorLang::Concat(children.into_boxed_slice()))
    }

    /// Pads `[begin…, end…]` for a window of `kernel` with `stride` over `input`.
    fn pads(input: &[usize], kernel: &[usize], stride: &[usize], padding: Padding) -> Vec<usize> {
        let n = input.len();
        let mut pads = vec![0; 2 * n];
        if padding == Padding::Same {
            for i in 0..n {
                let out = input[i].div_ceil(stride[i]);
                let total = ((out - 1) * stride[i] + kernel[i]).saturating_sub(input[i]);
                pads[i] = total / 2;
                pads[i + n] = total - total / 2;
            }
        }
        pads
    }

    /// A 2-D convolution with a random weight and bias, `group` groups, then `act`.
    // one argument per attribute, so call sites read like the papers' layer tables
    #[allow(clippy::too_many_arguments)]
    pub fn conv(
        &mut self,
        x: Id,
        out: usize,
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: Padding,
        group: usize,
        act: Activation,
    ) -> Id {
        let xs = self.shape(x);
        let c = xs[1];
        let w = self.weight_for(&[out, c / group, kernel[0], kernel[1]], c / group * kernel[0] * kernel[1]);
        let b = self.weight(&[out], 0.01);
        let pads = Self::pads(&xs[2..], &kernel, &stride, padding);
        let (s, p, d, g) = (self.b.dims(&stride), self.b.dims(&pads), self.b.dims(&[1, 1]), self.int(group as i64));
        let conv = self.op(TensorLang::Conv([x, w, b, s, p, d, g]));
        match act {
            Activation::Id => conv,
            Activation::Relu => self.relu(conv),
            other => panic!("suite convs use no {other}"),
        }
    }

    pub fn max_pool(&mut self, x: Id, kernel: [usize; 2], stride: [usize; 2], padding: Padding) -> Id {
        let xs = self.shape(x);
        let pads = Self::pads(&xs[2..], &kernel, &stride, padding);
        let (k, s, p, d, c) =
            (self.b.dims(&kernel), self.b.dims(&stride), self.b.dims(&pads), self.b.dims(&[1, 1]), self.int(0));
        self.op(TensorLang::MaxPool([x, k, s, p, d, c]))
    }

    pub fn avg_pool(&mut self, x: Id, kernel: [usize; 2], stride: [usize; 2], padding: Padding) -> Id {
        let xs = self.shape(x);
        let pads = Self::pads(&xs[2..], &kernel, &stride, padding);
        let (k, s, p, d, c, i) = (
            self.b.dims(&kernel),
            self.b.dims(&stride),
            self.b.dims(&pads),
            self.b.dims(&[1, 1]),
            self.int(0),
            self.int(0),
        );
        self.op(TensorLang::AvgPool([x, k, s, p, d, c, i]))
    }

    /// The finished graph with these outputs.
    pub fn finish(self, outputs: &[(&str, Id)]) -> Graph {
        let outputs = outputs.iter().map(|(name, id)| Port { name: name.to_string(), id: *id }).collect();
        Graph { expr: self.b.expr, inputs: self.inputs, outputs, weights: self.weights }.canonicalize()
    }
}
