//! Running a compiled program: the arena, the constant buffers, and the steps in order.
//!
//! Loops split their outermost dimension, and matrix products their batch, rows or
//! columns, across the [`Team`] when they are big enough to pay for it.

use crate::error::BackendError;
use crate::jit::Code;
use crate::memory::ALIGN;
use crate::plan::{Buffer, Kernel, Loc, Port, Step};
use crate::team::Team;
use saturate_egraph::Tensor;

/// Loops with less work than this (elements weighted by `work_per_element`: 128 K
/// elements of a copy or an add, 16 K of an exp) run on one thread. A split costs about
/// a microsecond with the team spinning, but its chunks also land on the core whose
/// caches do not hold the data the last step wrote: splitting copies and adds of 32–128
/// K elements made a small DenseNet export 20 % slower at two threads than at one.
const PARALLEL_WORK: usize = 1 << 17;

/// Chunks a split loop has per thread: enough that a worker that starts late, or a
/// core that is slower, leaves the others little to wait for.
const CHUNKS_PER_THREAD: usize = 4;

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

    pub fn ptr_const(&self) -> *const u8 {
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

impl Clone for AlignedBuf {
    /// A buffer of the same size holding the same bytes.
    fn clone(&self) -> Self {
        let mut copy = AlignedBuf::zeroed(self.bytes());
        // SAFETY: both allocations are `bytes()` long and distinct
        unsafe { std::ptr::copy_nonoverlapping(self.ptr, copy.ptr(), self.bytes()) };
        copy
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

/// Returns the whole pages inside `[ptr, ptr + bytes)` to the system; reading them
/// afterwards gives zeros, so only memory nothing reads again may be released.
#[cfg(target_os = "linux")]
fn release_pages(ptr: *mut u8, bytes: usize) {
    const PAGE: usize = 4096;
    let start = (ptr as usize).next_multiple_of(PAGE);
    let end = (ptr as usize + bytes) / PAGE * PAGE;
    if end > start {
        // SAFETY: the range lies inside one allocation of ours that nothing reads again;
        // for private anonymous memory the advice only drops the pages' contents
        unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
    }
}

#[cfg(not(target_os = "linux"))]
fn release_pages(_ptr: *mut u8, _bytes: usize) {}

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
    /// The threads that split loops and products.
    pub(crate) team: Team,
    pub(crate) threads: usize,
    /// Per run-time buffer, whether it is a caller's input or output (see [`External`]).
    pub(crate) external: Vec<Option<External>>,
    /// Every buffer's address for the run in progress.
    pub(crate) bases: Vec<*mut u8>,
    /// Every step's argument addresses, one after another (`arg_start[k]..` for step k).
    pub(crate) args: Vec<*mut u8>,
    pub(crate) arg_start: Vec<usize>,
    /// How each run-time convolution runs, in graph order.
    pub(crate) convolutions: Vec<crate::plan::ConvAlgorithm>,
}

/// A buffer that is the caller's memory during a run instead of a part of the arena.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum External {
    /// Input `k`: no step writes it, so the kernels read the caller's tensor in place.
    Input(usize),
    /// Output `k`: it holds exactly that output, so the kernels write the caller's
    /// tensor directly.
    Output(usize),
}

/// Which run-time buffers can be the caller's: an input's buffer that no step writes,
/// and an output's buffer that holds that output alone (not a view into a bigger
/// buffer, not an input, not a constant, not shared by two outputs) and that only
/// run-time steps write (a step whose operands are all constant, such as a constant
/// output's fill, runs once at compile time, into the arena).
pub(crate) fn external_buffers(
    buffers: &[Buffer],
    steps: &[Step],
    inputs: &[Port],
    outputs: &[Port],
) -> Vec<Option<External>> {
    let mut external = vec![None; buffers.len()];
    let written_by = |constant: bool| -> std::collections::HashSet<usize> {
        steps
            .iter()
            .filter(|s| s.constant == constant)
            .flat_map(|s| s.args.iter().zip(&s.writes).filter(|(_, &w)| w).map(|(l, _)| l.buffer.0))
            .collect()
    };
    let (at_compile_time, at_run_time) = (written_by(true), written_by(false));
    let written: std::collections::HashSet<usize> = at_compile_time.union(&at_run_time).copied().collect();
    for (k, p) in inputs.iter().enumerate() {
        let b = p.loc.buffer.0;
        if p.loc.offset == 0 && !written.contains(&b) && !buffers[b].constant {
            external[b] = Some(External::Input(k));
        }
    }
    for (k, p) in outputs.iter().enumerate() {
        let b = p.loc.buffer.0;
        let alone =
            p.loc.offset == 0 && buffers[b].bytes == p.bytes() && !buffers[b].constant && !at_compile_time.contains(&b);
        let shared = outputs.iter().filter(|q| q.loc.buffer.0 == b).count() > 1;
        if alone && !shared && external[b].is_none() {
            external[b] = Some(External::Output(k));
        }
    }
    external
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

    /// How many of the run-time convolutions run by each algorithm (all in NCHW),
    /// most used first.
    pub fn convolution_algorithms(&self) -> Vec<(&'static str, usize)> {
        let mut counts: std::collections::BTreeMap<crate::plan::ConvAlgorithm, usize> = Default::default();
        for &a in &self.convolutions {
            *counts.entry(a).or_default() += 1;
        }
        let mut counts: Vec<(&'static str, usize)> = counts.into_iter().map(|(a, n)| (a.name(), n)).collect();
        counts.sort_by_key(|c| std::cmp::Reverse(c.1));
        counts
    }

    /// Run-time matrix product calls: (on a packed copy of their weights, through the
    /// GEMM crate).
    pub fn product_kernels(&self) -> (usize, usize) {
        let run_time = self.steps.iter().filter(|s| !s.constant);
        run_time.fold((0, 0), |(p, g), s| match s.kernel {
            Kernel::Packed(_) | Kernel::LeftPacked(_) => (p + 1, g),
            Kernel::MatMul(_) => (p, g + 1),
            _ => (p, g),
        })
    }

    /// Number of kernel calls per run.
    pub fn steps(&self) -> usize {
        self.steps.iter().filter(|s| !s.constant).count()
    }

    /// Runs the program on `inputs` (in the order of [`inputs`](Self::inputs)) and
    /// returns freshly allocated outputs; [`run_into`](Self::run_into) reuses them.
    pub fn run(&mut self, inputs: &[Tensor]) -> Result<Vec<Tensor>, BackendError> {
        let mut outputs = self.new_outputs();
        self.run_into(inputs, &mut outputs)?;
        Ok(outputs)
    }

    /// Zeroed tensors of the outputs' types and shapes, for [`run_into`](Self::run_into).
    pub fn new_outputs(&self) -> Vec<Tensor> {
        self.outputs.iter().map(|p| Tensor::full(p.dtype, &p.shape, 0.0)).collect()
    }

    /// Runs the program on `inputs`, writing its results into `outputs` (tensors of the
    /// outputs' types and shapes, as [`new_outputs`](Self::new_outputs) makes them).
    ///
    /// Nothing is copied or allocated: the kernels read each input where the caller
    /// holds it and write each output into the caller's tensor. (The exceptions copy:
    /// an input or output not in row-major layout, an output that is an input, a
    /// constant, a view into a bigger buffer, or another output's twin.)
    pub fn run_into(&mut self, inputs: &[Tensor], outputs: &mut [Tensor]) -> Result<(), BackendError> {
        self.check_inputs(inputs)?;
        self.check_outputs(outputs)?;
        let arena = self.arena.ptr();
        for b in 0..self.buffers.len() {
            self.bases[b] = self.own_base(arena, b);
            match self.external[b] {
                Some(External::Input(k)) if standard_layout(&inputs[k]) => self.bases[b] = data_ptr(&inputs[k]),
                Some(External::Output(k)) if standard_layout(&outputs[k]) => {
                    self.bases[b] = data_ptr_mut(&mut outputs[k])
                }
                _ => {}
            }
        }
        for (port, tensor) in self.inputs.iter().zip(inputs) {
            let dst = self.pointer(port.loc);
            if dst != data_ptr(tensor) {
                // SAFETY: check_inputs made the tensor's type and shape the port's, and the
                // port's buffer holds exactly that many elements
                unsafe { write_tensor(tensor, dst) };
            }
        }
        self.bind_args();
        for k in 0..self.steps.len() {
            if !self.steps[k].constant {
                self.execute(k);
            }
        }
        for (port, tensor) in self.outputs.iter().zip(outputs.iter_mut()) {
            let src = self.pointer(port.loc);
            if src != data_ptr(tensor) {
                // SAFETY: the port's buffer holds the output, of the tensor's type and shape
                unsafe { read_tensor(src, tensor) };
            }
        }
        Ok(())
    }

    /// Fills `args` with every step's argument addresses from `bases`.
    fn bind_args(&mut self) {
        for (k, step) in self.steps.iter().enumerate() {
            for (j, loc) in step.args.iter().enumerate() {
                self.args[self.arg_start[k] + j] = self.bases[loc.buffer.0].wrapping_add(loc.offset);
            }
        }
    }

    /// Runs the program `runs` times and returns, per kind of kernel (the op a loop was
    /// generated for, or `matmul`), the total seconds and number of calls, slowest first.
    ///
    /// The steps run on the arena's copies of the inputs, one by one; the outputs of
    /// the last of those runs must be the ones an ordinary run computes, bit for bit,
    /// or the times would be of other work (an error says so).
    pub fn profile(&mut self, inputs: &[Tensor], runs: usize) -> Result<Vec<(String, f64, usize)>, BackendError> {
        let want = self.run(inputs)?;
        self.bind_arena();
        let mut totals: std::collections::BTreeMap<String, (f64, usize)> = Default::default();
        for _ in 0..runs {
            self.write_inputs_to_arena(inputs);
            for k in 0..self.steps.len() {
                if self.steps[k].constant {
                    continue;
                }
                let label = match &self.steps[k].kernel {
                    Kernel::Loop { index, .. } => self.code.name(*index).to_string(),
                    Kernel::Wide { index, program, .. } => format!("{} ({:?})", self.code.name(*index), program.isa()),
                    Kernel::MatMul(m) => format!("matmul {}x{}x{}", m.m, m.n, m.k),
                    Kernel::Winograd { kernel, .. } => format!("{} ({:?})", kernel.name(), kernel.isa),
                    Kernel::Packed(p) => {
                        let m = p.product();
                        format!("matmul {}x{}x{} (packed)", m.m, m.n, m.k)
                    }
                    Kernel::LeftPacked(p) => {
                        let m = p.product();
                        format!("matmul {}x{}x{} (packed left)", m.m, m.n, m.k)
                    }
                };
                let start = std::time::Instant::now();
                self.execute(k);
                let entry = totals.entry(label).or_default();
                entry.0 += start.elapsed().as_secs_f64() / runs as f64;
                entry.1 += 1;
            }
        }
        if runs > 0 {
            self.check_arena_outputs(&want)?;
        }
        let mut rows: Vec<(String, f64, usize)> = totals.into_iter().map(|(k, (t, n))| (k, t, n / runs)).collect();
        rows.sort_by(|a, b| b.1.total_cmp(&a.1));
        Ok(rows)
    }

    /// The GFLOP/s of the model's matrix products (convolutions included) as they run in
    /// it: their FLOPs over the time spent in them, over `runs` runs.
    pub fn gemm_gflops(&mut self, inputs: &[Tensor], runs: usize) -> Result<f64, BackendError> {
        self.run(inputs)?;
        self.bind_arena();
        let (mut seconds, mut flops) = (0.0, 0.0);
        for _ in 0..runs {
            self.write_inputs_to_arena(inputs);
            for k in 0..self.steps.len() {
                let m = match &self.steps[k].kernel {
                    Kernel::MatMul(m) => m,
                    Kernel::Packed(p) => p.product(),
                    Kernel::LeftPacked(p) => p.product(),
                    _ => continue,
                };
                if self.steps[k].constant {
                    continue;
                }
                flops += 2.0 * (m.m * m.n * m.k * m.batch.len()) as f64;
                let start = std::time::Instant::now();
                self.execute(k);
                seconds += start.elapsed().as_secs_f64();
            }
        }
        Ok(if seconds > 0.0 { flops / seconds / 1e9 } else { 0.0 })
    }

    /// Runs the constant steps once, at compile time.
    pub(crate) fn prepare_constants(&mut self) {
        self.bind_arena();
        for k in 0..self.steps.len() {
            if self.steps[k].constant {
                self.execute(k);
            }
        }
    }

    /// Copies `inputs` (checked by a run before) into their buffers in the arena, after
    /// [`bind_arena`](Self::bind_arena), for a run step by step. A run reads its
    /// caller's inputs in place, so the arena's copy of an input holds whatever the
    /// buffers that share its memory later in the run left there; a kernel whose speed
    /// depends on its data (non-finite values sent to a slower path) must not be timed on
    /// that.
    fn write_inputs_to_arena(&mut self, inputs: &[Tensor]) {
        for (port, tensor) in self.inputs.iter().zip(inputs) {
            // SAFETY: check_inputs (in the run before) made the tensor's type and shape
            // the port's, and the port's buffer holds exactly that many elements
            unsafe { write_tensor(tensor, self.pointer(port.loc)) };
        }
    }

    /// Whether the outputs a run step by step left in the arena are `want`, bit for bit.
    fn check_arena_outputs(&self, want: &[Tensor]) -> Result<(), BackendError> {
        let bits = |t: &Tensor| t.to_f64_vec().into_iter().map(f64::to_bits).collect::<Vec<_>>();
        for (port, want) in self.outputs.iter().zip(want) {
            let mut got = Tensor::full(port.dtype, &port.shape, 0.0);
            // SAFETY: the port's buffer holds the output, of the tensor's type and shape
            unsafe { read_tensor(self.pointer(port.loc), &mut got) };
            if bits(&got) != bits(want) {
                return Err(BackendError::Codegen(format!(
                    "profiling computed another `{}` than the run it times (a bug in the runtime)",
                    port.name
                )));
            }
        }
        Ok(())
    }

    /// Points every buffer at its own memory: the arena, or the constants.
    fn bind_arena(&mut self) {
        let arena = self.arena.ptr();
        for b in 0..self.buffers.len() {
            self.bases[b] = self.own_base(arena, b);
        }
        self.bind_args();
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

    fn check_outputs(&self, outputs: &[Tensor]) -> Result<(), BackendError> {
        let fits = outputs.len() == self.outputs.len()
            && self.outputs.iter().zip(outputs).all(|(p, t)| t.dtype() == p.dtype && t.shape() == p.shape.as_slice());
        if fits {
            return Ok(());
        }
        let want: Vec<String> =
            self.outputs.iter().map(|p| format!("{}: {:?}{:?}", p.name, p.dtype, p.shape)).collect();
        let got: Vec<String> = outputs.iter().map(|t| format!("{:?}{:?}", t.dtype(), t.shape())).collect();
        Err(BackendError::Input(format!("the outputs must be [{}], got [{}]", want.join(", "), got.join(", "))))
    }

    /// Buffer `b`'s own memory: in the arena, or among the constants.
    fn own_base(&self, arena: *mut u8, b: usize) -> *mut u8 {
        if self.buffers[b].constant {
            self.constant_ptrs[b]
        } else {
            arena.wrapping_add(self.offsets[b])
        }
    }

    /// Runs `body` over `[0, outer)`, in chunks across the team when the loop is big
    /// enough to pay for it.
    fn split(&self, outer: usize, per_outer: usize, args: Args, body: impl Fn(*const *mut u8, usize, usize) + Sync) {
        if self.threads > 1 && outer * per_outer >= PARALLEL_WORK && outer > 1 {
            let chunks = (self.team.threads() * CHUNKS_PER_THREAD).min(outer).min(crate::team::MAX_CHUNKS);
            self.team.run(chunks, &|c| body(args.get(), outer * c / chunks, outer * (c + 1) / chunks));
        } else {
            body(args.get(), 0, outer);
        }
    }

    /// Where `loc` is in the run being bound.
    fn pointer(&self, loc: Loc) -> *mut u8 {
        self.bases[loc.buffer.0].wrapping_add(loc.offset)
    }

    fn execute(&self, k: usize) {
        let step = &self.steps[k];
        let ptrs = &self.args[self.arg_start[k]..self.arg_start[k] + step.args.len()];
        match &step.kernel {
            Kernel::Loop { index, outer, per_outer } => {
                let f = self.code.kernel(*index);
                // SAFETY: the kernel reads and writes only its buffers, and chunks of the
                // outer dimension write disjoint elements
                self.split(*outer, *per_outer, Args(ptrs.as_ptr()), |args, begin, end| unsafe {
                    f(args, begin as u64, end as u64)
                });
            }
            Kernel::Wide { program, outer, per_outer, .. } => {
                // SAFETY: as for loops; the program was built for this host's vectors
                self.split(*outer, *per_outer, Args(ptrs.as_ptr()), |args, begin, end| unsafe {
                    program.run(args, begin, end)
                });
            }
            Kernel::Winograd { kernel, outer, per_outer } => {
                // SAFETY: lowering sized the transform's buffers for its spec, and
                // chunks of planes write disjoint planes (and scratch)
                self.split(*outer, *per_outer, Args(ptrs.as_ptr()), |args, begin, end| unsafe {
                    kernel.run(args, begin, end)
                });
            }
            Kernel::MatMul(product) => {
                let operands = Args(ptrs.as_ptr());
                let constant = |j: usize| self.buffers[step.args[j].buffer.0].constant;
                let pieces = product.pieces(self.threads, [constant(0), constant(1)]);
                let run = |piece: usize| {
                    let p = operands.get();
                    // SAFETY: lowering sized every buffer for the products' offsets and
                    // strides, and the pieces write disjoint elements
                    unsafe {
                        product.run_piece(
                            *p as *const f32,
                            *p.add(1) as *const f32,
                            *p.add(2) as *mut f32,
                            pieces,
                            piece,
                        )
                    }
                };
                self.team.run(pieces.count, &run);
            }
            Kernel::Packed(product) => {
                let operands = Args(ptrs.as_ptr());
                let pieces = product.pieces(self.threads);
                let run = |piece: usize| {
                    let p = operands.get();
                    // SAFETY: as for products; the program was packed for this host's vectors
                    unsafe { product.run_piece(*p as *const f32, *p.add(2) as *mut f32, pieces, piece) }
                };
                self.team.run(pieces, &run);
            }
            Kernel::LeftPacked(product) => {
                let operands = Args(ptrs.as_ptr());
                let pieces = product.pieces(self.threads);
                let run = |piece: usize| {
                    let p = operands.get();
                    // SAFETY: as for products; the program was packed for this host's vectors
                    unsafe { product.run_piece(*p.add(1) as *const f32, *p.add(2) as *mut f32, pieces, piece) }
                };
                self.team.run(pieces, &run);
            }
        }
    }

    /// Packs the constant operands of the products the wide kernels run, for `isa`, once
    /// the constant steps have run: right ones of products with few rows
    /// ([`crate::wide::PackedProduct`]), left ones of short products of filters
    /// ([`crate::wide::LeftPackedProduct`]).
    pub(crate) fn pack_weights(&mut self, isa: crate::wide::Isa) {
        for k in 0..self.steps.len() {
            let step = &self.steps[k];
            let Kernel::MatMul(product) = &step.kernel else { continue };
            let constant = |j: usize| self.buffers[step.args[j].buffer.0].constant;
            if step.constant {
                continue;
            }
            let (a, b) = (self.pointer(step.args[0]) as *const f32, self.pointer(step.args[1]) as *const f32);
            // SAFETY: lowering sized the constant buffers for the product's offsets and
            // strides, and the constant steps have filled them
            let kernel = unsafe {
                if constant(1) {
                    crate::wide::PackedProduct::pack(product, b, isa).map(|p| Kernel::Packed(Box::new(p)))
                } else if constant(0) {
                    crate::wide::LeftPackedProduct::pack(product, a, isa).map(|p| Kernel::LeftPacked(Box::new(p)))
                } else {
                    None
                }
            };
            if let Some(kernel) = kernel {
                self.steps[k].kernel = kernel;
            }
        }
        self.release_unread_constants();
    }

    /// Gives the memory of constant buffers that no run-time step reads back to the
    /// system: the weights of packed products (GPT-2 would otherwise hold its 340 MB of
    /// weights twice), and whatever only the compile-time steps read.
    fn release_unread_constants(&mut self) {
        let mut read = vec![false; self.buffers.len()];
        for step in self.steps.iter().filter(|s| !s.constant) {
            let packed = match step.kernel {
                Kernel::Packed(_) => Some(1),
                Kernel::LeftPacked(_) => Some(0),
                _ => None,
            };
            for (j, loc) in step.args.iter().enumerate() {
                read[loc.buffer.0] |= packed != Some(j);
            }
        }
        for port in self.inputs.iter().chain(&self.outputs) {
            read[port.loc.buffer.0] = true;
        }
        for (b, buffer) in self.buffers.iter().enumerate() {
            if buffer.constant && !read[b] {
                release_pages(self.constant_ptrs[b], buffer.bytes);
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
    saturate_egraph::with_tensor!(tensor, a => copy(a, dst.cast()))
}

/// Copies `tensor`'s elements from `src`, in row-major order.
///
/// # Safety
/// `src` must hold as many valid elements of the tensor's type as the tensor has.
unsafe fn read_tensor(src: *const u8, tensor: &mut Tensor) {
    unsafe fn copy<T: Copy>(src: *const T, a: &mut ndarray::ArrayD<T>) {
        match a.as_slice_mut() {
            Some(s) => std::ptr::copy_nonoverlapping(src, s.as_mut_ptr(), s.len()),
            None => a.iter_mut().enumerate().for_each(|(k, v)| *v = src.add(k).read()),
        }
    }
    saturate_egraph::with_tensor!(tensor, a => copy(src.cast(), a))
}

/// Whether the tensor's elements lie in row-major order, one after another.
fn standard_layout(t: &Tensor) -> bool {
    saturate_egraph::with_tensor!(t, a => a.is_standard_layout())
}

/// The address of the tensor's first element.
fn data_ptr(t: &Tensor) -> *mut u8 {
    saturate_egraph::with_tensor!(t, a => a.as_ptr() as *mut u8)
}

fn data_ptr_mut(t: &mut Tensor) -> *mut u8 {
    saturate_egraph::with_tensor!(t, a => a.as_mut_ptr().cast())
}
