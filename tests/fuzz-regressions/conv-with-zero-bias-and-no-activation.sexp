; A convolution whose bias is a zero fill and has no activation needs no epilogue;
; the first single-pass epilogue wrote its literal zero over the product instead.
(saturate-graph 1)
(input %x f32 [1,3,16,16])
(output "y" (conv %x (fill 0.5 [4,3,7,7]) (fill 0.0 [4]) [2,2] [3,3,3,3] [1,1] 1))
