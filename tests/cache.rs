//! `kcc cache` / `kcc-cache`: the caching proxy, driven as kubectl drives it.

use crate::util::*;

#[test]
fn miss_then_hit_through_both_personalities() {
    let w = World::new();
    let cred = credential("v1", SECRET, Some(&in_secs(3600)));
    let plugin = w.plugin("plug", &cred, 0.0);
    let first = ok(&w.cache(&[plugin.to_str().unwrap(), "--flag"]));
    assert_eq!(first.trim(), cred);
    let second = ok(&w.cmd("kcc").args(["cache", "--", plugin.to_str().unwrap(), "--flag"]).output().unwrap());
    assert_eq!(second.trim(), cred);
    assert_eq!(w.runs("plug"), 1, "the second call must be served from the cache");
}
