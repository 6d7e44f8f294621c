;; A module that cannot be instantiated: its second active data segment ends past its memory.
(module
  (memory (export "memory") 1 1)
  (data (i32.const 0) "first")
  (data (i32.const 65530) "0123456789"))
