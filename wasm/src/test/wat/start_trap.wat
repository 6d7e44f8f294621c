;; Start function fills 60 KiB with 1s (a bulk fill: straight to the engine), then traps.
(module
  (memory (export "memory") 1 1)
  (func $start
    (memory.fill (i32.const 0) (i32.const 1) (i32.const 61440))
    (unreachable))
  (start $start))
