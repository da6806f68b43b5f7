//! Average-linkage agglomerative clustering with a distance threshold, as
//! `sklearn.cluster.AgglomerativeClustering(n_clusters=None, distance_threshold=t,
//! metric="precomputed", linkage="average")` computes it: scipy's `linkage(method="average")`
//! (the nearest-neighbour-chain algorithm, then a stable sort of the merges by height and a
//! union-find relabelling), `n_clusters = #(heights >= t) + 1`, and scikit-learn's `_hc_cut`,
//! whose labels follow the order of a Python `heapq` list rather than any sorted order.

/// One merge of the dendrogram: the two merged node ids (leaves are `0..n`, merged nodes
/// `n..2n-1` in merge order) and the height.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Merge {
    first: usize,
    second: usize,
    height: f64,
}

/// Index into scipy's condensed distance vector for `i != j`.
fn condensed_index(count: usize, i: usize, j: usize) -> usize {
    let (low, high) = if i < j { (i, j) } else { (j, i) };
    count * low - (low * (low + 1)) / 2 + (high - low - 1)
}

/// scipy's `_hierarchy.nn_chain` for the average method, returning merges in the order found
/// (leaf ids as cluster representatives, not yet relabelled).
fn nearest_neighbor_chain(condensed: &[f64], count: usize) -> Vec<Merge> {
    let mut distances = condensed.to_vec();
    let mut sizes = vec![1usize; count];
    let mut chain: Vec<usize> = Vec::with_capacity(count);
    let mut merges = Vec::with_capacity(count.saturating_sub(1));
    for _ in 0..count.saturating_sub(1) {
        if chain.is_empty()
            && let Some(first_alive) = (0..count).find(|&index| sizes[index] > 0)
        {
            chain.push(first_alive);
        }
        let (mut x, mut y, current_min);
        loop {
            x = chain[chain.len() - 1];
            // scipy prefers the previous element of the chain as the minimum, to avoid cycles.
            let mut best = f64::INFINITY;
            let mut best_index = 0;
            if chain.len() > 1 {
                best_index = chain[chain.len() - 2];
                best = distances[condensed_index(count, x, best_index)];
            }
            for index in 0..count {
                if sizes[index] == 0 || index == x {
                    continue;
                }
                let distance = distances[condensed_index(count, x, index)];
                if distance < best {
                    best = distance;
                    best_index = index;
                }
            }
            y = best_index;
            if chain.len() > 1 && y == chain[chain.len() - 2] {
                current_min = best;
                break;
            }
            chain.push(y);
        }
        chain.truncate(chain.len() - 2);
        if x > y {
            std::mem::swap(&mut x, &mut y);
        }
        let size_x = sizes[x];
        let size_y = sizes[y];
        merges.push(Merge {
            first: x,
            second: y,
            height: current_min,
        });
        sizes[x] = 0;
        sizes[y] = size_x + size_y;
        for index in 0..count {
            let size_index = sizes[index];
            if size_index == 0 || index == y {
                continue;
            }
            let d_xi = distances[condensed_index(count, index, x)];
            let d_yi = distances[condensed_index(count, index, y)];
            distances[condensed_index(count, index, y)] =
                (size_x as f64 * d_xi + size_y as f64 * d_yi) / (size_x + size_y) as f64;
        }
    }
    merges
}

/// scipy's `label`: after the stable sort by height, replaces the representatives of each
/// merge by the ids of the clusters they belong to (union-find; new ids from `count` up),
/// smaller id first.
fn relabel(merges: &mut [Merge], count: usize) {
    let mut parent: Vec<usize> = (0..2 * count).collect();
    let mut next_label = count;
    let find = |parent: &mut Vec<usize>, mut node: usize| {
        let mut root = node;
        while parent[root] != root {
            root = parent[root];
        }
        while parent[node] != root {
            let next = parent[node];
            parent[node] = root;
            node = next;
        }
        root
    };
    for merge in merges.iter_mut() {
        let root_first = find(&mut parent, merge.first);
        let root_second = find(&mut parent, merge.second);
        if root_first < root_second {
            merge.first = root_first;
            merge.second = root_second;
        } else {
            merge.first = root_second;
            merge.second = root_first;
        }
        parent[root_first] = next_label;
        parent[root_second] = next_label;
        next_label += 1;
    }
}

/// Python's `heapq._siftdown`.
fn sift_down(heap: &mut [i64], start: usize, mut position: usize) {
    let item = heap[position];
    while position > start {
        let parent_position = (position - 1) >> 1;
        let parent = heap[parent_position];
        if item < parent {
            heap[position] = parent;
            position = parent_position;
            continue;
        }
        break;
    }
    heap[position] = item;
}

/// Python's `heapq._siftup`.
fn sift_up(heap: &mut [i64], mut position: usize) {
    let end = heap.len();
    let start = position;
    let item = heap[position];
    let mut child = 2 * position + 1;
    while child < end {
        let right = child + 1;
        if right < end && heap[child] >= heap[right] {
            child = right;
        }
        heap[position] = heap[child];
        position = child;
        child = 2 * position + 1;
    }
    heap[position] = item;
    sift_down(heap, start, position);
}

/// Python's `heapq.heappush`.
fn heap_push(heap: &mut Vec<i64>, item: i64) {
    heap.push(item);
    let last = heap.len() - 1;
    sift_down(heap, 0, last);
}

/// Python's `heapq.heappushpop`.
fn heap_push_pop(heap: &mut [i64], item: i64) -> i64 {
    if let Some(&smallest) = heap.first()
        && smallest < item
    {
        heap[0] = item;
        sift_up(heap, 0);
        return smallest;
    }
    item
}

/// scikit-learn's `_hc_cut`: expands the `cluster_count - 1` highest nodes of the tree with a
/// heap of negated node ids and labels the leaves under each remaining heap entry by its
/// position in the heap list. `children[m]` are the two node ids merged into node
/// `leaf_count + m`.
pub fn python_heap_cut(
    cluster_count: usize,
    children: &[(usize, usize)],
    leaf_count: usize,
) -> Vec<usize> {
    let Some(&(root_first, root_second)) = children.last() else {
        return vec![0; leaf_count];
    };
    let mut nodes: Vec<i64> = vec![-((root_first.max(root_second) + 1) as i64)];
    for _ in 1..cluster_count {
        let expanded = (-nodes[0]) as usize - leaf_count;
        let (first, second) = children[expanded];
        heap_push(&mut nodes, -(first as i64));
        heap_push_pop(&mut nodes, -(second as i64));
    }
    let mut labels = vec![0usize; leaf_count];
    for (label, node) in nodes.iter().enumerate() {
        let mut stack = vec![(-node) as usize];
        while let Some(current) = stack.pop() {
            if current < leaf_count {
                labels[current] = label;
            } else {
                let (first, second) = children[current - leaf_count];
                stack.push(first);
                stack.push(second);
            }
        }
    }
    labels
}

/// Cluster labels of `count` points from their full distance matrix (only the upper triangle
/// is read, as scikit-learn passes `X[triu_indices(n, 1)]` to scipy).
pub fn average_linkage_labels(distance_matrix: &[Vec<f64>], threshold: f64) -> Vec<usize> {
    let count = distance_matrix.len();
    if count < 2 {
        return vec![0; count];
    }
    let mut condensed = Vec::with_capacity(count * (count - 1) / 2);
    for (i, row) in distance_matrix.iter().enumerate() {
        condensed.extend_from_slice(&row[i + 1..]);
    }
    let mut merges = nearest_neighbor_chain(&condensed, count);
    // numpy's `argsort(kind="mergesort")` is stable; so is `sort_by`.
    merges.sort_by(|a, b| a.height.total_cmp(&b.height));
    relabel(&mut merges, count);
    let cluster_count = merges
        .iter()
        .filter(|merge| merge.height >= threshold)
        .count()
        + 1;
    let children: Vec<(usize, usize)> = merges
        .iter()
        .map(|merge| (merge.first, merge.second))
        .collect();
    python_heap_cut(cluster_count, &children, count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matrix(points: &[f64]) -> Vec<Vec<f64>> {
        points
            .iter()
            .map(|a| points.iter().map(|b| (a - b).abs()).collect())
            .collect()
    }

    #[test]
    fn two_far_groups_make_two_clusters() {
        let labels = average_linkage_labels(&matrix(&[0.0, 0.1, 5.0, 5.1, 0.2]), 0.5);
        assert_eq!(labels[0], labels[1]);
        assert_eq!(labels[0], labels[4]);
        assert_eq!(labels[2], labels[3]);
        assert_ne!(labels[0], labels[2]);
    }

    #[test]
    fn everything_close_is_one_cluster() {
        assert_eq!(
            average_linkage_labels(&matrix(&[0.0, 0.1, 0.2]), 0.5),
            vec![0, 0, 0]
        );
    }

    #[test]
    fn labels_follow_the_heap_order() {
        // Three leaves, merges: node 3 = (0, 1), node 4 = (2, 3); cut into 3 clusters.
        // Heap: [-4] -> push -2, pushpop -3 -> [-3, -2] -> expand 3: push -0, pushpop -1
        // -> heap list [-2, -1, 0]: leaf 2 -> label 0, leaf 1 -> label 1, leaf 0 -> label 2.
        assert_eq!(python_heap_cut(3, &[(0, 1), (2, 3)], 3), vec![2, 1, 0]);
    }
}
