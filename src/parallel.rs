//! Order-preserving parallel map over slices with scoped threads, one chunk
//! per available core. Results come back in input order, so output stays
//! deterministic whatever the machine.

/// Maps `f` over `items` on up to `available_parallelism` threads; small
/// inputs run on the calling thread.
pub fn map<T: Sync, R: Send>(items: &[T], f: impl Fn(usize, &T) -> R + Sync) -> Vec<R> {
    // The calling thread writes its results straight into a vector of the
    // final size: no second copy of them (objects here can be large).
    spread(items, items.len(), |start, part, out| {
        out.extend(part.iter().enumerate().map(|(i, t)| f(start + i, t)));
    })
}

/// Splits `items` into one chunk per thread (a single chunk for small
/// inputs) and concatenates what `f` returns for each, in order. `f` gets
/// the index of its chunk's first item; work that shares state within a
/// chunk (a cache, a buffer) keeps it for the whole chunk.
pub fn map_chunks<T: Sync, R: Send>(items: &[T], f: impl Fn(usize, &[T]) -> Vec<R> + Sync) -> Vec<R> {
    spread(items, 0, |start, part, out| out.extend(f(start, part)))
}

/// Runs `fill` on one chunk of `items` per thread; the calling thread takes
/// the first chunk, into the result (of `capacity`), and appends the others'.
fn spread<T: Sync, R: Send>(items: &[T], capacity: usize, fill: impl Fn(usize, &[T], &mut Vec<R>) + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8);
    let mut out = Vec::with_capacity(capacity);
    if threads < 2 || items.len() < 64 {
        fill(0, items, &mut out);
        return out;
    }
    let chunk = items.len().div_ceil(threads);
    let fill = &fill;
    std::thread::scope(|scope| {
        let mut parts = items.chunks(chunk).enumerate();
        let first = parts.next().map_or(&[][..], |(_, part)| part);
        let handles: Vec<_> = parts
            .map(|(c, part)| {
                scope.spawn(move || {
                    let mut mine = Vec::new();
                    fill(c * chunk, part, &mut mine);
                    mine
                })
            })
            .collect();
        fill(0, first, &mut out);
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

    #[test]
    fn chunks_cover_the_items_once_in_order() {
        let items: Vec<usize> = (0..1000).collect();
        let seen = super::map_chunks(&items, |start, part| {
            assert_eq!(part.first(), Some(&start));
            part.iter().map(|&x| (start, x)).collect()
        });
        assert_eq!(seen.iter().map(|&(_, x)| x).collect::<Vec<_>>(), items);
        assert!(seen.iter().all(|&(start, x)| start <= x));
        assert_eq!(
            super::map_chunks(&items[..3], |start, part| vec![(start, part.len())]),
            vec![(0, 3)]
        );
        assert!(super::map_chunks(&[] as &[u8], |_, part| part.to_vec()).is_empty());
    }
}
