//! Numbered items grouped by a small key in one pass, each group in the
//! items' own order: lowering groups halves by namespace, lint groups flows
//! by peer.

/// `items` in order of `key` (each below `keys`), those of one key in their
/// order (a counting sort), and where each key's items start: key `k`'s
/// are `sorted[starts[k]..starts[k + 1]]`.
pub(crate) fn by_key(items: impl Iterator<Item = usize> + Clone, key: impl Fn(usize) -> usize, keys: usize) -> (Vec<usize>, Vec<usize>) {
    let mut starts = vec![0; keys + 1];
    for item in items.clone() {
        starts[key(item) + 1] += 1;
    }
    for k in 0..keys {
        starts[k + 1] += starts[k];
    }
    let mut next = starts.clone();
    let mut sorted = vec![0; starts[keys]];
    for item in items {
        let k = key(item);
        sorted[next[k]] = item;
        next[k] += 1;
    }
    (sorted, starts)
}

#[cfg(test)]
mod tests {
    #[test]
    fn groups_keep_the_items_order() {
        let keys = [2, 0, 2, 1, 0, 2];
        let (sorted, starts) = super::by_key(0..keys.len(), |i| keys[i], 4);
        assert_eq!(sorted, [1, 4, 3, 0, 2, 5]);
        assert_eq!(starts, [0, 2, 3, 6, 6]);
    }
}
