//! Order-preserving parallel map over slices with scoped threads, one chunk
//! per available core. Results come back in input order, so output stays
//! deterministic whatever the machine.

/// Maps `f` over `items` on up to `available_parallelism` threads; small
/// inputs run on the calling thread.
pub fn map<T: Sync, R: Send>(items: &[T], f: impl Fn(usize, &T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8);
    if threads < 2 || items.len() < 64 {
        return items.iter().enumerate().map(|(i, t)| f(i, t)).collect();
    }
    let chunk = items.len().div_ceil(threads);
    let f = &f;
    std::thread::scope(|scope| {
        let mut parts = items.chunks(chunk).enumerate();
        let Some((_, first)) = parts.next() else {
            return Vec::new();
        };
        let handles: Vec<_> = parts
            .map(|(c, part)| scope.spawn(move || part.iter().enumerate().map(|(i, t)| f(c * chunk + i, t)).collect::<Vec<R>>()))
            .collect();
        // The calling thread takes the first chunk, straight into the result:
        // no thread to start for it, and no second copy of its part.
        let mut out = Vec::with_capacity(items.len());
        out.extend(first.iter().enumerate().map(|(i, t)| f(i, t)));
        for handle in handles {
            // A panic in a worker is a bug; re-raise it on this thread as it is.
            out.extend(handle.join().unwrap_or_else(|e| std::panic::resume_unwind(e)));
        }
        out
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn keeps_order() {
        let items: Vec<usize> = (0..1000).collect();
        assert_eq!(
            super::map(&items, |i, x| (i, x * 2)),
            items.iter().map(|&x| (x, x * 2)).collect::<Vec<_>>()
        );
        assert_eq!(super::map(&[1, 2, 3], |_, x| x + 1), vec![2, 3, 4]);
    }
}
