; Found by `saturate fuzz --seed 31`: a batch_norm of a [1,1] tensor inside a loop that
; broadcasts it to [7,7,7,3] read its per-channel vectors along loop axis 1 instead of
; its own axis 1 (loop axis 3).
(saturate-graph 1)
(input %x0 f32 [7,7,7,3])
(weight %w2 f32 [1] (values 0.6914748))
(weight %w3 f32 [1] (values 1.4048282))
(weight %w4 f32 [1] (values -0.040157653))
(let $3 (erf %x0))
(let $4 (reduce_max %x0 [1,3] 0))
(let $5 (reduce_min $4 [0,1] 1))
(let $6 (batch_norm $5 %w2 %w3 %w4 (fill 0.81640655 [1]) 1e-5))
(let $7 (min $3 $6))
(output "y" $7)
