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

/// [`map_chunks`] with chunks of about equal total `weight` rather than
/// equal length, for items whose costs differ widely (files of intents).
pub fn map_weighted_chunks<T: Sync, R: Send>(
    items: &[T],
    weight: impl Fn(&T) -> usize,
    f: impl Fn(usize, &[T]) -> Vec<R> + Sync,
) -> Vec<R> {
    let total: usize = items.iter().map(&weight).sum();
    let threads = threads();
    let mut cuts = Vec::with_capacity(threads + 1);
    cuts.push(0);
    let mut sum = 0;
    for (i, item) in items.iter().enumerate() {
        sum += weight(item);
        // Cut after the item that reaches the next share of the total.
        if cuts.len() < threads && sum * threads >= total * cuts.len() && i + 1 < items.len() {
            cuts.push(i + 1);
        }
    }
    cuts.push(items.len());
    run(items, &cuts, 0, |start, part, out| out.extend(f(start, part)))
}

fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()).min(8)
}

/// Runs `fill` on one chunk of `items` per thread; the calling thread takes
/// the first chunk, into the result (of `capacity`), and appends the others'.
fn spread<T: Sync, R: Send>(items: &[T], capacity: usize, fill: impl Fn(usize, &[T], &mut Vec<R>) + Sync) -> Vec<R> {
    let threads = threads();
    if threads < 2 || items.len() < 64 {
        return run(items, &[0, items.len()], capacity, fill);
    }
    let chunk = items.len().div_ceil(threads);
    let mut cuts: Vec<usize> = (0..items.len()).step_by(chunk).collect();
    cuts.push(items.len());
    run(items, &cuts, capacity, fill)
}

/// Runs `fill` on each chunk `items[cuts[k]..cuts[k + 1]]`, the first on
/// the calling thread and the others on threads of their own.
fn run<T: Sync, R: Send>(items: &[T], cuts: &[usize], capacity: usize, fill: impl Fn(usize, &[T], &mut Vec<R>) + Sync) -> Vec<R> {
    let mut out = Vec::with_capacity(capacity);
    let mut parts = cuts.windows(2).map(|w| (w[0], &items[w[0]..w[1]]));
    let Some((_, first)) = parts.next() else { return out };
    if cuts.len() <= 2 {
        fill(0, first, &mut out);
        return out;
    }
    let fill = &fill;
    std::thread::scope(|scope| {
        let handles: Vec<_> = parts
            .map(|(start, part)| {
                scope.spawn(move || {
                    let mut mine = Vec::new();
                    fill(start, part, &mut mine);
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

    #[test]
    fn weighted_chunks_cover_the_items_once_in_order_and_balance_the_weight() {
        // One heavy item first, then light ones: equal lengths would put
        // nearly all the weight in the first chunk.
        let items: Vec<usize> = std::iter::once(1000).chain(std::iter::repeat_n(10, 100)).collect();
        let chunks = super::map_weighted_chunks(&items, |&w| w, |start, part| vec![(start, part.to_vec())]);
        let flat: Vec<usize> = chunks.iter().flat_map(|(_, part)| part.iter().copied()).collect();
        assert_eq!(flat, items);
        for (start, part) in &chunks {
            assert_eq!(&items[*start..*start + part.len()], part.as_slice());
        }
        if super::threads() >= 2 {
            assert_eq!(chunks.len(), super::threads());
            assert_eq!(chunks[0].1, vec![1000], "the heavy item is a chunk of its own");
        }
        assert!(super::map_weighted_chunks(&[] as &[usize], |&w| w, |_, part| part.to_vec()).is_empty());
        assert_eq!(
            super::map_weighted_chunks(&[5], |&w| w, |s, part| vec![(s, part.len())]),
            vec![(0, 1)]
        );
    }
}
