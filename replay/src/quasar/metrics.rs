//! The LongBench-derived answer metrics of QUASAR (`quasar/benchmarks/metrics.py`,
//! specs/scoring.md section 3.7), reproduced on Python's string semantics.
//!
//! Python strings are sequences of code points, so every length, index and comparison here
//! works on `char`s, never on UTF-8 bytes.

use std::collections::{BTreeMap, BTreeSet};

use crate::MechanismError;

/// The metric a dataset is scored with (`dataset2metric`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Token-multiset F1 over normalised answers.
    QuestionAnsweringF1,
    /// `rouge` 1.0.1 summary-level ROUGE-L F measure.
    RougeL,
    /// Class-name substring matching, with upstream's remove-while-iterating loop.
    Classification,
    /// Fraction of numbers in the prediction equal to the gold paragraph number.
    Retrieval,
    /// Fraction of numbers in the prediction equal to the gold count.
    Count,
    /// fuzzywuzzy `fuzz.ratio` of the first code line, divided by 100.
    CodeSimilarity,
    /// OpenAI MRCR: hash prefix check, then `difflib.SequenceMatcher` ratio.
    MrcrMatch,
}

/// Datasets whose metric tokenises Chinese text with jieba (or is otherwise a Chinese variant),
/// which this crate does not implement.
const CHINESE_DATASETS: [&str; 4] = [
    "multifieldqa_zh",
    "dureader",
    "vcsum",
    "passage_retrieval_zh",
];

/// Looks up a dataset's metric. Unknown datasets fall back to the narrativeqa metric (qa F1)
/// as upstream does; the Chinese variants are refused because jieba's segmentation is not
/// reproduced here.
pub fn metric_for_dataset(dataset: &str) -> Result<Metric, MechanismError> {
    if CHINESE_DATASETS.contains(&dataset) {
        return Err(MechanismError::invalid(format!(
            "dataset `{dataset}` uses a Chinese metric (jieba tokenisation or the Chinese \
             retrieval pattern), which is not implemented"
        )));
    }
    Ok(match dataset {
        "openai_mrcr_code" => Metric::MrcrMatch,
        "gov_report" | "qmsum" | "multi_news" | "samsum" => Metric::RougeL,
        "trec" | "lsht" => Metric::Classification,
        "passage_retrieval_en" => Metric::Retrieval,
        "passage_count" => Metric::Count,
        "lcc" | "repobench-p" => Metric::CodeSimilarity,
        // narrativeqa, qasper, multifieldqa_en, hotpotqa, 2wikimqa, musique, triviaqa and
        // every unknown name.
        _ => Metric::QuestionAnsweringF1,
    })
}

/// Scores one prediction against its ground truth with the dataset's metric.
///
/// `all_classes` is only read by the classification metric; upstream passes it only when it
/// is non-empty, and the metric treats a missing list as empty.
pub fn score(
    dataset: &str,
    prediction: &str,
    ground_truth: &str,
    all_classes: &[String],
) -> Result<f64, MechanismError> {
    Ok(match metric_for_dataset(dataset)? {
        Metric::QuestionAnsweringF1 => question_answering_f1(prediction, ground_truth),
        Metric::RougeL => rouge_l(prediction, ground_truth),
        Metric::Classification => classification(prediction, ground_truth, all_classes),
        Metric::Retrieval => retrieval(prediction, ground_truth),
        Metric::Count => count(prediction, ground_truth),
        Metric::CodeSimilarity => code_similarity(prediction, ground_truth),
        Metric::MrcrMatch => mrcr_match(prediction, ground_truth),
    })
}

/// Python's `str.isspace`: Rust's `char::is_whitespace` plus the four ASCII information
/// separators U+001C..U+001F, which Python also treats as whitespace.
pub fn is_python_space(character: char) -> bool {
    character.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&character)
}

/// Python's `str.split()` without arguments: runs of whitespace separate, empty pieces dropped.
fn python_split(text: &str) -> Vec<&str> {
    text.split(is_python_space)
        .filter(|piece| !piece.is_empty())
        .collect()
}

/// Python's `str.strip()` without arguments.
fn python_strip(text: &str) -> &str {
    text.trim_matches(is_python_space)
}

/// Whether a character is a word character for Python's `re` on a `str` pattern (`\w`):
/// letters, digits and the underscore, in Unicode.
fn is_word_character(character: char) -> bool {
    character.is_alphanumeric() || character == '_'
}

/// LongBench `normalize_answer`: lower-case, drop ASCII punctuation, replace the articles
/// `a`/`an`/`the` standing as whole words by a space, then collapse whitespace.
pub fn normalize_answer(text: &str) -> String {
    let lowered = text.to_lowercase();
    let without_punctuation: Vec<char> = lowered
        .chars()
        .filter(|character| !character.is_ascii_punctuation())
        .collect();
    let without_articles = remove_articles(&without_punctuation);
    python_split(&without_articles).join(" ")
}

/// `re.sub(r"\b(a|an|the)\b", " ", text)`: scanning left to right, an article matches where a
/// word boundary precedes it and follows it; the alternatives are tried in the order a, an,
/// the, which only matters for "a" versus "an" (at most one of them can end on a boundary).
fn remove_articles(characters: &[char]) -> String {
    const ARTICLES: [&str; 3] = ["a", "an", "the"];
    let mut output = String::with_capacity(characters.len());
    let mut position = 0;
    while position < characters.len() {
        let boundary_before = position == 0 || !is_word_character(characters[position - 1]);
        let mut matched_length = None;
        if boundary_before {
            for article in ARTICLES {
                let length = article.chars().count();
                let end = position + length;
                if end > characters.len() {
                    continue;
                }
                let equal = characters[position..end]
                    .iter()
                    .copied()
                    .eq(article.chars());
                let boundary_after = end == characters.len() || !is_word_character(characters[end]);
                if equal && boundary_after {
                    matched_length = Some(length);
                    break;
                }
            }
        }
        match matched_length {
            Some(length) => {
                output.push(' ');
                position += length;
            }
            None => {
                output.push(characters[position]);
                position += 1;
            }
        }
    }
    output
}

/// `qa_f1_score`: F1 of the multiset overlap of normalised whitespace tokens; 0 without any
/// common token.
pub fn question_answering_f1(prediction: &str, ground_truth: &str) -> f64 {
    let normalized_prediction = normalize_answer(prediction);
    let normalized_ground_truth = normalize_answer(ground_truth);
    let prediction_tokens = python_split(&normalized_prediction);
    let ground_truth_tokens = python_split(&normalized_ground_truth);
    token_f1(&prediction_tokens, &ground_truth_tokens)
}

/// `f1_score` over token lists (`Counter(prediction) & Counter(ground_truth)`).
fn token_f1(prediction: &[&str], ground_truth: &[&str]) -> f64 {
    let mut prediction_counts: BTreeMap<&str, usize> = BTreeMap::new();
    for token in prediction {
        *prediction_counts.entry(token).or_insert(0) += 1;
    }
    let mut ground_truth_counts: BTreeMap<&str, usize> = BTreeMap::new();
    for token in ground_truth {
        *ground_truth_counts.entry(token).or_insert(0) += 1;
    }
    let same: usize = prediction_counts
        .iter()
        .map(|(token, count)| (*count).min(ground_truth_counts.get(token).copied().unwrap_or(0)))
        .sum();
    if same == 0 {
        return 0.0;
    }
    let precision = 1.0 * same as f64 / prediction.len() as f64;
    let recall = 1.0 * same as f64 / ground_truth.len() as f64;
    (2.0 * precision * recall) / (precision + recall)
}

/// `classification_score`, including upstream's loop that removes matches which are proper
/// substrings of the gold class while iterating over the same list: after each removal the
/// element that moves into the removed slot is skipped, and `list.remove` drops the first
/// equal element. Both quirks are reproduced literally.
pub fn classification(prediction: &str, ground_truth: &str, all_classes: &[String]) -> f64 {
    let mut matches: Vec<&str> = all_classes
        .iter()
        .map(String::as_str)
        .filter(|class_name| prediction.contains(class_name))
        .collect();
    let mut index = 0;
    while index < matches.len() {
        let term = matches[index];
        if ground_truth.contains(term)
            && term != ground_truth
            && let Some(first) = matches.iter().position(|other| *other == term)
        {
            matches.remove(first);
        }
        index += 1;
    }
    if matches.contains(&ground_truth) {
        1.0 / matches.len() as f64
    } else {
        0.0
    }
}

/// `re.findall(r"\d+", text)` restricted to ASCII digits (see the module's deviation note in
/// `mod.rs`: Python also matches other Unicode decimal digits).
fn digit_runs(text: &str) -> Vec<&str> {
    let mut runs = Vec::new();
    let mut start = None;
    for (offset, character) in text.char_indices() {
        match (character.is_ascii_digit(), start) {
            (true, None) => start = Some(offset),
            (false, Some(begin)) => {
                runs.push(&text[begin..offset]);
                start = None;
            }
            _ => {}
        }
    }
    if let Some(begin) = start {
        runs.push(&text[begin..]);
    }
    runs
}

/// Fraction of the prediction's numbers equal to `target`; 0 when it has none.
fn fraction_equal(prediction: &str, target: &str) -> f64 {
    let numbers = digit_runs(prediction);
    if numbers.is_empty() {
        return 0.0;
    }
    let right = numbers.iter().filter(|number| **number == target).count();
    right as f64 / numbers.len() as f64
}

/// `count_score`: the gold string is compared whole with every number of the prediction.
pub fn count(prediction: &str, ground_truth: &str) -> f64 {
    fraction_equal(prediction, ground_truth)
}

/// `retrieval_score`: the gold id is the first `Paragraph (\d+)` of the ground truth (0.0 when
/// there is none, as upstream's metrics.py guards).
pub fn retrieval(prediction: &str, ground_truth: &str) -> f64 {
    const PREFIX: &str = "Paragraph ";
    let mut search_from = 0;
    while let Some(found) = ground_truth[search_from..].find(PREFIX) {
        let digits_start = search_from + found + PREFIX.len();
        let digits_length = ground_truth[digits_start..]
            .chars()
            .take_while(char::is_ascii_digit)
            .count();
        if digits_length > 0 {
            let identifier = &ground_truth[digits_start..digits_start + digits_length];
            return fraction_equal(prediction, identifier);
        }
        search_from = search_from + found + 1;
    }
    0.0
}

/// `code_sim_score`: the first line (after leading newlines are stripped) containing none of
/// `` ` ``, `#`, `//`; the whole prediction when no such line is non-empty; then
/// `fuzz.ratio(line, ground_truth) / 100`.
pub fn code_similarity(prediction: &str, ground_truth: &str) -> f64 {
    let stripped = prediction.trim_start_matches('\n');
    let mut chosen = "";
    for line in stripped.split('\n') {
        if !line.contains('`') && !line.contains('#') && !line.contains("//") {
            chosen = line;
            break;
        }
    }
    if chosen.is_empty() {
        chosen = prediction;
    }
    fuzz_ratio(chosen, ground_truth) as f64 / 100.0
}

/// fuzzywuzzy `fuzz.ratio` with python-Levenshtein installed: equal strings give 100, an
/// empty side gives 0 (checked in that order), otherwise
/// `round(100 * (1 - (|a| + |b| - 2 * LCS) / (|a| + |b|)))` with Python's half-to-even
/// rounding.
pub fn fuzz_ratio(first: &str, second: &str) -> u32 {
    if first == second {
        return 100;
    }
    if first.is_empty() || second.is_empty() {
        return 0;
    }
    let first_characters: Vec<char> = first.chars().collect();
    let second_characters: Vec<char> = second.chars().collect();
    let common = longest_common_subsequence_length(&first_characters, &second_characters);
    let total = first_characters.len() + second_characters.len();
    // python-Levenshtein is unpinned (`>=0.12.2`); a current install (0.2x, built on
    // rapidfuzz) computes `1 - indel_distance / lensum` with indel distance
    // `lensum - 2 * LCS`. That differs in the last bit from `2 * LCS / lensum` and so can
    // move an exact .5 before rounding (e.g. 2 / 80 gives 3, not 2); checked against
    // Levenshtein 0.27.
    let distance = total - 2 * common;
    let similarity = 1.0 - distance as f64 / total as f64;
    crate::numeric::round_half_even(100.0 * similarity) as u32
}

/// Length of a longest common subsequence, with one rolling row of the usual table.
fn longest_common_subsequence_length<T: PartialEq>(first: &[T], second: &[T]) -> usize {
    let mut previous = vec![0usize; second.len() + 1];
    let mut current = vec![0usize; second.len() + 1];
    for item in first {
        for (column, other) in second.iter().enumerate() {
            current[column + 1] = if item == other {
                previous[column] + 1
            } else {
                previous[column + 1].max(current[column])
            };
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[second.len()]
}

/// The sentences `rouge` 1.0.1 splits a text into: pieces between `.`, empty pieces dropped,
/// each piece's whitespace runs collapsed to one space (a whitespace-only piece survives as
/// an empty sentence, as upstream).
fn rouge_sentences(text: &str) -> Vec<String> {
    text.split('.')
        .filter(|piece| !piece.is_empty())
        .map(|piece| python_split(piece).join(" "))
        .collect()
}

/// `rouge_score`: `Rouge().get_scores([prediction], [ground_truth], avg=True)["rouge-l"]["f"]`,
/// the summary-level LCS with `exclusive=True`; 0.0 where upstream raises (a text without any
/// sentence). Upstream's RecursionError on sentence pairs longer than about 1000 words is not
/// emulated (the backtrack here is iterative).
pub fn rouge_l(prediction: &str, ground_truth: &str) -> f64 {
    let candidate = rouge_sentences(prediction);
    let reference = rouge_sentences(ground_truth);
    if candidate.is_empty() || reference.is_empty() {
        return 0.0;
    }
    // Words are split on single spaces, so an empty sentence contributes the empty word.
    let split_words = |sentence: &String| -> Vec<String> {
        sentence.split(' ').map(str::to_string).collect::<Vec<_>>()
    };
    let candidate_words: Vec<Vec<String>> = candidate.iter().map(split_words).collect();
    let reference_words: Vec<Vec<String>> = reference.iter().map(split_words).collect();
    let distinct_reference: BTreeSet<&String> = reference_words.iter().flatten().collect();
    let distinct_candidate: BTreeSet<&String> = candidate_words.iter().flatten().collect();
    let mut union: BTreeSet<&String> = BTreeSet::new();
    for reference_sentence in &reference_words {
        for candidate_sentence in &candidate_words {
            union.extend(reconstruct_lcs(reference_sentence, candidate_sentence));
        }
    }
    let combined = union.len() as f64;
    let recall = combined / distinct_reference.len() as f64;
    let precision = combined / distinct_candidate.len() as f64;
    2.0 * ((precision * recall) / (precision + recall + 1e-8))
}

/// `rouge.rouge_score._recon_lcs`: the words of one LCS of `reference` and `candidate`, found
/// by walking the full table back from its corner: a match goes diagonally, otherwise up when
/// `T[i-1][j] > T[i][j-1]`, else left.
fn reconstruct_lcs<'a>(reference: &'a [String], candidate: &[String]) -> Vec<&'a String> {
    let rows = reference.len();
    let columns = candidate.len();
    let width = columns + 1;
    // u32 cells halve the table of long sentence pairs; no sentence has 2^32 words.
    let mut table = vec![0u32; (rows + 1) * width];
    for row in 1..=rows {
        for column in 1..=columns {
            table[row * width + column] = if reference[row - 1] == candidate[column - 1] {
                table[(row - 1) * width + column - 1] + 1
            } else {
                table[(row - 1) * width + column].max(table[row * width + column - 1])
            };
        }
    }
    let mut words = Vec::new();
    let (mut row, mut column) = (rows, columns);
    while row > 0 && column > 0 {
        if reference[row - 1] == candidate[column - 1] {
            words.push(&reference[row - 1]);
            row -= 1;
            column -= 1;
        } else if table[(row - 1) * width + column] > table[row * width + column - 1] {
            row -= 1;
        } else {
            column -= 1;
        }
    }
    words
}

/// Characters of the hash prefix an MRCR answer must repeat.
const MRCR_HASH_CHARACTERS: usize = 10;

/// `mrcr_match_score`: 0 for an empty side or a differing 10-character prefix, else
/// `difflib.SequenceMatcher(None, prediction[10:].strip(), ground_truth[10:].strip()).ratio()`.
pub fn mrcr_match(prediction: &str, ground_truth: &str) -> f64 {
    if prediction.is_empty() || ground_truth.is_empty() {
        return 0.0;
    }
    let prediction_characters: Vec<char> = prediction.chars().collect();
    let ground_truth_characters: Vec<char> = ground_truth.chars().collect();
    let prefix_length = |characters: &[char]| characters.len().min(MRCR_HASH_CHARACTERS);
    if prediction_characters[..prefix_length(&prediction_characters)]
        != ground_truth_characters[..prefix_length(&ground_truth_characters)]
    {
        return 0.0;
    }
    let rest = |characters: &[char]| -> Vec<char> {
        let tail: String = characters[prefix_length(characters)..].iter().collect();
        python_strip(&tail).chars().collect()
    };
    sequence_matcher_ratio(
        &rest(&prediction_characters),
        &rest(&ground_truth_characters),
    )
}

/// `difflib.SequenceMatcher(None, a, b).ratio()` (autojunk on, no junk function):
/// `2 * matched / (|a| + |b|)`, 1.0 for two empty sequences.
pub fn sequence_matcher_ratio(first: &[char], second: &[char]) -> f64 {
    let total = first.len() + second.len();
    if total == 0 {
        return 1.0;
    }
    let matched: usize = matching_blocks(first, second)
        .iter()
        .map(|block| block.2)
        .sum();
    2.0 * matched as f64 / total as f64
}

/// Sequences this long or longer get difflib's "popular element" heuristic.
const AUTOJUNK_MINIMUM_LENGTH: usize = 200;

/// difflib's `get_matching_blocks` (without the final merge of adjacent blocks, which does not
/// change the matched total): recursive longest-match splitting, driven by a stack as
/// upstream's queue is.
fn matching_blocks(first: &[char], second: &[char]) -> Vec<(usize, usize, usize)> {
    // b2j: positions of every element of `second`; popular elements (more than 1% + 1 of a
    // long sequence) are purged, as autojunk does.
    let mut positions: BTreeMap<char, Vec<usize>> = BTreeMap::new();
    for (index, character) in second.iter().enumerate() {
        positions.entry(*character).or_default().push(index);
    }
    if second.len() >= AUTOJUNK_MINIMUM_LENGTH {
        let threshold = second.len() / 100 + 1;
        positions.retain(|_, indices| indices.len() <= threshold);
    }
    let mut blocks = Vec::new();
    let mut queue = vec![(0, first.len(), 0, second.len())];
    while let Some((first_low, first_high, second_low, second_high)) = queue.pop() {
        let (i, j, size) = find_longest_match(
            first,
            second,
            &positions,
            (first_low, first_high),
            (second_low, second_high),
        );
        if size > 0 {
            blocks.push((i, j, size));
            if first_low < i && second_low < j {
                queue.push((first_low, i, second_low, j));
            }
            if i + size < first_high && j + size < second_high {
                queue.push((i + size, first_high, j + size, second_high));
            }
        }
    }
    blocks.sort_unstable();
    blocks
}

/// difflib's `find_longest_match` with no junk: the longest block found through the purged
/// index (earliest in `first`, then in `second`, on ties), then extended over equal
/// neighbours, which may be popular elements.
fn find_longest_match(
    first: &[char],
    second: &[char],
    positions: &BTreeMap<char, Vec<usize>>,
    (first_low, first_high): (usize, usize),
    (second_low, second_high): (usize, usize),
) -> (usize, usize, usize) {
    let (mut best_i, mut best_j, mut best_size) = (first_low, second_low, 0usize);
    let mut lengths: BTreeMap<usize, usize> = BTreeMap::new();
    for (i, character) in first.iter().enumerate().take(first_high).skip(first_low) {
        let mut new_lengths: BTreeMap<usize, usize> = BTreeMap::new();
        if let Some(indices) = positions.get(character) {
            for &j in indices {
                if j < second_low {
                    continue;
                }
                if j >= second_high {
                    break;
                }
                let previous = if j == 0 {
                    0
                } else {
                    lengths.get(&(j - 1)).copied().unwrap_or(0)
                };
                let length = previous + 1;
                new_lengths.insert(j, length);
                if length > best_size {
                    best_i = i + 1 - length;
                    best_j = j + 1 - length;
                    best_size = length;
                }
            }
        }
        lengths = new_lengths;
    }
    while best_i > first_low && best_j > second_low && first[best_i - 1] == second[best_j - 1] {
        best_i -= 1;
        best_j -= 1;
        best_size += 1;
    }
    while best_i + best_size < first_high
        && best_j + best_size < second_high
        && first[best_i + best_size] == second[best_j + best_size]
    {
        best_size += 1;
    }
    (best_i, best_j, best_size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn articles_are_whole_words_only() {
        assert_eq!(
            normalize_answer("The Answer, an apple & a banana!"),
            "answer apple banana"
        );
        assert_eq!(normalize_answer("theatre another"), "theatre another");
        assert_eq!(normalize_answer("  "), "");
    }

    #[test]
    fn f1_counts_multisets() {
        let score = question_answering_f1(
            "index response country country index",
            "the index country planet response 395",
        );
        assert!((score - 0.6).abs() < 1e-15);
        assert_eq!(question_answering_f1("", "anything"), 0.0);
    }

    #[test]
    fn classification_skips_the_element_after_a_removal() {
        let classes: Vec<String> = ["Country", "Count", "Coun"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        // Matches: [Country, Count, Coun]; gold "Country": "Country" stays (equal), "Count"
        // is removed and "Coun" slides into its slot and is skipped -> 2 matches left.
        assert_eq!(classification("Country", "Country", &classes), 0.5);
    }

    #[test]
    fn rouge_matches_a_hand_computed_case() {
        let score = rouge_l("Spending fell sharply.", "Budget rose. Spending fell.");
        let precision = 2.0 / 3.0;
        let recall = 0.5;
        let expected = 2.0 * ((precision * recall) / (precision + recall + 1e-8));
        assert_eq!(score, expected);
        assert_eq!(rouge_l("", "Budget rose."), 0.0);
        assert_eq!(rouge_l("...", "Budget rose."), 0.0);
    }

    #[test]
    fn fuzz_ratio_rounds_half_to_even() {
        assert_eq!(fuzz_ratio("abc", "abc"), 100);
        assert_eq!(fuzz_ratio("", ""), 100);
        assert_eq!(fuzz_ratio("abc", ""), 0);
        // LCS("abcd", "abxd") = 3 -> 2*3/8 = 0.75 -> 75.
        assert_eq!(fuzz_ratio("abcd", "abxd"), 75);
        // LCS 1 over 80 characters: 1 - 78/80 = 0.025000000000000022 -> 2.5000000000000022
        // -> 3 (Levenshtein 0.27); 2/80 would round half to even to 2.
        let long = format!("{}.", "x".repeat(77));
        assert_eq!(fuzz_ratio("!.", &long), 3);
    }

    #[test]
    fn sequence_matcher_agrees_with_difflib_examples() {
        // difflib docs: SequenceMatcher(None, "abcd", "bcde").ratio() == 0.75.
        let a: Vec<char> = "abcd".chars().collect();
        let b: Vec<char> = "bcde".chars().collect();
        assert_eq!(sequence_matcher_ratio(&a, &b), 0.75);
        // SequenceMatcher(None, "private Thread currentThread;",
        // "private volatile Thread currentThread;") -> 0.8656716417910447 (docs, junk-free).
        let a: Vec<char> = "private Thread currentThread;".chars().collect();
        let b: Vec<char> = "private volatile Thread currentThread;".chars().collect();
        assert!((sequence_matcher_ratio(&a, &b) - 58.0 / 67.0).abs() < 1e-15);
    }
}
