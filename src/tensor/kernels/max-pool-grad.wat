;; MaxPoolGrad of an NHWC float32 tensor, on the memory of tfjs's wasm backend (imported):
;; each output's gradient goes to the first strictly-greatest input of its window in
;; row-major order (the cpu backend's rule: padding never wins, ties keep the first, a
;; window of NaN or −∞ routes nothing), accumulated when windows overlap. Four channels
;; at a time (the window's maxima and their positions in SIMD lanes), the rest one by one.
;;
;; `out` must not overlap the inputs; it is zeroed here. Pointers are byte offsets.
;;
;; Compiled by scripts/gen-wasm.mjs into max-pool-grad-wasm.gen.ts; edit this file, not that one.
(module
  (import "env" "memory" (memory 0))

  ;; out[at] += g (at is an element index relative to out)
  (func $route (param $out i32) (param $at i32) (param $g f32)
    (local $p i32)
    (local.set $p (i32.add (local.get $out) (i32.shl (local.get $at) (i32.const 2))))
    (f32.store (local.get $p) (f32.add (f32.load (local.get $p)) (local.get $g))))

  (func (export "maxPoolGrad")
    (param $x i32) (param $dy i32) (param $out i32)
    (param $batch i32) (param $h i32) (param $w i32) (param $ch i32)
    (param $oh i32) (param $ow i32) (param $sh i32) (param $sw i32)
    (param $fh i32) (param $fw i32) (param $pt i32) (param $pl i32)
    (local $b i32) (local $yr i32) (local $yc i32)
    (local $rMin i32) (local $rMax i32) (local $cMin i32) (local $cMax i32)
    (local $r i32) (local $c i32) (local $d i32) (local $vecEnd i32)
    (local $tap i32) (local $dyAt i32)
    (local $bestV v128) (local $bestI v128) (local $v v128) (local $gt v128)
    (local $best f32) (local $bestAt i32) (local $s f32)
    (memory.fill (local.get $out) (i32.const 0)
      (i32.shl (i32.mul (i32.mul (i32.mul (local.get $batch) (local.get $h)) (local.get $w)) (local.get $ch)) (i32.const 2)))
    (local.set $vecEnd (i32.and (local.get $ch) (i32.const -4)))
    (local.set $b (i32.const 0))
    (block $batchDone (loop $batchLoop
      (br_if $batchDone (i32.ge_s (local.get $b) (local.get $batch)))
      (local.set $yr (i32.const 0))
      (block $rowsDone (loop $rowsLoop
        (br_if $rowsDone (i32.ge_s (local.get $yr) (local.get $oh)))
        (local.set $rMin (i32.sub (i32.mul (local.get $yr) (local.get $sh)) (local.get $pt)))
        (local.set $rMax (i32.add (local.get $rMin) (local.get $fh)))
        (if (i32.lt_s (local.get $rMin) (i32.const 0)) (then (local.set $rMin (i32.const 0))))
        (if (i32.gt_s (local.get $rMax) (local.get $h)) (then (local.set $rMax (local.get $h))))
        (local.set $yc (i32.const 0))
        (block $colsDone (loop $colsLoop
          (br_if $colsDone (i32.ge_s (local.get $yc) (local.get $ow)))
          (local.set $cMin (i32.sub (i32.mul (local.get $yc) (local.get $sw)) (local.get $pl)))
          (local.set $cMax (i32.add (local.get $cMin) (local.get $fw)))
          (if (i32.lt_s (local.get $cMin) (i32.const 0)) (then (local.set $cMin (i32.const 0))))
          (if (i32.gt_s (local.get $cMax) (local.get $w)) (then (local.set $cMax (local.get $w))))
          ;; element index of dy[b, yr, yc, 0]
          (local.set $dyAt
            (i32.mul (i32.add (i32.mul (i32.add (i32.mul (local.get $b) (local.get $oh)) (local.get $yr)) (local.get $ow)) (local.get $yc))
                     (local.get $ch)))
          (if (i32.and (i32.lt_s (local.get $rMin) (local.get $rMax)) (i32.lt_s (local.get $cMin) (local.get $cMax)))
            (then
              ;; four channels at a time
              (local.set $d (i32.const 0))
              (block $vecDone (loop $vecLoop
                (br_if $vecDone (i32.ge_s (local.get $d) (local.get $vecEnd)))
                (local.set $bestV (f32x4.splat (f32.const -inf)))
                (local.set $bestI (i32x4.splat (i32.const -1)))
                (local.set $r (local.get $rMin))
                (loop $tapRows
                  (local.set $c (local.get $cMin))
                  (loop $tapCols
                    ;; element index of x[b, r, c, d]
                    (local.set $tap
                      (i32.add
                        (i32.mul (i32.add (i32.mul (i32.add (i32.mul (local.get $b) (local.get $h)) (local.get $r)) (local.get $w)) (local.get $c))
                                 (local.get $ch))
                        (local.get $d)))
                    (local.set $v (v128.load (i32.add (local.get $x) (i32.shl (local.get $tap) (i32.const 2)))))
                    (local.set $gt (f32x4.gt (local.get $v) (local.get $bestV)))
                    (local.set $bestV (v128.bitselect (local.get $v) (local.get $bestV) (local.get $gt)))
                    (local.set $bestI
                      (v128.bitselect
                        (i32x4.add (i32x4.splat (local.get $tap)) (v128.const i32x4 0 1 2 3))
                        (local.get $bestI)
                        (local.get $gt)))
                    (local.set $c (i32.add (local.get $c) (i32.const 1)))
                    (br_if $tapCols (i32.lt_s (local.get $c) (local.get $cMax))))
                  (local.set $r (i32.add (local.get $r) (i32.const 1)))
                  (br_if $tapRows (i32.lt_s (local.get $r) (local.get $rMax))))
                (if (i32.ge_s (i32x4.extract_lane 0 (local.get $bestI)) (i32.const 0))
                  (then (call $route (local.get $out) (i32x4.extract_lane 0 (local.get $bestI))
                    (f32.load (i32.add (local.get $dy) (i32.shl (i32.add (local.get $dyAt) (local.get $d)) (i32.const 2)))))))
                (if (i32.ge_s (i32x4.extract_lane 1 (local.get $bestI)) (i32.const 0))
                  (then (call $route (local.get $out) (i32x4.extract_lane 1 (local.get $bestI))
                    (f32.load offset=4 (i32.add (local.get $dy) (i32.shl (i32.add (local.get $dyAt) (local.get $d)) (i32.const 2)))))))
                (if (i32.ge_s (i32x4.extract_lane 2 (local.get $bestI)) (i32.const 0))
                  (then (call $route (local.get $out) (i32x4.extract_lane 2 (local.get $bestI))
                    (f32.load offset=8 (i32.add (local.get $dy) (i32.shl (i32.add (local.get $dyAt) (local.get $d)) (i32.const 2)))))))
                (if (i32.ge_s (i32x4.extract_lane 3 (local.get $bestI)) (i32.const 0))
                  (then (call $route (local.get $out) (i32x4.extract_lane 3 (local.get $bestI))
                    (f32.load offset=12 (i32.add (local.get $dy) (i32.shl (i32.add (local.get $dyAt) (local.get $d)) (i32.const 2)))))))
                (local.set $d (i32.add (local.get $d) (i32.const 4)))
                (br $vecLoop)))
              ;; the remaining channels one by one
              (block $tailDone (loop $tailLoop
                (br_if $tailDone (i32.ge_s (local.get $d) (local.get $ch)))
                (local.set $best (f32.const -inf))
                (local.set $bestAt (i32.const -1))
                (local.set $r (local.get $rMin))
                (loop $tailRows
                  (local.set $c (local.get $cMin))
                  (loop $tailCols
                    (local.set $tap
                      (i32.add
                        (i32.mul (i32.add (i32.mul (i32.add (i32.mul (local.get $b) (local.get $h)) (local.get $r)) (local.get $w)) (local.get $c))
                                 (local.get $ch))
                        (local.get $d)))
                    (local.set $s (f32.load (i32.add (local.get $x) (i32.shl (local.get $tap) (i32.const 2)))))
                    (if (f32.gt (local.get $s) (local.get $best))
                      (then (local.set $best (local.get $s)) (local.set $bestAt (local.get $tap))))
                    (local.set $c (i32.add (local.get $c) (i32.const 1)))
                    (br_if $tailCols (i32.lt_s (local.get $c) (local.get $cMax))))
                  (local.set $r (i32.add (local.get $r) (i32.const 1)))
                  (br_if $tailRows (i32.lt_s (local.get $r) (local.get $rMax))))
                (if (i32.ge_s (local.get $bestAt) (i32.const 0))
                  (then (call $route (local.get $out) (local.get $bestAt)
                    (f32.load (i32.add (local.get $dy) (i32.shl (i32.add (local.get $dyAt) (local.get $d)) (i32.const 2)))))))
                (local.set $d (i32.add (local.get $d) (i32.const 1)))
                (br $tailLoop)))))
          (local.set $yc (i32.add (local.get $yc) (i32.const 1)))
          (br $colsLoop)))
        (local.set $yr (i32.add (local.get $yr) (i32.const 1)))
        (br $rowsLoop)))
      (local.set $b (i32.add (local.get $b) (i32.const 1)))
      (br $batchLoop))))
)
