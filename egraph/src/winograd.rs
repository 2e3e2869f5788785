//! Winograd's minimal filtering F(m×m, 3×3), the algorithm of `winograd_conv`.
//!
//! A stride-1 3×3 convolution computes each m×m block of outputs (a *tile*) from the
//! (m+2)×(m+2) patch `d` of input under it. Winograd's algorithm (Lavin and Gray, *Fast
//! Algorithms for Convolutional Neural Networks*, 2016) writes the tile as
//! `Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A`: the filter `g` and the patch are carried into an
//! (m+2)² space where the convolution is an elementwise product, and `Aᵀ … A` brings
//! the product back. Summed over input channels, the elementwise products become
//! (m+2)² matrix products `U[ξ] (K×C) · V[ξ] (C×tiles)`, with `U = G g Gᵀ` computed once
//! from the weights (`winograd_weights`, folded at compile time) and `V = Bᵀ d B`
//! computed from the input at run time.
//!
//! Multiplications per output and input channel: 9 directly, (m+2)²/m² with Winograd —
//! 4 for F(2×2, 3×3) and 2.25 for F(4×4, 3×3). The price is rounding: the transforms
//! add and subtract terms of different sizes. Measured against the interpreter's direct
//! convolution (in f64) over 64, 256 and 512 channels of random data, the backend's
//! largest error relative to the output's largest magnitude is 3e-7–9e-7 for F(2×2) and
//! 8e-6–1.5e-5 for F(4×4), against 4e-7–6e-7 for its direct f32 convolution. The
//! interpreter computes the same algorithm in f64.
//!
//! The matrices are those of the interpolation points 0, ±1 (F(2×2)) and 0, ±1, ±2
//! (F(4×4)), each with the point at infinity.

/// The matrices of one tile size, row-major.
#[derive(Debug)]
pub struct WinogradTile {
    /// Outputs per tile side: 2 or 4.
    pub m: usize,
    /// `Bᵀ`, α×α (α = m + 2).
    pub bt: &'static [f64],
    /// `G`, α×3.
    pub g: &'static [f64],
    /// `Aᵀ`, m×α.
    pub at: &'static [f64],
}

/// F(2×2, 3×3).
pub const F2: WinogradTile = WinogradTile {
    m: 2,
    #[rustfmt::skip]
    bt: &[
        1.0, 0.0, -1.0, 0.0,
        0.0, 1.0, 1.0, 0.0,
        0.0, -1.0, 1.0, 0.0,
        0.0, 1.0, 0.0, -1.0,
    ],
    #[rustfmt::skip]
    g: &[
        1.0, 0.0, 0.0,
        0.5, 0.5, 0.5,
        0.5, -0.5, 0.5,
        0.0, 0.0, 1.0,
    ],
    #[rustfmt::skip]
    at: &[
        1.0, 1.0, 1.0, 0.0,
        0.0, 1.0, -1.0, -1.0,
    ],
};

/// F(4×4, 3×3).
pub const F4: WinogradTile = WinogradTile {
    m: 4,
    #[rustfmt::skip]
    bt: &[
        4.0, 0.0, -5.0, 0.0, 1.0, 0.0,
        0.0, -4.0, -4.0, 1.0, 1.0, 0.0,
        0.0, 4.0, -4.0, -1.0, 1.0, 0.0,
        0.0, -2.0, -1.0, 2.0, 1.0, 0.0,
        0.0, 2.0, -1.0, -2.0, 1.0, 0.0,
        0.0, 4.0, 0.0, -5.0, 0.0, 1.0,
    ],
    #[rustfmt::skip]
    g: &[
        1.0 / 4.0, 0.0, 0.0,
        -1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0,
        -1.0 / 6.0, 1.0 / 6.0, -1.0 / 6.0,
        1.0 / 24.0, 1.0 / 12.0, 1.0 / 6.0,
        1.0 / 24.0, -1.0 / 12.0, 1.0 / 6.0,
        0.0, 0.0, 1.0,
    ],
    #[rustfmt::skip]
    at: &[
        1.0, 1.0, 1.0, 1.0, 1.0, 0.0,
        0.0, 1.0, -1.0, 2.0, -2.0, 0.0,
        0.0, 1.0, 1.0, 4.0, 4.0, 0.0,
        0.0, 1.0, -1.0, 8.0, -8.0, 1.0,
    ],
};

impl WinogradTile {
    /// The tile of `m` outputs a side, if there is one (2 or 4).
    pub fn of(m: i64) -> Option<&'static WinogradTile> {
        match m {
            2 => Some(&F2),
            4 => Some(&F4),
            _ => None,
        }
    }

    /// Inputs per tile side, `m + 2`.
    pub fn alpha(&self) -> usize {
        self.m + 2
    }

    /// Tiles of `batch` outputs of `output` = [height, width]: the output's sides
    /// rounded up to whole tiles.
    pub fn tiles(&self, batch: usize, output: [usize; 2]) -> usize {
        batch * output[0].div_ceil(self.m) * output[1].div_ceil(self.m)
    }

    /// FLOPs of the transforms, per tile: the input's `Bᵀ d B` per input channel and the
    /// output's `Aᵀ M A` per output channel (a multiply-add counting two, the matrices'
    /// zeros skipped).
    pub fn transform_flops(&self) -> [f64; 2] {
        let nonzero = |m: &[f64]| m.iter().filter(|&&v| v != 0.0).count() as f64;
        let a = self.alpha() as f64;
        [2.0 * 2.0 * a * nonzero(self.bt), 2.0 * nonzero(self.at) * (a + self.m as f64)]
    }

    /// `G ⊗ G`, α²×9: row `(a, b)`, column `(i, j)` is `G[a][i]·G[b][j]`, so that
    /// `U[(a, b)] = Σ (G ⊗ G)[(a, b), (i, j)] · g[i][j]` is `(G g Gᵀ)[a][b]`.
    pub fn weight_transform(&self) -> Vec<f64> {
        kron(self.g, self.alpha(), 3)
    }

    /// A left inverse of [`weight_transform`](Self::weight_transform), 9×α²: `G⁺ ⊗ G⁺`
    /// with `G⁺ = (GᵀG)⁻¹Gᵀ`, which takes `G g Gᵀ` back to `g` (the ONNX export
    /// writes a `winograd_conv` as the `Conv` it computes).
    pub fn weight_recovery(&self) -> Vec<f64> {
        let (a, g) = (self.alpha(), self.g);
        let mut gtg = [[0.0f64; 3]; 3];
        for (i, row) in gtg.iter_mut().enumerate() {
            for (j, v) in row.iter_mut().enumerate() {
                *v = (0..a).map(|r| g[r * 3 + i] * g[r * 3 + j]).sum();
            }
        }
        let inv = inverse3(gtg);
        let mut pinv = vec![0.0; 3 * a];
        for i in 0..3 {
            for r in 0..a {
                pinv[i * a + r] = (0..3).map(|j| inv[i][j] * g[r * 3 + j]).sum();
            }
        }
        kron(&pinv, 3, a)
    }
}

/// `M ⊗ M` of an `rows × cols` matrix.
fn kron(m: &[f64], rows: usize, cols: usize) -> Vec<f64> {
    let mut out = vec![0.0; rows * rows * cols * cols];
    for a in 0..rows {
        for b in 0..rows {
            for i in 0..cols {
                for j in 0..cols {
                    out[(a * rows + b) * cols * cols + i * cols + j] = m[a * cols + i] * m[b * cols + j];
                }
            }
        }
    }
    out
}

fn inverse3(m: [[f64; 3]; 3]) -> [[f64; 3]; 3] {
    let cof = |r: usize, c: usize| {
        let (r0, r1) = ((r + 1) % 3, (r + 2) % 3);
        let (c0, c1) = ((c + 1) % 3, (c + 2) % 3);
        m[r0][c0] * m[r1][c1] - m[r0][c1] * m[r1][c0]
    };
    let det: f64 = (0..3).map(|c| m[0][c] * cof(0, c)).sum();
    let mut inv = [[0.0; 3]; 3];
    for (r, row) in inv.iter_mut().enumerate() {
        for (c, v) in row.iter_mut().enumerate() {
            *v = cof(c, r) / det;
        }
    }
    inv
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One tile of a 1-D convolution both ways: `Aᵀ[(G g) ⊙ (Bᵀ d)]` against the
    /// direct sums, for each tile size.
    #[test]
    fn one_dimensional_tiles_equal_direct_convolution() {
        for m in [2, 4] {
            let t = WinogradTile::of(m).unwrap();
            let a = t.alpha();
            let d: Vec<f64> = (0..a).map(|i| (i as f64 * 0.7 - 1.3).sin()).collect();
            let g = [0.3, -1.1, 0.45];
            let gg: Vec<f64> = (0..a).map(|r| (0..3).map(|i| t.g[r * 3 + i] * g[i]).sum()).collect();
            let bd: Vec<f64> = (0..a).map(|r| (0..a).map(|i| t.bt[r * a + i] * d[i]).sum()).collect();
            for o in 0..t.m {
                let winograd: f64 = (0..a).map(|r| t.at[o * a + r] * gg[r] * bd[r]).sum();
                let direct: f64 = (0..3).map(|i| g[i] * d[o + i]).sum();
                assert!((winograd - direct).abs() < 1e-12, "F({m}) output {o}: {winograd} vs {direct}");
            }
        }
    }

    #[test]
    fn recovery_inverts_the_weight_transform() {
        for m in [2, 4] {
            let t = WinogradTile::of(m).unwrap();
            let (fwd, back) = (t.weight_transform(), t.weight_recovery());
            let a2 = t.alpha() * t.alpha();
            for i in 0..9 {
                for j in 0..9 {
                    let v: f64 = (0..a2).map(|r| back[i * a2 + r] * fwd[r * 9 + j]).sum();
                    assert!((v - f64::from(i == j)).abs() < 1e-12, "F({m}) [{i},{j}] = {v}");
                }
            }
        }
        assert!(WinogradTile::of(3).is_none());
    }
}
