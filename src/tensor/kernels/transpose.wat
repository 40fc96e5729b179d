;; Batched transpose of 32-bit elements on the memory of tfjs's wasm backend (imported):
;; out[b, c, r] = in[b, r, c] for in [batch, rows, cols]. Whole 4×4 blocks move through
;; SIMD shuffles, the ragged right and bottom edges one element at a time. Elements are
;; copied as bits (no float arithmetic). Pointers are byte offsets; in and out must not
;; overlap.
;;
;; Compiled by scripts/gen-wasm.mjs into transpose-wasm.gen.ts; edit this file, not that one.
(module
  (import "env" "memory" (memory 0))

  ;; out[c·rows + r] = in[r·cols + c] for r in [r0, r1), c in [c0, c1) of one matrix
  (func $scalar (param $in i32) (param $out i32) (param $rows i32) (param $cols i32)
    (param $r0 i32) (param $r1 i32) (param $c0 i32) (param $c1 i32)
    (local $r i32) (local $c i32)
    (local.set $r (local.get $r0))
    (block $rDone (loop $rLoop
      (br_if $rDone (i32.ge_u (local.get $r) (local.get $r1)))
      (local.set $c (local.get $c0))
      (block $cDone (loop $cLoop
        (br_if $cDone (i32.ge_u (local.get $c) (local.get $c1)))
        (i32.store
          (i32.add (local.get $out) (i32.shl (i32.add (i32.mul (local.get $c) (local.get $rows)) (local.get $r)) (i32.const 2)))
          (i32.load
            (i32.add (local.get $in) (i32.shl (i32.add (i32.mul (local.get $r) (local.get $cols)) (local.get $c)) (i32.const 2)))))
        (local.set $c (i32.add (local.get $c) (i32.const 1)))
        (br $cLoop)))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br $rLoop))))

  (func (export "transpose")
    (param $in i32) (param $out i32) (param $batch i32) (param $rows i32) (param $cols i32)
    (local $b i32) (local $matrixBytes i32) (local $rows4 i32) (local $cols4 i32)
    (local $r i32) (local $c i32) (local $src i32) (local $dst i32)
    (local $rowBytes i32) (local $colBytes i32)
    (local $va v128) (local $vb v128) (local $vc v128) (local $vd v128)
    (local $t0 v128) (local $t1 v128) (local $t2 v128) (local $t3 v128)
    (local.set $matrixBytes (i32.shl (i32.mul (local.get $rows) (local.get $cols)) (i32.const 2)))
    (local.set $rows4 (i32.and (local.get $rows) (i32.const -4)))
    (local.set $cols4 (i32.and (local.get $cols) (i32.const -4)))
    ;; bytes between rows of in, and between rows of out
    (local.set $rowBytes (i32.shl (local.get $cols) (i32.const 2)))
    (local.set $colBytes (i32.shl (local.get $rows) (i32.const 2)))
    (local.set $b (i32.const 0))
    (block $bDone (loop $bLoop
      (br_if $bDone (i32.ge_u (local.get $b) (local.get $batch)))
      (local.set $r (i32.const 0))
      (block $rDone (loop $rLoop
        (br_if $rDone (i32.ge_u (local.get $r) (local.get $rows4)))
        (local.set $c (i32.const 0))
        (block $cDone (loop $cLoop
          (br_if $cDone (i32.ge_u (local.get $c) (local.get $cols4)))
          ;; in[r..r+4, c..c+4]
          (local.set $src
            (i32.add (local.get $in) (i32.shl (i32.add (i32.mul (local.get $r) (local.get $cols)) (local.get $c)) (i32.const 2))))
          (local.set $va (v128.load (local.get $src)))
          (local.set $vb (v128.load (i32.add (local.get $src) (local.get $rowBytes))))
          (local.set $vc (v128.load (i32.add (local.get $src) (i32.shl (local.get $rowBytes) (i32.const 1)))))
          (local.set $vd (v128.load (i32.add (local.get $src) (i32.mul (local.get $rowBytes) (i32.const 3)))))
          ;; t0 = a0 b0 a1 b1, t1 = a2 b2 a3 b3, t2 = c0 d0 c1 d1, t3 = c2 d2 c3 d3
          (local.set $t0 (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $va) (local.get $vb)))
          (local.set $t1 (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $va) (local.get $vb)))
          (local.set $t2 (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $vc) (local.get $vd)))
          (local.set $t3 (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $vc) (local.get $vd)))
          ;; out[c..c+4, r..r+4]
          (local.set $dst
            (i32.add (local.get $out) (i32.shl (i32.add (i32.mul (local.get $c) (local.get $rows)) (local.get $r)) (i32.const 2))))
          (v128.store (local.get $dst)
            (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $t0) (local.get $t2)))
          (v128.store (i32.add (local.get $dst) (local.get $colBytes))
            (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $t0) (local.get $t2)))
          (v128.store (i32.add (local.get $dst) (i32.shl (local.get $colBytes) (i32.const 1)))
            (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $t1) (local.get $t3)))
          (v128.store (i32.add (local.get $dst) (i32.mul (local.get $colBytes) (i32.const 3)))
            (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $t1) (local.get $t3)))
          (local.set $c (i32.add (local.get $c) (i32.const 4)))
          (br $cLoop)))
        ;; the right edge of these four rows
        (call $scalar (local.get $in) (local.get $out) (local.get $rows) (local.get $cols)
          (local.get $r) (i32.add (local.get $r) (i32.const 4)) (local.get $cols4) (local.get $cols))
        (local.set $r (i32.add (local.get $r) (i32.const 4)))
        (br $rLoop)))
      ;; the bottom edge
      (call $scalar (local.get $in) (local.get $out) (local.get $rows) (local.get $cols)
        (local.get $rows4) (local.get $rows) (i32.const 0) (local.get $cols))
      (local.set $in (i32.add (local.get $in) (local.get $matrixBytes)))
      (local.set $out (i32.add (local.get $out) (local.get $matrixBytes)))
      (local.set $b (i32.add (local.get $b) (i32.const 1)))
      (br $bLoop))))
)
