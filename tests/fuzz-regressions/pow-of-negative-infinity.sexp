; Found by `saturate fuzz --seed 1`: 1/ceil(x) is −inf where x is in (−1, 0), and the
; JIT's pow gave NaN for a negative infinite base with a fractional exponent (C and
; the interpreter give +inf).
(saturate-graph 1)
(input %x0 f32 [4,1,5])
(input %x1 f32 [1,5])
(let $1 (ceil %x0))
(let $2 (reciprocal $1))
(let $3 (pow $2 %x1))
(let $4 (less $1 %x1))
(output "y" $3)
(output "z" $4)
