; Found by `saturate fuzz --seed 1543633328` (case 3526):
; compiled(optimized) vs interpreter(original): output 0: 756 of 756 values differ; worst at [0, 0, 0, 0]: got 0, expected 0.8427008 (rtol 0.001, atol 0.0001) (inputs: draw 0)
; inputs: draw 0
(saturate-graph 1)
(input %x0 f32 [3,9,7,4])
(input %x1 f32 [3,9,2,4])
(input %x2 f32 [3,9,2,2])
(let $1 (pow %x0 (fill 0.0 [7,4])))
(let $2 (erf $1))
(let $3 (equal %x1 %x1))
(output "y" $2)
(output "z" $3)
