;; Column sums of a row-major float32 matrix [rows, cols] on the memory of tfjs's wasm
;; backend (imported): out[j] = Σ_i in[i·cols + j], accumulated in float64 in row order
;; (the cpu backend's order and precision, so the results are its results) and rounded
;; to float32 once. `scratch` holds cols float64 accumulators. Pointers are byte offsets.
;;
;; Compiled by scripts/gen-wasm.mjs into column-sum-wasm.gen.ts; edit this file, not that one.
(module
  (import "env" "memory" (memory 0))
  (func (export "columnSum")
    (param $in i32) (param $out i32) (param $scratch i32) (param $rows i32) (param $cols i32)
    (local $i i32) (local $p i32) (local $acc i32) (local $accEnd i32)
    (local.set $accEnd (i32.add (local.get $scratch) (i32.shl (local.get $cols) (i32.const 3))))
    (memory.fill (local.get $scratch) (i32.const 0) (i32.shl (local.get $cols) (i32.const 3)))
    (local.set $p (local.get $in))
    (local.set $i (i32.const 0))
    (block $rowsDone (loop $rowsLoop
      (br_if $rowsDone (i32.ge_u (local.get $i) (local.get $rows)))
      (local.set $acc (local.get $scratch))
      (block $colsDone (loop $colsLoop
        (br_if $colsDone (i32.ge_u (local.get $acc) (local.get $accEnd)))
        (f64.store (local.get $acc)
          (f64.add (f64.load (local.get $acc)) (f64.promote_f32 (f32.load (local.get $p)))))
        (local.set $acc (i32.add (local.get $acc) (i32.const 8)))
        (local.set $p (i32.add (local.get $p) (i32.const 4)))
        (br $colsLoop)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $rowsLoop)))
    (local.set $acc (local.get $scratch))
    (local.set $p (local.get $out))
    (block $outDone (loop $outLoop
      (br_if $outDone (i32.ge_u (local.get $acc) (local.get $accEnd)))
      (f32.store (local.get $p) (f32.demote_f64 (f64.load (local.get $acc))))
      (local.set $acc (i32.add (local.get $acc) (i32.const 8)))
      (local.set $p (i32.add (local.get $p) (i32.const 4)))
      (br $outLoop)))))
