//! Order-preserving parallel maps over slices, on the calling thread and
//! those of a pool that lives as long as the process (rayon's): a build
//! has about 20 parallel steps, and starting threads for each of them cost
//! more than handing the work to threads already there (decision 0027).
//! The items are cut into several chunks per core, handed out as threads
//! come free: a core that starts late or runs slower (a busy host) takes
//! fewer, instead of the others waiting for its half. Results come back in
//! input order, so output stays deterministic whatever the machine.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

/// Chunks per thread: enough that a slower core takes fewer, few enough
/// that handing them out costs nothing.
const CHUNKS_PER_THREAD: usize = 8;

/// Inputs smaller than this run on the calling thread.
const SMALL: usize = 64;

/// Maps `f` over `items` on up to `available_parallelism` threads; small
/// inputs run on the calling thread.
pub fn map<T: Sync, R: Send>(items: &[T], f: impl Fn(usize, &T) -> R + Sync) -> Vec<R> {
    map_chunks(items, |start, part| part.iter().enumerate().map(|(i, t)| f(start + i, t)).collect())
}

/// Splits `items` into chunks (a single one for small inputs) and
/// concatenates what `f` returns for each, in order. `f` gets the index of
/// its chunk's first item.
pub fn map_chunks<T: Sync, R: Send>(items: &[T], f: impl Fn(usize, &[T]) -> Vec<R> + Sync) -> Vec<R> {
    map_chunks_with(items, || (), |(), start, part| f(start, part))
}

/// [`map_chunks`] with a state per thread, made by `init` when the thread
/// takes its first chunk: work that a thread's chunks share (a cache, a
/// buffer) keeps it across them. A thread's chunks come in input order,
/// but not one after another; what `f` returns must not depend on the state.
pub fn map_chunks_with<T: Sync, S, R: Send>(
    items: &[T],
    init: impl Fn() -> S + Sync,
    f: impl Fn(&mut S, usize, &[T]) -> Vec<R> + Sync,
) -> Vec<R> {
    if items.len() < SMALL {
        return collect(|take| run(items, &[0, items.len()], 1, init, f, take));
    }
    map_weighted_chunks(items, |_| 1, init, f)
}

/// [`map_chunks_with`] with chunks of about equal total `weight` rather
/// than equal length, for items whose costs differ widely (files of intents).
pub fn map_weighted_chunks<T: Sync, S, R: Send>(
    items: &[T],
    weight: impl Fn(&T) -> usize,
    init: impl Fn() -> S + Sync,
    f: impl Fn(&mut S, usize, &[T]) -> Vec<R> + Sync,
) -> Vec<R> {
    collect(|take| map_weighted_chunks_into(items, weight, init, f, take))
}

/// [`map_weighted_chunks`] that hands each chunk's results to `take` on
/// the calling thread, in input order, as soon as the chunks before it are
/// done: serial work on the results (merging them) runs while the other
/// threads are still mapping, instead of after them. The calling thread
/// maps chunks too, and takes what is ready between them.
pub fn map_weighted_chunks_into<T: Sync, S, R: Send>(
    items: &[T],
    weight: impl Fn(&T) -> usize,
    init: impl Fn() -> S + Sync,
    f: impl Fn(&mut S, usize, &[T]) -> Vec<R> + Sync,
    take: impl FnMut(Vec<R>),
) {
    run(items, &weighted_cuts(items, weight), threads(), init, f, take);
}

/// Where to cut `items` into chunks of about equal total `weight`: the
/// first item of each chunk, then `items.len()`.
fn weighted_cuts<T>(items: &[T], weight: impl Fn(&T) -> usize) -> Vec<usize> {
    let threads = threads();
    let parts = if threads < 2 { 1 } else { threads * CHUNKS_PER_THREAD };
    let total: usize = items.iter().map(&weight).sum();
    let mut cuts = Vec::with_capacity(parts + 1);
    cuts.push(0);
    let mut sum = 0;
    for (i, item) in items.iter().enumerate() {
        sum += weight(item);
        // Cut after the item that reaches the next share of the total.
        if cuts.len() < parts && sum * parts >= total * cuts.len() && i + 1 < items.len() {
            cuts.push(i + 1);
        }
    }
    cuts.push(items.len());
    cuts
}

/// Runs `elsewhere` on another thread while `here` runs on this one, and
/// returns when both have; a panic in either is re-raised here.
pub fn beside<B>(elsewhere: impl FnOnce() + Send, here: impl FnOnce() -> B) -> B {
    rayon::in_place_scope(|scope| {
        scope.spawn(|_| elsewhere());
        here()
    })
}

/// Frees `value` on another thread: freeing a fleet's worth of small
/// objects takes a few milliseconds of the one thread the next stage waits on.
pub fn free_elsewhere<T: Send + 'static>(value: T) {
    rayon::spawn(move || drop(value));
}

fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()).min(8)
}

/// Concatenates the chunks' results that `run` hands over, in order.
fn collect<R>(run: impl FnOnce(&mut dyn FnMut(Vec<R>))) -> Vec<R> {
    let mut parts = Vec::new();
    run(&mut |part| parts.push(part));
    let mut out = Vec::with_capacity(parts.iter().map(Vec::len).sum());
    for part in parts {
        out.extend(part);
    }
    out
}

/// Runs `f` on each chunk `items[cuts[k]..cuts[k + 1]]` on up to `threads`
/// threads (the calling one and the pool's), each taking the next
/// chunk not yet taken; hands the results to `take` on the calling thread
/// in chunk order, each as soon as it and those before it are done.
fn run<T: Sync, S, R: Send>(
    items: &[T],
    cuts: &[usize],
    threads: usize,
    init: impl Fn() -> S + Sync,
    f: impl Fn(&mut S, usize, &[T]) -> Vec<R> + Sync,
    mut take: impl FnMut(Vec<R>),
) {
    let chunks = cuts.len().saturating_sub(1);
    if chunks < 2 || threads < 2 {
        let mut state = init();
        for k in 0..chunks {
            take(f(&mut state, cuts[k], &items[cuts[k]..cuts[k + 1]]));
        }
        return;
    }
    let next = AtomicUsize::new(0);
    // By chunk number: results done and not yet taken.
    let done: Mutex<Vec<Option<Vec<R>>>> = Mutex::new((0..chunks).map(|_| None).collect());
    let slots = || done.lock().unwrap_or_else(PoisonError::into_inner);
    // Maps the next chunk not yet taken; false when none is left.
    let map_next = |state: &mut Option<S>| {
        let k = next.fetch_add(1, Ordering::Relaxed);
        if k >= chunks {
            return false;
        }
        let part = f(state.get_or_insert_with(&init), cuts[k], &items[cuts[k]..cuts[k + 1]]);
        slots()[k] = Some(part);
        true
    };
    // Hands over the results done in order from chunk `taken` on; the lock is not held while `take` runs.
    let mut hand_over = |taken: &mut usize| {
        while *taken < chunks {
            let Some(part) = slots()[*taken].take() else { break };
            take(part);
            *taken += 1;
        }
    };
    let mut taken = 0;
    // The other threads are the pool's, already started. The scope ends
    // when their jobs have; a panic in one is re-raised here.
    rayon::in_place_scope(|scope| {
        for _ in 1..threads.min(chunks) {
            scope.spawn(|_| {
                let mut state = None;
                while map_next(&mut state) {}
            });
        }
        let mut state = None;
        while map_next(&mut state) {
            hand_over(&mut taken);
        }
    });
    hand_over(&mut taken);
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
        let chunks = super::map_weighted_chunks(&items, |&w| w, || (), |(), start, part| vec![(start, part.to_vec())]);
        let flat: Vec<usize> = chunks.iter().flat_map(|(_, part)| part.iter().copied()).collect();
        assert_eq!(flat, items);
        for (start, part) in &chunks {
            assert_eq!(&items[*start..*start + part.len()], part.as_slice());
        }
        if super::threads() >= 2 {
            assert_eq!(chunks.len(), super::threads() * super::CHUNKS_PER_THREAD);
            assert_eq!(chunks[0].1, vec![1000], "the heavy item is a chunk of its own");
        }
        assert!(super::map_weighted_chunks(&[] as &[usize], |&w| w, || (), |(), _, part| part.to_vec()).is_empty());
        assert_eq!(
            super::map_weighted_chunks(&[5], |&w| w, || (), |(), s, part| vec![(s, part.len())]),
            vec![(0, 1)]
        );
    }

    #[test]
    fn results_are_taken_in_order_on_the_calling_thread_while_others_still_map() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let items: Vec<usize> = (0..1000).collect();
        let main = std::thread::current().id();
        let mapped = AtomicUsize::new(0);
        let (mut taken, mut mapped_at_first_take) = (Vec::new(), None);
        super::map_weighted_chunks_into(
            &items,
            |_| 1,
            || (),
            |(), start, part| {
                // Other threads are slower: whichever thread has the first
                // chunk, it is done long before the calling thread maps the rest.
                let slow = std::thread::current().id() != main;
                std::thread::sleep(std::time::Duration::from_millis(if slow { 5 } else { 2 }));
                mapped.fetch_add(1, Ordering::Relaxed);
                vec![(start, part.to_vec())]
            },
            |parts| {
                assert_eq!(std::thread::current().id(), main, "results taken on another thread");
                mapped_at_first_take.get_or_insert(mapped.load(Ordering::Relaxed));
                taken.extend(parts);
            },
        );
        let flat: Vec<usize> = taken.iter().flat_map(|(_, part)| part.iter().copied()).collect();
        assert_eq!(flat, items, "every item once, in order");
        let chunks = taken.len();
        if super::threads() >= 2 {
            assert_eq!(chunks, super::threads() * super::CHUNKS_PER_THREAD);
            let first = mapped_at_first_take.unwrap_or(chunks);
            assert!(first < chunks, "nothing was taken before every chunk was mapped");
        }
        let mut none = Vec::new();
        super::map_weighted_chunks_into(
            &[] as &[usize],
            |&w| w,
            || (),
            |(), _, part| part.to_vec(),
            |part| none.extend(part),
        );
        assert!(none.is_empty());
    }

    #[test]
    fn a_thread_keeps_its_state_and_takes_its_chunks_in_order() {
        let items: Vec<usize> = (0..1000).collect();
        let inits = std::sync::atomic::AtomicUsize::new(0);
        let seen = super::map_chunks_with(
            &items,
            || {
                inits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Vec::new()
            },
            |taken: &mut Vec<usize>, start, part| {
                assert!(taken.last().is_none_or(|&last| last < start), "chunks out of order on one thread");
                taken.push(start);
                part.iter().map(|&x| x * 3).collect()
            },
        );
        assert_eq!(seen, items.iter().map(|&x| x * 3).collect::<Vec<_>>());
        assert!(inits.into_inner() <= super::threads());
    }

    #[test]
    fn a_slow_thread_takes_fewer_chunks() {
        if super::threads() < 2 {
            return;
        }
        let items: Vec<usize> = (0..1600).collect();
        let main = std::thread::current().id();
        let on_main = super::map_chunks(&items, |_, part| {
            let here = std::thread::current().id() == main;
            if !here {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            vec![here; part.len()]
        });
        let chunk = items.len() / (super::threads() * super::CHUNKS_PER_THREAD);
        let chunks_on_main = on_main.iter().filter(|&&here| here).count() / chunk;
        // Halves fixed in advance would give the calling thread 8 of 16.
        assert!(
            chunks_on_main > super::CHUNKS_PER_THREAD + 2,
            "the calling thread took only {chunks_on_main} chunks"
        );
    }
}
