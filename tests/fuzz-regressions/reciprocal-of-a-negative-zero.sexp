; Found by `saturate fuzz --seed 1`: (x − x)·x is −0 where x < 0, so its reciprocal is
; −inf; rewriting x − x to 0 and 0·x to 0 gives +0 and +inf. Rewrite rules are laws
; of real arithmetic, so the optimizer's properties apply only where every value is
; finite; this case checks the compiler's property and that the fuzzer knows the rest.
(saturate-graph 1)
(input %x0 f32 [4])
(input %x1 f32 [4])
(let $1 (sub %x1 %x1))
(let $2 (mul $1 %x1))
(let $3 (reciprocal $2))
(let $4 (equal %x1 $2))
(output "y" $3)
(output "z" $4)
