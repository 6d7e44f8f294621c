;; The bench's workload (samepage bench wasm). Its memory section and its data segment are replaced
;; when the bench runs (WasmBench.module): the data segment is MiBs of seeded bytes at address 0, a
;; lookup table, and the heap starts after it.
;;
;; run(seed, heap, dataBytes, n): gathers n words from the data at pseudo-random places into an array
;; at heap, heap-sorts it, counts the distinct words in an open-addressing hash table of 2n slots after
;; the array, and returns a checksum of the table.
(module
  (memory (export "memory") 1 1)
  (global $base (mut i32) (i32.const 0))
  (func $addr (param $i i32) (result i32)
    (i32.add (global.get $base) (i32.shl (local.get $i) (i32.const 2))))
  (func $sift (param $start i32) (param $end i32)
    (local $root i32) (local $child i32) (local $tmp i32)
    (local.set $root (local.get $start))
    (block $done (loop $next
      (local.set $child (i32.add (i32.shl (local.get $root) (i32.const 1)) (i32.const 1)))
      (br_if $done (i32.gt_s (local.get $child) (local.get $end)))
      (if (i32.and (i32.lt_s (local.get $child) (local.get $end))
                   (i32.lt_u (i32.load (call $addr (local.get $child)))
                             (i32.load (call $addr (i32.add (local.get $child) (i32.const 1))))))
        (then (local.set $child (i32.add (local.get $child) (i32.const 1)))))
      (br_if $done (i32.ge_u (i32.load (call $addr (local.get $root))) (i32.load (call $addr (local.get $child)))))
      (local.set $tmp (i32.load (call $addr (local.get $root))))
      (i32.store (call $addr (local.get $root)) (i32.load (call $addr (local.get $child))))
      (i32.store (call $addr (local.get $child)) (local.get $tmp))
      (local.set $root (local.get $child))
      (br $next))))
  (func $sort (param $n i32)
    (local $start i32) (local $end i32) (local $tmp i32)
    (if (i32.lt_s (local.get $n) (i32.const 2)) (then (return)))
    (local.set $start (i32.shr_s (i32.sub (local.get $n) (i32.const 2)) (i32.const 1)))
    (block $built (loop $heapify
      (call $sift (local.get $start) (i32.sub (local.get $n) (i32.const 1)))
      (br_if $built (i32.eqz (local.get $start)))
      (local.set $start (i32.sub (local.get $start) (i32.const 1)))
      (br $heapify)))
    (local.set $end (i32.sub (local.get $n) (i32.const 1)))
    (block $sorted (loop $pop
      (br_if $sorted (i32.le_s (local.get $end) (i32.const 0)))
      (local.set $tmp (i32.load (call $addr (local.get $end))))
      (i32.store (call $addr (local.get $end)) (i32.load (global.get $base)))
      (i32.store (global.get $base) (local.get $tmp))
      (local.set $end (i32.sub (local.get $end) (i32.const 1)))
      (call $sift (i32.const 0) (local.get $end))
      (br $pop))))
  (func (export "run") (param $seed i32) (param $heap i32) (param $data i32) (param $n i32) (result i64)
    (local $i i32) (local $x i32) (local $table i32) (local $slots i32) (local $s i32) (local $k i32)
    (local $sum i64)
    (global.set $base (local.get $heap))
    ;; gather: n lookups at pseudo-random word offsets of the data
    (local.set $x (local.get $seed))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (local.set $x (i32.add (i32.mul (local.get $x) (i32.const 1664525)) (i32.const 1013904223)))
      (i32.store (call $addr (local.get $i))
        (i32.load (i32.and (i32.rem_u (local.get $x) (local.get $data)) (i32.const -4))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (call $sort (local.get $n))
    ;; count: 2n slots of (word, count) after the array
    (local.set $table (call $addr (local.get $n)))
    (local.set $slots (i32.shl (local.get $n) (i32.const 1)))
    (local.set $i (i32.const 0))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (local.set $k (i32.or (i32.load (call $addr (local.get $i))) (i32.const 1)))
      (local.set $s (i32.rem_u (i32.mul (local.get $k) (i32.const 0x9E3779B1)) (local.get $slots)))
      (block $found (loop $probe
        (br_if $found (i32.eqz (i32.load (i32.add (local.get $table) (i32.shl (local.get $s) (i32.const 3))))))
        (br_if $found (i32.eq (local.get $k) (i32.load (i32.add (local.get $table) (i32.shl (local.get $s) (i32.const 3))))))
        (local.set $s (i32.rem_u (i32.add (local.get $s) (i32.const 1)) (local.get $slots)))
        (br $probe)))
      (i32.store (i32.add (local.get $table) (i32.shl (local.get $s) (i32.const 3))) (local.get $k))
      (i32.store (i32.add (local.get $table) (i32.add (i32.shl (local.get $s) (i32.const 3)) (i32.const 4)))
        (i32.add (i32.load (i32.add (local.get $table) (i32.add (i32.shl (local.get $s) (i32.const 3)) (i32.const 4)))) (i32.const 1)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (local.set $i (i32.const 0))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $slots)))
      (local.set $sum (i64.add (i64.mul (local.get $sum) (i64.const 31))
        (i64.load (i32.add (local.get $table) (i32.shl (local.get $i) (i32.const 3))))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (local.get $sum)))
