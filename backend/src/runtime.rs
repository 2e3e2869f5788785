//! Running a compiled program: the arena, the constant buffers, and the steps in order.
//!
//! Loops split their outermost dimension across the thread pool when they are big
//! enough to pay for it; the GEMM crate splits its own work.

use crate::error::BackendError;
use crate::jit::Code;
use crate::memory::ALIGN;
use crate::plan::{Buffer, Kernel, Loc, Port, Step};
use rayon::prelude::*;
use saturate_egraph::{DType, Tensor, TensorType};

/// Loops with fewer elements than this run on one thread.
const PARALLEL_ELEMENTS: usize = 1 << 15;

/// Zeroed memory aligned to [`ALIGN`] bytes. Buffers of 2 MiB and more are aligned to
/// 2 MiB and, on Linux, asked for transparent huge pages: a model streams its weights
/// (84 MB for NasRNN) and its arena on every run, and 4 KiB pages would cost a TLB miss
/// every 4 KiB of it.
pub struct AlignedBuf {
    ptr: *mut u8,
    layout: std::alloc::Layout,
}

const HUGE_PAGE: usize = 2 << 20;

impl AlignedBuf {
    pub fn zeroed(bytes: usize) -> AlignedBuf {
        let size = bytes.div_ceil(ALIGN).max(1) * ALIGN;
        let align = if size >= HUGE_PAGE { HUGE_PAGE } else { ALIGN };
        let layout = std::alloc::Layout::from_size_align(size, align).expect("a buffer size fits in memory");
        // SAFETY: the layout has a non-zero size
        let ptr = unsafe { std::alloc::alloc(layout) };
        if ptr.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
        if align == HUGE_PAGE {
            advise_huge_pages(ptr, size);
        }
        // SAFETY: the allocation is `size` bytes; zeroing after the advice lets the
        // first touch of each page fault in a huge one
        unsafe { std::ptr::write_bytes(ptr, 0, size) };
        AlignedBuf { ptr, layout }
    }

    pub fn ptr(&mut self) -> *mut u8 {
        self.ptr
    }

    pub fn bytes(&self) -> usize {
        self.layout.size()
    }

    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: the allocation is `len` initialized bytes, owned by self
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.layout.size()) }
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        // SAFETY: allocated in `zeroed` with this layout
        unsafe { std::alloc::dealloc(self.ptr, self.layout) }
    }
}

#[cfg(target_os = "linux")]
fn advise_huge_pages(ptr: *mut u8, size: usize) {
    // SAFETY: the range is one allocation of ours; the advice is only a hint, and a
    // kernel without transparent huge pages refuses it harmlessly
    unsafe { libc::madvise(ptr.cast(), size, libc::MADV_HUGEPAGE) };
}

#[cfg(not(target_os = "linux"))]
fn advise_huge_pages(_ptr: *mut u8, _size: usize) {}

/// A compiled program, ready to run.
pub struct Executable {
    pub(crate) code: Code,
    pub(crate) steps: Vec<Step>,
    pub(crate) buffers: Vec<Buffer>,
    /// Arena offsets of the run-time buffers.
    pub(crate) offsets: Vec<usize>,
    /// The constant buffers, one after another (kept alive for the pointers below).
    #[allow(dead_code)]
    pub(crate) constants: AlignedBuf,
    pub(crate) constant_ptrs: Vec<*mut u8>,
    pub(crate) arena: AlignedBuf,
    pub(crate) inputs: Vec<Port>,
    pub(crate) outputs: Vec<Port>,
    pub(crate) pool: rayon::ThreadPool,
    pub(crate) threads: usize,
}

// SAFETY: the raw pointers point into buffers the Executable owns
unsafe impl Send for Executable {}

/// Raw pointers handed to kernels on other threads.
#[derive(Clone, Copy)]
struct Args(*const *mut u8);
// SAFETY: kernels on different threads write disjoint parts of their outputs
unsafe impl Send for Args {}
unsafe impl Sync for Args {}

impl Args {
    /// The pointer; a method so closures capture the whole (Send) wrapper.
    fn get(self) -> *const *mut u8 {
        self.0
    }
}

impl Executable {
    /// The model's inputs: names, types, in call order.
    pub fn inputs(&self) -> &[Port] {
        &self.inputs
    }

    pub fn outputs(&self) -> &[Port] {
        &self.outputs
    }

    /// Bytes of the run-time arena (intermediates, inputs and outputs).
    pub fn arena_bytes(&self) -> usize {
        self.arena.bytes()
    }

    /// Number of kernel calls per run.
    pub fn steps(&self) -> usize {
        self.steps.iter().filter(|s| !s.constant).count()
    }

    /// Runs the program on `inputs` (in the order of [`inputs`](Self::inputs)).
    pub fn run(&mut self, inputs: &[Tensor]) -> Result<Vec<Tensor>, BackendError> {
        self.check_inputs(inputs)?;
        let arena = self.arena.ptr();
        for (port, tensor) in self.inputs.iter().zip(inputs) {
            let dst = self.pointer(arena, port.loc);
            // SAFETY: check_inputs made the tensor's type and shape the port's, and the
            // port's buffer holds exactly that many elements
            unsafe { write_tensor(tensor, dst) };
        }
        for k in 0..self.steps.len() {
            if !self.steps[k].constant {
                self.execute(k, arena);
            }
        }
        Ok(self.outputs.iter().map(|port| self.read(arena, port)).collect())
    }

    /// Runs the program `runs` times and returns, per kind of kernel (the op a loop was
    /// generated for, or `matmul`), the total seconds and number of calls, slowest first.
    pub fn profile(&mut self, inputs: &[Tensor], runs: usize) -> Result<Vec<(String, f64, usize)>, BackendError> {
        self.run(inputs)?;
        let arena = self.arena.ptr();
        let mut totals: std::collections::BTreeMap<String, (f64, usize)> = Default::default();
        for _ in 0..runs {
            for k in 0..self.steps.len() {
                if self.steps[k].constant {
                    continue;
                }
                let label = match &self.steps[k].kernel {
                    Kernel::Loop { index, .. } => self.code.name(*index).to_string(),
                    Kernel::MatMul(m) => format!("matmul {}x{}x{}", m.m, m.n, m.k),
                };
                let start = std::time::Instant::now();
                self.execute(k, arena);
                let entry = totals.entry(label).or_default();
                entry.0 += start.elapsed().as_secs_f64() / runs as f64;
                entry.1 += 1;
            }
        }
        let mut rows: Vec<(String, f64, usize)> = totals.into_iter().map(|(k, (t, n))| (k, t, n / runs)).collect();
        rows.sort_by(|a, b| b.1.total_cmp(&a.1));
        Ok(rows)
    }

    /// The GFLOP/s of the model's matrix products (convolutions included) as they run in
    /// it: their FLOPs over the time spent in them, over `runs` runs.
    pub fn gemm_gflops(&mut self, inputs: &[Tensor], runs: usize) -> Result<f64, BackendError> {
        self.run(inputs)?;
        let arena = self.arena.ptr();
        let (mut seconds, mut flops) = (0.0, 0.0);
        for _ in 0..runs {
            for k in 0..self.steps.len() {
                let Kernel::MatMul(m) = &self.steps[k].kernel else { continue };
                if self.steps[k].constant {
                    continue;
                }
                flops += 2.0 * (m.m * m.n * m.k * m.batch.len()) as f64;
                let start = std::time::Instant::now();
                self.execute(k, arena);
                seconds += start.elapsed().as_secs_f64();
            }
        }
        Ok(if seconds > 0.0 { flops / seconds / 1e9 } else { 0.0 })
    }

    /// Runs the constant steps once, at compile time.
    pub(crate) fn prepare_constants(&mut self) {
        let arena = self.arena.ptr();
        for k in 0..self.steps.len() {
            if self.steps[k].constant {
                self.execute(k, arena);
            }
        }
    }

    fn check_inputs(&self, inputs: &[Tensor]) -> Result<(), BackendError> {
        if inputs.len() != self.inputs.len() {
            return Err(BackendError::Input(format!(
                "the model takes {} input(s) ({}), {} given",
                self.inputs.len(),
                self.inputs.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(", "),
                inputs.len()
            )));
        }
        for (port, t) in self.inputs.iter().zip(inputs) {
            if t.dtype() != port.dtype || t.shape() != port.shape.as_slice() {
                return Err(BackendError::Input(format!(
                    "input `{}` must be {:?}{:?}, got {:?}{:?}",
                    port.name,
                    port.dtype,
                    port.shape,
                    t.dtype(),
                    t.shape()
                )));
            }
        }
        Ok(())
    }

    fn pointer(&self, arena: *mut u8, loc: Loc) -> *mut u8 {
        let b = loc.buffer.0;
        let base = if self.buffers[b].constant { self.constant_ptrs[b] } else { arena.wrapping_add(self.offsets[b]) };
        base.wrapping_add(loc.offset)
    }

    fn execute(&self, k: usize, arena: *mut u8) {
        let step = &self.steps[k];
        let ptrs: Vec<*mut u8> = step.args.iter().map(|&loc| self.pointer(arena, loc)).collect();
        match &step.kernel {
            Kernel::Loop { index, outer, per_outer } => {
                let f = self.code.kernel(*index);
                let args = Args(ptrs.as_ptr());
                let total = outer * per_outer;
                if self.threads > 1 && total >= PARALLEL_ELEMENTS && *outer > 1 {
                    let chunks = (self.threads * 4).min(*outer);
                    let outer = *outer;
                    self.pool.install(|| {
                        (0..chunks).into_par_iter().for_each(|c| {
                            let (begin, end) = (outer * c / chunks, outer * (c + 1) / chunks);
                            // SAFETY: the kernel reads and writes only its buffers, and
                            // chunks of the outer dimension write disjoint elements
                            unsafe { f(args.get(), begin as u64, end as u64) };
                        })
                    });
                } else {
                    // SAFETY: as above, on one thread
                    unsafe { f(args.0, 0, *outer as u64) };
                }
            }
            Kernel::MatMul(product) => {
                let operands = Args(ptrs.as_ptr());
                let threads = self.threads;
                self.pool.install(|| {
                    let p = operands.get();
                    // SAFETY: lowering sized every buffer for the products' offsets and strides
                    unsafe { product.run(*p as *const f32, *p.add(1) as *const f32, *p.add(2) as *mut f32, threads) }
                });
            }
        }
    }

    /// A copy of an output out of the arena.
    fn read(&self, arena: *mut u8, port: &Port) -> Tensor {
        let src = self.pointer(arena, port.loc);
        let n: usize = port.shape.iter().product();
        let shape = ndarray::IxDyn(&port.shape);
        // SAFETY: the port's buffer holds n elements of its dtype
        unsafe {
            match port.dtype {
                DType::F32 => {
                    let v = std::slice::from_raw_parts(src as *const f32, n).to_vec();
                    Tensor::F32(ndarray::ArrayD::from_shape_vec(shape, v).expect("length matches the shape"))
                }
                DType::I64 => {
                    let v = std::slice::from_raw_parts(src as *const i64, n).to_vec();
                    Tensor::I64(ndarray::ArrayD::from_shape_vec(shape, v).expect("length matches the shape"))
                }
                other => {
                    let bytes = std::slice::from_raw_parts(src, n * other.byte_size());
                    let ty = TensorType::new(other, port.shape.clone());
                    Tensor::from_le_bytes(&ty, bytes).expect("length matches the shape")
                }
            }
        }
    }
}

/// Copies a tensor's elements, in row-major order, to `dst` (element by element only
/// when the array is not already laid out that way).
///
/// # Safety
/// `dst` must hold as many elements of the tensor's type as the tensor has.
unsafe fn write_tensor(tensor: &Tensor, dst: *mut u8) {
    unsafe fn copy<T: Copy>(a: &ndarray::ArrayD<T>, dst: *mut T) {
        match a.as_slice() {
            Some(s) => std::ptr::copy_nonoverlapping(s.as_ptr(), dst, s.len()),
            None => a.iter().enumerate().for_each(|(k, &v)| dst.add(k).write(v)),
        }
    }
    match tensor {
        Tensor::F32(a) => copy(a, dst.cast()),
        Tensor::I64(a) => copy(a, dst.cast()),
        other => {
            let bytes = other.to_le_bytes();
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), dst, bytes.len())
        }
    }
}
