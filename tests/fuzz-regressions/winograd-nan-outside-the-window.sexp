; A NaN in a Winograd tile's input (sqrt of a negative) outside the convolution
; window of one of the tile's outputs: the interpreter's transforms multiplied their zero
; coefficients by it, 0 · NaN, and made every output of the tile NaN; the backend's
; formulas leave those terms out, as the convolution does. The interpreter now skips them.
; Found by `saturate fuzz --seed 3498379463` (case 9843):
; compiled(original) vs interpreter(original): output 0: 1 of 63 values differ; worst at [0, 0, 0, 6]: got 0.89164376, expected NaN (rtol 0.001, atol 0.00012199445962905884) (inputs: draw 0)
; inputs: draw 0
(saturate-graph 1)
(input %x0 f32 [3,1,3,7])
(input %x1 f32 [3,1,2,6])
(weight %w2 f32 [1,1,3,3] (values 1.0890198 -0.21280167 -0.9034341 0.39035463 -0.49082404 0.56606054 -0.26576662 0.9527551 1.3672246))
(weight %w3 f32 [1] (values 0.23275033))
(let $1 (neg %x0))
(let $2 (sqrt $1))
(let $3 (winograd_weights %w2 2))
(let $4 (winograd_conv $2 $3 %w3 [1,1,1,1] 2 act_gelu_tanh))
(let $5 (equal %x0 %x0))
(output "y" $4)
(output "z" $5)
