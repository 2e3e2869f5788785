//! The compiled program before it runs: buffers, where each value lives, and the steps
//! that read and write them.
//!
//! A *buffer* is a contiguous block: either in the run-time arena (inputs,
//! intermediates, outputs; the memory plan gives it an offset, reusing space by
//! liveness) or constant (weights, and everything computed from them, prepared once at
//! compile time). A value lives at a [`Loc`], a buffer and a byte offset in it, so views
//! (reshape, contiguous slices) share their operand's storage.

use crate::gemm::MatMul;
use saturate_egraph::DType;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BufferId(pub usize);

#[derive(Debug, Clone)]
pub struct Buffer {
    pub bytes: usize,
    /// Computed at compile time (and then read-only).
    pub constant: bool,
}

/// Where a value lives: a buffer and a byte offset into it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loc {
    pub buffer: BufferId,
    pub offset: usize,
}

impl Loc {
    pub fn at(self, bytes: usize) -> Loc {
        Loc { buffer: self.buffer, offset: self.offset + bytes }
    }
}

/// One kernel call. `args` are the locations the kernel receives, in its order.
#[derive(Debug, Clone)]
pub struct Step {
    pub kernel: Kernel,
    pub args: Vec<Loc>,
    /// Which of `args` the step writes (the rest it only reads).
    pub writes: Vec<bool>,
    /// Runs once, at compile time: every value it reads is constant.
    pub constant: bool,
}

#[derive(Debug, Clone)]
pub enum Kernel {
    /// A generated loop: kernel `index` of the JIT module; its outermost dimension has
    /// `outer` iterations of `per_outer` units of work each (elements weighted by what
    /// each costs; for splitting across threads).
    Loop { index: usize, outer: usize, per_outer: usize },
    /// The same loop on the host's widest vectors ([`crate::wide`]); `index` is its CLIF
    /// version, which names it in profiles.
    Wide { index: usize, program: Box<crate::wide::Program>, outer: usize, per_outer: usize },
    /// Matrix products through the GEMM crate.
    MatMul(MatMul),
    /// Matrix products by a constant packed at compile time ([`crate::wide::PackedProduct`]);
    /// made from a [`Kernel::MatMul`] once the constants are known.
    Packed(Box<crate::wide::PackedProduct>),
    /// Matrix products by a constant left operand (filters) packed at compile time
    /// ([`crate::wide::LeftPackedProduct`]), likewise.
    LeftPacked(Box<crate::wide::LeftPackedProduct>),
    /// A transform of a Winograd convolution, over `outer` planes of `per_outer` units
    /// of work each.
    Winograd { kernel: Box<crate::wide::WinogradKernel>, outer: usize, per_outer: usize },
}

impl Kernel {
    /// The wide `program` where there is one, else CLIF's loop `index`.
    pub fn wide_or_loop(index: usize, program: Option<crate::wide::Program>, outer: usize, per_outer: usize) -> Kernel {
        match program {
            Some(program) => Kernel::Wide { index, program: Box::new(program), outer, per_outer },
            None => Kernel::Loop { index, outer, per_outer },
        }
    }
}

/// How a convolution runs, all of them in the NCHW layout (reported by `saturate bench`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ConvAlgorithm {
    /// One filter per channel: a window kernel.
    Depthwise,
    /// A 1×1 kernel, unit strides, no padding: one product by the input itself.
    Pointwise,
    /// Stride 1 over many channels: one product per tap over the shifted, padded input.
    ShiftedTaps,
    /// Any other: im2col, then one product.
    Im2col,
    /// A 3×3 stride-1 convolution by Winograd's F(2×2, 3×3): 16 products.
    Winograd2,
    /// By F(4×4, 3×3): 36 products.
    Winograd4,
}

impl ConvAlgorithm {
    pub fn name(self) -> &'static str {
        match self {
            ConvAlgorithm::Depthwise => "depthwise window",
            ConvAlgorithm::Pointwise => "1x1 product",
            ConvAlgorithm::ShiftedTaps => "shifted taps",
            ConvAlgorithm::Im2col => "im2col + product",
            ConvAlgorithm::Winograd2 => "winograd F(2x2,3x3)",
            ConvAlgorithm::Winograd4 => "winograd F(4x4,3x3)",
        }
    }
}

/// A model input or output: its name, type and location.
#[derive(Debug, Clone)]
pub struct Port {
    pub name: String,
    pub dtype: DType,
    pub shape: Vec<usize>,
    pub loc: Loc,
}

impl Port {
    pub fn bytes(&self) -> usize {
        self.shape.iter().product::<usize>() * self.dtype.byte_size()
    }
}
