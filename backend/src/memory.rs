//! The memory plan: an offset in one arena for every run-time buffer, reusing the space
//! of buffers no later step reads.
//!
//! A buffer is live from the first step that writes it (inputs: from the start) to the
//! last step that reads it (outputs: to the end). Steps are visited in order; before a
//! step's buffers are placed, those whose life ended at an earlier step are freed, so a
//! step never writes over its own operands. Placement is first-fit over the free blocks,
//! every block aligned to 64 bytes (a cache line, and any SIMD width).

use crate::plan::{Buffer, BufferId, Step};

pub const ALIGN: usize = 64;

/// Arena offsets (for constant buffers: unused, 0) and the arena's size.
pub fn plan(
    buffers: &[Buffer],
    steps: &[Step],
    pinned_start: &[BufferId],
    pinned_end: &[BufferId],
) -> (Vec<usize>, usize) {
    let n = buffers.len();
    const NEVER: usize = usize::MAX;
    let mut first = vec![NEVER; n];
    let mut last = vec![0usize; n];
    let runtime: Vec<&Step> = steps.iter().filter(|s| !s.constant).collect();
    for (t, step) in runtime.iter().enumerate() {
        let t = t + 1; // 0 is "before the first step"
        for (loc, &writes) in step.args.iter().zip(&step.writes) {
            let b = loc.buffer.0;
            if writes && first[b] == NEVER {
                first[b] = t;
            }
            last[b] = last[b].max(t);
        }
    }
    for b in pinned_start {
        first[b.0] = 0;
    }
    let end = runtime.len() + 1;
    for b in pinned_end {
        last[b.0] = end;
    }
    let mut order: Vec<usize> = (0..n).filter(|&b| !buffers[b].constant && first[b] != NEVER).collect();
    order.sort_by_key(|&b| (first[b], b));

    let mut offsets = vec![0usize; n];
    let mut free = FreeList::default();
    let mut live: Vec<usize> = Vec::new();
    for &b in &order {
        let t = first[b];
        live.retain(|&o| {
            let done = last[o] < t;
            if done {
                free.release(offsets[o], round_up(buffers[o].bytes));
            }
            !done
        });
        offsets[b] = free.take(round_up(buffers[b].bytes));
        live.push(b);
    }
    (offsets, free.high_water)
}

fn round_up(bytes: usize) -> usize {
    bytes.div_ceil(ALIGN).max(1) * ALIGN
}

/// Free blocks of the arena, sorted by offset, neighbours merged.
#[derive(Default)]
struct FreeList {
    blocks: Vec<(usize, usize)>,
    high_water: usize,
}

impl FreeList {
    fn take(&mut self, size: usize) -> usize {
        if let Some(k) = self.blocks.iter().position(|&(_, len)| len >= size) {
            let (offset, len) = self.blocks[k];
            if len == size {
                self.blocks.remove(k);
            } else {
                self.blocks[k] = (offset + size, len - size);
            }
            return offset;
        }
        // grow the arena, absorbing a free block at its end
        match self.blocks.last() {
            Some(&(offset, len)) if offset + len == self.high_water => {
                self.blocks.pop();
                self.high_water = offset + size;
                offset
            }
            _ => {
                let offset = self.high_water;
                self.high_water += size;
                offset
            }
        }
    }

    fn release(&mut self, offset: usize, size: usize) {
        let k = self.blocks.partition_point(|&(o, _)| o < offset);
        self.blocks.insert(k, (offset, size));
        if k + 1 < self.blocks.len() && self.blocks[k].0 + self.blocks[k].1 == self.blocks[k + 1].0 {
            self.blocks[k].1 += self.blocks[k + 1].1;
            self.blocks.remove(k + 1);
        }
        if k > 0 && self.blocks[k - 1].0 + self.blocks[k - 1].1 == self.blocks[k].0 {
            self.blocks[k - 1].1 += self.blocks[k].1;
            self.blocks.remove(k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Kernel, Loc};

    fn step(reads: &[usize], writes: &[usize]) -> Step {
        let args = reads.iter().chain(writes).map(|&b| Loc { buffer: BufferId(b), offset: 0 }).collect();
        let writes = reads.iter().map(|_| false).chain(writes.iter().map(|_| true)).collect();
        Step { kernel: Kernel::Loop { index: 0, outer: 1, per_outer: 1 }, args, writes, constant: false }
    }

    #[test]
    fn a_chain_reuses_the_buffers_it_no_longer_needs() {
        // x → a → b → c → y, each 1 kB: at most three are live at once
        let buffers = vec![Buffer { bytes: 1024, constant: false }; 5];
        let steps = vec![step(&[0], &[1]), step(&[1], &[2]), step(&[2], &[3]), step(&[3], &[4])];
        let (offsets, size) = plan(&buffers, &steps, &[BufferId(0)], &[BufferId(4)]);
        assert!(size <= 3 * 1024, "{size}");
        // a step's operand and result never share space
        for s in &steps {
            let (r, w) = (s.args[0].buffer.0, s.args[1].buffer.0);
            assert_ne!(offsets[r], offsets[w]);
        }
        // the input stays until the end only if pinned there: here it is freed after step 1
        assert_eq!(offsets[2], offsets[0]);
    }
}
