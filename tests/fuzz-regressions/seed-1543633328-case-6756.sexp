; Found by `saturate fuzz --seed 1543633328` (case 6756):
; compiled(optimized) vs interpreter(original): output 0: 567 of 567 values differ; worst at [0, 0, 0]: got 0, expected 0.6931472 (rtol 0.001, atol 0.0001) (inputs: draw 0)
; inputs: draw 0
(saturate-graph 1)
(input %x0 f32 [9,7,9])
(input %x1 f32 [9,2])
(let $1 (sub %x0 %x0))
(let $2 (softplus $1))
(let $3 (elu $2 0.2))
(output "y" $3)
