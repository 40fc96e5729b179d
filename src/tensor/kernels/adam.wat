;; One Adam step of one float32 variable, on the memory of tfjs's wasm backend (imported),
;; four lanes at a time with a scalar tail. Every operation is an IEEE float32 add, mul,
;; div or sqrt in the order of tfjs's Adam, so the result is bit-identical to it:
;;
;;   m' = m*beta1 + g*(1-beta1)          v' = v*beta2 + (g*g)*(1-beta2)
;;   value' = ((m'/c1) / (sqrt(v'/c2) + eps)) * (-lr) + value
;;
;; where c1 = 1 - beta1^t and c2 = 1 - beta2^t are computed by the caller. Pointers are
;; byte offsets into the memory; the seven arrays have n elements each and the outputs
;; must not overlap the inputs.
;;
;; Compiled by scripts/gen-wasm.mjs into adam-wasm.gen.ts; edit this file, not that one.
(module
  (import "env" "memory" (memory 0))
  (func (export "adam")
    (param $value i32) (param $m i32) (param $v i32) (param $g i32)
    (param $outValue i32) (param $outM i32) (param $outV i32) (param $n i32)
    (param $beta1 f32) (param $beta2 f32) (param $oneMinusBeta1 f32) (param $oneMinusBeta2 f32)
    (param $c1 f32) (param $c2 f32) (param $eps f32) (param $negLr f32)
    (local $off i32) (local $vecEnd i32) (local $end i32)
    (local $gv v128) (local $m1 v128) (local $v1 v128)
    (local $gs f32) (local $m1s f32) (local $v1s f32)
    (local.set $vecEnd (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2)))
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    (local.set $off (i32.const 0))
    (block $vecDone
      (loop $vec
        (br_if $vecDone (i32.ge_u (local.get $off) (local.get $vecEnd)))
        (local.set $gv (v128.load (i32.add (local.get $g) (local.get $off))))
        (local.set $m1
          (f32x4.add
            (f32x4.mul (v128.load (i32.add (local.get $m) (local.get $off))) (f32x4.splat (local.get $beta1)))
            (f32x4.mul (local.get $gv) (f32x4.splat (local.get $oneMinusBeta1)))))
        (local.set $v1
          (f32x4.add
            (f32x4.mul (v128.load (i32.add (local.get $v) (local.get $off))) (f32x4.splat (local.get $beta2)))
            (f32x4.mul (f32x4.mul (local.get $gv) (local.get $gv)) (f32x4.splat (local.get $oneMinusBeta2)))))
        (v128.store (i32.add (local.get $outM) (local.get $off)) (local.get $m1))
        (v128.store (i32.add (local.get $outV) (local.get $off)) (local.get $v1))
        (v128.store (i32.add (local.get $outValue) (local.get $off))
          (f32x4.add
            (f32x4.mul
              (f32x4.div
                (f32x4.div (local.get $m1) (f32x4.splat (local.get $c1)))
                (f32x4.add
                  (f32x4.sqrt (f32x4.div (local.get $v1) (f32x4.splat (local.get $c2))))
                  (f32x4.splat (local.get $eps))))
              (f32x4.splat (local.get $negLr)))
            (v128.load (i32.add (local.get $value) (local.get $off)))))
        (local.set $off (i32.add (local.get $off) (i32.const 16)))
        (br $vec)))
    (block $tailDone
      (loop $tail
        (br_if $tailDone (i32.ge_u (local.get $off) (local.get $end)))
        (local.set $gs (f32.load (i32.add (local.get $g) (local.get $off))))
        (local.set $m1s
          (f32.add
            (f32.mul (f32.load (i32.add (local.get $m) (local.get $off))) (local.get $beta1))
            (f32.mul (local.get $gs) (local.get $oneMinusBeta1))))
        (local.set $v1s
          (f32.add
            (f32.mul (f32.load (i32.add (local.get $v) (local.get $off))) (local.get $beta2))
            (f32.mul (f32.mul (local.get $gs) (local.get $gs)) (local.get $oneMinusBeta2))))
        (f32.store (i32.add (local.get $outM) (local.get $off)) (local.get $m1s))
        (f32.store (i32.add (local.get $outV) (local.get $off)) (local.get $v1s))
        (f32.store (i32.add (local.get $outValue) (local.get $off))
          (f32.add
            (f32.mul
              (f32.div
                (f32.div (local.get $m1s) (local.get $c1))
                (f32.add (f32.sqrt (f32.div (local.get $v1s) (local.get $c2))) (local.get $eps)))
              (local.get $negLr))
            (f32.load (i32.add (local.get $value) (local.get $off)))))
        (local.set $off (i32.add (local.get $off) (i32.const 4)))
        (br $tail)))))
