//! The heuristic quality signals of `ConsensusEngine` (information density, specificity,
//! coherence), used when no Tier-4 composite is given.
//!
//! Python's `str.split()`, `str.lower()`, `str.isupper()` and the `re` patterns `\d+`,
//! `[.!?]+` and `[;:]` are reproduced on Unicode scalar values. One known difference: Python's
//! `\d` matches decimal digits (category Nd) only, while this module counts every character
//! Rust calls numeric outside ASCII (Nd, Nl and No, e.g. `²`), because the standard library has
//! no Nd test; ASCII text is unaffected.

/// Words that carry no meaning of their own (`ConsensusEngine.FILLER_WORDS`).
const FILLER_WORDS: &[&str] = &[
    "the",
    "a",
    "an",
    "and",
    "or",
    "but",
    "in",
    "on",
    "at",
    "to",
    "for",
    "of",
    "with",
    "by",
    "from",
    "up",
    "about",
    "into",
    "through",
    "during",
    "is",
    "are",
    "was",
    "were",
    "be",
    "been",
    "being",
    "have",
    "has",
    "had",
    "do",
    "does",
    "did",
    "will",
    "would",
    "could",
    "should",
    "may",
    "might",
    "can",
    "this",
    "that",
    "these",
    "those",
    "it",
    "its",
    "very",
    "more",
    "some",
    "any",
    "all",
    "each",
    "every",
    "both",
    "few",
    "many",
    "much",
    "such",
    "only",
    "own",
    "other",
    "than",
    "then",
    "them",
    "there",
    "various",
    "important",
    "significant",
    "relevant",
    "considerations",
    "aspects",
    "factors",
    "elements",
    "components",
    "matters",
    "issues",
];

/// Words longer than this many characters count as technical terms.
const LONG_WORD_CHARACTERS: usize = 8;

/// Content words are longer than this many characters.
const SHORT_WORD_CHARACTERS: usize = 3;

/// Python's `str.isspace()` for one character: Unicode White_Space plus the four ASCII
/// information separators (U+001C..U+001F) that Python also treats as whitespace.
fn is_python_whitespace(character: char) -> bool {
    character.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&character)
}

/// Python's `str.split()` with no argument.
pub fn python_split(text: &str) -> Vec<&str> {
    text.split(is_python_whitespace)
        .filter(|word| !word.is_empty())
        .collect()
}

/// Python's `str.strip()` with no argument.
pub fn python_strip(text: &str) -> &str {
    text.trim_matches(is_python_whitespace)
}

/// `re.split(r'[.!?]+', text)`: pieces between runs of sentence punctuation, keeping empty
/// pieces (at the start, at the end) as Python does.
fn split_sentences(text: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut in_run = false;
    for (position, character) in text.char_indices() {
        let is_terminator = matches!(character, '.' | '!' | '?');
        if is_terminator && !in_run {
            pieces.push(&text[start..position]);
            in_run = true;
        } else if !is_terminator && in_run {
            start = position;
            in_run = false;
        }
    }
    if in_run {
        pieces.push("");
    } else {
        pieces.push(&text[start..]);
    }
    pieces
}

fn is_filler(word: &str) -> bool {
    FILLER_WORDS.contains(&word)
}

fn character_count(word: &str) -> usize {
    word.chars().count()
}

/// `_measure_information_density`: the share of lower-cased tokens longer than 3 characters
/// that are not filler words; 0 for an empty text.
pub fn information_density(text: &str) -> f64 {
    let lowered = text.to_lowercase();
    let tokens = python_split(&lowered);
    if tokens.is_empty() {
        return 0.0;
    }
    let content = tokens
        .iter()
        .filter(|word| character_count(word) > SHORT_WORD_CHARACTERS && !is_filler(word))
        .count();
    content as f64 / tokens.len() as f64
}

/// `_measure_specificity`: digits, capitalised words after the first of a sentence, the share
/// of long words and structuring punctuation, capped at 1.
pub fn specificity(text: &str) -> f64 {
    let mut score = 0.0;
    if text.chars().any(|character| {
        character.is_ascii_digit() || (!character.is_ascii() && character.is_numeric())
    }) {
        score += 0.3;
    }
    let mut proper_nouns = 0usize;
    for sentence in split_sentences(text) {
        for word in python_split(sentence).iter().skip(1) {
            if word.chars().next().is_some_and(char::is_uppercase) {
                proper_nouns += 1;
            }
        }
    }
    if proper_nouns > 0 {
        score += f64::min(0.3, proper_nouns as f64 * 0.1);
    }
    let words = python_split(text);
    if !words.is_empty() {
        let long_words = words
            .iter()
            .filter(|word| character_count(word) > LONG_WORD_CHARACTERS)
            .count();
        let long_word_ratio = long_words as f64 / words.len() as f64;
        score += f64::min(0.2, long_word_ratio * 2.0);
    }
    if text.contains([';', ':']) {
        score += 0.2;
    }
    f64::min(1.0, score)
}

/// `_measure_coherence`: 0.5, +0.3 for a mean of 5..=30 words per sentence (or -0.2 below 3),
/// +0.2 for more than one sentence, clipped to [0, 1]; 0 when there is no sentence at all.
pub fn coherence(text: &str) -> f64 {
    let sentences: Vec<&str> = split_sentences(text)
        .into_iter()
        .map(python_strip)
        .filter(|sentence| !sentence.is_empty())
        .collect();
    if sentences.is_empty() {
        return 0.0;
    }
    let mut score: f64 = 0.5;
    let total_words: usize = sentences
        .iter()
        .map(|sentence| python_split(sentence).len())
        .sum();
    let mean_words = total_words as f64 / sentences.len() as f64;
    if (5.0..=30.0).contains(&mean_words) {
        score += 0.3;
    } else if mean_words < 3.0 {
        score -= 0.2;
    }
    if sentences.len() > 1 {
        score += 0.2;
    }
    score.clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_split_like_python_re_split() {
        assert_eq!(split_sentences("a. b!? c"), vec!["a", " b", " c"]);
        assert_eq!(split_sentences("end."), vec!["end", ""]);
        assert_eq!(split_sentences("...x"), vec!["", "x"]);
        assert_eq!(split_sentences(""), vec![""]);
    }

    #[test]
    fn density_counts_long_non_filler_words() {
        // "the" (filler), "quick" (content), "aspects" (filler), "fox" (short).
        assert_eq!(information_density("The quick aspects fox"), 0.25);
        assert_eq!(information_density("   "), 0.0);
    }

    #[test]
    fn specificity_adds_its_parts() {
        // Digit 0.3; "Paris" and "Rome" capitalised after the first word 0.2; no long words;
        // a colon 0.2.
        let value = specificity("Visit Paris and Rome: 2 cities");
        assert_eq!(value, ((0.0 + 0.3) + f64::min(0.3, 2.0 * 0.1)) + 0.0 + 0.2);
        assert_eq!(specificity(""), 0.0);
    }

    #[test]
    fn coherence_rewards_sentences_of_normal_length() {
        assert_eq!(
            coherence("one two three four five. six seven eight nine ten."),
            1.0
        );
        assert_eq!(coherence("Hi. Yo."), 0.5);
        assert_eq!(coherence("..."), 0.0);
    }
}
