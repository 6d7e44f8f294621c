;; Stores and loads a word at the start of each 4 KiB engine page, so a run over many pages needs a frame
;; for each page it stores to; a word stored anywhere; memory.fill, memory.copy and memory.grow; and an out-of-bounds
;; store, the trap Chicory's own memories throw, to compare with.
(module
  (memory (export "memory") 4 64)
  ;; Stores $value + i at engine page $first + i, for i in [0, $count).
  (func (export "store_pages") (param $first i32) (param $count i32) (param $value i32)
    (local $i i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $count)))
        (i32.store (i32.shl (i32.add (local.get $first) (local.get $i)) (i32.const 12))
                   (i32.add (local.get $value) (local.get $i)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next))))
  ;; The sum of the words at the start of engine pages [$first, $first + $count).
  (func (export "sum_pages") (param $first i32) (param $count i32) (result i32)
    (local $i i32) (local $sum i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $count)))
        (local.set $sum (i32.add (local.get $sum)
          (i32.load (i32.shl (i32.add (local.get $first) (local.get $i)) (i32.const 12)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (local.get $sum))
  (func (export "store_at") (param $at i32) (param $value i32)
    (i32.store (local.get $at) (local.get $value)))
  (func (export "fill") (param $at i32) (param $value i32) (param $length i32)
    (memory.fill (local.get $at) (local.get $value) (local.get $length)))
  (func (export "copy") (param $to i32) (param $from i32) (param $length i32)
    (memory.copy (local.get $to) (local.get $from) (local.get $length)))
  (func (export "grow") (param $pages i32) (result i32) (memory.grow (local.get $pages)))
  (func (export "store_out_of_bounds") (i32.store (i32.const -4) (i32.const 1))))
