//! The WebSub hub's delivery queue: bounded in number and bytes, fair between hosts.
//! Items wait per host; hosts take turns, and a host with an item in flight gets no other
//! until it is [`Fair::done`], so subscribers that hang on one host hold one sending
//! place, not all. When full, the host with the most items waiting loses its oldest.

use std::collections::{HashMap, HashSet, VecDeque};

pub struct Fair<T> {
    hosts: HashMap<String, VecDeque<(T, usize)>>,
    /// Hosts with items waiting and none in flight, in turn order.
    turn: VecDeque<String>,
    busy: HashSet<String>,
    len: usize,
    bytes: usize,
    cap: usize,
    max_bytes: usize,
}

impl<T> Fair<T> {
    pub fn new(cap: usize, max_bytes: usize) -> Fair<T> {
        Fair {
            hosts: HashMap::new(),
            turn: VecDeque::new(),
            busy: HashSet::new(),
            len: 0,
            bytes: 0,
            cap: cap.max(1),
            max_bytes,
        }
    }

    /// Queues `item` (of `bytes`) for `host`; returns the items dropped to make room.
    pub fn push(&mut self, host: &str, item: T, bytes: usize) -> Vec<T> {
        let mut dropped = Vec::new();
        while self.len > 0 && (self.len >= self.cap || self.bytes + bytes > self.max_bytes) {
            let fullest = self
                .hosts
                .iter()
                .max_by_key(|(_, q)| q.len())
                .map(|(h, _)| h.clone());
            match fullest.and_then(|h| self.take(&h)) {
                Some(d) => dropped.push(d),
                None => break,
            }
        }
        let queue = self.hosts.entry(host.to_string()).or_default();
        let was_empty = queue.is_empty();
        queue.push_back((item, bytes));
        self.len += 1;
        self.bytes += bytes;
        if was_empty && !self.busy.contains(host) {
            self.turn.push_back(host.to_string());
        }
        dropped
    }

    /// The oldest item of `host`.
    fn take(&mut self, host: &str) -> Option<T> {
        let queue = self.hosts.get_mut(host)?;
        let (item, bytes) = queue.pop_front()?;
        self.len -= 1;
        self.bytes -= bytes;
        if queue.is_empty() {
            self.hosts.remove(host);
            self.turn.retain(|h| h != host);
        }
        Some(item)
    }

    /// The next host's oldest item; the host is in flight until [`Fair::done`].
    pub fn pop(&mut self) -> Option<(String, T)> {
        let host = self.turn.pop_front()?;
        let item = self.take(&host)?;
        self.busy.insert(host.clone());
        Some((host, item))
    }

    /// `host`'s item in flight is done: its next one may go.
    pub fn done(&mut self, host: &str) {
        if self.busy.remove(host) && self.hosts.contains_key(host) {
            self.turn.push_back(host.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_take_turns_one_in_flight_each() {
        let mut q = Fair::new(100, 1 << 20);
        for i in 0..3 {
            q.push("slow", format!("slow{i}"), 1);
        }
        q.push("fast", "fast0".to_string(), 1);
        q.push("fast", "fast1".to_string(), 1);
        assert_eq!(q.pop(), Some(("slow".into(), "slow0".into())));
        assert_eq!(q.pop(), Some(("fast".into(), "fast0".into())));
        // Both hosts are in flight: nothing more until one is done.
        assert_eq!(q.pop(), None);
        q.done("fast");
        assert_eq!(q.pop(), Some(("fast".into(), "fast1".into())));
        q.done("fast");
        assert_eq!(q.pop(), None);
        q.done("slow");
        assert_eq!(q.pop(), Some(("slow".into(), "slow1".into())));
    }

    #[test]
    fn when_full_the_fullest_host_loses_its_oldest() {
        let mut q = Fair::new(5, 1 << 20);
        for i in 0..4 {
            assert!(q.push("flood", i, 1).is_empty());
        }
        assert!(q.push("legit", 10, 1).is_empty());
        assert_eq!(q.push("legit", 11, 1), [0]);
        assert_eq!(q.push("other", 20, 1), [1]);
        let mut out = Vec::new();
        while let Some((h, i)) = q.pop() {
            q.done(&h);
            out.push(i);
        }
        out.sort_unstable();
        assert_eq!(out, [2, 3, 10, 11, 20]);
    }

    #[test]
    fn bytes_are_bounded_too() {
        let mut q = Fair::new(100, 10);
        q.push("a", 1, 6);
        assert_eq!(q.push("b", 2, 6), [1]);
        assert_eq!(q.bytes, 6);
    }
}
