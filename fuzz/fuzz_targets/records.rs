#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| kcc::fuzz::records(data));
