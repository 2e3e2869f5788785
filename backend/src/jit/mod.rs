//! The Cranelift side: one JIT module per compiled program, holding every generated
//! kernel, and the code generators.
//!
//! Every generated kernel has the signature `extern "C" fn(args: *const *mut u8, begin:
//! u64, end: u64)`: `args` holds the base addresses of the buffers it reads and writes,
//! and `[begin, end)` is the part of its outermost dimension to compute, so the runtime
//! can split one kernel across threads without regenerating it.

pub mod calls;
pub mod convert;
pub mod gather;
pub mod loops;
pub mod math;
pub mod rows;
pub mod window;

use crate::error::BackendError;
use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{types, AbiParam, InstBuilder, UserFuncName, Value};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{FuncId, Linkage, Module};

/// Memory flags of every load and store the kernels make: buffers are valid for every
/// access lowering plans (no trap), but not necessarily aligned to the access size.
pub(crate) fn flags() -> cranelift_codegen::ir::MemFlagsData {
    cranelift_codegen::ir::MemFlagsData::new().with_notrap()
}

/// Whether the host has fused multiply-add, which Cranelift's `fma` needs on x86 (it
/// detects the same feature when it builds the native ISA).
pub(crate) fn has_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    return std::arch::is_x86_feature_detected!("fma");
    #[cfg(target_arch = "aarch64")]
    return true;
    #[allow(unreachable_code)]
    false
}

/// `max(acc, v)` (or min) of two `f32x4` as x86's native `maxps(v, acc)` (`minps`),
/// written as the compare-and-select Cranelift lowers to it: a NaN already in `acc`
/// stays, a NaN in `v` is lost — callers remember those with [`unordered`]. CLIF's own
/// `fmax`/`fmin` order ±0 and quiet NaNs at nine instructions each.
pub(crate) fn native_max_min(b: &mut FunctionBuilder, max: bool, acc: Value, v: Value) -> Value {
    let take = if max { b.ins().fcmp(FloatCC::LessThan, acc, v) } else { b.ins().fcmp(FloatCC::LessThan, v, acc) };
    let take = b.ins().bitcast(types::F32X4, cranelift_codegen::ir::MemFlagsData::new(), take);
    b.ins().bitselect(take, v, acc)
}

/// All-ones lanes where `v` (`f32x4`) is NaN.
pub(crate) fn unordered(b: &mut FunctionBuilder, v: Value) -> Value {
    b.ins().fcmp(FloatCC::Unordered, v, v)
}

/// `value` with NaN in the lanes `nan` (from [`unordered`], or-ed together) marks.
pub(crate) fn with_nans(b: &mut FunctionBuilder, nan: Value, value: Value) -> Value {
    let nan = b.ins().bitcast(types::F32X4, cranelift_codegen::ir::MemFlagsData::new(), nan);
    let q = b.ins().f32const(f32::NAN);
    let q = b.ins().splat(types::F32X4, q);
    b.ins().bitselect(nan, q, value)
}

/// The CLIF type of one element of `d` (bools are bytes, 0 or 1).
pub(crate) fn scalar_type(d: saturate_egraph::DType) -> cranelift_codegen::ir::Type {
    use saturate_egraph::DType as D;
    match d {
        D::F32 => types::F32,
        D::F64 => types::F64,
        D::I64 => types::I64,
        // f16 travels as its bits; only casts look inside (see `jit::convert`)
        D::Bool | D::I8 | D::U8 => types::I8,
        D::F16 | D::I16 | D::U16 => types::I16,
        D::I32 | D::U32 => types::I32,
    }
}

/// A generated kernel, callable once the module is finalized.
pub type KernelFn = unsafe extern "C" fn(*const *mut u8, u64, u64);

/// Collects kernels, then finalizes them all at once.
pub struct Jit {
    module: JITModule,
    ctx: cranelift_codegen::Context,
    fctx: FunctionBuilderContext,
    defined: Vec<FuncId>,
    names: Vec<String>,
}

/// The finalized code of a module; frees it when dropped.
pub struct Code {
    module: Option<JITModule>,
    kernels: Vec<KernelFn>,
    names: Vec<String>,
}

impl Jit {
    pub fn new() -> Result<Jit, BackendError> {
        let mut flags = settings::builder();
        let set = |f: &mut settings::Builder, k: &str, v: &str| {
            f.set(k, v).map_err(|e| BackendError::Codegen(format!("cranelift setting {k}={v}: {e}")))
        };
        set(&mut flags, "opt_level", "speed")?;
        set(&mut flags, "use_colocated_libcalls", "false")?;
        set(&mut flags, "is_pic", "false")?;
        let isa = cranelift_native::builder()
            .map_err(|e| BackendError::Codegen(format!("this host is not supported by Cranelift: {e}")))?
            .finish(settings::Flags::new(flags))
            .map_err(|e| BackendError::Codegen(e.to_string()))?;
        let builder = JITBuilder::with_isa(isa, cranelift_module::default_libcall_names());
        let module = JITModule::new(builder);
        let ctx = module.make_context();
        Ok(Jit { module, ctx, fctx: FunctionBuilderContext::new(), defined: Vec::new(), names: Vec::new() })
    }

    /// Defines one kernel whose body `build` writes; returns its index in [`Code`].
    pub fn define(
        &mut self,
        name: &str,
        build: impl FnOnce(&mut FunctionBuilder, [cranelift_codegen::ir::Value; 3]),
    ) -> Result<usize, BackendError> {
        let mut sig = self.module.make_signature();
        for _ in 0..3 {
            sig.params.push(AbiParam::new(types::I64));
        }
        let index = self.defined.len();
        let symbol = format!("{name}_{index}");
        let id = self
            .module
            .declare_function(&symbol, Linkage::Local, &sig)
            .map_err(|e| BackendError::Codegen(format!("declaring {symbol}: {e}")))?;
        self.ctx.func.signature = sig;
        self.ctx.func.name = UserFuncName::user(0, id.as_u32());
        {
            let mut b = FunctionBuilder::new(&mut self.ctx.func, &mut self.fctx);
            let entry = b.create_block();
            b.append_block_params_for_function_params(entry);
            b.switch_to_block(entry);
            let p = b.block_params(entry);
            let params = [p[0], p[1], p[2]];
            build(&mut b, params);
            b.seal_all_blocks();
            b.finalize(self.module.target_config());
        }
        let dump = std::env::var_os("SATURATE_DUMP_ASM").is_some();
        self.ctx.set_disasm(dump);
        self.module
            .define_function(id, &mut self.ctx)
            .map_err(|e| BackendError::Codegen(format!("compiling {symbol}: {e:?}\n{}", self.ctx.func.display())))?;
        if let Some(code) = self.ctx.compiled_code().and_then(|c| c.vcode.as_ref()).filter(|_| dump) {
            // for whoever tunes a generator: SATURATE_DUMP_ASM=1 prints each kernel's code
            eprintln!("== {symbol}\n{code}");
        }
        self.module.clear_context(&mut self.ctx);
        self.defined.push(id);
        self.names.push(name.to_string());
        Ok(index)
    }

    pub fn finish(mut self) -> Result<Code, BackendError> {
        self.module.finalize_definitions().map_err(|e| BackendError::Codegen(e.to_string()))?;
        let kernels = self
            .defined
            .iter()
            .map(|&id| {
                let ptr = self.module.get_finalized_function(id);
                // SAFETY: every function was declared with the KernelFn signature (three
                // i64 parameters, no result) in the host's default calling convention
                unsafe { std::mem::transmute::<*const u8, KernelFn>(ptr) }
            })
            .collect();
        Ok(Code { module: Some(self.module), kernels, names: self.names })
    }
}

impl Code {
    pub fn kernel(&self, index: usize) -> KernelFn {
        self.kernels[index]
    }

    /// What kernel `index` computes (the op it was generated for).
    pub fn name(&self, index: usize) -> &str {
        &self.names[index]
    }
}

impl Drop for Code {
    fn drop(&mut self) {
        if let Some(module) = self.module.take() {
            // SAFETY: the kernels are only reachable through this Code, which is going away
            unsafe { module.free_memory() };
        }
    }
}

// SAFETY: the finalized code is immutable and the kernels are plain functions
unsafe impl Send for Code {}
unsafe impl Sync for Code {}

/// `for (i = lo; i + step <= hi; i += step) body(i)`; returns the first `i` not run.
pub fn counted_loop(
    b: &mut FunctionBuilder,
    lo: Value,
    hi: Value,
    step: i64,
    body: impl FnOnce(&mut FunctionBuilder, Value),
) -> Value {
    let var = b.declare_var(types::I64);
    b.def_var(var, lo);
    let (header, body_block, exit) = (b.create_block(), b.create_block(), b.create_block());
    b.ins().jump(header, &[]);
    b.switch_to_block(header);
    let i = b.use_var(var);
    let next = b.ins().iadd_imm_s(i, step);
    let fits = b.ins().icmp(IntCC::SignedLessThanOrEqual, next, hi);
    b.ins().brif(fits, body_block, &[], exit, &[]);
    b.switch_to_block(body_block);
    body(b, i);
    let i = b.use_var(var);
    let next = b.ins().iadd_imm_s(i, step);
    b.def_var(var, next);
    b.ins().jump(header, &[]);
    b.switch_to_block(exit);
    b.use_var(var)
}
