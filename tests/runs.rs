//! Runs neither copy nor allocate: `Executable::run_into` reads inputs where the caller
//! holds them and writes outputs into the caller's tensors, with no heap allocation
//! (counted by a global allocator), and the cases that must copy (an output that is an
//! input, a constant, a view, or another output's twin; tensors not in row-major
//! layout) still give the right values.

use saturate_backend::{compile, Options};
use saturate_egraph::{sexp, Tensor};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Counts the allocations made while `COUNTING` is set, on any thread.
struct Counting;
static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Every test here holds it: the counter is process-wide, and `cargo test` runs the
/// tests of one file on parallel threads of one process.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn graph(body: &str) -> saturate_egraph::Graph {
    sexp::parse(&format!("(saturate-graph 1)\n{body}\n"), "t", None).unwrap()
}

fn ramp(shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin() * 3.0).collect();
    Tensor::F32(ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(shape), v).unwrap())
}

/// Elementwise chains, row kernels (softmax, layer norm), a gather, a concat written in
/// place, a transpose: at 1 and 2 threads, the tenth run allocates nothing. (Matrix
/// products are not in it: the GEMM crate allocates its packing buffers on every call,
/// two per product, which only our own packed kernels will end.)
#[test]
fn runs_into_the_callers_tensors_allocate_nothing() {
    let _serial = one_at_a_time();
    let g = graph(concat!(
        "(input %x f32 [64,300])\n",
        "(input %i i64 [5])\n",
        "(let $t (tanh (mul %x (fill 0.5 [1]))))\n",
        "(output \"y\" (softmax (add $t %x) 1))\n",
        "(output \"n\" (layer_norm %x (fill 0.5 [300]) (fill 0.25 [300]) 1 0.00001))\n",
        "(output \"g\" (gather %x %i 0))\n",
        "(output \"c\" (concat 0 (relu %x) (neg %x)))\n",
        "(output \"t\" (transpose (exp $t) [1,0]))",
    ));
    let inputs = [ramp(&[64, 300]), Tensor::i64_vec(vec![0, 63, -1, 7, 7])];
    for threads in [1, 2] {
        let mut exe = compile(&g, &Options::threads(threads)).unwrap();
        let want = saturate_verify::run(&g, &inputs).unwrap();
        let mut outputs = exe.new_outputs();
        for _ in 0..9 {
            exe.run_into(&inputs, &mut outputs).unwrap();
        }
        ALLOCATIONS.store(0, Ordering::Relaxed);
        COUNTING.store(true, Ordering::Relaxed);
        exe.run_into(&inputs, &mut outputs).unwrap();
        COUNTING.store(false, Ordering::Relaxed);
        assert_eq!(ALLOCATIONS.load(Ordering::Relaxed), 0, "allocations in one run at {threads} thread(s)");
        // the counter counts: a run that returns new outputs allocates them
        COUNTING.store(true, Ordering::Relaxed);
        let fresh = exe.run(&inputs).unwrap();
        COUNTING.store(false, Ordering::Relaxed);
        assert!(ALLOCATIONS.load(Ordering::Relaxed) >= fresh.len());
        for (k, (got, want)) in outputs.iter().zip(&want).enumerate() {
            saturate_verify::compare::compare(got, want, 1e-4, 1e-5).unwrap_or_else(|m| panic!("output {k}: {m}"));
        }
    }
}

/// The kernels write the caller's output tensor itself: its memory, not a copy of it.
#[test]
fn outputs_are_written_where_the_caller_holds_them() {
    let _serial = one_at_a_time();
    let g = graph("(input %x f32 [1000])\n(output \"y\" (sigmoid %x))");
    let mut exe = compile(&g, &Options::threads(1)).unwrap();
    let x = ramp(&[1000]);
    let mut outputs = exe.new_outputs();
    let before = outputs[0].as_f32().unwrap().as_ptr();
    exe.run_into(std::slice::from_ref(&x), &mut outputs).unwrap();
    assert_eq!(outputs[0].as_f32().unwrap().as_ptr(), before);
    let want = saturate_verify::run(&g, &[x]).unwrap();
    saturate_verify::compare::compare(&outputs[0], &want[0], 1e-5, 1e-6).unwrap();
}

/// Outputs that cannot be the caller's memory are copied: an input passed through, a
/// weight, a view into a bigger value, two outputs of one value; and inputs and outputs
/// not in row-major layout are copied in and out.
#[test]
fn outputs_that_must_be_copied_still_match() {
    let _serial = one_at_a_time();
    let g = graph(
        "(input %x f32 [4,6])\n\
         (weight %w f32 [3] (values 1.0 2.0 3.0))\n\
         (let $e (exp %x))\n\
         (output \"same\" %x)\n\
         (output \"w\" %w)\n\
         (output \"row\" (slice $e [1,0] [2,6] [1,1]))\n\
         (output \"a\" $e)\n\
         (output \"b\" $e)",
    );
    let mut exe = compile(&g, &Options::threads(2)).unwrap();
    // a transposed view: the input is not in row-major layout
    let x = match ramp(&[6, 4]) {
        Tensor::F32(a) => Tensor::F32(a.reversed_axes()),
        _ => unreachable!(),
    };
    let want = saturate_verify::run(&g, std::slice::from_ref(&x)).unwrap();
    let mut outputs = exe.new_outputs();
    if let Tensor::F32(a) = &mut outputs[4] {
        // an output tensor in column-major layout
        *a = ndarray::ArrayD::zeros(ndarray::ShapeBuilder::f(ndarray::IxDyn(&[4, 6])));
    }
    for _ in 0..2 {
        exe.run_into(std::slice::from_ref(&x), &mut outputs).unwrap();
        for (k, (got, want)) in outputs.iter().zip(&want).enumerate() {
            saturate_verify::compare::compare(got, want, 1e-5, 1e-6).unwrap_or_else(|m| panic!("output {k}: {m}"));
        }
    }
    let wrong = vec![Tensor::filled(&[4, 6], 0.0)];
    let e = exe.run_into(std::slice::from_ref(&x), &mut wrong.clone()).unwrap_err().to_string();
    assert!(e.contains("the outputs must be"), "{e}");
}

/// Outputs computed from constants alone (at compile time, or by a wide loop whose every
/// operand is one value) and products of a constant and an input are right in the
/// caller's tensors. Found by fuzzing (seed 1543633328): the wide loop of
/// `hard_sigmoid(fill)` returned its one value without writing it, so the output, and
/// the product reading it, were 0.
#[test]
fn outputs_written_at_compile_time_are_delivered() {
    let _serial = one_at_a_time();
    let g = graph(concat!(
        "(input %x f32 [9,5])\n",
        "(let $c (hard_sigmoid (fill 0.0 [4,7,9]) 0.01 0.01))\n",
        "(output \"product\" (matmul $c %x))\n",
        "(output \"constant\" (erf (pow (fill 2.0 [3,4]) (fill 0.0 [4]))))\n",
        "(output \"sum\" (add (softplus (fill 0.0 [9,5])) %x))",
    ));
    let x = ramp(&[9, 5]);
    let want = saturate_verify::run(&g, std::slice::from_ref(&x)).unwrap();
    for threads in [1, 2] {
        let mut exe = compile(&g, &Options::threads(threads)).unwrap();
        let mut outputs = exe.new_outputs();
        for _ in 0..2 {
            exe.run_into(std::slice::from_ref(&x), &mut outputs).unwrap();
            for (k, (got, want)) in outputs.iter().zip(&want).enumerate() {
                saturate_verify::compare::compare(got, want, 1e-5, 1e-6).unwrap_or_else(|m| panic!("output {k}: {m}"));
            }
        }
    }
}
