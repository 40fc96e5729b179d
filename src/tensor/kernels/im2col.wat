;; Transposed im2col of an NHWC float32 tensor, on the memory of tfjs's wasm backend
;; (imported): out[(a·KW + b)·C + c][(n·OH + y)·OW + x] = in[n, y·SH + a − PT, x·SW + b − PL, c],
;; and 0 where that position falls in the padding. Each row is one filter tap and input
;; channel, each column one output position, so `out · dy` (dy as [N·OH·OW, Co]) is the
;; filter gradient of a convolution, in HWIO order.
;;
;; Values are copied as 32-bit words (no float arithmetic). Pointers are byte offsets.
;;
;; Compiled by scripts/gen-wasm.mjs into im2col-wasm.gen.ts; edit this file, not that one.
(module
  (import "env" "memory" (memory 0))
  (func (export "im2colT")
    (param $in i32) (param $out i32)
    (param $n i32) (param $h i32) (param $w i32) (param $c i32)
    (param $oh i32) (param $ow i32) (param $kh i32) (param $kw i32)
    (param $sh i32) (param $sw i32) (param $pt i32) (param $pl i32)
    (local $a i32) (local $b i32) (local $ch i32) (local $bn i32) (local $y i32) (local $x i32)
    (local $ih i32) (local $iw i32) (local $row i32) (local $o i32) (local $pixel i32)
    (local.set $o (local.get $out))
    ;; bytes between horizontally adjacent pixels of the input
    (local.set $pixel (i32.shl (local.get $c) (i32.const 2)))
    (local.set $a (i32.const 0))
    (loop $taps_h
      (local.set $b (i32.const 0))
      (loop $taps_w
        (local.set $ch (i32.const 0))
        (loop $channels
          (local.set $bn (i32.const 0))
          (loop $images
            (local.set $y (i32.const 0))
            (loop $rows
              (local.set $ih
                (i32.sub (i32.add (i32.mul (local.get $y) (local.get $sh)) (local.get $a)) (local.get $pt)))
              (if (i32.or (i32.lt_s (local.get $ih) (i32.const 0)) (i32.ge_s (local.get $ih) (local.get $h)))
                (then
                  (memory.fill (local.get $o) (i32.const 0) (i32.shl (local.get $ow) (i32.const 2)))
                  (local.set $o (i32.add (local.get $o) (i32.shl (local.get $ow) (i32.const 2)))))
                (else
                  ;; address of in[bn, ih, 0, ch]
                  (local.set $row
                    (i32.add (local.get $in)
                      (i32.shl
                        (i32.add
                          (i32.mul (i32.add (i32.mul (local.get $bn) (local.get $h)) (local.get $ih))
                                   (i32.mul (local.get $w) (local.get $c)))
                          (local.get $ch))
                        (i32.const 2))))
                  (local.set $x (i32.const 0))
                  (loop $cols
                    (local.set $iw
                      (i32.sub (i32.add (i32.mul (local.get $x) (local.get $sw)) (local.get $b)) (local.get $pl)))
                    (if (i32.and (i32.ge_s (local.get $iw) (i32.const 0)) (i32.lt_s (local.get $iw) (local.get $w)))
                      (then
                        (i32.store (local.get $o)
                          (i32.load (i32.add (local.get $row) (i32.mul (local.get $iw) (local.get $pixel))))))
                      (else (i32.store (local.get $o) (i32.const 0))))
                    (local.set $o (i32.add (local.get $o) (i32.const 4)))
                    (local.set $x (i32.add (local.get $x) (i32.const 1)))
                    (br_if $cols (i32.lt_s (local.get $x) (local.get $ow))))))
              (local.set $y (i32.add (local.get $y) (i32.const 1)))
              (br_if $rows (i32.lt_s (local.get $y) (local.get $oh))))
            (local.set $bn (i32.add (local.get $bn) (i32.const 1)))
            (br_if $images (i32.lt_s (local.get $bn) (local.get $n))))
          (local.set $ch (i32.add (local.get $ch) (i32.const 1)))
          (br_if $channels (i32.lt_s (local.get $ch) (local.get $c))))
        (local.set $b (i32.add (local.get $b) (i32.const 1)))
        (br_if $taps_w (i32.lt_s (local.get $b) (local.get $kw))))
      (local.set $a (i32.add (local.get $a) (i32.const 1)))
      (br_if $taps_h (i32.lt_s (local.get $a) (local.get $kh))))))
