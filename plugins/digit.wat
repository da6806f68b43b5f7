;; plugins/digit.wat: the example environment plugin (weightlog plugin ABI v1, see
;; src/sandbox/plugin.rs). The challenge for seed s is "reply with the digit s mod 10"; a
;; response scores 1 iff it is exactly that digit. It imports nothing, keeps no state
;; between calls, and answers in JSON placed in its own memory.
(module
  (memory (export "memory") 1)
  ;; Bump allocator for the host's arguments, above the result templates.
  (global $heap (mut i32) (i32.const 4096))
  (data (i32.const 0) "{\22prompt\22:\22Reply with the digit D and nothing else.\22,\22extra_json\22:\22{\5c\22digit\5c\22:D}\22}")
  (data (i32.const 256) "{\22score\22:1,\22metrics\22:[{\22name\22:\22exact\22,\22value\22:1}]}")
  (data (i32.const 512) "{\22score\22:0,\22metrics\22:[{\22name\22:\22exact\22,\22value\22:0}]}")

  (func (export "alloc") (param $length i32) (result i32)
    (local $pointer i32)
    (local.set $pointer (global.get $heap))
    (global.set $heap (i32.add (global.get $heap) (local.get $length)))
    ;; Grow the memory when the buffer does not fit (64 KiB pages).
    (block $fits
      (br_if $fits
        (i32.le_u (global.get $heap) (i32.mul (memory.size) (i32.const 65536))))
      (drop
        (memory.grow
          (i32.add
            (i32.div_u
              (i32.sub (global.get $heap) (i32.mul (memory.size) (i32.const 65536)))
              (i32.const 65536))
            (i32.const 1)))))
    (local.get $pointer))

  ;; The digit character ('0' + seed mod 10) for a seed.
  (func $digit (param $seed i64) (result i32)
    (i32.add (i32.const 48) (i32.wrap_i64 (i64.rem_u (local.get $seed) (i64.const 10)))))

  ;; (pointer << 32) | length
  (func $pack (param $pointer i32) (param $length i32) (result i64)
    (i64.or
      (i64.shl (i64.extend_i32_u (local.get $pointer)) (i64.const 32))
      (i64.extend_i32_u (local.get $length))))

  (func (export "generate") (param $seed i64) (param $params i32) (param $params_length i32)
    (result i64)
    (i32.store8 (i32.const 32) (call $digit (local.get $seed)))
    (i32.store8 (i32.const 78) (call $digit (local.get $seed)))
    (call $pack (i32.const 0) (i32.const 82)))

  (func (export "evaluate") (param $seed i64) (param $extra i32) (param $extra_length i32)
    (param $response i32) (param $response_length i32) (result i64)
    (if (result i64)
      (i32.and
        (i32.eq (local.get $response_length) (i32.const 1))
        (i32.eq (i32.load8_u (local.get $response)) (call $digit (local.get $seed))))
      (then (call $pack (i32.const 256) (i32.const 50)))
      (else (call $pack (i32.const 512) (i32.const 50)))))
)
