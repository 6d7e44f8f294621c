;; Traps: an out-of-bounds load and store, unreachable, and an integer division by zero; a store before
;; the trap stays stored.
(module
  (memory (export "memory") 1 1)
  (data (i32.const 100) "trap")
  (func (export "store_then_trap") (param $a i32) (param $v i32)
    (i32.store (i32.const 200) (local.get $v))
    (i32.store (local.get $a) (local.get $v)))
  (func (export "load") (param $a i32) (result i64) (i64.load (local.get $a)))
  (func (export "unreachable") (unreachable))
  (func (export "div") (param $a i32) (param $b i32) (result i32) (i32.div_s (local.get $a) (local.get $b))))
