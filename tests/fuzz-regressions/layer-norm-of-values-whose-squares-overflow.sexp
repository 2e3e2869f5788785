; Found by `saturate fuzz --seed 2026336` (case 1350): exp(1/x) reaches 1e20 and more
; where x is near zero, and the squares of such a row overflow f32; the JIT's layer
; norm then divided by an infinite variance and wrote the bias, where the
; interpreter's f64 statistics give the normalized row. Rows whose f32 statistics are
; not finite are now computed again in f64.
(saturate-graph 1)
(input %x0 f32 [5,3,1,4])
(input %x1 f32 [])
(weight %w0 f32 [1,4] (values -0.8876445 -0.9354627 -0.38708225 -2.6096108))
(weight %w1 f32 [1,4] (values 0.2058055 -0.23156017 -0.94475865 -0.91605115))
(let $1 (reciprocal %x0))
(let $2 (exp $1))
(let $3 (layer_norm $2 %w0 %w1 2 1e-5))
(output "y" $3)
