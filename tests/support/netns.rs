//! A network namespace holding one end of a veth pair, for live-capture tests: frames
//! sent into the outer end (tcpreplay) arrive on the inner end, where the daemon
//! captures, and go nowhere else. Removed on drop.
//!
//! Include it with `#[path = "support/netns.rs"] mod netns;`.
#![allow(dead_code)]

use std::process::Command;

/// A namespace with one end of a veth pair in it (the other end stays outside), removed
/// on drop.
pub struct Netns {
    /// The namespace.
    pub ns: String,
    /// The veth end outside it (feed it with tcpreplay).
    pub outer: String,
    /// The veth end inside it (capture on it).
    pub inner: String,
}

impl Netns {
    /// Creates `vq<prefix><pid>` with the pair up; `prefix` keeps tests apart.
    pub fn new(prefix: &str) -> Netns {
        let tag = std::process::id() % 100_000;
        let n = Netns {
            ns: format!("vq{prefix}{tag}"),
            outer: format!("vq{prefix}o{tag}"),
            inner: format!("vq{prefix}i{tag}"),
        };
        let run = |args: &[&str]| {
            let st = Command::new("ip").args(args).status().expect("running ip");
            assert!(st.success(), "ip {args:?} failed");
        };
        run(&["netns", "add", &n.ns]);
        run(&[
            "link", "add", &n.outer, "type", "veth", "peer", "name", &n.inner, "netns", &n.ns,
        ]);
        run(&["link", "set", &n.outer, "up"]);
        run(&["netns", "exec", &n.ns, "ip", "link", "set", &n.inner, "up"]);
        run(&["netns", "exec", &n.ns, "ip", "link", "set", "lo", "up"]);
        n
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.outer])
            .status();
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
    }
}
