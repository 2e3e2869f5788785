//! The window IR: ops that slide a kernel over the spatial axes of `[N, C, spatial…]`
//! tensors — max and average pooling, depthwise convolution, and im2col (which turns a
//! convolution into a matrix product).
//!
//! A [`WindowSpec`] works on `planes` independent planes (an `n, c` pair each, the
//! dimension threads split), for any number of spatial axes. A tap at output position
//! `o` and kernel offset `k` reads input coordinate `o·stride + k·dilation − pad_begin`
//! on each axis; taps outside the input read as padding (ignored by max pooling, zero
//! otherwise).

#[derive(Debug, Clone, PartialEq)]
pub struct WindowSpec {
    pub planes: usize,
    pub input: Vec<usize>,
    pub output: Vec<usize>,
    pub kernel: Vec<usize>,
    pub strides: Vec<usize>,
    pub dilations: Vec<usize>,
    pub pads_begin: Vec<usize>,
    pub pads_end: Vec<usize>,
    pub op: WindowOp,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum WindowOp {
    /// Writes, for each plane, a `[taps, positions]` matrix of the values under the
    /// kernel (zero in the padding). Arguments: input, columns.
    Im2col,
    /// Arguments: input, output.
    Max,
    /// The divisor counts the taps inside the input, plus those in the padding with
    /// `count_include_pad`. Arguments: input, the reciprocals of the divisors (one per
    /// output position, see [`WindowSpec::average_divisors`]), output.
    Average { count_include_pad: bool },
    /// One filter per channel (`planes` = batch × `channels`): the output is
    /// `bias[c] + Σ w[c, tap] · x`. Arguments: input, weights `[C, taps]`, bias `[C]`, output.
    Depthwise { channels: usize },
}

/// Where a plane's padded copy lives in the scratch buffer: every spatial axis padded
/// (and extended to cover every window, ceil mode included), and the last axis split
/// into `phases` = its stride interleaved parts, so the columns a tap reads for
/// consecutive outputs are consecutive in memory whatever the stride.
#[derive(Debug, Clone, PartialEq)]
pub struct Scratch {
    /// Padded sizes of the axes before the last.
    pub outer: Vec<usize>,
    pub phases: usize,
    pub phase_len: usize,
}

impl Scratch {
    /// Elements of one plane's copy.
    pub fn plane_len(&self) -> usize {
        self.outer.iter().product::<usize>() * self.phases * self.phase_len
    }

    /// Element strides of the outer axes.
    pub fn outer_strides(&self) -> Vec<usize> {
        let mut strides = vec![self.phases * self.phase_len; self.outer.len()];
        for d in (0..self.outer.len().saturating_sub(1)).rev() {
            strides[d] = strides[d + 1] * self.outer[d + 1];
        }
        strides
    }

    /// The element offset of padded coordinates `c` (last one included) in a plane's copy.
    pub fn offset(&self, c: &[usize]) -> usize {
        let last = c[c.len() - 1];
        let outer: usize = c[..c.len() - 1].iter().zip(self.outer_strides()).map(|(&x, s)| x * s).sum();
        outer + (last % self.phases) * self.phase_len + last / self.phases
    }
}

impl WindowSpec {
    /// The padded, phase-split layout of one plane (see [`Scratch`]).
    pub fn scratch(&self) -> Scratch {
        let extent = |d: usize| {
            let covered = (self.output[d].max(1) - 1) * self.strides[d] + (self.kernel[d] - 1) * self.dilations[d] + 1;
            covered.max(self.pads_begin[d] + self.input[d] + self.pads_end[d])
        };
        let r = self.input.len();
        let phases = self.strides[r - 1].max(1);
        Scratch { outer: (0..r - 1).map(extent).collect(), phases, phase_len: extent(r - 1).div_ceil(phases) }
    }

    pub fn taps(&self) -> usize {
        self.kernel.iter().product()
    }

    pub fn positions(&self) -> usize {
        self.output.iter().product()
    }

    pub fn input_size(&self) -> usize {
        self.input.iter().product()
    }

    /// For average pooling, `1 / count` at every output position: the count of taps
    /// inside the input (or inside the padded input), a product over the axes.
    pub fn average_divisors(&self, count_include_pad: bool) -> Vec<f32> {
        let per_axis: Vec<Vec<usize>> = (0..self.input.len())
            .map(|d| {
                let limit = self.input[d] + if count_include_pad { self.pads_end[d] } else { 0 };
                (0..self.output[d])
                    .map(|o| {
                        (0..self.kernel[d])
                            .filter(|&k| {
                                let c =
                                    (o * self.strides[d] + k * self.dilations[d]) as i64 - self.pads_begin[d] as i64;
                                c < limit as i64 && (count_include_pad || c >= 0)
                            })
                            .count()
                    })
                    .collect()
            })
            .collect();
        let mut out = Vec::with_capacity(self.positions());
        let mut index = vec![0usize; self.output.len()];
        for _ in 0..self.positions() {
            let count: usize = index.iter().enumerate().map(|(d, &o)| per_axis[d][o]).product();
            out.push(1.0 / count as f32);
            crate::loops::increment(&mut index, &self.output);
        }
        out
    }
}

/// Local response normalization across channels: `x / (bias + alpha/size · Σ x²)^beta`,
/// the sum over the `size` channels around each one (fewer at the edges).
#[derive(Debug, Clone, PartialEq)]
pub struct LrnSpec {
    pub batch: usize,
    pub channels: usize,
    /// Elements per channel (the product of the spatial axes).
    pub spatial: usize,
    pub size: usize,
    pub alpha: f32,
    pub beta: f32,
    pub bias: f32,
}
