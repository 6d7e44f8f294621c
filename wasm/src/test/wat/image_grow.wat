;; A data-segment image over a memory that grows: active segments on engine pages 0, 1 and 2 (one
;; straddles pages 1 and 2, one overwrites part of another) and on page 14, in a memory of 1 WebAssembly
;; page that may grow to 16, so that growing it makes guests of its own (GuestPages) while the image stays.
(module
  (memory (export "memory") 1 16)
  (data (i32.const 100) "page zero of the image")
  (data (i32.const 4096) "page one of the image, written first")
  (data (i32.const 4104) "OVERWRITTEN")
  (data (i32.const 8180) "a segment that straddles engine pages one and two")
  (data (i32.const 57400) "page fourteen, past the first page's engine pages")
  (func (export "grow") (param $n i32) (result i32) (memory.grow (local.get $n)))
  (func (export "store32") (param $a i32) (param $v i32) (i32.store (local.get $a) (local.get $v)))
  (func (export "load32") (param $a i32) (result i32) (i32.load (local.get $a))))
