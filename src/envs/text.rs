//! Response parsing shared by the environments (affine's rules, scoring.md section 1.2).

/// `text` without `<think>…</think>` and `<thinking>…</thinking>` blocks (tags matched
/// case-insensitively; an unclosed block runs to the end).
pub fn without_thinking(text: &str) -> String {
    let mut result = text.to_string();
    for tag in ["thinking", "think"] {
        let open = format!("<{tag}>");
        let close = format!("</{tag}>");
        loop {
            let lower = result.to_ascii_lowercase();
            let Some(start) = lower.find(&open) else {
                break;
            };
            let end = lower[start..]
                .find(&close)
                .map(|offset| start + offset + close.len())
                .unwrap_or(result.len());
            result.replace_range(start..end, "");
        }
    }
    result
}

/// The content of the last `<tag>…</tag>` in `text`, tags matched case-insensitively.
pub fn last_tagged(text: &str, tag: &str) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    let open = format!("<{}>", tag.to_ascii_lowercase());
    let close = format!("</{}>", tag.to_ascii_lowercase());
    let start = lower.rfind(&open)? + open.len();
    let end = start + lower[start..].find(&close)?;
    Some(text[start..end].to_string())
}

/// The content of the last `<tag>…</tag>`, tags matched exactly (ELR's `<Answer>`).
pub fn last_tagged_exact(text: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = text.rfind(&open)? + open.len();
    let end = start + text[start..].find(&close)?;
    Some(text[start..end].to_string())
}

/// Each line right-trimmed and trailing blank lines dropped (after a whole-text strip).
pub fn tidy_lines(text: &str) -> String {
    let mut lines: Vec<&str> = text.trim().lines().map(str::trim_end).collect();
    while lines.last().is_some_and(|line| line.is_empty()) {
        lines.pop();
    }
    lines.join("\n")
}

/// Trailing whitespace of the text and of every line removed, CRLF/CR as LF.
pub fn rstrip_lines(text: &str) -> String {
    let unified = text.replace("\r\n", "\n").replace('\r', "\n");
    unified
        .trim_end()
        .split('\n')
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n")
}

/// The code of a response: the last ```python fence, else the last fence, else the whole
/// text.
pub fn code_of(response: &str) -> String {
    let fences = fenced_blocks(response);
    if let Some((_, code)) = fences
        .iter()
        .rev()
        .find(|(language, _)| language.eq_ignore_ascii_case("python"))
    {
        return code.clone();
    }
    match fences.last() {
        Some((_, code)) => code.clone(),
        None => response.to_string(),
    }
}

/// Every closed ``` fence as (language tag, body).
fn fenced_blocks(text: &str) -> Vec<(String, String)> {
    let mut blocks = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("```") {
        let after = &rest[start + 3..];
        let header_end = after.find('\n').unwrap_or(after.len());
        let language = after[..header_end].trim().to_string();
        let body_start = (header_end + 1).min(after.len());
        let Some(body_length) = after[body_start..].find("```") else {
            break;
        };
        blocks.push((
            language,
            after[body_start..body_start + body_length].to_string(),
        ));
        rest = &after[body_start + body_length + 3..];
    }
    blocks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thinking_blocks_are_removed_before_tags_are_read() {
        let text = "<think>x <INPUT>no</INPUT></think>ok <input>\n1 2  \n\n</INPUT>";
        let cleaned = without_thinking(text);
        assert_eq!(
            last_tagged(&cleaned, "INPUT").as_deref(),
            Some("\n1 2  \n\n")
        );
        assert_eq!(tidy_lines("\n1 2  \n\n"), "1 2");
    }

    #[test]
    fn code_prefers_the_last_python_fence() {
        let text = "```python\na\n```\n```js\nb\n```\n```Python\nc\n```\n```\nd\n```";
        assert_eq!(code_of(text), "c\n");
        assert_eq!(code_of("```\nd\n```"), "d\n");
        assert_eq!(code_of("print(1)"), "print(1)");
        assert_eq!(rstrip_lines("a  \r\nb \n\n"), "a\nb");
    }
}
